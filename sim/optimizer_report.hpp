// The optimizer's part of a training run's report: its schedule of steps
// (K-FAC's factors and inverses run every few steps; the run reports the step
// with every phase, the others are simulated beside it), the mean step over
// a long run, SGD-momentum's step on the same chip and network for
// comparison, and both memory footprints.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/memory_footprint.hpp"
#include "sim/optimizer.hpp"
#include "sim/reference_run.hpp"

namespace lpt {

struct OptimizerReport {
  Optimizer optimizer;
  // The schedule's kinds of step, the reported one (every phase) first, each
  // with its timing (nullopt: its run failed, or was not made); empty when
  // the run was of some phases only.
  std::vector<StepShare> shares;
  std::vector<std::optional<ReferenceTiming>> timings;
  // SGD-momentum's step (unset for SGD-momentum itself, or when not run).
  std::optional<ReferenceTiming> sgd;
  MemoryFootprint memory, sgd_memory;
  std::optional<std::uint64_t> capacity_bytes;  // the chip's DRAM, if given
  std::vector<std::string> errors;

  // Over a long run: the shares' weighted mean (nullopt when a kind lacks its timing).
  std::optional<double> mean_step_cycles() const;
  std::optional<double> mean_step_energy_pj() const;
};

// report.json's "optimizer" section.
nlohmann::json optimizer_report_json(const OptimizerReport& report, double clock_ghz);
// The summary's "optimizer" and "memory" lines.
void print_optimizer_summary(const OptimizerReport& report, double clock_ghz, std::ostream& out);

}  // namespace lpt
