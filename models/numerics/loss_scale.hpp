// Dynamic loss scaling (Micikevicius et al., ICLR 2018, "Mixed Precision Training",
// Sec. 3.2): multiply the loss by S so small gradients survive a narrow format, check the
// gradients for overflow, divide by S before the update, skip steps that overflowed and
// lower S; raise S after a run of clean steps. Factors are powers of two so that scaling
// and unscaling are exact.
#pragma once

#include <cstdint>
#include <span>

namespace lpt::num {

struct LossScaleParams {
  double initial_scale = 65536;  // 2^16
  double growth_factor = 2;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;  // clean steps before the scale grows
  double min_scale = 1;
  double max_scale = 16777216;  // 2^24
};

// True if any value is NaN or Inf, or beyond `max_finite` (the largest value of the format
// the gradients were stored in, for gradients kept as doubles).
bool has_overflow(std::span<const double> values, double max_finite);

class LossScaler {
 public:
  // Throws std::invalid_argument unless the factors and scales are powers of two with
  // growth > 1 > backoff, min <= initial <= max, and the interval is positive.
  explicit LossScaler(const LossScaleParams& params);

  double scale() const { return scale_; }
  std::int64_t clean_steps() const { return clean_steps_; }
  std::int64_t skipped_steps() const { return skipped_steps_; }

  void scale_values(std::span<double> values) const;    // x *= S
  void unscale_values(std::span<double> values) const;  // x /= S

  // After a step's gradients are known: `overflowed` steps are skipped (the caller must not
  // apply them) and lower the scale; returns whether the step may be applied.
  bool update(bool overflowed);

 private:
  LossScaleParams params_;
  double scale_;
  std::int64_t clean_steps_ = 0;
  std::int64_t skipped_steps_ = 0;
};

}  // namespace lpt::num
