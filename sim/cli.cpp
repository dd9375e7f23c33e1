#include "sim/cli.hpp"

#include <unistd.h>

#include <boost/program_options.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>

#include "models/common/json_reader.hpp"
#include "sim/cli_options.hpp"
#include "sim/config.hpp"
#include "sim/config_reference.hpp"
#include "sim/document_kind.hpp"
#include "sim/numerics_cli.hpp"
#include "sim/run.hpp"
#include "sim/scalesim_import.hpp"
#include "sim/sweep.hpp"
#include "sim/sweep_report.hpp"
#include "sim/trace.hpp"
#include "sim/trace_info.hpp"

namespace lpt {

namespace po = boost::program_options;

namespace {

// Shipped configs and traces are found relative to the source tree unless
// LPTSIM_DATA_DIR points elsewhere.
std::filesystem::path data_dir() {
  if (const char* dir = std::getenv("LPTSIM_DATA_DIR")) return dir;
  return LPTSIM_SOURCE_DIR;
}

struct Command {
  std::string summary;
  std::function<int(const std::vector<std::string>&, std::istream&, std::ostream&, std::ostream&)> run;
};

std::set<Phase> parse_phases(const std::string& text) {
  if (text == "all") return requestable_phases();
  std::set<Phase> phases;
  std::stringstream in(text);
  std::string word;
  while (std::getline(in, word, ',')) {
    const std::optional<Phase> phase = phase_named(word);
    if (!phase || !requestable_phases().count(*phase))
      throw po::error("--phases: unknown phase " + quoted_excerpt(word) + " (expected all, or a comma-separated "
                      "subset of " + requestable_phase_names() + ")");
    phases.insert(*phase);
  }
  if (phases.empty()) throw po::error("--phases: no phase given");
  return phases;
}

int command_run(const std::vector<std::string>& args, std::istream&, std::ostream& out,
                std::ostream& err) {
  const std::string phases_help = "phases to simulate (training): all, or some of " + requestable_phase_names() +
                                  " (an optimizer's own phase adds steps where it has work); fwd alone is the "
                                  "forward pass of training";
  const std::string usage =
      "usage: lptsim run [--config FILE] [--trace FILE] [--out DIR] [--batch N] "
      "[--phases all|fwd,bwd,...] [--fusion none|epilogue|full] [--residency none|liveness]\n"
      "       [--mode training|inference] [--set /json/pointer=value ...]\n"
      "       [--timeline FILE [--timeline-window FIRST:LAST]] [--no-fidelity] [--fidelity-cache DIR]\n"
      "       [--no-reference-runs]\n"
      "Simulates one training step (or the phases given) of the trace on the accelerator.";
  po::options_description options("options");
  options.add_options()("help,h", "show this help")
      ("config,c", po::value<std::string>()->default_value((data_dir() / "configs/rapid-4core.json").string()), "accelerator config (JSON)")
      ("trace,t", po::value<std::string>()->default_value((data_dir() / "traces/resnet50.json").string()), "layer trace (JSON, or a SCALE-Sim topology .csv)")
      ("out,o", po::value<std::string>()->default_value("lptsim-out"), "directory for report.json, layers.csv, phases.csv")
      ("batch,b", po::value<std::int64_t>(), "override the trace's batch size")
      ("timeline", po::value<std::string>(),
       "also write every core's compute, stall, SFU and DMA intervals to FILE (Chrome trace-event JSON, for Perfetto)")
      ("timeline-window", po::value<std::string>(), "with --timeline: only cycles FIRST:LAST of the run")
      ("phases,p", po::value<std::string>()->default_value("all"),
       phases_help.c_str())
      ("fusion,f", po::value<std::string>(), "operator fusion, overriding the config's: none|epilogue|full")
      ("residency,r", po::value<std::string>(),
       "results kept on chip between steps, overriding the config's: none|liveness")
      ("set,s", po::value<std::vector<std::string>>()->composing(),
       "set a value in the config before it is validated, e.g. --set /chip/cores=8 "
       "(/chip/... reaches the chip description, /chip/energy/... its energy table); repeatable")
      ("no-fidelity", "skip the fidelity pass (every GEMM bit-exact on sampled outputs vs FP64)")
      ("no-reference-runs",
       "skip the runs beside it: on a system of chips, one chip at the whole batch (scaling efficiency) and the "
       "dense all-reduce when gradients are compressed; for an optimizer, its schedule's other kinds of step, "
       "SGD-momentum's step and ESGD's evaluation pass")
      ("fidelity-cache", po::value<std::string>(),
       "keep fidelity results in DIR, keyed by what they depend on, and reuse them")
      ("mode,m", po::value<std::string>()->default_value("training"),
       "training: one training step; inference: the deployed forward pass (batch-norm folded, "
       "dropout removed, the config's inference formats, batch 1 unless --batch)");
  po::variables_map vm;
  if (auto code = parse_command_line("run", usage, options, nullptr, args, vm, out, err)) return *code;

  RunOptions run;
  run.config_file = vm["config"].as<std::string>();
  run.trace_file = vm["trace"].as<std::string>();
  run.out_dir = vm["out"].as<std::string>();
  if (vm.count("timeline")) run.timeline_file = vm["timeline"].as<std::string>();
  if (vm.count("set")) run.overrides = vm["set"].as<std::vector<std::string>>();
  run.fidelity = !vm.count("no-fidelity");
  run.reference_runs = !vm.count("no-reference-runs");
  if (vm.count("fidelity-cache")) run.fidelity_cache = vm["fidelity-cache"].as<std::string>();
  try {
    if (run.out_dir.empty()) throw po::error("--out must name a directory");
    if (vm.count("timeline-window")) {
      const auto window = parse_cycle_window(vm["timeline-window"].as<std::string>());
      if (!window) throw po::error("--timeline-window must be FIRST:LAST, in cycles, FIRST < LAST");
      if (run.timeline_file.empty()) throw po::error("--timeline-window needs --timeline");
      run.timeline_window = *window;
    }
    run.phases = parse_phases(vm["phases"].as<std::string>());
    if (vm.count("batch")) {
      const auto batch = vm["batch"].as<std::int64_t>();
      if (batch < 1 || batch > (std::int64_t{1} << 20))
        throw po::error("--batch must be in [1, 1048576]");
      run.batch = batch;
    }
    const std::string mode = vm["mode"].as<std::string>();
    if (mode == "inference") {
      run.mode = RunMode::kInference;
      if (!vm["phases"].defaulted())
        throw po::error("--phases applies to training; --mode inference simulates the forward pass");
    } else if (mode != "training") {
      throw po::error("--mode: unknown mode " + quoted_excerpt(mode) + " (expected training or inference)");
    }
    if (vm.count("fusion")) {
      run.fusion = fusion_from_string(vm["fusion"].as<std::string>());
      if (!run.fusion)
        throw po::error("--fusion: unknown mode " + quoted_excerpt(vm["fusion"].as<std::string>()) +
                        " (expected none, epilogue or full)");
    }
    if (vm.count("residency")) {
      run.residency = residency_from_string(vm["residency"].as<std::string>());
      if (!run.residency)
        throw po::error("--residency: unknown mode " + quoted_excerpt(vm["residency"].as<std::string>()) +
                        " (expected none or liveness)");
    }
  } catch (const po::error& e) {
    err << "lptsim run: " << e.what() << '\n';
    return kExitBadInput;
  }
  const Verbosity level = verbosity(vm);
  const RunReport report = run_simulation(run, stream_for(level, Verbosity::kNormal, err));
  if (level >= Verbosity::kNormal) print_summary(report, out);
  std::ostream& detail = stream_for(level, Verbosity::kVerbose, err);
  for (const auto& [stage, seconds] : report.stage_seconds)
    detail << "lptsim: " << stage << ": " << seconds << " s wall\n";
  stream_for(level, Verbosity::kNormal, out) << "report written to " << run.out_dir.string() << "/report.json\n";
  if (!run.timeline_file.empty())
    stream_for(level, Verbosity::kNormal, out) << "timeline written to " << run.timeline_file.string() << '\n';
  return kExitOk;
}

int command_validate(const std::vector<std::string>& args, std::istream&, std::ostream& out,
                     std::ostream& err) {
  const std::string usage =
      "usage: lptsim validate [--set /json/pointer=value ...] FILE...\n"
      "Checks configs (JSON with \"chip\"), chip descriptions (JSON with \"cores\" and\n"
      "\"core\"), energy tables (JSON with \"multiply_pj\"), traces (JSON with \"layers\"),\n"
      "sweep specs (JSON with \"traces\") and SCALE-Sim topologies (.csv).";
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "set,s", po::value<std::vector<std::string>>()->composing(),
      "set a value in each config before it is validated (as lptsim run --set); repeatable")(
      "files", po::value<std::vector<std::string>>()->multitoken(), "files to check");
  po::positional_options_description positional;
  positional.add("files", -1);
  po::variables_map vm;
  if (auto code = parse_command_line("validate", usage, options, &positional, args, vm, out, err)) return *code;
  if (!vm.count("files")) {
    err << "lptsim validate: no file given\n" << usage << '\n';
    return kExitBadInput;
  }
  std::ostream& told = stream_for(verbosity(vm), Verbosity::kNormal, out);
  int status = kExitOk;
  for (const auto& file : vm["files"].as<std::vector<std::string>>()) {
    try {
      if (std::filesystem::path(file).extension() == ".csv") {
        const auto trace = load_trace(file);
        expand_training(trace, {});  // the work's limits at the trace's batch
        told << "ok: " << file << " (SCALE-Sim topology \"" << trace.network << "\", "
            << trace.layers.size() << " layers)\n";
        continue;
      }
      const nlohmann::json doc = load_json_file(file);
      const std::optional<DocumentKind> kind = document_kind(doc);
      if (!kind)
        throw InputError(file, "", "neither " + describe(DocumentKind::kConfig) + ", " +
                                       describe(DocumentKind::kChip) + ", " + describe(DocumentKind::kEnergyTable) +
                                       ", " + describe(DocumentKind::kTrace) + " nor " +
                                       describe(DocumentKind::kSweepSpec));
      switch (*kind) {
        case DocumentKind::kConfig: {
          ConfigDocument document = read_config_document(file);
          if (vm.count("set"))
            for (const std::string& override_text : vm["set"].as<std::vector<std::string>>())
              apply_override(document, override_text);
          const auto config = parse_config_document(document);
          told << "ok: " << file << " (config \"" << config.name << "\", " << config.chip.cores << " cores)\n";
          break;
        }
        case DocumentKind::kChip:
          told << "ok: " << file << " (chip description, " << load_chip(file).cores << " cores)\n";
          break;
        case DocumentKind::kEnergyTable: {
          const auto table = parse_json_file<energy::EnergyTable>(file, [](const JsonReader& in) {
            energy::EnergyTable t;
            from_json(in, t);
            return t;
          });
          told << "ok: " << file << " (energy table, " << table.technology << ", " << table.multiply_pj.size()
               << " operand formats)\n";
          break;
        }
        case DocumentKind::kTrace: {
          const auto trace = load_trace(file);
          expand_training(trace, {});
          told << "ok: " << file << " (trace \"" << trace.network << "\", " << trace.layers.size()
               << " layers, batch " << trace.batch << ")\n";
          break;
        }
        case DocumentKind::kSweepSpec: {
          const SweepSpec spec = load_sweep_spec(file);
          told << "ok: " << file << " (sweep spec, " << expand_points(spec).size() << " points on "
               << spec.traces.size() << " traces)\n";
          break;
        }
      }
    } catch (const InputError& e) {
      err << "lptsim validate: " << e.what() << '\n';
      status = kExitBadInput;
    }
  }
  return status;
}

int command_sweep(const std::vector<std::string>& args, std::istream&, std::ostream& out, std::ostream& err) {
  const std::string usage =
      "usage: [mpirun -n K] lptsim sweep SPEC [--out DIR] [--jobs N] [--resume] [--point-timeout SECONDS]\n"
      "Runs every point of a sweep spec (docs/sweeps.md), each in a worker process, appending\n"
      "each result to DIR/results.jsonl as it finishes. Under mpirun (or srun) the points\n"
      "spread over the ranks. Exit status 1 if any point failed.";
  po::options_description options("options");
  options.add_options()("help,h", "show this help")
      ("out,o", po::value<std::string>()->default_value("lptsim-sweep"), "directory for results.jsonl")
      ("jobs,j", po::value<int>(),
       "worker processes at once (default: the machine's cores); under MPI per rank (default 1)")
      ("resume", "go on with a sweep in --out: skip the points its results.jsonl holds")
      ("point-timeout", po::value<double>(),
       "seconds a point may run before its worker is killed and the point recorded as crashed")
      ("spec", po::value<std::string>(), "sweep spec (JSON)");
  po::positional_options_description positional;
  positional.add("spec", 1);
  po::variables_map vm;
  if (auto code = parse_command_line("sweep", usage, options, &positional, args, vm, out, err)) return *code;
  SweepOptions sweep;
  try {
    if (!vm.count("spec")) throw po::error("no sweep spec given");
    sweep.out_dir = vm["out"].as<std::string>();
    if (sweep.out_dir.empty()) throw po::error("--out must name a directory");
    if (vm.count("jobs")) sweep.jobs = vm["jobs"].as<int>();
    if (sweep.jobs && (*sweep.jobs < 1 || *sweep.jobs > 4096)) throw po::error("--jobs must be in [1, 4096]");
    sweep.resume = vm.count("resume") > 0;
    if (vm.count("point-timeout")) {
      const double seconds = vm["point-timeout"].as<double>();
      if (!(seconds >= 0.001 && seconds <= 1e6)) throw po::error("--point-timeout must be in [0.001, 1e6] seconds");
      sweep.point_timeout_seconds = seconds;
    }
  } catch (const po::error& e) {
    err << "lptsim sweep: " << e.what() << '\n';
    return kExitBadInput;
  }
  const Verbosity level = verbosity(vm);
  sweep.report_each_point = level == Verbosity::kVerbose;
  const std::optional<SweepSummary> summary =
      run_sweep(vm["spec"].as<std::string>(), sweep, stream_for(level, Verbosity::kNormal, err));
  if (!summary) return kExitOk;  // an MPI rank but 0, which reports
  const SweepSummary& s = *summary;
  stream_for(level, Verbosity::kNormal, out) << "sweep: " << s.points << " points: " << s.ok << " ok, " << s.failed << " failed, " << s.dropped
      << " dropped by constraints, " << s.skipped << " done before; results in "
      << (sweep.out_dir / "results.jsonl").string() << '\n';
  return s.failed > 0 ? kExitFailed : kExitOk;
}

// The training check is Python (python/lptsim/train_check.py, on the lptsim
// package that the build puts in LPTSIM_PYTHON_DIR): this process becomes
// Debian's python3 running it, with the same arguments.
int command_train_check(const std::vector<std::string>& args, std::istream&, std::ostream& out, std::ostream& err) {
  const std::filesystem::path package = LPTSIM_PYTHON_DIR;
  if (!std::filesystem::exists(package / "lptsim" / "train_check.py")) {
    err << "lptsim train-check: the Python package is not built in " << package.string()
        << " (scripts/setup.sh builds it, with Debian's python3-dev, pybind11-dev, python3-torch and "
           "python3-sklearn)\n";
    return kExitFailed;
  }
  const char* path = std::getenv("PYTHONPATH");
  const std::string python_path = package.string() + (path && *path ? ":" + std::string(path) : "");
  ::setenv("PYTHONPATH", python_path.c_str(), 1);
  std::vector<std::string> words = {"/usr/bin/python3", "-m", "lptsim.train_check"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  out.flush();
  err.flush();
  ::execv(argv[0], argv.data());
  err << "lptsim train-check: cannot run /usr/bin/python3: " << std::strerror(errno) << '\n';
  return kExitFailed;
}

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"run", {"simulate a training step of a trace on an accelerator config", command_run}},
      {"validate", {"check config and trace files", command_validate}},
      {"sweep", {"run every point of a design-space sweep spec, in parallel and resumably", command_sweep}},
      {"report", {"tables, Pareto fronts and plots of a sweep's results or a run's report",
                  [](const auto& args, std::istream&, std::ostream& out, std::ostream& err) {
                    return run_report_command(args, out, err);
                  }}},
      {"numerics", {"number formats: convert values, list formats, experiments", run_numerics_command}},
      {"trace-info", {"per-layer MACs (fwd/bwd/wgrad), parameters and activation bytes of a trace",
                      [](const auto& args, std::istream&, std::ostream& out, std::ostream& err) {
                        return run_trace_info(args, out, err);
                      }}},
      {"config-reference", {"print the reference of every config key (docs/config-reference.md)",
                            [](const auto& args, std::istream&, std::ostream& out, std::ostream& err) {
                              if (args.empty()) {
                                out << config_reference_markdown();
                                return kExitOk;
                              }
                              const bool help = args[0] == "--help" || args[0] == "-h";
                              (help ? out : err) << "usage: lptsim config-reference   (markdown on stdout)\n";
                              return help ? kExitOk : kExitBadInput;
                            }}},
      {"train-check", {"train an MLP and a CNN on digits with every GEMM and update on emulated datapaths",
                       command_train_check}},
      {"import-scalesim", {"convert a SCALE-Sim topology CSV into a trace",
                           [](const auto& args, std::istream&, std::ostream& out, std::ostream& err) {
                             return run_import_scalesim(args, out, err);
                           }}},
  };
  return table;
}

void print_usage(std::ostream& out) {
  out << "usage: lptsim COMMAND [options]   (lptsim COMMAND --help for each)\n\ncommands:\n";
  for (const auto& [name, command] : commands())
    out << "  " << name << std::string(17 - std::min<std::size_t>(name.size(), 16), ' ')
        << command.summary << '\n';
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
            std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? err : out);
    return args.empty() ? kExitBadInput : kExitOk;
  }
  if (args[0] == "--version") {
    out << "lptsim " << LPTSIM_VERSION << '\n';
    return kExitOk;
  }
  const auto it = commands().find(args[0]);
  if (it == commands().end()) {
    err << "lptsim: unknown command " << quoted_excerpt(args[0]) << '\n';
    print_usage(err);
    return kExitBadInput;
  }
  try {
    return it->second.run({args.begin() + 1, args.end()}, in, out, err);
  } catch (const InputError& e) {
    err << "lptsim " << args[0] << ": " << e.what() << '\n';
    return kExitBadInput;
  } catch (const std::exception& e) {
    err << "lptsim " << args[0] << ": failed: " << e.what() << '\n';
    return kExitFailed;
  }
}

}  // namespace lpt
