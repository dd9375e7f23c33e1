#include "sim/sweep_report.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>

#include "models/common/input_file.hpp"
#include "models/common/json_reader.hpp"
#include "models/common/text.hpp"
#include "sim/cli_options.hpp"

extern char** environ;

namespace lpt {

namespace po = boost::program_options;

namespace {

// A sweep of many thousand points stays far below this; its results are read whole.
constexpr std::uintmax_t kMaxResultsBytes = std::uintmax_t{1} << 30;

// What scripts/plot_report.py exits with when matplotlib cannot be imported.
constexpr int kPlotterMissingMatplotlib = 3;

void add_once(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

SweepPoint parse_point(const JsonReader& in) {
  SweepPoint point;
  point.key = in.at("key").string();
  point.trace = in.at("trace").string();
  point.status = in.at("status").one_of({"ok", "error", "crashed"});
  for (const auto& [pointer, value] : in.at("settings").members()) point.settings[pointer] = value.json();
  if (point.status == "ok") {
    for (const auto& [pointer, value] : in.at("metrics").members()) point.metrics[pointer] = value.json();
  } else if (auto error = in.find("error")) {
    if (!error->json().is_string()) error->fail("expected a string, got " + std::string(error->json().type_name()));
    point.error = error->json().get<std::string>();
  }
  return point;
}

std::string csv_cell(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return csv_text_cell(value.get_ref<const std::string&>());
  if (value.is_number() || value.is_boolean()) return value.dump();
  return csv_text_cell(value.dump());
}

nlohmann::json value_or_null(const nlohmann::json& object, const std::string& key) {
  const auto it = object.find(key);
  return it == object.end() ? nlohmann::json() : *it;
}

// An objective's value: the point's metric, else its axis setting; null for a failed point.
nlohmann::json objective_value(const SweepPoint& point, const std::string& pointer) {
  if (point.status != "ok") return nullptr;
  if (point.metrics.contains(pointer)) return point.metrics.at(pointer);
  return value_or_null(point.settings, pointer);
}

// key, trace and every axis: the columns that say which point a row is.
void write_point_columns(const SweepResults& results, const SweepPoint& point, std::ostream& out) {
  out << csv_text_cell(point.key) << ',' << csv_text_cell(point.trace);
  for (const std::string& axis : results.axes) out << ',' << csv_cell(value_or_null(point.settings, axis));
}

void write_point_header(const SweepResults& results, std::ostream& out) {
  out << "key,trace";
  for (const std::string& axis : results.axes) out << ',' << csv_text_cell(axis);
}

// Busy and stall cycles of one ACTIVITY of report.json.
struct TimeSplit {
  double cycles = 0, busy = 0;
  std::map<std::string, double> stalls;

  void add(const JsonReader& activity) {
    cycles += activity.at("cycles").number(0, 1e300);
    busy += activity.at("busy_cycles").number(0, 1e300);
    for (const auto& [cause, value] : activity.at("stall_cycles").members()) stalls[cause] += value.number(0, 1e300);
  }
};

void write_splits(const std::string& by, const std::vector<std::pair<std::string, TimeSplit>>& splits,
                  const std::vector<std::string>& causes, double total_cycles, std::ostream& out) {
  for (const auto& [name, split] : splits) {
    char numbers[96];
    std::snprintf(numbers, sizeof numbers, ",%.1f,%.6f,%.1f", split.cycles,
                  total_cycles > 0 ? split.cycles / total_cycles : 0.0, split.busy);
    out << by << ',' << csv_text_cell(name) << numbers;
    for (const std::string& cause : causes) {
      const auto it = split.stalls.find(cause);
      std::snprintf(numbers, sizeof numbers, ",%.1f", it == split.stalls.end() ? 0.0 : it->second);
      out << numbers;
    }
    out << '\n';
  }
}

// Runs scripts/plot_report.py with Debian's python3 (where python3-matplotlib
// is; the first python3 on PATH may lack it). Without python3 or matplotlib the
// tables stand alone: a warning, not a failure. Returns whether plotting failed.
bool plot(const std::vector<std::string>& script_args, std::ostream& out, std::ostream& err) {
  const std::string python = "/usr/bin/python3";
  const std::string script = (std::filesystem::path(LPTSIM_SOURCE_DIR) / "scripts" / "plot_report.py").string();
  std::vector<std::string> words = {python, script};
  words.insert(words.end(), script_args.begin(), script_args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  out.flush();
  err.flush();
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = 0;
  if (posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    err << "lptsim report: warning: no plots: cannot run " << python
        << " (Debian: apt install python3-matplotlib); the CSV files are written\n";
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("cannot wait for the plotting script");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return false;
  if (WIFEXITED(status) && WEXITSTATUS(status) == kPlotterMissingMatplotlib) {
    err << "lptsim report: warning: no plots: " << python
        << " has no matplotlib (Debian: apt install python3-matplotlib); the CSV files are written\n";
    return false;
  }
  err << "lptsim report: plotting failed (" << script << "); the CSV files are written, --no-plots skips the plots\n";
  return true;
}

// Enough front points to read at a glance; pareto.csv has them all.
constexpr std::size_t kFrontPointsShown = 10;

// "/chip/cores=2, /fusion=\"none\": 1.234e+05 9.5": a front point's settings, then its
// objectives' values (which every point on a front has).
std::string front_point_line(const SweepPoint& point, const std::vector<Objective>& objectives) {
  std::string line;
  for (const auto& [pointer, value] : point.settings.items())
    line += (line.empty() ? "" : ", ") + pointer + "=" + value.dump();
  line += line.empty() ? "(the base config):" : ":";
  for (const Objective& o : objectives) {
    char number[32];
    std::snprintf(number, sizeof number, " %.4g", point_value(point, o.pointer).value());
    line += number;
  }
  return line;
}

void write_file(const std::filesystem::path& file, const std::function<void(std::ostream&)>& write,
                std::ostream& out) {
  std::ofstream stream(file);
  write(stream);
  stream.close();
  if (!stream) throw std::runtime_error("cannot write " + file.string());
  out << "wrote " << file.string() << '\n';
}

int report_sweep(const std::filesystem::path& results_file, const std::filesystem::path& out_dir,
                 const std::vector<std::string>& objective_texts, bool plots, bool quiet, std::ostream& out,
                 std::ostream& err) {
  const SweepResults results = read_sweep_results(results_file);
  if (results.cut_lines > 0)
    err << "lptsim report: " << results_file.string() << ": skipped " << results.cut_lines
        << " line(s) cut short (a killed sweep; --resume runs those points again)\n";
  std::vector<Objective> objectives;
  for (const std::string& text : objective_texts) {
    try {
      objectives.push_back(parse_objective(text));
    } catch (const std::invalid_argument& e) {
      err << "lptsim report: --objective: " << e.what() << '\n';
      return kExitBadInput;
    }
    const std::string& pointer = objectives.back().pointer;
    const auto known = [&](const std::vector<std::string>& names) {
      return std::find(names.begin(), names.end(), pointer) != names.end();
    };
    if (!known(results.metrics) && !known(results.axes)) {
      std::string metrics;
      for (const std::string& m : results.metrics) metrics += (metrics.empty() ? "" : ", ") + m;
      err << "lptsim report: --objective " << text << ": " << results_file.string()
          << " has no such metric or axis (its metrics: " << (metrics.empty() ? "none" : metrics) << ")\n";
      return kExitBadInput;
    }
  }
  if (objectives.empty()) objectives = default_objectives(results);

  prepare_output_directory(out_dir);
  write_file(out_dir / "results.csv", [&](std::ostream& s) { write_results_csv(results, s); }, out);
  std::size_t ok = 0;
  for (const SweepPoint& p : results.points) ok += p.status == "ok" ? 1 : 0;
  out << "report: " << results.points.size() << " points (" << ok << " ok, " << results.points.size() - ok
      << " failed) over " << results.traces.size() << " trace(s)\n";
  if (objectives.empty()) {
    err << "lptsim report: warning: no Pareto front: the results hold none of the default objectives "
           "(samples/s, energy, area); name some with --objective\n";
  } else {
    const std::vector<bool> front = fronts_per_trace(results, objectives);
    write_file(out_dir / "pareto.csv", [&](std::ostream& s) { write_pareto_csv(results, objectives, front, s); }, out);
    std::string names;
    for (const Objective& o : objectives) names += (names.empty() ? "" : ", ") + to_string(o);
    out << "Pareto front over " << names << ":\n";
    for (const std::string& trace : results.traces) {
      std::vector<const SweepPoint*> on;
      std::size_t of = 0;
      for (std::size_t p = 0; p < results.points.size(); ++p)
        if (results.points[p].trace == trace) {
          ++of;
          if (front[p]) on.push_back(&results.points[p]);
        }
      out << "  " << trace << ": " << on.size() << " of " << of << " points\n";
      for (std::size_t i = 0; i < std::min(on.size(), kFrontPointsShown); ++i)
        out << "    " << front_point_line(*on[i], objectives) << '\n';
      if (on.size() > kFrontPointsShown)
        out << "    ... " << on.size() - kFrontPointsShown << " more in pareto.csv\n";
    }
  }
  if (!plots) return kExitOk;
  std::vector<std::string> args = {"sweep", out_dir.string()};
  for (const std::string& axis : results.axes) args.insert(args.end(), {"--axis", axis});
  for (const std::string& metric : results.metrics) args.insert(args.end(), {"--metric", metric});
  if (quiet) args.push_back("--quiet");
  return plot(args, out, err) ? kExitFailed : kExitOk;
}

int report_one_run(const std::filesystem::path& report_file, const std::filesystem::path& out_dir, bool plots,
                   bool quiet, std::ostream& out, std::ostream& err) {
  const nlohmann::json report = load_json_file(report_file);
  prepare_output_directory(out_dir);
  write_file(out_dir / "time_breakdown.csv",
             [&](std::ostream& s) { write_time_breakdown_csv(report, report_file.string(), s); }, out);
  if (!plots) return kExitOk;
  std::vector<std::string> args = {"run", out_dir.string()};
  if (quiet) args.push_back("--quiet");
  return plot(args, out, err) ? kExitFailed : kExitOk;
}

}  // namespace

SweepResults parse_sweep_results(std::string_view text, const std::string& file) {
  SweepResults results;
  std::size_t line_number = 0;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = file + ":" + std::to_string(line_number);
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      // The parser ran out of text: the writer was killed mid-line.
      if (e.byte > line.size()) {
        ++results.cut_lines;
        continue;
      }
      throw InputError(where, "", "not a JSON object (" + std::string(e.what()) + ")");
    }
    try {
      SweepPoint point = parse_point(JsonReader(record, ""));
      point.line = line_number;
      add_once(results.traces, point.trace);
      for (const auto& [pointer, value] : point.settings.items()) add_once(results.axes, pointer);
      for (const auto& [pointer, value] : point.metrics.items()) add_once(results.metrics, pointer);
      results.points.push_back(std::move(point));
    } catch (const InputError& e) {
      throw e.in_file(where);
    }
  }
  return results;
}

SweepResults read_sweep_results(const std::filesystem::path& file) {
  return parse_sweep_results(read_input_file(file, kMaxResultsBytes), file.string());
}

std::optional<double> point_value(const SweepPoint& point, const std::string& pointer) {
  const nlohmann::json value = objective_value(point, pointer);
  return value.is_number() ? std::optional<double>(value.get<double>()) : std::nullopt;
}

std::vector<Objective> default_objectives(const SweepResults& results) {
  const auto has = [&](const std::string& metric) {
    return std::find(results.metrics.begin(), results.metrics.end(), metric) != results.metrics.end();
  };
  std::vector<Objective> objectives;
  if (has("/totals/samples_per_second")) objectives.push_back({"/totals/samples_per_second", true});
  if (has("/totals/energy/samples_per_joule"))
    objectives.push_back({"/totals/energy/samples_per_joule", true});
  else if (has("/totals/energy/total_pj"))
    objectives.push_back({"/totals/energy/total_pj", false});
  if (has("/totals/area/total_mm2")) objectives.push_back({"/totals/area/total_mm2", false});
  if (has("/fidelity/worst_sqnr_db")) objectives.push_back({"/fidelity/worst_sqnr_db", true});
  return objectives;
}

std::vector<bool> fronts_per_trace(const SweepResults& results, const std::vector<Objective>& objectives) {
  std::vector<bool> on_front(results.points.size(), false);
  for (const std::string& trace : results.traces) {
    std::vector<std::size_t> members;
    std::vector<std::vector<std::optional<double>>> values;
    for (std::size_t p = 0; p < results.points.size(); ++p) {
      if (results.points[p].trace != trace) continue;
      members.push_back(p);
      values.emplace_back();
      for (const Objective& o : objectives) values.back().push_back(point_value(results.points[p], o.pointer));
    }
    const std::vector<bool> front = pareto_front(values, objectives);
    for (std::size_t m = 0; m < members.size(); ++m) on_front[members[m]] = front[m];
  }
  return on_front;
}

void write_results_csv(const SweepResults& results, std::ostream& out) {
  write_point_header(results, out);
  out << ",status,error";
  for (const std::string& metric : results.metrics) out << ',' << csv_text_cell(metric);
  out << '\n';
  for (const SweepPoint& point : results.points) {
    write_point_columns(results, point, out);
    out << ',' << point.status << ',' << csv_text_cell(point.error);
    for (const std::string& metric : results.metrics) out << ',' << csv_cell(value_or_null(point.metrics, metric));
    out << '\n';
  }
}

void write_pareto_csv(const SweepResults& results, const std::vector<Objective>& objectives,
                      const std::vector<bool>& on_front, std::ostream& out) {
  write_point_header(results, out);
  out << ",status";
  for (const Objective& o : objectives) out << ',' << csv_text_cell(to_string(o));
  out << ",on_front\n";
  for (std::size_t p = 0; p < results.points.size(); ++p) {
    const SweepPoint& point = results.points[p];
    write_point_columns(results, point, out);
    out << ',' << point.status;
    for (const Objective& o : objectives) out << ',' << csv_cell(objective_value(point, o.pointer));
    out << ',' << (on_front[p] ? "yes" : "no") << '\n';
  }
}

void write_time_breakdown_csv(const nlohmann::json& report, const std::string& file, std::ostream& out) {
  try {
    const JsonReader in(report, "");
    const double total_cycles = in.at("totals").at("cycles").number(0, 1e300);
    std::vector<std::pair<std::string, TimeSplit>> phases, layer_types, step_kinds;
    // In the order they ran, which the workload lists.
    const JsonReader phase_activities = in.at("phases");
    for (const JsonReader& phase : in.at("workload").at("phases").elements()) {
      phases.emplace_back(phase.string(), TimeSplit{});
      phases.back().second.add(phase_activities.at(phases.back().first));
    }
    for (const JsonReader& layer : in.at("layers").elements()) {
      const std::string type = layer.at("type").string();
      auto it = std::find_if(layer_types.begin(), layer_types.end(), [&](const auto& t) { return t.first == type; });
      if (it == layer_types.end()) it = layer_types.insert(layer_types.end(), {type, TimeSplit{}});
      it->second.add(layer);
    }
    for (const auto& [kind, activity] : in.at("step_kinds").members()) {
      step_kinds.emplace_back(kind, TimeSplit{});
      step_kinds.back().second.add(activity);
    }
    std::vector<std::string> causes;
    for (const auto& [cause, value] : in.at("totals").at("stall_cycles").members()) causes.push_back(cause);
    out << "by,name,cycles,share,busy_cycles";
    for (const std::string& cause : causes) out << ",stall_" << cause;
    out << '\n';
    write_splits("phase", phases, causes, total_cycles, out);
    write_splits("layer_type", layer_types, causes, total_cycles, out);
    write_splits("step_kind", step_kinds, causes, total_cycles, out);
  } catch (const InputError& e) {
    throw e.in_file(file);
  }
}

int run_report_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::string usage =
      "usage: lptsim report DIR [--out OUT] [--objective /metric/pointer:max|min ...] [--no-plots]\n"
      "Tables and plots of a sweep (DIR/results.jsonl: results.csv, pareto.csv, metric-vs-axis and\n"
      "Pareto plots) or of a run (DIR/report.json: time_breakdown.csv and its chart), in OUT\n"
      "(default DIR/report). Plots need /usr/bin/python3 with matplotlib; without it, a warning\n"
      "and the CSV files (docs/sweeps.md, \"Reports\").";
  po::options_description options("options");
  options.add_options()("help,h", "show this help")
      ("out,o", po::value<std::string>(), "directory for the tables and plots (default DIR/report)")
      ("objective", po::value<std::vector<std::string>>()->composing(),
       "an objective of the Pareto front, e.g. /totals/samples_per_second:max; repeatable (default: those "
       "of samples/s, energy per sample and area that the results hold)")
      ("no-plots", "write the CSV files only")
      ("dir", po::value<std::string>(), "a sweep's or a run's --out directory");
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  if (auto code = parse_command_line("report", usage, options, &positional, args, vm, out, err)) return *code;
  if (!vm.count("dir")) {
    err << "lptsim report: no directory given\n" << usage << '\n';
    return kExitBadInput;
  }
  const std::filesystem::path dir = vm["dir"].as<std::string>();
  const std::filesystem::path out_dir = vm.count("out") ? std::filesystem::path(vm["out"].as<std::string>()) : dir / "report";
  const bool plots = vm.count("no-plots") == 0;
  const std::vector<std::string> objectives =
      vm.count("objective") ? vm["objective"].as<std::vector<std::string>>() : std::vector<std::string>{};
  // The files written and the fronts are the summary; warnings and errors show at every level.
  const bool quiet = verbosity(vm) == Verbosity::kQuiet;
  std::ostream& told = stream_for(verbosity(vm), Verbosity::kNormal, out);
  if (std::filesystem::exists(dir / "results.jsonl"))
    return report_sweep(dir / "results.jsonl", out_dir, objectives, plots, quiet, told, err);
  if (!objectives.empty()) {
    err << "lptsim report: --objective applies to a sweep; " << dir.string() << " holds no results.jsonl\n";
    return kExitBadInput;
  }
  if (std::filesystem::exists(dir / "report.json"))
    return report_one_run(dir / "report.json", out_dir, plots, quiet, told, err);
  throw InputError(dir.string(), "", "neither a sweep's results.jsonl nor a run's report.json is here");
}

}  // namespace lpt
