// Accelerator configs (chip inline) through parsing, then mapping tiny-cnn on them.
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lpt;
  try {
    const AcceleratorConfig config =
        parse_config(JsonReader(parse_json_text(fuzz::as_text(data, size), "fuzz-config.json"), ""));
    fuzz::expand_and_map(fuzz::tiny_trace(), config);
  } catch (const InputError&) {
  }
  return 0;
}
