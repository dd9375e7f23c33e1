#include "models/numerics/fidelity.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace lpt::num {

FidelityStats measure(std::span<const double> reference, std::span<const double> approximate, const Format& format) {
  if (reference.size() != approximate.size())
    throw std::invalid_argument("fidelity: " + std::to_string(reference.size()) + " reference values but " +
                                std::to_string(approximate.size()) + " results");
  FidelityStats stats;
  double signal = 0, noise = 0, signed_error = 0;
  std::size_t finite_results = 0, underflow = 0, overflow = 0, nan = 0;
  for (std::size_t e = 0; e < reference.size(); ++e) {
    const double x = reference[e], q = approximate[e];
    if (!std::isfinite(x)) {
      ++stats.nonfinite_references;
      continue;
    }
    ++stats.count;
    if (std::isnan(q)) {
      ++nan;
      continue;
    }
    if (std::isinf(q) || std::fabs(x) > format.max_finite()) ++overflow;
    if (x != 0 && q == 0) ++underflow;
    if (std::isinf(q)) continue;  // its error is infinite; counted as overflow instead
    ++finite_results;
    signal += x * x;
    noise += (q - x) * (q - x);
    signed_error += q - x;
  }
  if (stats.count == 0) return stats;
  const double count = static_cast<double>(stats.count);
  stats.fraction_underflow = static_cast<double>(underflow) / count;
  stats.fraction_overflow = static_cast<double>(overflow) / count;
  stats.fraction_nan = static_cast<double>(nan) / count;
  if (finite_results > 0) {
    stats.mean_signed_error = signed_error / static_cast<double>(finite_results);
    stats.sqnr_db = noise == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal / noise);
    stats.relative_l2_error = signal == 0 ? (noise == 0 ? 0.0 : std::numeric_limits<double>::infinity())
                                          : std::sqrt(noise / signal);
  }
  return stats;
}

}  // namespace lpt::num
