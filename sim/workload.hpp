// Training workload expansion: each layer of a trace becomes the GEMMs and
// element-wise work of its forward, backward-data, weight-gradient and
// weight-update phases (docs/architecture.md, "Workload expansion").
// Counts only; formats and bytes are applied by the mapping.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <optional>

#include "models/core/program.hpp"
#include "sim/implicit_gemm.hpp"
#include "sim/optimizer.hpp"
#include "sim/phase.hpp"
#include "sim/trace.hpp"

namespace lpt {

// Streaming element-wise work: tensors read and written (in elements) and the
// special-function-unit operations spent on them.
struct ElementwiseWork {
  std::int64_t read_elements = 0;
  std::int64_t write_elements = 0;
  core::SfuWork ops;
  std::int64_t rounded_elements = 0;  // through the stochastic rounders (weight update)

  bool empty() const { return read_elements == 0 && write_elements == 0 && ops.empty(); }
  ElementwiseWork& operator+=(const ElementwiseWork& other);
};

// Where a GEMM operand comes from, so that a tensor an earlier step produced
// can be read on chip (sim/residency) and weights can be loaded ahead of
// their step: the layer's input (the forward output of the layer before it),
// the gradient at the layer's output, the layer's weights, or elsewhere (a
// recurrence's own state, tensors inside the layer, a second activation).
enum class OperandSource { kElsewhere, kLayerInput, kOutputGradient, kWeights };

// C(m x n) = A(m x k) · B(k x n), `count` independent instances that may run in
// parallel, repeated `repeats` times in sequence (the time steps of a recurrence).
struct GemmWork {
  std::string label;  // e.g. "dX", "dW", "recurrent"
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t count = 1;
  std::int64_t repeats = 1;
  // Whose operand/accumulator formats the GEMM uses: a matmul's dB = Aᵀ·dC is
  // computed during the backward pass but has the operands of a weight gradient.
  Phase formats_of = Phase::kFwd;
  // A convolution's A operand is an im2col view of a raw tensor in DRAM
  // (implicit GEMM); without it, A is an m x k matrix in DRAM.
  std::optional<ConvWindow> a_window = std::nullopt;
  // Element-wise work fused into this GEMM's tiles (sim/fusion): SFU
  // operations and the extra tensors they read and write, spread over its tasks.
  ElementwiseWork fused = {};
  OperandSource a_from = OperandSource::kElsewhere;
  OperandSource b_from = OperandSource::kElsewhere;

  std::int64_t macs() const;  // the expansion checked that it fits
};

struct PhaseWork {
  std::vector<GemmWork> gemms;
  ElementwiseWork elementwise;

  bool empty() const { return gemms.empty() && elementwise.empty(); }
  std::int64_t macs() const;
  // Elements of the matrices its GEMMs produce, m·n·count each (K-FAC's
  // factors and inverses).
  std::int64_t output_elements() const;
};

struct LayerWork {
  std::size_t layer_index = 0;
  std::string name;
  std::string type;
  std::string where;  // the layer's place in its trace file (Layer::where)
  std::int64_t parameters = 0;
  std::int64_t output_elements = 0;  // per batch, the layer's forward output
  std::optional<ElementwiseOp> elementwise_op;  // for activation, eltwise, norm, ... layers
  // Set when fusion moved this layer's work into a GEMM of that layer (index).
  std::optional<std::size_t> fused_into;
  std::array<PhaseWork, kPhaseCount> phases;   // indexed by Phase

  const PhaseWork& phase(Phase p) const { return phases[static_cast<int>(p)]; }
  PhaseWork& phase(Phase p) { return phases[static_cast<int>(p)]; }
};

enum class Fusion;

struct ExpansionOptions {
  Optimizer optimizer = SgdMomentum{};
  Fusion fusion{};  // Fusion::kNone (sim/fusion.hpp)
};

// Bounds on the work one layer may ask for in one phase, far above real
// networks (a GPT-3 layer at batch 2048 needs ~2^49 MACs) and low enough that
// every derived count (bytes of every tensor, tile counts, cycles) fits in 64
// bits and a run stays a question of seconds, not days.
inline constexpr std::int64_t kMaxMacsPerLayerPhase = std::int64_t{1} << 50;
inline constexpr std::int64_t kMaxElementsPerLayerPhase = std::int64_t{1} << 48;

// Expands every layer for the trace's batch, with the optimizer's own phases
// (sim/optimizer). The first layer gets no backward-data work: nothing
// consumes the gradient of the network input.
// Work above the limits, or counts that would overflow, are an InputError
// naming the layer (its trace file and place in it).
std::vector<LayerWork> expand_training(const Trace& trace, const ExpansionOptions& options);

// The forward pass as deployed: batch-norm folded into the weights of the
// GEMM it follows (no work; marked fused_into that layer; one that follows no
// GEMM is a scale and shift of one read and one write), dropout removed (no
// work), then fusion as configured. Same limits and errors as training.
std::vector<LayerWork> expand_inference(const Trace& trace, const ExpansionOptions& options);

}  // namespace lpt
