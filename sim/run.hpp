// One simulation run: config + trace -> workload -> mapping -> chip model -> report files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "sim/fidelity.hpp"
#include "sim/optimizer_report.hpp"
#include "sim/reference_run.hpp"
#include "sim/report.hpp"
#include "sim/timeline.hpp"

namespace lpt {

enum class RunMode {
  kTraining,   // one training step (the phases asked for)
  kInference,  // the deployed forward pass (expand_inference), in the config's inference formats
};

// What to simulate of a config and a trace.
struct SimulationOptions {
  RunMode mode = RunMode::kTraining;
  std::optional<std::int64_t> batch;  // inference: 1 unless given
  std::set<Phase> phases = requestable_phases();
  std::optional<Fusion> fusion;  // overrides the config's
  std::optional<Residency> residency;  // overrides the config's
  bool fidelity = true;                 // false skips the fidelity pass (the config may also disable it)
  // Where fidelity results are cached by fidelity_key (empty: not cached).
  std::filesystem::path fidelity_cache;
  // Also simulate, beside the run (sim/reference_run): on a system of chips,
  // one chip at the whole batch (scaling efficiency) and, with compression,
  // the dense all-reduce; for a training step, the optimizer's other kinds of
  // step (K-FAC's without factors or inverses) and SGD-momentum's step.
  bool reference_runs = true;
  // Whether the step must fit the DRAM's capacity (reference runs, variants
  // of a run that fits, are not checked).
  bool check_memory = true;
};

// config + trace -> workload -> mapping -> chip model -> report. Writes no
// file; one progress line before and one after the simulation go to
// `progress`. With `timeline`, records the run's timeline into it. Bad input
// throws InputError. The same as report_run(simulate_timing(...)).
RunReport simulate(AcceleratorConfig config, Trace trace, const SimulationOptions& options, std::ostream& progress,
                   Timeline* timeline = nullptr);

// The timing half of a run: the workload, its program and the chip model's
// counters. Nothing in it depends on the config's energy model (the chip's
// voltage and energy table), so runs that differ only there can share one:
// a sweep over voltages or energy figures simulates the chip once.
struct TimedRun {
  AcceleratorConfig config;  // with the options applied (inference formats, fusion, residency)
  Trace trace;               // at the simulated batch
  std::vector<LayerWork> layers;
  MappedProgram mapped;
  core::RunStats stats;
  std::vector<Phase> phases;
  bool inference = false;
  std::optional<FidelityReport> fidelity;  // unless skipped
  References references;                   // on a system of chips, unless skipped
  std::optional<OptimizerReport> optimizer;  // training; the reported step's own timing not yet in it
  std::vector<std::pair<std::string, double>> stage_seconds;
};

// The first progress line goes to `progress`.
TimedRun simulate_timing(AcceleratorConfig config, Trace trace, const SimulationOptions& options,
                         std::ostream& progress, Timeline* timeline = nullptr);

// The report of `timed`, its energy priced at `energy_of`'s voltage and energy
// table (timed.config.chip for its own); the last progress line goes to `progress`.
RunReport report_run(const TimedRun& timed, const core::ChipParams& energy_of, std::ostream& progress);

struct RunOptions : SimulationOptions {
  std::filesystem::path config_file;
  std::filesystem::path trace_file;
  std::filesystem::path out_dir;  // empty: write no files
  std::vector<std::string> overrides;  // "/json/pointer=value", applied in order (apply_override)
  std::filesystem::path timeline_file;  // empty: record no timeline
  CycleWindow timeline_window;          // the part of the run it covers
};

// Loads the config (with its overrides) and the trace, simulates and (with
// out_dir) writes report.json, layers.csv and phases.csv, and (with
// timeline_file) the timeline.
RunReport run_simulation(const RunOptions& options, std::ostream& progress);

// Writes report.json, layers.csv and phases.csv into `dir` (created if needed).
void write_report_files(const RunReport& report, const std::filesystem::path& dir);

}  // namespace lpt
