// Rounding rules of the numerics library and their short names in configs/CLI.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace lpt::num {

enum class Rounding {
  kNearestEven,      // "rne": IEEE default, OCP FP8, BF16 conversion (with no mantissa
                     //   bits, ties between nonzero values go away, as IEEE 754-2019 says)
  kNearestAway,      // "away": nearest, ties away from zero (DLFloat, QPyTorch/MX "nearest")
  kTowardZero,       // "rtz": truncation of the magnitude
  kStochastic,       // "sr": hardware SR, add R random bits below the kept bits and truncate
  kStochasticExact,  // "sr_exact": round up with probability = distance to the lower neighbour
};

// The widest random word a stochastic rounding consumes.
inline constexpr int kMaxStochasticBits = 64;

std::string_view rounding_name(Rounding rounding);
std::optional<Rounding> parse_rounding(std::string_view name);
// Every rounding with its short name, in enum order (for help texts and JSON choices).
const std::vector<std::pair<std::string_view, Rounding>>& rounding_names();

inline bool is_stochastic(Rounding rounding) {
  return rounding == Rounding::kStochastic || rounding == Rounding::kStochasticExact;
}

}  // namespace lpt::num
