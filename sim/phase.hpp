// The phases of a training step, as one table: each phase's name, where in
// the step it runs, and whose GEMM formats it takes when the precision policy
// gives it none. SGD's four phases and the all-reduce are rows like the
// optimizers' own (K-FAC's curvature, inverse and preconditioning, AdaHessian's
// Hessian pass); an optimizer (sim/optimizer) fills the phases it uses, and
// the mapping places a phase by its row, not by its name.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace lpt {

// The identifiers of the table's rows, in the order reports list them.
enum class Phase : std::uint8_t {
  kFwd,
  kBwd,
  kWgrad,
  kCurvature,
  kHessian,
  kAllReduce,
  kExchange,
  kInverse,
  kPrecondition,
  kUpdate,
  kSpill,
};

// Where a phase's work runs in the step.
enum class PhasePlacement {
  kForwardPass,     // layer by layer, first to last
  kBackwardPass,    // layer by layer, last to first, reading the gradient at the layer's output
  kAfterBackward,   // in the backward pass, after the layer's weight gradient (reads its inputs)
  kSecondBackward,  // a second backward pass after the first has finished
  kCollective,      // on a system of chips, exchanges between chips (added by the mapping)
  kOptimizer,       // per layer once its gradients are complete, in table order
  kHostTraffic,     // around a layer's optimizer phases, moving what does not fit the DRAM (added by the mapping)
};

struct PhaseInfo {
  Phase phase;
  std::string_view name;  // in reports, configs (precision keys) and --phases
  std::string_view description;
  PhasePlacement placement;
  // The phase's GEMM formats (and its element-wise work's element size),
  // when the precision policy has no entry of this name: those of another
  // phase (nullopt: the phase has its own, required, or has no GEMMs).
  std::optional<Phase> formats_default;
  bool precision_key;  // whether the precision policy may give its GEMM formats
  bool sgd;            // one of the phases every training step has
  bool fidelity;       // its GEMMs are measured by the fidelity pass
  // An optimizer phase that needs the layer's gradients (and a system's
  // all-reduce of them); one that does not reads only the curvature.
  bool reads_gradients = true;
};

inline constexpr std::array<PhaseInfo, 11> kPhaseTable = {{
    {Phase::kFwd, "fwd", "the forward pass", PhasePlacement::kForwardPass, std::nullopt, true, true, true},
    {Phase::kBwd, "bwd", "the data gradients", PhasePlacement::kBackwardPass, std::nullopt, true, true, true},
    {Phase::kWgrad, "wgrad", "the weight gradients", PhasePlacement::kBackwardPass, std::nullopt, true, true, true},
    {Phase::kCurvature, "curvature", "K-FAC's factors A = aᵀa and G = gᵀg and their running averages",
     PhasePlacement::kAfterBackward, Phase::kWgrad, true, false, true},
    {Phase::kHessian, "hessian",
     "AdaHessian's Hessian-vector product (a second backward pass) and Hutchinson's diagonal estimate",
     PhasePlacement::kSecondBackward, Phase::kBwd, false, false, false},
    {Phase::kAllReduce, "allreduce", "the gradient all-reduce of a system of chips", PhasePlacement::kCollective,
     std::nullopt, false, false, false},
    {Phase::kExchange, "exchange",
     "K-FAC's exchanges between chips (KAISA): the factors' all-reduce, the inverses' all-gather among each layer's "
     "gradient workers, the preconditioned gradients' all-gather",
     PhasePlacement::kCollective, std::nullopt, false, false, false},
    {Phase::kInverse, "inverse", "K-FAC's damped factor inverses (Newton–Schulz iterations on the MAC arrays)",
     PhasePlacement::kOptimizer, Phase::kWgrad, true, false, false, false},
    {Phase::kPrecondition, "precondition", "K-FAC's preconditioned gradients A⁻¹·dW·G⁻¹ and their KL clipping",
     PhasePlacement::kOptimizer, Phase::kWgrad, true, false, false},
    {Phase::kUpdate, "update", "the optimizer's update of the weights and its state", PhasePlacement::kOptimizer,
     std::nullopt, false, true, false},
    {Phase::kSpill, "spill",
     "what does not fit the DRAM (optimizer state, curvature, ESGD's copies) moved in from host memory before a "
     "layer's optimizer phases and back after them",
     PhasePlacement::kHostTraffic, std::nullopt, false, false, false},
}};
inline constexpr std::size_t kPhaseCount = kPhaseTable.size();

constexpr const PhaseInfo& info(Phase phase) { return kPhaseTable[static_cast<std::size_t>(phase)]; }
constexpr std::size_t index_of(Phase phase) { return static_cast<std::size_t>(phase); }
const char* to_string(Phase phase);
// The phase of that name, if any.
std::optional<Phase> phase_named(std::string_view name);
// The phases a run may be asked for: all but the exchanges between chips and
// the host traffic, which the mapping adds where the step needs them. A phase
// the optimizer has no work in adds no step.
std::set<Phase> requestable_phases();
std::string requestable_phase_names();  // "fwd,bwd,...", comma-separated

}  // namespace lpt
