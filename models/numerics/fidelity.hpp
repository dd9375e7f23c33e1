// How far a low-precision result is from its FP64 reference: the metrics numerics.md
// lists (SQNR, relative L2 error, mean signed error, fractions underflowed / overflowed /
// NaN), for per-layer fidelity reports.
#pragma once

#include <cstddef>
#include <span>

#include "models/numerics/format.hpp"

namespace lpt::num {

struct FidelityStats {
  std::size_t count = 0;               // elements compared (finite references)
  std::size_t nonfinite_references = 0;  // reference elements that were NaN/Inf: skipped
  // 10 log10(sum x^2 / sum (q - x)^2) over finite results; +Inf when there is no error.
  double sqnr_db = 0;
  double relative_l2_error = 0;        // ||q - x|| / ||x|| over finite results
  double mean_signed_error = 0;        // mean of q - x over finite results (bias; ~0 for SR)
  double fraction_underflow = 0;       // x != 0 but q == 0
  double fraction_overflow = 0;        // |x| beyond the format's largest finite value
                                       // (q saturated or infinite), or q infinite
  double fraction_nan = 0;             // q NaN
};

// `approximate` is the low-precision result (values of `format`) of what `reference`
// computes in FP64, element by element. Throws std::invalid_argument on different lengths.
FidelityStats measure(std::span<const double> reference, std::span<const double> approximate, const Format& format);

}  // namespace lpt::num
