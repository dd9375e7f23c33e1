// A variant of a run simulated beside it, in a child process (SystemC allows
// one simulation per process): a system's training step on one chip at the
// whole batch, for its scaling efficiency; without gradient compression, for
// what compression saves; the steps of an optimizer's schedule that skip its
// intermittent phases; and SGD-momentum's step, for what the optimizer costs. The child starts before the run's own
// simulation, so on two cores the two run at once.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "models/core/stats.hpp"
#include "sim/config.hpp"
#include "sim/trace.hpp"

namespace lpt {

struct SimulationOptions;

// What a reference run reports.
struct ReferenceTiming {
  std::uint64_t total_cycles = 0;
  std::uint64_t communication_cycles = 0;  // the collectives' durations, summed
  std::uint64_t bytes_sent = 0;            // by the reported chip to other chips
  std::uint64_t collective_dram_bytes = 0;  // the collectives' reads and writes
  std::uint64_t collective_sfu_ops = 0;
  double energy_pj = 0;  // the reported chip's, at the run's operating point
};

// Everything but the energy, which needs the report.
ReferenceTiming reference_timing(const core::RunStats& stats);

class ReferenceRun {
 public:
  // Forks a child that simulates `config` on `trace` (timing only: no fidelity
  // pass, no reference runs of its own). Throws std::runtime_error if it cannot.
  ReferenceRun(const AcceleratorConfig& config, const Trace& trace, const SimulationOptions& options);
  ReferenceRun(const ReferenceRun&) = delete;
  ReferenceRun& operator=(const ReferenceRun&) = delete;
  ~ReferenceRun();  // stops and reaps a child whose result was not taken

  // Waits for the child. Throws std::runtime_error with its error, if it failed.
  ReferenceTiming result();

 private:
  pid_t pid_ = -1;
  int from_child_ = -1;
};

}  // namespace lpt
