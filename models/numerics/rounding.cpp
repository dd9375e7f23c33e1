#include "models/numerics/rounding.hpp"

namespace lpt::num {

const std::vector<std::pair<std::string_view, Rounding>>& rounding_names() {
  static const std::vector<std::pair<std::string_view, Rounding>> names = {
      {"rne", Rounding::kNearestEven},
      {"away", Rounding::kNearestAway},
      {"rtz", Rounding::kTowardZero},
      {"sr", Rounding::kStochastic},
      {"sr_exact", Rounding::kStochasticExact},
  };
  return names;
}

std::string_view rounding_name(Rounding rounding) {
  for (const auto& [name, value] : rounding_names())
    if (value == rounding) return name;
  return "?";
}

std::optional<Rounding> parse_rounding(std::string_view name) {
  for (const auto& [candidate, value] : rounding_names())
    if (candidate == name) return value;
  return std::nullopt;
}

}  // namespace lpt::num
