// The numerics of data-parallel gradient all-reduce: N workers' weight gradients summed
// in a communication format, with each addition rounded in an accumulator format, in the
// order a ring reduce-scatter (or a binary tree) adds them; and ScaleCom's cyclic local
// top-k compression (CLT-k) with error feedback (Chen et al., NeurIPS 2020, "ScaleCom:
// Scalable Sparsified Gradient Compression for Communication-Efficient Distributed
// Training"). Every figure is against an FP64 reference.
//
// Modelled:
// - Gradients: synthetic, g_i = s ⊙ (sqrt(rho) z_shared + sqrt(1 - rho) z_i), z standard
//   normal, s log-normal per element (log2 s ~ N(log2_median, spread)); pairwise worker
//   correlation rho. Steps share a persistent part of every z with weight
//   temporal_correlation (z(t) = sqrt(tc) z_persistent + sqrt(1 - tc) z_fresh(t)), so any
//   two steps correlate by tc (not an AR(1) decay: that would need state).
// - The reduced gradient is the SUM over workers (not the mean): dividing by N is left to
//   the optimizer; for N a power of two it is exact in FP64 and changes no relative figure.
// - Every worker's value is first rounded to the communication format (times `scale`).
//   Ring: chunk j (the buffer cut into N chunks of ceil(elements / N)) starts at worker
//   j+1 and travels the ring; each hop adds the next worker's value with add_rounded() in
//   the accumulator format, then rounds the partial sum to the communication format it
//   travels in. Tree: pairwise sums of adjacent workers, level by level (an odd one out
//   moves up), each rounded the same way. The all-gather after adds no error.
//   Stochastic roundings draw from CounterRandom streams keyed by rounding_seed, step,
//   worker (or hop) and element.
// - CLT-k: at step t the leader is worker t mod N; a_i = m_i + g_i(t); the leader's top-k
//   |a| indices are used by every worker; the k values are reduced as above.
//   Memory update, an ASSUMPTION: the sources we could search (the paper's abstract and its
//   NeurIPS reviews) say ScaleCom low-pass filters the local memory accumulation but do
//   not give the equation, so we use
//       m_i <- (1 - beta) m_i + beta (a_i - sent_i),
//   sent_i = worker i's contribution (its a_i at the k indices as rounded to the
//   communication format, so the rounding error is fed back too; zero elsewhere, and
//   where the value overflowed); beta = 1 (default) is plain error feedback,
//   m_i <- a_i - sent_i. Memories and a_i are kept in FP64.
// Figures are ErrorTally's against the communication format's range (for cumulative sums
// its overflow fraction only says they outgrew that range: they live in FP64).
// Not modelled: loss scaling beyond a fixed power-of-two `scale`; timing (see the timing model).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "models/numerics/accumulate.hpp"
#include "models/numerics/fidelity.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/rounding.hpp"

namespace lpt::num {

struct SyntheticGradientParams {
  int workers = 16;
  std::uint64_t elements = 1 << 20;
  double correlation = 0.5;           // rho, between any two workers' gradients
  double temporal_correlation = 0;    // between any two steps' gradients (CLT-k runs)
  double log2_median = 0;             // of the per-element scale s
  double spread_binades = 3;          // std of log2 s (the fidelity pass's gradient default)
  std::uint64_t seed = 1;
};

// Throws std::invalid_argument naming the parameter.
void validate(const SyntheticGradientParams& params);

// Deterministic: every value is a pure function of (seed, worker, step, element), drawn
// from CounterRandom streams, so tiles may be generated in any order.
class SyntheticGradients {
 public:
  explicit SyntheticGradients(const SyntheticGradientParams& params);  // validates

  const SyntheticGradientParams& params() const { return params_; }
  // s of elements [first, first + out.size()).
  void fill_scale(std::uint64_t first, std::span<double> out) const;
  // Worker `worker`'s gradient at `step`, elements [first, first + out.size()).
  void fill(int worker, std::uint64_t step, std::uint64_t first, std::span<double> out) const;
  std::vector<double> worker_gradient(int worker, std::uint64_t step = 0) const;

 private:
  SyntheticGradientParams params_;
};

enum class ReductionOrder { kRing, kTree };

struct AllReduceParams {
  std::string communication_format = "fp32";
  StageRounding communication_rounding{};  // inputs and travelling partial sums
  std::string accumulator_format = "fp32";
  StageRounding accumulator_rounding{};    // each addition
  ReductionOrder order = ReductionOrder::kRing;
  double scale = 1;                        // power of two: applied before rounding, removed after
  std::uint64_t rounding_seed = 0;         // stochastic roundings' streams
};

// Throws std::invalid_argument naming the parameter (unknown formats list the presets).
void validate(const AllReduceParams& params);

struct AllReduceResult {
  FidelityStats total;         // reduced vs FP64 sum of the unrounded gradients
  FidelityStats quantization;  // FP64 sum of the rounded inputs vs the same reference
  FidelityStats reduction;     // reduced vs FP64 sum of the rounded inputs
  ErrorTally total_tally, quantization_tally, reduction_tally;  // for pooling
};

// The reduced sum of `gradients` (one span per worker, equal lengths), element by element.
std::vector<double> allreduce(std::span<const std::span<const double>> gradients, const AllReduceParams& params);
AllReduceResult measure_allreduce(std::span<const std::span<const double>> gradients, const AllReduceParams& params);
// Generates and reduces tile by tile: no N x elements buffer.
AllReduceResult measure_allreduce(const SyntheticGradientParams& gradients, const AllReduceParams& params);

struct CltkParams {
  double compression_ratio = 100;  // elements / k
  int steps = 8;
  bool error_feedback = true;
  double memory_beta = 1;          // low-pass filter of the memory update (see above)
};

void validate(const CltkParams& params);

// k of CLT-k: elements / ratio, at least 1.
std::uint64_t cltk_k(std::uint64_t elements, double compression_ratio);
// One worker's payload per step: k values in `format` (bit-packed, rounded up to whole
// bytes) and k 32-bit indices.
std::uint64_t compressed_bytes(std::uint64_t elements, double compression_ratio, const Format& format);
std::uint64_t compressed_bytes(std::uint64_t elements, double compression_ratio, const std::string& format);

struct CltkStep {
  int leader = 0;
  FidelityStats step;        // reduced sparse gradient vs FP64 sum of the step's dense gradients
  FidelityStats cumulative;  // sum of the reduced gradients so far vs the dense ones so far
  double topk_overlap = 0;   // mean over the other workers of |leader top-k ∩ own top-k| / k
};

struct CltkResult {
  std::uint64_t k = 0;
  std::uint64_t bytes_per_worker_per_step = 0;
  std::vector<CltkStep> steps;
  FidelityStats per_step;    // every step's tally pooled
  FidelityStats cumulative;  // after the last step
  double topk_overlap = 0;   // mean over steps
};

// Holds the N memories and accumulated vectors, 2 x N x elements doubles (256 MiB for 16
// workers of 2^20), and 4 x elements more. Cost per step: generating the gradients, N
// top-k selections (nth_element) and the reduction of k elements.
CltkResult measure_cltk(const SyntheticGradientParams& gradients, const AllReduceParams& reduction,
                        const CltkParams& params);
// Gradients from the caller: `gradients(worker, step, out)` fills all `elements` of `out`.
using GradientSource = std::function<void(int worker, std::uint64_t step, std::span<double> out)>;
CltkResult measure_cltk(int workers, std::uint64_t elements, const GradientSource& gradients,
                        const AllReduceParams& reduction, const CltkParams& params);

}  // namespace lpt::num
