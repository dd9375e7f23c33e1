#include "sim/sweep_spec.hpp"

#include <cmath>
#include <set>
#include <span>

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

std::vector<std::pair<std::string_view, Phase>> phase_choices() {
  std::vector<std::pair<std::string_view, Phase>> out;
  for (const Phase phase : requestable_phases()) out.emplace_back(info(phase).name, phase);
  return out;
}

struct LinearRange {
  double from = 0, to = 0, step = 0;
};

struct LogRange {
  double from = 0, to = 0;
  std::int64_t points = 0;
};

// One pointer and its values, as written: exactly one of values, range, log_range.
struct AxisMember {
  std::string set;
  std::optional<std::vector<nlohmann::json>> values;
  std::optional<LinearRange> range;
  std::optional<LogRange> log_range;
};

// An axis as written: a member, or a zipped group of members.
struct AxisText : AxisMember {
  std::vector<AxisMember> zip;
};

struct SpecText {
  std::string notes;
  std::string config;
  std::vector<std::string> traces;
  SimulationOptions run;
  std::vector<AxisText> axes;
  std::vector<Constraint> constraints;
  std::vector<std::string> metrics = default_metrics();
};

const param::Schema<LinearRange>& range_schema() {
  using K = param::Keys<LinearRange>;
  static const param::Schema<LinearRange> schema(
      "Values from `from` to `to` (included) in steps of `step`; integers when `from` and `step` are.",
      {K::number("from", &LinearRange::from, -1e15, 1e15, {}, "the first value"),
       K::number("to", &LinearRange::to, -1e15, 1e15, {}, "the last value at most; not below `from`"),
       K::number("step", &LinearRange::step, 1e-12, 1e15, {}, "between values")},
      [](const JsonReader& in, const LinearRange& range) {
        if (range.to < range.from) in.fail_at("to", "must not be below \"from\"");
        if ((range.to - range.from) / range.step >= kMaxAxisValues)
          in.fail("more than " + std::to_string(kMaxAxisValues) + " values");
      });
  return schema;
}

const param::Schema<LogRange>& log_range_schema() {
  using K = param::Keys<LogRange>;
  static const param::Schema<LogRange> schema(
      "`points` values from `from` to `to`, evenly spaced on a log scale; integers when both ends are.",
      {K::number("from", &LogRange::from, 1e-15, 1e15, {}, "the first value"),
       K::number("to", &LogRange::to, 1e-15, 1e15, {}, "the last value"),
       K::integer("points", &LogRange::points, 2, kMaxAxisValues, "values", "how many")});
  return schema;
}

template <class T>
std::vector<param::Key<T>> member_keys() {
  using K = param::Keys<T>;
  return {K::value({"set", "string", {}, "a JSON pointer", {}, "where in the config the values go, as `--set`"},
                   &T::set, [](const JsonReader& in) { return pointer_at(in); }),
          K::optional(K::value({"values", "array", {}, param::length_range(1, kMaxAxisValues), {}, "the values, any JSON"},
                               &T::values,
                               [](const JsonReader& in) {
                                 std::vector<nlohmann::json> values;
                                 for (const JsonReader& v : in.elements(1, kMaxAxisValues)) values.push_back(v.json());
                                 return values;
                               }),
                      "give one of values, range, log_range"),
          K::optional_object("range", &T::range, range_schema(), "give one of values, range, log_range",
                             "a linear range"),
          K::optional_object("log_range", &T::log_range, log_range_schema(), "give one of values, range, log_range",
                             "a logarithmic range")};
}

void check_one_kind(const JsonReader& in, const AxisMember& member) {
  if (member.values.has_value() + member.range.has_value() + member.log_range.has_value() != 1)
    in.fail("an axis gives exactly one of \"values\", \"range\" or \"log_range\"");
}

const param::Schema<AxisMember>& zip_member_schema() {
  static const param::Schema<AxisMember> schema("One pointer of a zipped group and its values.",
                                                member_keys<AxisMember>(), check_one_kind);
  return schema;
}

const param::Schema<AxisText>& axis_schema() {
  static const param::Schema<AxisText> schema(
      "One axis: values for one pointer (`set` with one of `values`, `range`, `log_range`), or a `zip` of such "
      "pointers that advance together.",
      [] {
        auto keys = member_keys<AxisText>();
        keys[0] = param::Keys<AxisText>::optional(keys[0], "required without `zip`");
        keys.push_back(param::Keys<AxisText>::optional(
            param::Keys<AxisText>::list("zip", &AxisText::zip, zip_member_schema(), 1, 64,
                                        "members with as many values each, advancing together; the axis then "
                                        "gives nothing else"),
            "not zipped"));
        return keys;
      }(),
      [](const JsonReader& in, const AxisText& axis) {
        if (in.has("zip")) {
          if (in.has("set") || axis.values || axis.range || axis.log_range)
            in.fail("a zipped axis gives \"set\" and its values in each member of \"zip\"");
          return;
        }
        if (!in.has("set")) in.fail_at("set", "missing required key");
        check_one_kind(in, axis);
      });
  return schema;
}
// The values a member gives, expanded.
std::vector<nlohmann::json> axis_values(const AxisMember& member) {
  std::vector<nlohmann::json> values;
  if (member.values) {
    values = *member.values;
  } else if (const auto& range = member.range) {
    const bool integral = std::floor(range->from) == range->from && std::floor(range->step) == range->step;
    for (double x = range->from; x <= range->to + range->step * 1e-9; x += range->step)
      values.push_back(integral ? nlohmann::json(static_cast<std::int64_t>(std::llround(x))) : nlohmann::json(x));
  } else if (const auto& log = member.log_range) {
    const bool integral = std::floor(log->from) == log->from && std::floor(log->to) == log->to;
    for (std::int64_t i = 0; i < log->points; ++i) {
      const double x =
          log->from * std::pow(log->to / log->from, static_cast<double>(i) / static_cast<double>(log->points - 1));
      values.push_back(integral ? nlohmann::json(static_cast<std::int64_t>(std::llround(x))) : nlohmann::json(x));
    }
  }
  return values;
}

// `in` is the axis as written, for the message when a zipped group's lengths differ.
SweepAxis expand_axis(const AxisText& text, const JsonReader& in) {
  SweepAxis axis;
  if (text.zip.empty()) {
    axis.pointers.push_back(text.set);
    axis.values.push_back(axis_values(text));
    return axis;
  }
  const std::vector<JsonReader> members = in.at("zip").elements();
  for (std::size_t i = 0; i < text.zip.size(); ++i) {
    axis.pointers.push_back(text.zip[i].set);
    axis.values.push_back(axis_values(text.zip[i]));
    if (axis.values.back().size() != axis.values.front().size())
      members[i].fail("a zipped axis has as many values as the first in its group (" +
                      std::to_string(axis.values.front().size()) + ")");
  }
  return axis;
}

const param::Schema<SimulationOptions>& run_schema() {
  using K = param::Keys<SimulationOptions>;
  static const param::Schema<SimulationOptions> schema(
      "What `lptsim run` would be given, for every point.",
      {K::optional(K::choice("mode", &SimulationOptions::mode,
                             {{"training", RunMode::kTraining}, {"inference", RunMode::kInference}},
                             "a training step, or inference (forward GEMMs in the policy's inference formats)")),
       K::optional(K::value({"phases", "array of strings", {}, param::choice_names(phase_choices()) + "; at least 1",
                             {}, "the phases simulated"},
                            &SimulationOptions::phases,
                            [](const JsonReader& in) {
                              std::set<Phase> phases;
                              for (const JsonReader& p : in.elements(1, kPhaseCount))
                                phases.insert(p.choice(std::span<const std::pair<std::string_view, Phase>>(
                                    phase_choices())));
                              return phases;
                            }),
                   "all"),
       K::optional(K::value({"batch", "integer", "samples", param::integer_range(1, std::int64_t{1} << 20), {},
                             "the batch size simulated"},
                            &SimulationOptions::batch,
                            [](const JsonReader& in) {
                              return std::optional<std::int64_t>(in.integer(1, std::int64_t{1} << 20));
                            }),
                   "the trace's (inference: 1)"),
       K::optional(K::value({"fusion", "string", {}, param::choice_names(fusion_choices()), {},
                             "overrides the config's `fusion`"},
                            &SimulationOptions::fusion,
                            [](const JsonReader& in) { return std::optional<Fusion>(read_fusion(in)); }),
                   "the config's"),
       K::optional(K::value({"residency", "string", {}, param::choice_names(residency_choices()), {},
                             "overrides the config's `residency`"},
                            &SimulationOptions::residency,
                            [](const JsonReader& in) { return std::optional<Residency>(read_residency(in)); }),
                   "the config's"),
       K::optional(K::boolean("fidelity", &SimulationOptions::fidelity,
                              "whether points run the fidelity pass (as `run --no-fidelity` when false); points "
                              "share its results through `OUT/fidelity-cache`"))});
  return schema;
}

const param::Schema<Constraint>& constraint_schema() {
  using K = param::Keys<Constraint>;
  static const param::Schema<Constraint> schema(
      "`left op right` on a point's config document; a point that fails it, or lacks a value, is dropped.",
      {K::value({"left", "string", {}, "a JSON pointer", {}, "a value of the point's config"}, &Constraint::left,
                [](const JsonReader& in) { return pointer_at(in); }),
       K::choice("op", &Constraint::op,
                 {{"<", "<"}, {"<=", "<="}, {"==", "=="}, {"!=", "!="}, {">=", ">="}, {">", ">"}},
                 "the comparison"),
       K::value({"right", "string or number", {}, "a JSON pointer, or a number in [-1e+300, 1e+300]", {},
                 "another value of the config, or a number"},
                &Constraint::right, [](const JsonReader& in) {
                  return in.json().is_string() ? nlohmann::json(pointer_at(in)) : nlohmann::json(in.number(-1e300, 1e300));
                })});
  return schema;
}

const param::Schema<SpecText>& spec_schema() {
  using K = param::Keys<SpecText>;
  static const param::Schema<SpecText> schema(
      "A sweep spec (`lptsim sweep SPEC`); file names are relative to the spec.", [] {
        std::string metrics;
        for (const std::string& m : default_metrics()) metrics += (metrics.empty() ? "`" : ", `") + m + "`";
        return std::vector<param::Key<SpecText>>{
            K::optional(K::text("notes", &SpecText::notes, "free text; ignored")),
            K::text("config", &SpecText::config, "the base config file"),
            K::strings("traces", &SpecText::traces, 1, 1024, "trace files; every point runs on each"),
            K::optional(K::object("run", &SpecText::run, run_schema(), "run options"),
                        "as `lptsim run` without options"),
            K::optional(K::list("axes", &SpecText::axes, axis_schema(), 0, 64,
                                "the points are the cartesian product of the axes, the last changing fastest"),
                        "one point: the base config"),
            K::optional(K::list("constraints", &SpecText::constraints, constraint_schema(), 0, 256,
                                "points that fail one are dropped"),
                        "none"),
            K::optional(K::value({"metrics", "array of strings", {}, "JSON pointers; 1 to 256", {},
                                  "report.json values collected per point (docs/report-schema.md); a pointer with "
                                  "nothing there gives null"},
                                 &SpecText::metrics,
                                 [](const JsonReader& in) {
                                   std::vector<std::string> out;
                                   for (const JsonReader& m : in.elements(1, 256)) out.push_back(pointer_at(m));
                                   return out;
                                 }),
                        metrics)};
      }());
  return schema;
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
      "/totals/area/total_mm2", "/fidelity/worst_sqnr_db"};
  return metrics;
}

SweepSpec parse_sweep_spec(const JsonReader& in, const std::filesystem::path& file) {
  const SpecText text = spec_schema().read(in);
  SweepSpec spec;
  spec.file = file;
  const std::filesystem::path base = file.parent_path();
  spec.config = base / text.config;
  for (const std::string& trace : text.traces) spec.traces.push_back(base / trace);
  spec.options = text.run;
  if (!text.axes.empty()) {
    const std::vector<JsonReader> axes = in.at("axes").elements();
    for (std::size_t i = 0; i < text.axes.size(); ++i) spec.axes.push_back(expand_axis(text.axes[i], axes[i]));
  }
  spec.constraints = text.constraints;
  spec.metrics = text.metrics;
  std::size_t points = 1;
  for (const SweepAxis& axis : spec.axes) {
    points *= axis.size();
    if (points > kMaxPoints)
      in.fail_at("axes", "more than " + std::to_string(kMaxPoints) + " points; split the sweep");
  }
  return spec;
}

void describe_sweep_spec(param::ObjectDocs& docs) { spec_schema().describe("", docs); }

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
