#include "sim/run.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "models/common/input_file.hpp"
#include "models/core/chip.hpp"
#include "models/system/system.hpp"

namespace lpt {

namespace {

void write_file(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  if (out) out << text;
  if (!out.flush()) throw InputError(file.string(), "", "cannot write the file");
}

// Wall time of the pipeline's stages, for the report's "simulator" section.
class StageClock {
 public:
  void lap(const char* stage) {
    const auto now = std::chrono::steady_clock::now();
    stages_.emplace_back(stage, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
  std::vector<std::pair<std::string, double>> stages() const { return stages_; }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> stages_;
};

// The runs beside a training step for its optimizer (sim/reference_run): the
// schedule's other kinds of step, SGD-momentum's step, ESGD's evaluation pass.
struct OptimizerRuns {
  std::vector<std::unique_ptr<ReferenceRun>> schedule;  // shares[1...]
  std::unique_ptr<ReferenceRun> sgd, evaluation;

  // `trace` at one chip's share of `global_batch`.
  void start(const AcceleratorConfig& config, const Trace& trace, std::int64_t global_batch,
             const SimulationOptions& options, const std::vector<StepShare>& shares) {
    Trace whole = trace;
    whole.batch = global_batch;
    SimulationOptions reference = options;
    reference.batch = global_batch;
    for (std::size_t i = 1; i < shares.size(); ++i) {
      SimulationOptions kind = reference;
      for (const Phase p : shares[i].skipped) kind.phases.erase(p);
      schedule.push_back(std::make_unique<ReferenceRun>(config, whole, kind));
    }
    const Optimizer& optimizer = config.precision.update.optimizer;
    if (const auto* esgd = std::get_if<Esgd>(&optimizer)) {
      Trace validation = whole;
      SimulationOptions forward = reference;
      forward.phases = {Phase::kFwd};
      forward.batch = validation.batch = esgd->evaluation_batch > 0 ? esgd->evaluation_batch : whole.batch;
      evaluation = std::make_unique<ReferenceRun>(config, validation, forward);
    }
    // ESGD's step is SGD-momentum's.
    if (!std::holds_alternative<SgdMomentum>(optimizer) && !std::holds_alternative<Esgd>(optimizer)) {
      AcceleratorConfig plain = config;
      plain.precision.update.optimizer = SgdMomentum{};
      sgd = std::make_unique<ReferenceRun>(plain, whole, reference);
    }
  }

  bool started() const { return !schedule.empty() || sgd || evaluation; }

  // Their results into `report`; a failed run is an error line, not the run's failure.
  void collect(OptimizerReport& report, std::ostream& progress) {
    const auto take = [&](ReferenceRun* run, std::optional<ReferenceTiming>& into) {
      if (!run) return;
      try {
        into = run->result();
      } catch (const std::exception& e) {
        report.errors.push_back(e.what());
        progress << "lptsim: " << e.what() << "\n";
      }
    };
    for (std::size_t i = 0; i < schedule.size(); ++i) take(schedule[i].get(), report.timings[i + 1]);
    take(sgd.get(), report.sgd);
    take(evaluation.get(), report.evaluation);
  }
};

}  // namespace

TimedRun simulate_timing(AcceleratorConfig config, Trace trace, const SimulationOptions& options,
                         std::ostream& progress, Timeline* timeline) {
  StageClock clock;
  const bool inference = options.mode == RunMode::kInference;
  if (inference) {
    if (!config.precision.inference)
      throw InputError(config.file, "/precision",
                       "--mode inference needs an inference precision policy: add \"inference\" with "
                       "\"gemm\" formats (and optionally \"first_layer\" and \"last_layer\")");
    config.precision = config.precision.for_inference();
    trace.batch = 1;
    config.system.reset();  // data parallelism is for training: one chip serves the deployed network
  }
  if (options.batch) trace.batch = *options.batch;
  // ESGD spreads its individuals, not the batch, over a system's chips: the
  // step simulated is one individual's on one chip.
  std::optional<core::SystemParams> population_system;
  if (!inference && std::holds_alternative<Esgd>(config.precision.update.optimizer) && config.system) {
    population_system = config.system;
    config.system.reset();
  }
  // Data parallelism: every chip trains on its share of the batch.
  const std::int64_t global_batch = trace.batch;
  if (const int chips = config.chips(); chips > 1) {
    if (trace.batch % chips != 0)
      throw InputError(config.file, "/system/chips",
                       std::to_string(chips) + " chips cannot split a batch of " + std::to_string(trace.batch) +
                           " evenly (data parallelism: each chip trains on batch / chips); set a batch that is a "
                           "multiple of " + std::to_string(chips) + " (--batch)");
    trace.batch /= chips;
  }
  // Started before this run's simulation, to run beside it.
  std::optional<ReferenceRun> one_chip_run, dense_run;
  if (config.chips() > 1 && options.reference_runs) {
    Trace whole = trace;
    whole.batch = global_batch;
    SimulationOptions reference = options;
    reference.batch = global_batch;
    AcceleratorConfig one_chip = config;
    one_chip.system.reset();
    one_chip_run.emplace(one_chip, whole, reference);
    if (config.data_parallel.compression) {
      AcceleratorConfig dense = config;
      dense.data_parallel.compression.reset();
      dense_run.emplace(dense, whole, reference);
    }
  }

  if (options.fusion) {
    if (const auto why = unsupported_fusion(config.chip.core.sfu.fusion, *options.fusion))
      throw InputError(config.file, "", "--fusion " + std::string(to_string(*options.fusion)) + ": " + *why +
                                            ", set at " + config.chip_location("/core/sfu/fusion"));
    config.fusion = *options.fusion;
  }
  // The optimizer's schedule and SGD-momentum's step, beside a whole training step.
  const Optimizer& optimizer = config.precision.update.optimizer;
  std::optional<OptimizerReport> optimizer_report;
  OptimizerRuns optimizer_runs;
  if (!inference) {
    optimizer_report.emplace();
    optimizer_report->optimizer = optimizer;
    optimizer_report->capacity_bytes = config.chip.dram.capacity_bytes();
    optimizer_report->population_system = population_system;
    if (options.phases == requestable_phases()) {
      optimizer_report->shares = step_shares(optimizer);
      optimizer_report->timings.resize(optimizer_report->shares.size());
    }
    if (options.reference_runs) optimizer_runs.start(config, trace, global_batch, options, optimizer_report->shares);
  }
  if (options.residency) config.residency = *options.residency;
  const ExpansionOptions expansion{optimizer, config.fusion};
  auto layers = inference ? expand_inference(trace, expansion) : expand_training(trace, expansion);
  SpillPlan spill;
  if (optimizer_report) {
    AcceleratorConfig population = config;  // ESGD's individuals per chip count its chips
    population.system = population_system ? population_system : config.system;
    optimizer_report->memory = memory_footprint(population, layers);
    if (optimizer_runs.sgd) {
      AcceleratorConfig sgd = config;
      sgd.precision.update.optimizer = SgdMomentum{};
      optimizer_report->sgd_memory = memory_footprint(sgd, expand_training(trace, {SgdMomentum{}, config.fusion}));
    }
    try {
      if (options.check_memory) check_memory_capacity(population, optimizer_report->memory);
      spill = plan_spill(population, layers, optimizer_report->memory);
    } catch (const InputError& e) {
      // A reference run may not fit where its run does (one chip at the whole batch): it runs unspilled.
      if (options.check_memory)
        throw InputError(config.file, e.json_path(),
                         trace.network + " at batch " + std::to_string(global_batch) + ": " + e.message());
    }
    optimizer_report->spill = spill;
  }
  clock.lap("expand");
  const std::set<Phase> simulated = inference ? std::set<Phase>{Phase::kFwd} : options.phases;
  MappedProgram mapped;
  try {
    mapped = map_training(layers, config, simulated, spill);
  } catch (const InputError& e) {
    throw e.in_file(trace.file);
  }
  // The report lists SGD's phases when asked for, the optimizer's own when
  // they have work, and the exchanges between chips the program has.
  std::vector<Phase> phases;
  for (const PhaseInfo& row : kPhaseTable) {
    const bool has_work = std::any_of(layers.begin(), layers.end(),
                                      [&](const LayerWork& layer) { return !layer.phase(row.phase).empty(); });
    const bool has_steps = std::any_of(mapped.steps.begin(), mapped.steps.end(),
                                       [&](const StepInfo& step) { return step.phase == row.phase; });
    if ((simulated.count(row.phase) && (row.sgd || has_work)) || has_steps ||
        (row.phase == Phase::kAllReduce && config.chips() > 1 && simulated.count(Phase::kWgrad)))
      phases.push_back(row.phase);
  }
  clock.lap("map");
  if (config.residency == Residency::kLiveness) {
    keep_results_on_chip(mapped, config.chip);
    clock.lap("residency");
  }
  std::size_t tasks = 0;
  for (const auto& step : mapped.program.steps)
    for (const auto& core_tasks : step.tasks_per_core) tasks += core_tasks.size();
  progress << "lptsim: " << trace.network << " (" << trace.layers.size() << " layers, batch " << global_batch
           << (config.chips() > 1 ? " over " + std::to_string(config.chips()) + " chips" : std::string()) << ") on "
           << config.name << ": " << mapped.program.steps.size() << " steps, " << tasks << " tile tasks"
           << (config.chips() > 1 ? " per chip" : "") << "\n";

  if (timeline) {
    timeline->run.cores = config.chip.cores;
    timeline->run.clock_ghz = config.chip.clock_ghz;
    for (const StepInfo& step : mapped.steps)
      timeline->run.steps.push_back({trace.layers.at(step.layer).name, step.phase, step.what()});
  }
  core::RunStats stats;
  try {
    core::TimelineObserver* observer = timeline ? &timeline->recorder : nullptr;
    stats = config.chips() > 1 ? core::run_system(*config.system, config.chip, mapped.program, observer)
                               : core::run_program(config.chip, mapped.program, observer);
  } catch (const core::SimulatedTimeLimit& e) {
    const StepInfo& step = mapped.steps.at(e.step());
    const Layer& layer = trace.layers.at(step.layer);
    throw InputError(trace.file, layer.where,
                     "layer " + quoted_excerpt(layer.name) + ", " + to_string(step.phase) + " " +
                         step.what() + ": " + e.what() + " on " + config.file +
                         "; reduce the batch or the layer, or check the chip's bandwidths");
  }

  clock.lap("simulate");
  References references;
  const auto collect = [&](std::optional<ReferenceRun>& run, std::optional<ReferenceTiming>& into) {
    if (!run) return;
    try {
      into = run->result();
    } catch (const std::exception& e) {
      references.errors.push_back(e.what());
      progress << "lptsim: " << e.what() << "\n";
    }
  };
  collect(one_chip_run, references.one_chip);
  collect(dense_run, references.dense);
  if (optimizer_report) optimizer_runs.collect(*optimizer_report, progress);
  if (one_chip_run || optimizer_runs.started()) clock.lap("reference runs");
  if (timeline) timeline->run.total_cycles = stats.total_cycles;
  std::optional<FidelityReport> fidelity;
  if (options.fidelity && config.fidelity.enabled) {
    try {
      fidelity = options.fidelity_cache.empty()
                     ? measure_fidelity(config, trace, layers, simulated)
                     : cached_fidelity(options.fidelity_cache, fidelity_key(config, trace, simulated, inference),
                                       config, trace, layers, simulated);
    } catch (const InputError& e) {
      throw e.file().empty() ? e.in_file(trace.file) : e;
    }
    clock.lap("fidelity");
  }
  return {std::move(config),   std::move(trace),      std::move(layers),           std::move(mapped),
          std::move(stats),    std::move(phases),     inference,                   std::move(fidelity),
          std::move(references), std::move(optimizer_report), clock.stages()};
}

RunReport report_run(const TimedRun& timed, const core::ChipParams& energy_of, std::ostream& progress) {
  StageClock clock;
  AcceleratorConfig priced = timed.config;
  priced.chip.voltage = energy_of.voltage;
  priced.chip.energy = energy_of.energy;
  RunReport report = build_report(priced, timed.trace, timed.layers, timed.mapped, timed.stats, timed.phases);
  report.fidelity = timed.fidelity;
  if (report.system) report.system->references = timed.references;
  if (timed.optimizer) {
    report.optimizer = timed.optimizer;
    // The runs beside it priced their energy at the simulated chip's
    // operating point and table; a sweep point sharing this timing with
    // other energy figures cannot reuse them.
    if (nlohmann::json(energy_of) != nlohmann::json(timed.config.chip)) {
      for (auto& timing : report.optimizer->timings)
        if (timing) timing->energy_pj = std::nan("");
      if (report.optimizer->sgd) report.optimizer->sgd->energy_pj = std::nan("");
      if (report.optimizer->evaluation) report.optimizer->evaluation->energy_pj = std::nan("");
    }
    if (!report.optimizer->timings.empty()) {
      ReferenceTiming own = reference_timing(timed.stats);
      own.energy_pj = report.total.energy.total_pj();
      report.optimizer->timings.front() = own;
    }
  }
  clock.lap("report");
  report.mode = timed.inference ? "inference" : "training";
  report.config_file = priced.file;
  report.trace_file = timed.trace.file;
  report.stage_seconds = timed.stage_seconds;
  report.stage_seconds.push_back(clock.stages().front());
  for (const auto& [stage, seconds] : report.stage_seconds) report.wall_seconds += seconds;
  progress << "lptsim: simulated " << report.total.cycles << " cycles in " << report.wall_seconds
           << " s wall (" << timed.stats.simulation_events << " events)\n";
  return report;
}

RunReport simulate(AcceleratorConfig config, Trace trace, const SimulationOptions& options, std::ostream& progress,
                   Timeline* timeline) {
  const TimedRun timed = simulate_timing(std::move(config), std::move(trace), options, progress, timeline);
  return report_run(timed, timed.config.chip, progress);
}

RunReport run_simulation(const RunOptions& options, std::ostream& progress) {
  ConfigDocument document = read_config_document(options.config_file);
  for (const std::string& override_text : options.overrides) apply_override(document, override_text);
  AcceleratorConfig config = parse_config_document(document);
  Trace trace = load_trace(options.trace_file);
  // Before the simulation: a report that cannot be written should not cost a run.
  if (!options.out_dir.empty()) prepare_output_directory(options.out_dir);
  std::ofstream timeline_out;
  if (!options.timeline_file.empty()) {
    timeline_out.open(options.timeline_file, std::ios::binary);
    if (!timeline_out) throw InputError(options.timeline_file.string(), "", "cannot write the file");
  }
  Timeline timeline{{}, TimelineRecorder(options.timeline_window)};
  RunReport report = simulate(std::move(config), std::move(trace), options, progress,
                              timeline_out.is_open() ? &timeline : nullptr);
  if (!options.out_dir.empty()) write_report_files(report, options.out_dir);
  if (timeline_out.is_open()) {
    write_timeline(timeline_out, timeline.run, timeline.recorder.intervals());
    if (!timeline_out.flush()) throw InputError(options.timeline_file.string(), "", "cannot write the file");
  }
  return report;
}

void write_report_files(const RunReport& report, const std::filesystem::path& dir) {
  prepare_output_directory(dir);
  // Every table is rendered before any file is written, so a failure leaves
  // no half-written report behind.
  const std::string json = json_text(to_json(report), 2) + '\n';
  std::ostringstream layers, phases;
  write_layers_csv(report, layers);
  write_phases_csv(report, phases);
  write_file(dir / "report.json", json);
  write_file(dir / "layers.csv", layers.str());
  write_file(dir / "phases.csv", phases.str());
}

}  // namespace lpt
