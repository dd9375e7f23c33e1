#include "models/numerics/loss_scale.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace lpt::num {

bool has_overflow(std::span<const double> values, double max_finite) {
  return std::any_of(values.begin(), values.end(),
                     [&](double v) { return !std::isfinite(v) || std::fabs(v) > max_finite; });
}

namespace {

bool power_of_two(double value) {
  int exponent = 0;
  return std::isfinite(value) && value > 0 && std::frexp(value, &exponent) == 0.5;
}

}  // namespace

LossScaler::LossScaler(const LossScaleParams& params) : params_(params), scale_(params.initial_scale) {
  const auto fail = [](const std::string& message) { throw std::invalid_argument("loss scaling: " + message); };
  for (const auto& [name, value] : {std::pair{"initial_scale", params.initial_scale},
                                    std::pair{"growth_factor", params.growth_factor},
                                    std::pair{"backoff_factor", params.backoff_factor},
                                    std::pair{"min_scale", params.min_scale}, std::pair{"max_scale", params.max_scale}})
    if (!power_of_two(value)) fail(std::string(name) + " must be a power of two, got " + std::to_string(value));
  if (!(params.growth_factor > 1)) fail("growth_factor must be > 1");
  if (!(params.backoff_factor < 1)) fail("backoff_factor must be < 1");
  if (!(params.min_scale <= params.initial_scale && params.initial_scale <= params.max_scale))
    fail("expected min_scale <= initial_scale <= max_scale");
  if (params.growth_interval < 1) fail("growth_interval must be >= 1");
}

void LossScaler::scale_values(std::span<double> values) const {
  for (double& v : values) v *= scale_;
}

void LossScaler::unscale_values(std::span<double> values) const {
  for (double& v : values) v /= scale_;
}

bool LossScaler::update(bool overflowed) {
  if (overflowed) {
    scale_ = std::max(params_.min_scale, scale_ * params_.backoff_factor);
    clean_steps_ = 0;
    ++skipped_steps_;
    return false;
  }
  if (++clean_steps_ >= params_.growth_interval) {
    scale_ = std::min(params_.max_scale, scale_ * params_.growth_factor);
    clean_steps_ = 0;
  }
  return true;
}

}  // namespace lpt::num
