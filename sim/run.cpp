#include "sim/run.hpp"

#include <chrono>
#include <fstream>

#include "models/core/chip.hpp"

namespace lpt {

namespace {

std::ofstream open_for_writing(const std::filesystem::path& file) {
  std::ofstream out(file);
  if (!out) throw InputError(file.string(), "", "cannot open for writing");
  return out;
}

}  // namespace

RunReport run_simulation(const RunOptions& options, std::ostream& progress) {
  const auto start = std::chrono::steady_clock::now();
  const AcceleratorConfig config = load_config(options.config_file);
  Trace trace = load_trace(options.trace_file);
  if (options.batch) trace.batch = *options.batch;

  const auto layers = expand_training(trace, {config.precision.update.optimizer});
  std::vector<Phase> phases(options.phases.begin(), options.phases.end());
  const MappedProgram mapped = map_training(layers, config, options.phases);
  std::size_t tasks = 0;
  for (const auto& step : mapped.program.steps)
    for (const auto& core_tasks : step.tasks_per_core) tasks += core_tasks.size();
  progress << "lptsim: " << trace.network << " (" << trace.layers.size() << " layers, batch "
           << trace.batch << ") on " << config.name << ": " << mapped.program.steps.size()
           << " steps, " << tasks << " tile tasks\n";

  const core::RunStats stats = core::run_program(config.chip, mapped.program);

  RunReport report = build_report(config, trace, layers, mapped, stats, phases);
  report.config_file = options.config_file.string();
  report.trace_file = options.trace_file.string();
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress << "lptsim: simulated " << report.total.cycles << " cycles in " << report.wall_seconds
           << " s wall (" << stats.simulation_events << " events)\n";
  if (!options.out_dir.empty()) write_report_files(report, options.out_dir);
  return report;
}

void write_report_files(const RunReport& report, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(dir.string(), "", "cannot create output directory: " + ec.message());
  open_for_writing(dir / "report.json") << to_json(report).dump(2) << '\n';
  auto layers = open_for_writing(dir / "layers.csv");
  write_layers_csv(report, layers);
  auto phases = open_for_writing(dir / "phases.csv");
  write_phases_csv(report, phases);
}

}  // namespace lpt
