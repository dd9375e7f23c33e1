// `lptsim report DIR`: what an architect reads after a sweep or a run. For a
// sweep's results.jsonl: a CSV table of every point, the Pareto front over
// chosen objectives (per trace: different networks are not alternatives to one
// another) and plots; for a run's report.json: where the time went, per phase,
// layer type and step kind. Plots come from scripts/plot_report.py
// (docs/sweeps.md, "Reports").
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/pareto.hpp"

namespace lpt {

// One line of results.jsonl.
struct SweepPoint {
  std::size_t line = 0;  // 1-based, for messages
  std::string key, trace, status, error;
  nlohmann::json settings = nlohmann::json::object();  // axis pointer -> value
  nlohmann::json metrics = nlohmann::json::object();   // metric pointer -> value (null: not in the report)
};

struct SweepResults {
  std::vector<SweepPoint> points;
  // In order of first appearance in the file.
  std::vector<std::string> traces, axes, metrics;
  std::size_t cut_lines = 0;  // lines a killed sweep left unfinished, skipped
};

// Parses results.jsonl's text. A line that ends before its JSON does was cut
// short by a kill and is skipped (counted); any other bad line is an
// InputError naming "file:line" and the JSON path.
SweepResults parse_sweep_results(std::string_view text, const std::string& file);
SweepResults read_sweep_results(const std::filesystem::path& file);

// The point's number at a metric or, failing that, an axis pointer; nullopt
// when it has none (a failed point, a null or non-numeric value).
std::optional<double> point_value(const SweepPoint& point, const std::string& pointer);

// Of samples/s (max), energy per sample and area (min), those the results
// hold. Energy per sample is taken from existing metrics only: samples per
// joule (max), else the step's total energy (min), which orders a trace's
// points alike since its batch and work are fixed.
std::vector<Objective> default_objectives(const SweepResults& results);

// Whether each point is on its trace's front; failed points never are.
std::vector<bool> fronts_per_trace(const SweepResults& results, const std::vector<Objective>& objectives);

// key, trace, every axis, status, error, every metric: one row per point.
void write_results_csv(const SweepResults& results, std::ostream& out);
// key, trace, every axis, status, one column per objective ("/pointer:max"),
// on_front (yes|no): one row per point.
void write_pareto_csv(const SweepResults& results, const std::vector<Objective>& objectives,
                      const std::vector<bool>& on_front, std::ostream& out);

// A run's time by phase (in the order they ran), by layer type and by step
// kind, each split into busy and stall cycles: rows
// `by,name,cycles,share,busy_cycles,stall_<cause>...`.
// Missing fields are InputErrors naming `file` and the JSON path.
void write_time_breakdown_csv(const nlohmann::json& report, const std::string& file, std::ostream& out);

int run_report_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace lpt
