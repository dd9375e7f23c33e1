#include "sim/sweep_spec.hpp"

#include <cmath>

#include "sim/document_kind.hpp"
#include "sim/fusion.hpp"
#include "sim/residency.hpp"

namespace lpt {

namespace {

constexpr std::size_t kMaxAxisValues = 1 << 16;
constexpr std::size_t kMaxPoints = 1 << 20;

std::string pointer_at(const JsonReader& in) {
  const std::string text = in.string();
  try {
    (void)nlohmann::json::json_pointer(text);
  } catch (const nlohmann::json::exception&) {
    in.fail("expected a JSON pointer into the config, e.g. \"/chip/cores\"");
  }
  if (text.empty()) in.fail("expected a JSON pointer below the root, e.g. \"/chip/cores\"");
  return text;
}

// "values": [...], "range": {"from", "to", "step"} or "log_range": {"from", "to", "points"}.
std::vector<nlohmann::json> axis_values(const JsonReader& in) {
  std::vector<nlohmann::json> values;
  const int kinds = in.has("values") + in.has("range") + in.has("log_range");
  if (kinds != 1) in.fail("an axis gives exactly one of \"values\", \"range\" or \"log_range\"");
  if (auto list = in.find("values")) {
    for (const JsonReader& v : list->elements(1, kMaxAxisValues)) values.push_back(v.json());
  } else if (auto range = in.find("range")) {
    const double from = range->at("from").number(-1e15, 1e15), to = range->at("to").number(-1e15, 1e15);
    const double step = range->at("step").number(1e-12, 1e15);
    range->finish();
    if (to < from) range->fail_at("to", "must not be below \"from\"");
    if ((to - from) / step >= kMaxAxisValues) range->fail("more than " + std::to_string(kMaxAxisValues) + " values");
    const bool integral = std::floor(from) == from && std::floor(step) == step;
    for (double x = from; x <= to + step * 1e-9; x += step)
      values.push_back(integral ? nlohmann::json(static_cast<std::int64_t>(std::llround(x))) : nlohmann::json(x));
  } else if (auto log = in.find("log_range")) {
    const double from = log->at("from").number(1e-15, 1e15), to = log->at("to").number(1e-15, 1e15);
    const auto points = log->at("points").integer(2, kMaxAxisValues);
    log->finish();
    const bool integral = std::floor(from) == from && std::floor(to) == to;
    for (std::int64_t i = 0; i < points; ++i) {
      const double x = from * std::pow(to / from, static_cast<double>(i) / static_cast<double>(points - 1));
      values.push_back(integral ? nlohmann::json(static_cast<std::int64_t>(std::llround(x))) : nlohmann::json(x));
    }
  }
  return values;
}

SweepAxis parse_axis(const JsonReader& in) {
  SweepAxis axis;
  if (auto zip = in.find("zip")) {
    for (const JsonReader& member : zip->elements(1, 64)) {
      axis.pointers.push_back(pointer_at(member.at("set")));
      axis.values.push_back(axis_values(member));
      member.finish();
      if (axis.values.back().size() != axis.values.front().size())
        member.fail("a zipped axis has as many values as the first in its group (" +
                    std::to_string(axis.values.front().size()) + ")");
    }
  } else {
    axis.pointers.push_back(pointer_at(in.at("set")));
    axis.values.push_back(axis_values(in));
  }
  in.finish();
  return axis;
}

SimulationOptions parse_run_options(const JsonReader& in) {
  SimulationOptions options;
  if (auto mode = in.find("mode"))
    options.mode = mode->choice<RunMode>({{"training", RunMode::kTraining}, {"inference", RunMode::kInference}});
  if (auto phases = in.find("phases")) {
    options.phases.clear();
    for (const JsonReader& p : phases->elements(1, 4))
      options.phases.insert(p.choice<Phase>(
          {{"fwd", Phase::kFwd}, {"bwd", Phase::kBwd}, {"wgrad", Phase::kWgrad}, {"update", Phase::kUpdate}}));
  }
  if (auto batch = in.find("batch")) options.batch = batch->integer(1, std::int64_t{1} << 20);
  if (auto fusion = in.find("fusion")) options.fusion = read_fusion(*fusion);
  if (auto residency = in.find("residency")) options.residency = read_residency(*residency);
  in.finish();
  return options;
}

const nlohmann::json* at_pointer(const nlohmann::json& document, const std::string& pointer) {
  try {
    const nlohmann::json::json_pointer p(pointer);
    return document.contains(p) ? &document.at(p) : nullptr;
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

}  // namespace

const std::vector<std::string>& default_metrics() {
  static const std::vector<std::string> metrics = {
      "/totals/cycles",           "/totals/seconds",          "/totals/samples_per_second",
      "/totals/fraction_of_peak", "/totals/energy/total_pj",  "/totals/energy/chip_tflops_per_w",
      "/totals/energy/average_power_w", "/totals/bytes/dram_read", "/totals/bytes/dram_write",
      "/totals/area/total_mm2"};
  return metrics;
}

SweepSpec parse_sweep_spec(const JsonReader& in, const std::filesystem::path& file) {
  SweepSpec spec;
  spec.file = file;
  const std::filesystem::path base = file.parent_path();
  if (auto notes = in.find("notes")) notes->string();
  spec.config = base / in.at("config").string();
  for (const JsonReader& trace : in.at("traces").elements(1, 1024)) spec.traces.push_back(base / trace.string());
  if (auto run = in.find("run")) spec.options = parse_run_options(*run);
  if (auto axes = in.find("axes"))
    for (const JsonReader& axis : axes->elements(0, 64)) spec.axes.push_back(parse_axis(axis));
  if (auto constraints = in.find("constraints"))
    for (const JsonReader& c : constraints->elements(0, 256)) {
      Constraint constraint;
      constraint.left = pointer_at(c.at("left"));
      constraint.op = c.at("op").one_of({"<", "<=", "==", "!=", ">=", ">"});
      const JsonReader right = c.at("right");
      if (right.json().is_string())
        constraint.right = pointer_at(right);
      else
        constraint.right = right.number(-1e300, 1e300);
      c.finish();
      spec.constraints.push_back(std::move(constraint));
    }
  if (auto metrics = in.find("metrics"))
    for (const JsonReader& m : metrics->elements(1, 256)) spec.metrics.push_back(pointer_at(m));
  else
    spec.metrics = default_metrics();
  in.finish();
  std::size_t points = 1;
  for (const SweepAxis& axis : spec.axes) {
    points *= axis.size();
    if (points > kMaxPoints)
      in.fail_at("axes", "more than " + std::to_string(kMaxPoints) + " points; split the sweep");
  }
  return spec;
}

SweepSpec load_sweep_spec(const std::filesystem::path& file) {
  return parse_json_file<SweepSpec>(file, [&](const JsonReader& in) {
    expect_document_kind(in.json(), DocumentKind::kSweepSpec, "");
    return parse_sweep_spec(in, file);
  });
}

std::vector<std::vector<Setting>> expand_points(const SweepSpec& spec) {
  std::vector<std::vector<Setting>> points{{}};
  for (const SweepAxis& axis : spec.axes) {
    std::vector<std::vector<Setting>> next;
    for (const auto& point : points)
      for (std::size_t i = 0; i < axis.size(); ++i) {
        auto extended = point;
        for (std::size_t p = 0; p < axis.pointers.size(); ++p) extended.push_back({axis.pointers[p], axis.values[p][i]});
        next.push_back(std::move(extended));
      }
    points = std::move(next);
  }
  return points;
}

bool satisfies(const std::vector<Constraint>& constraints, const nlohmann::json& document) {
  for (const Constraint& c : constraints) {
    const nlohmann::json* left = at_pointer(document, c.left);
    const nlohmann::json* right = c.right.is_string() ? at_pointer(document, c.right.get<std::string>()) : &c.right;
    if (!left || !right || !left->is_number() || !right->is_number()) return false;
    const double l = left->get<double>(), r = right->get<double>();
    const bool holds = c.op == "<" ? l < r : c.op == "<=" ? l <= r : c.op == "==" ? l == r
                     : c.op == "!=" ? l != r : c.op == ">=" ? l >= r : l > r;
    if (!holds) return false;
  }
  return true;
}

std::string override_text(const Setting& setting) { return setting.pointer + "=" + setting.value.dump(); }

}  // namespace lpt
