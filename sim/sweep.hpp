// Runs a sweep (sim/sweep_spec): every point of the spec on every trace, each
// in a worker process of its own, several at once. A point's result is
// appended to results.jsonl as soon as it finishes, keyed by a hash of its
// effective config, trace and options, so that a killed sweep loses only the
// points in flight and --resume skips what is done. A point that fails (a bad
// combination, a simulation error, a crashed worker) is recorded with its error
// and the sweep goes on (docs/sweeps.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>

#include "sim/sweep_spec.hpp"

namespace lpt {

struct SweepOptions {
  std::filesystem::path out_dir;
  int jobs = 1;         // worker processes at once
  bool resume = false;  // skip points results.jsonl already holds
};

struct SweepSummary {
  std::size_t points = 0;   // point x trace combinations the axes give
  std::size_t dropped = 0;  // by the constraints
  std::size_t skipped = 0;  // already in results.jsonl (--resume)
  std::size_t ok = 0, failed = 0;
};

// The key of a point: a hex digest of its effective config document, trace
// file and options.
std::string point_key(const nlohmann::json& config_document, const std::filesystem::path& trace,
                      const SimulationOptions& options);

// Progress (count, rate, time left) goes to `progress`. A results file that
// exists without --resume, or a spec whose base config or traces do not load,
// is an InputError; everything else is a point's own failure.
SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& progress);

}  // namespace lpt
