// Chip descriptions through parsing, then mapping tiny-cnn on that chip with
// tiny.json's precision policy (the cross-checks reject chips lacking its formats).
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lpt;
  try {
    nlohmann::json config = fuzz::tiny_config_json();
    config["chip"] = parse_json_text(fuzz::as_text(data, size), "fuzz-chip.json");
    fuzz::expand_and_map(fuzz::tiny_trace(), parse_config(JsonReader(config, "")));
  } catch (const InputError&) {
  }
  return 0;
}
