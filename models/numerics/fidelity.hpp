// How far a low-precision result is from its FP64 reference: the metrics numerics.md
// lists (SQNR, relative L2 error, max abs error, mean signed error, fractions underflowed
// / overflowed / NaN), for per-layer fidelity reports. An ErrorTally keeps sums, so the
// figures of several GEMMs (a layer's phase, say) pool exactly.
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
  double max_abs_error = 0;            // max |q - x| over finite results
  double mean_signed_error = 0;        // mean of q - x over finite results (bias; ~0 for SR)
  double fraction_underflow = 0;       // x != 0 but q == 0
  double fraction_overflow = 0;        // |x| beyond the format's largest finite value
                                       // (q saturated or infinite), or q infinite
  double fraction_nan = 0;             // q NaN
};

// Plain sums, so that a tally can be stored and merged.
struct ErrorTally {
  // `approximate` is the low-precision result (a value of `format`) of what `reference`
  // computes in FP64.
  void add(double reference, double approximate, const Format& format);
  void merge(const ErrorTally& other);
  FidelityStats stats() const;

  std::size_t count = 0, nonfinite_references = 0, finite_results = 0;
  std::size_t underflow = 0, overflow = 0, nan = 0;
  double signal = 0, noise = 0, signed_error = 0, max_abs_error = 0;
};

// Element by element. Throws std::invalid_argument on different lengths.
FidelityStats measure(std::span<const double> reference, std::span<const double> approximate, const Format& format);

}  // namespace lpt::num
