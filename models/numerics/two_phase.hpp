// Two-phase rounding of gradients (Sun et al., NeurIPS 2020, "Ultra-Low Precision 4-bit
// Training of Deep Neural Networks", Sec. 3): the incoming gradient of a layer is rounded
// twice onto radix-4 FP4 grids offset by a factor 2 — one grid of even powers of two, one
// of odd powers — and one copy feeds the BWD-data GEMM, the other the WGRAD GEMM, so the
// rounding errors of the two partly cancel over training.
//
// The per-tensor scale (the paper's GradScale) is assumed to be the smallest power of two
// of the phase's parity that puts the largest |gradient| at or below the top of the grid,
// so nothing saturates. [A]
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/numerics/format.hpp"
#include "models/numerics/rounding.hpp"

namespace lpt::num {

enum class GradientPhase { kEven, kOdd };  // grid values +-2^(2k) / +-2^(2k+1)

struct TwoPhaseParams {
  FormatSpec grid;  // a radix-4 format (the fp4_radix4 preset); its scale is set per tensor
  Rounding rounding = Rounding::kNearestEven;
  int stochastic_bits = kMaxStochasticBits;
  GradientPhase bwd_data_phase = GradientPhase::kEven;  // WGRAD gets the other phase
  std::uint64_t seed = 0;                               // stochastic rounding only
};

struct PhaseRounding {
  std::vector<double> values;
  double scale = 1;  // the grid's scale: its largest value is scale * 4^(top - bias)
};

struct TwoPhaseGradients {
  PhaseRounding bwd_data;
  PhaseRounding wgrad;
};

// `gradient` rounded onto one phase's grid. Throws std::invalid_argument if the grid is not
// radix 4 or the gradient holds NaN/Inf (a scale cannot be chosen).
PhaseRounding round_to_phase(std::span<const double> gradient, const TwoPhaseParams& params, GradientPhase phase);

TwoPhaseGradients round_two_phase(std::span<const double> gradient, const TwoPhaseParams& params);

}  // namespace lpt::num
