// Runs a sweep (sim/sweep_spec): every point of the spec on every trace, each
// in a worker process of its own, several at once. A point's result is
// appended to results.jsonl as soon as it finishes, keyed by a hash of its
// effective config, trace and options, so that a killed sweep loses only the
// points in flight and --resume skips what is done. A point that fails (a bad
// combination, a simulation error, a crashed worker) is recorded with its error
// and the sweep goes on. Started by mpirun (or srun), the points spread over the
// MPI ranks: rank 0 hands them out one at a time to whichever rank asks and
// writes every result (docs/sweeps.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "sim/sweep_spec.hpp"

namespace lpt {

struct SweepOptions {
  std::filesystem::path out_dir;
  // Points at once in each process (each MPI rank); by default the machine's
  // cores, or 1 per rank under MPI, where mpirun already gives one rank a core.
  std::optional<int> jobs;
  bool resume = false;  // skip points results.jsonl already holds
  // A point's worker still running after this long is killed and the point
  // recorded as crashed (a hung or runaway point must not hold the sweep).
  std::optional<double> point_timeout_seconds;
  bool report_each_point = false;  // a progress line per point as it comes in
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

// Whether an MPI launcher (mpirun, or srun with PMIx/PMI2) started this
// process, read from its environment: MPI itself is initialised only then.
bool started_by_mpi_launcher();

// Progress (count, rate, time left) goes to `progress`. A results file that
// exists without --resume, or a spec whose base config or traces do not load,
// is an InputError; everything else is a point's own failure. Under MPI every
// rank calls this, and only rank 0 gets a summary (and throws the InputErrors,
// after the other ranks have been told to stop).
std::optional<SweepSummary> run_sweep(const std::filesystem::path& spec_file, const SweepOptions& options,
                                      std::ostream& progress);

}  // namespace lpt
