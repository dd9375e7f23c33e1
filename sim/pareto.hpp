// Pareto fronts: the points that no other point beats on every objective at
// once. Used by `lptsim report` to pick the designs worth an architect's look
// out of a sweep (docs/sweeps.md, "Reports").
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace lpt {

struct Objective {
  std::string pointer;  // a metric (or axis) of the sweep's results
  bool maximise = true;
};

// "/json/pointer:max" or "/json/pointer:min"; std::invalid_argument otherwise.
Objective parse_objective(const std::string& text);

// "/json/pointer:max" again.
std::string to_string(const Objective& objective);

// values[point][objective], in the order of `objectives`. A point is on the
// front unless another point is at least as good on every objective and better
// on one; equal points do not beat each other, so duplicates are on the front
// together. A point missing a value (nullopt, NaN or infinite) is never on the
// front and beats no other.
std::vector<bool> pareto_front(const std::vector<std::vector<std::optional<double>>>& values,
                               const std::vector<Objective>& objectives);

}  // namespace lpt
