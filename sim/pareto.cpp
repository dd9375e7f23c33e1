#include "sim/pareto.hpp"

#include <cmath>
#include <stdexcept>

namespace lpt {

Objective parse_objective(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  const std::string pointer = colon == std::string::npos ? text : text.substr(0, colon);
  const std::string direction = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (pointer.empty() || pointer.front() != '/' || (direction != "max" && direction != "min"))
    throw std::invalid_argument("expected /json/pointer:max or /json/pointer:min, got \"" + text + "\"");
  return {pointer, direction == "max"};
}

std::string to_string(const Objective& objective) {
  return objective.pointer + (objective.maximise ? ":max" : ":min");
}

std::vector<bool> pareto_front(const std::vector<std::vector<std::optional<double>>>& values,
                               const std::vector<Objective>& objectives) {
  const std::size_t n = values.size();
  // Every value turned so that larger is better; a point missing one is out.
  std::vector<std::vector<double>> better(n);
  std::vector<bool> complete(n, true);
  for (std::size_t p = 0; p < n; ++p) {
    if (values[p].size() != objectives.size())
      throw std::invalid_argument("pareto_front: a point has " + std::to_string(values[p].size()) +
                                  " values for " + std::to_string(objectives.size()) + " objectives");
    for (std::size_t o = 0; o < objectives.size(); ++o) {
      const std::optional<double>& v = values[p][o];
      if (!v || !std::isfinite(*v)) {
        complete[p] = false;
        break;
      }
      better[p].push_back(objectives[o].maximise ? *v : -*v);
    }
  }
  const auto beats = [&](std::size_t a, std::size_t b) {
    bool strictly = false;
    for (std::size_t o = 0; o < objectives.size(); ++o) {
      if (better[a][o] < better[b][o]) return false;
      strictly = strictly || better[a][o] > better[b][o];
    }
    return strictly;
  };
  // Quadratic: sweeps hold thousands of points, not millions.
  std::vector<bool> front(n, false);
  for (std::size_t p = 0; p < n; ++p) {
    if (!complete[p]) continue;
    front[p] = true;
    for (std::size_t q = 0; q < n && front[p]; ++q)
      if (q != p && complete[q] && beats(q, p)) front[p] = false;
  }
  return front;
}

}  // namespace lpt
