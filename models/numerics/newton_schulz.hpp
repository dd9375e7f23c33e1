// Newton–Schulz inversion of a damped Kronecker factor on a low-precision GEMM
// datapath: what K-FAC's inverses (sim/optimizer, when a chip has no
// eigensolver) come to in a chip's formats, against FP64.
//
// The factor, an ASSUMPTION standing for a layer's A = aᵀa / m: a has m = 2d
// rows of d columns, standard normal entries with column j scaled by
// 2^(-spread·j/(d-1)) (a spectrum decaying over `spread_binades`), then F =
// aᵀa / m + damping·(trace/d)·I (damping relative to the mean eigenvalue, as
// K-FAC's Tikhonov damping). Iterations from X₀ = I / ‖F‖_F (so that every
// eigenvalue of F·X₀ is in (0, 1]): T = F·X (A operand F, B operand X),
// R = 2I − T (element-wise, rounded to the output format), X = X·R (A X, B R);
// operands are rounded to the datapath's operand formats to nearest even,
// results come out of the datapath (accumulator, chunks, output rounding).
// The same iterations in FP64 show how far the iteration count alone gets.
#pragma once

#include <cstdint>
#include <vector>

#include "models/numerics/datapath.hpp"
#include "models/numerics/fidelity.hpp"

namespace lpt::num {

struct NewtonSchulzParams {
  int dimension = 128;
  int iterations = 12;
  double damping = 1e-3;
  double spread_binades = 10;
  std::uint64_t seed = 1;
};

struct NewtonSchulzResult {
  // ‖I − F·X_k‖_F / √d after each iteration, on the datapath and in FP64.
  std::vector<double> residual, fp64_residual;
  double condition = 0;  // of F (power iterations' estimate: largest / smallest eigenvalue)
  // X after the iterations against F's exact inverse (FP64 Newton–Schulz run to convergence).
  FidelityStats inverse;
};

// Throws std::invalid_argument for a dimension below 2 or iterations below 1.
NewtonSchulzResult measure_newton_schulz(const Datapath& datapath, const NewtonSchulzParams& params);

}  // namespace lpt::num
