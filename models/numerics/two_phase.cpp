#include "models/numerics/two_phase.hpp"

#include <cmath>
#include <stdexcept>

#include "models/numerics/random.hpp"

namespace lpt::num {

PhaseRounding round_to_phase(std::span<const double> gradient, const TwoPhaseParams& params, GradientPhase phase) {
  if (params.grid.radix != 4 || params.grid.is_integer)
    throw std::invalid_argument("two-phase rounding: grid \"" + params.grid.name + "\" is not a radix-4 format");
  double largest = 0;
  for (double g : gradient) {
    if (!std::isfinite(g)) throw std::invalid_argument("two-phase rounding: the gradient holds NaN or Inf");
    largest = std::max(largest, std::fabs(g));
  }
  FormatSpec spec = params.grid;
  spec.scale = 1;
  // The unscaled top value is an even power of two (a power of 4), so a scale 2^e puts the
  // whole grid on powers of two of e's parity.
  const double top = Format(spec).max_finite();
  int exponent = largest == 0 ? 0 : static_cast<int>(std::ceil(std::log2(largest / top)));
  if (largest != 0 && std::ldexp(top, exponent - 1) >= largest) --exponent;  // log2 rounding slack
  if (largest != 0 && std::ldexp(top, exponent) < largest) ++exponent;
  const bool want_odd = phase == GradientPhase::kOdd;
  if ((exponent % 2 != 0) != want_odd) ++exponent;
  spec.scale = std::ldexp(1.0, exponent);
  const Format format(spec);

  // One random stream per phase, so the two copies round independently.
  const CounterRandom random(params.seed, want_odd ? 1 : 0);
  PhaseRounding result{std::vector<double>(gradient.size()), spec.scale};
  for (std::size_t e = 0; e < gradient.size(); ++e) {
    const std::uint64_t draw = is_stochastic(params.rounding) ? random.bits(e) : 0;
    result.values[e] = format.round(gradient[e], params.rounding, draw, params.stochastic_bits);
  }
  return result;
}

TwoPhaseGradients round_two_phase(std::span<const double> gradient, const TwoPhaseParams& params) {
  const GradientPhase wgrad_phase =
      params.bwd_data_phase == GradientPhase::kEven ? GradientPhase::kOdd : GradientPhase::kEven;
  return {round_to_phase(gradient, params, params.bwd_data_phase), round_to_phase(gradient, params, wgrad_phase)};
}

}  // namespace lpt::num
