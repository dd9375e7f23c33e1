// Shared pieces of the libFuzzer harnesses (scripts/fuzz.sh runs them).
//
// Each harness feeds one reader with the fuzzer's bytes and carries what it
// accepts through workload expansion and mapping. Bad input must end as an
// InputError (the CLI's exit 2 with file and path); any other exception
// escapes and libFuzzer reports it as a finding, as do crashes, sanitizer
// reports, time-outs and memory blow-ups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/config.hpp"
#include "sim/trace.hpp"

namespace lpt::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// configs/tiny.json and traces/tiny-cnn.json from the source tree
// (LPTSIM_SOURCE_DIR overrides the compiled-in path), loaded once.
const AcceleratorConfig& tiny_config();
const nlohmann::json& tiny_config_json();  // tiny_config() resolved, chip inline
const Trace& tiny_trace();

// Workload expansion and mapping of every phase, as `lptsim run` does before
// simulating.
void expand_and_map(const Trace& trace, const AcceleratorConfig& config);

}  // namespace lpt::fuzz
