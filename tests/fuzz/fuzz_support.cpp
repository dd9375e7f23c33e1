#include "tests/fuzz/fuzz_support.hpp"

#include <cstdlib>
#include <filesystem>

#include "sim/mapping.hpp"
#include "sim/workload.hpp"

namespace lpt::fuzz {

namespace {

std::filesystem::path source_dir() {
  const char* dir = std::getenv("LPTSIM_SOURCE_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(LPTSIM_SOURCE_DIR);
}

}  // namespace

const AcceleratorConfig& tiny_config() {
  static const AcceleratorConfig config = load_config(source_dir() / "configs/tiny.json");
  return config;
}

const nlohmann::json& tiny_config_json() {
  static const nlohmann::json json = tiny_config();
  return json;
}

const Trace& tiny_trace() {
  static const Trace trace = load_trace(source_dir() / "traces/tiny-cnn.json");
  return trace;
}

void expand_and_map(const Trace& trace, const AcceleratorConfig& config) {
  const auto layers = expand_training(trace, {config.precision.update.optimizer, config.fusion});
  map_training(layers, config, requestable_phases());
}

}  // namespace lpt::fuzz
