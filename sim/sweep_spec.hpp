// A design-space sweep, as written in a spec file: a base config, traces, axes
// that set values at JSON pointers of the config (docs/sweeps.md), constraints
// that drop points, and the report values to collect. Expansion is pure: the
// points are the cartesian product of the axes, a zipped group advancing its
// members together.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/common/param_schema.hpp"
#include "sim/run.hpp"

namespace lpt {

// One value an axis gives one JSON pointer.
struct Setting {
  std::string pointer;
  nlohmann::json value;
};

// An axis: one or more pointers (a zipped group) with equally many values each.
struct SweepAxis {
  std::vector<std::string> pointers;
  std::vector<std::vector<nlohmann::json>> values;  // [pointer][index]
  std::size_t size() const { return values.empty() ? 0 : values.front().size(); }
};

// left op right, on the point's config document; right is a pointer or a number.
struct Constraint {
  std::string left;
  std::string op;  // < <= == != >= >
  nlohmann::json right;
};

struct SweepSpec {
  std::filesystem::path file;
  std::filesystem::path config;                // resolved against the spec's folder
  std::vector<std::filesystem::path> traces;   // resolved against the spec's folder
  SimulationOptions options;
  std::vector<SweepAxis> axes;
  std::vector<Constraint> constraints;
  std::vector<std::string> metrics;            // JSON pointers into report.json
};

// The report values collected when a spec names none.
const std::vector<std::string>& default_metrics();

// Errors name the spec file and the JSON path.
SweepSpec parse_sweep_spec(const JsonReader& in, const std::filesystem::path& file);
// The spec's keys as the config reference shows them (the declarations parse_sweep_spec reads with).
void describe_sweep_spec(param::ObjectDocs& docs);
SweepSpec load_sweep_spec(const std::filesystem::path& file);

// Every combination of the axes' values, in order (the last axis fastest).
std::vector<std::vector<Setting>> expand_points(const SweepSpec& spec);

// Whether the constraints hold on a point's config document (after its
// settings); a pointer that is not in the document fails the constraint.
bool satisfies(const std::vector<Constraint>& constraints, const nlohmann::json& document);

// The overrides text of a setting (as --set takes it).
std::string override_text(const Setting& setting);

}  // namespace lpt
