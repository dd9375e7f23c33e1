#include "models/numerics/fidelity.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace lpt::num {

void ErrorTally::add(double x, double q, const Format& format) {
  if (!std::isfinite(x)) {
    ++nonfinite_references;
    return;
  }
  ++count;
  if (std::isnan(q)) {
    ++nan;
    return;
  }
  if (std::isinf(q) || std::fabs(x) > format.max_finite()) ++overflow;
  if (x != 0 && q == 0) ++underflow;
  if (std::isinf(q)) return;  // its error is infinite; counted as overflow instead
  ++finite_results;
  signal += x * x;
  noise += (q - x) * (q - x);
  signed_error += q - x;
  max_abs_error = std::max(max_abs_error, std::fabs(q - x));
}

void ErrorTally::merge(const ErrorTally& o) {
  count += o.count;
  nonfinite_references += o.nonfinite_references;
  finite_results += o.finite_results;
  underflow += o.underflow;
  overflow += o.overflow;
  nan += o.nan;
  signal += o.signal;
  noise += o.noise;
  signed_error += o.signed_error;
  max_abs_error = std::max(max_abs_error, o.max_abs_error);
}

FidelityStats ErrorTally::stats() const {
  FidelityStats stats;
  stats.count = count;
  stats.nonfinite_references = nonfinite_references;
  if (count == 0) return stats;
  const double compared = static_cast<double>(count);
  stats.fraction_underflow = static_cast<double>(underflow) / compared;
  stats.fraction_overflow = static_cast<double>(overflow) / compared;
  stats.fraction_nan = static_cast<double>(nan) / compared;
  if (finite_results > 0) {
    stats.mean_signed_error = signed_error / static_cast<double>(finite_results);
    stats.max_abs_error = max_abs_error;
    stats.sqnr_db = noise == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal / noise);
    stats.relative_l2_error = signal == 0 ? (noise == 0 ? 0.0 : std::numeric_limits<double>::infinity())
                                           : std::sqrt(noise / signal);
  }
  return stats;
}

FidelityStats measure(std::span<const double> reference, std::span<const double> approximate, const Format& format) {
  if (reference.size() != approximate.size())
    throw std::invalid_argument("fidelity: " + std::to_string(reference.size()) + " reference values but " +
                                std::to_string(approximate.size()) + " results");
  ErrorTally tally;
  for (std::size_t e = 0; e < reference.size(); ++e) tally.add(reference[e], approximate[e], format);
  return tally.stats();
}

}  // namespace lpt::num
