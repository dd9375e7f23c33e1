// One simulation run: config + trace -> workload -> mapping -> chip model -> report files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <set>

#include "sim/report.hpp"

namespace lpt {

enum class RunMode {
  kTraining,   // one training step (the phases asked for)
  kInference,  // the deployed forward pass (expand_inference), in the config's inference formats
};

struct RunOptions {
  RunMode mode = RunMode::kTraining;
  std::filesystem::path config_file;
  std::filesystem::path trace_file;
  std::filesystem::path out_dir;  // empty: write no files
  std::optional<std::int64_t> batch;  // inference: 1 unless given
  std::set<Phase> phases{kAllPhases.begin(), kAllPhases.end()};
  std::optional<Fusion> fusion;  // overrides the config's
  std::optional<Residency> residency;  // overrides the config's
};

// Loads, simulates and (with out_dir) writes report.json, layers.csv and
// phases.csv. Progress goes to `progress`. Bad input throws InputError.
RunReport run_simulation(const RunOptions& options, std::ostream& progress);

// Writes report.json, layers.csv and phases.csv into `dir` (created if needed).
void write_report_files(const RunReport& report, const std::filesystem::path& dir);

}  // namespace lpt
