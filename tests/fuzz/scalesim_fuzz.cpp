// SCALE-Sim topology CSVs through import, expansion and mapping on tiny.json.
#include <sstream>

#include "sim/scalesim_import.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lpt;
  try {
    std::istringstream in{std::string(fuzz::as_text(data, size))};
    fuzz::expand_and_map(import_scalesim_csv(in, "fuzz.csv", "fuzz"), fuzz::tiny_config());
  } catch (const InputError&) {
  }
  return 0;
}
