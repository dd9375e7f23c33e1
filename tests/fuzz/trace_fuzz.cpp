// Layer traces through parsing, expansion and mapping on tiny.json.
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lpt;
  try {
    const Trace trace = parse_trace(JsonReader(parse_json_text(fuzz::as_text(data, size), "fuzz-trace.json"), ""));
    fuzz::expand_and_map(trace, fuzz::tiny_config());
  } catch (const InputError&) {
  }
  return 0;
}
