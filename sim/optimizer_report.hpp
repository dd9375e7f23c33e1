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

#include "models/core/chip_params.hpp"
#include "models/system/system_params.hpp"
#include "sim/memory_footprint.hpp"
#include "sim/optimizer.hpp"
#include "sim/reference_run.hpp"

namespace lpt {

// One ESGD generation (sim/optimizer's Esgd): μ individuals × K steps and
// μ + λ evaluation passes, from the simulated step and evaluation; and the
// DRAM (and, spread over chips, link) traffic of the back-off copies (every
// individual restored, at worst) and of making the offspring, at the DRAM's
// and links' bandwidth — an estimate, not simulated.
struct GenerationEstimate {
  int chips = 1;
  int individuals_per_chip = 1;
  double compute_seconds = 0, copy_seconds = 0;
  double compute_pj = 0, copy_pj = 0;  // all chips' energy
  double memory_bytes = 0;             // the footprint of each chip (its copies of weights and state)
  double seconds() const { return compute_seconds + copy_seconds; }
  double energy_pj() const { return compute_pj + copy_pj; }
};

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
  SpillPlan spill;  // what the step keeps in host memory (spill_to_host)
  std::optional<std::uint64_t> capacity_bytes;  // the chip's DRAM, if given
  std::vector<std::string> errors;
  // ESGD: the evaluation pass of one individual (forward only, one chip),
  // and the chips its population may be spread over (a `system`).
  std::optional<ReferenceTiming> evaluation;
  std::optional<core::SystemParams> population_system;

  // Over a long run: the shares' weighted mean (nullopt when a kind lacks its timing).
  std::optional<double> mean_step_cycles() const;
  std::optional<double> mean_step_energy_pj() const;
};

// ESGD's generation with the individuals taking turns on one chip, and spread
// over the population's system if it has one; empty for other optimizers or
// without the step's or the evaluation's timing.
std::vector<GenerationEstimate> esgd_generations(const OptimizerReport& report, const core::ChipParams& chip);

// report.json's "optimizer" section.
nlohmann::json optimizer_report_json(const OptimizerReport& report, const core::ChipParams& chip);
// The summary's "optimizer" and "memory" lines.
void print_optimizer_summary(const OptimizerReport& report, const core::ChipParams& chip, std::ostream& out);

}  // namespace lpt
