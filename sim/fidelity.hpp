// The fidelity pass: every GEMM of the expanded workload run bit-exactly on its
// datapath (sim/gemm_datapath) on sampled output elements, each with its full
// K-long reduction, against an FP64 reference of the same operands.
//
// Operands are drawn from per-tensor distributions: defaults by role and layer
// (weights as initialised, activations after the nonlinearity before the
// layer, error gradients log-normal with a wide dynamic range), or what the
// trace gives per layer (sim/tensor_values), or the elements of a real tensor
// in a .npy file. Error gradients are multiplied by the loss scale before they
// are quantized and the results divided by it. Deterministic for a seed; the
// results depend only on the precision policy, the datapath, the trace and
// the fidelity parameters, so a cache keyed by their digest serves sweeps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/numerics/fidelity.hpp"
#include "models/numerics/newton_schulz.hpp"
#include "models/numerics/gradient_reduction.hpp"
#include "sim/config.hpp"
#include "sim/gemm_datapath.hpp"
#include "sim/trace.hpp"
#include "sim/workload.hpp"

namespace lpt {

// What quantizing operands to their formats did (after the loss scale).
struct OperandCounts {
  std::uint64_t values = 0;
  std::uint64_t underflow = 0;          // nonzero, became zero
  std::uint64_t overflow = 0;           // beyond the format's largest finite value
  std::uint64_t flushed_subnormals = 0; // in the subnormal range of a format that flushes it
  void merge(const OperandCounts& o);
};

struct GemmFidelity {
  std::size_t layer = 0;
  Phase phase = Phase::kFwd;  // the phase whose step runs it
  std::string label;
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t rows = 0, cols = 0;  // the sampled grid of outputs (0 x 0: not measured)
  std::string not_measured;         // why, when it was not (its reduction beyond the budget)
  std::string datapath;             // GemmDatapath::label()
  std::string a_values, b_values;   // how the operands were drawn
  double a_scale = 1, b_scale = 1;  // the loss scale applied to each operand
  num::ErrorTally result;           // results vs FP64
  OperandCounts operands;
};

// One layer's phase: its GEMMs pooled.
struct LayerPhaseFidelity {
  std::size_t layer = 0;
  Phase phase = Phase::kFwd;
  num::FidelityStats result;  // count 0: none of its GEMMs was measured
  OperandCounts operands;
  std::size_t not_measured = 0;  // GEMMs beyond the budget
};

// ScaleCom CLT-k compression of the all-reduce (num::measure_cltk).
struct CompressionFidelity {
  double ratio = 0, memory_beta = 1;
  std::uint64_t elements = 0;                   // per worker: fidelity/allreduce_elements, capped at 2^25 / workers
  std::uint64_t k = 0;                          // values sent per worker per step
  std::uint64_t bytes_per_worker_per_step = 0;  // k values in the gradient format and k 32-bit indices
  std::vector<num::CltkStep> steps;             // each step: its error, the cumulative error, top-k overlap
  num::FidelityStats per_step;                  // every step's error pooled
  num::FidelityStats cumulative;                // the reduced gradients summed over the steps vs the dense ones
  double topk_overlap = 0;                      // mean over steps
};

// The numerics of the weight gradients' all-reduce over a system of chips:
// synthetic gradients of `workers` workers summed in the communication format
// with every add rounded to the weight-gradient accumulator, against FP64
// (num::measure_allreduce).
struct AllReduceFidelity {
  int workers = 0;
  std::uint64_t elements = 0;
  double correlation = 0;       // between any two workers' gradients: assumed
  double spread_binades = 0;    // std of log2 of the per-element gradient scale: assumed
  double scale = 1;             // power of two applied before rounding (fits the sums in the formats)
  std::string communication_format, communication_rounding;
  std::string accumulator_format, accumulator_rounding;
  std::string algorithm;        // the config's (ring, tree, hierarchical)
  std::string order;            // the order measured: "ring" or "tree"
  std::string not_measured;     // why, when it could not be (a format the numerics library cannot emulate)
  num::ErrorTally total;        // reduced vs FP64 sum of the unrounded gradients
  num::ErrorTally quantization; // FP64 sum of the gradients rounded to the communication format vs that reference
  num::ErrorTally reduction;    // reduced vs FP64 sum of the rounded gradients
  std::optional<CompressionFidelity> compression;
};

// K-FAC's factor inverses by Newton–Schulz on the inverse GEMMs' datapath
// (num::measure_newton_schulz), against FP64.
struct InverseFidelity {
  std::string datapath;  // GemmDatapath::label
  num::NewtonSchulzParams params;
  num::NewtonSchulzResult result;
  std::string not_measured;  // why, when the numerics library refused
};

struct FidelityReport {
  FidelityParams params;
  std::vector<GemmFidelity> gemms;  // in workload order
  std::optional<AllReduceFidelity> allreduce;  // a system of chips whose run computes weight gradients
  std::optional<InverseFidelity> inverse;      // K-FAC, when the run computes inverses
  bool from_cache = false;

  std::vector<LayerPhaseFidelity> layer_phases() const;
};

// Measures the gradient all-reduce of `config`'s system of chips (config.chips() > 1).
AllReduceFidelity measure_allreduce_fidelity(const AcceleratorConfig& config);

// Runs the pass over the phases' GEMMs of `layers` (expanded from `trace`),
// and, for a system of chips when the phases include wgrad, the all-reduce.
// A .npy file a trace layer names is read relative to the trace file; a bad
// one is an InputError naming it and the layer's JSON path.
FidelityReport measure_fidelity(const AcceleratorConfig& config, const Trace& trace,
                                const std::vector<LayerWork>& layers, const std::set<Phase>& phases);

// The digest of everything the pass's results depend on.
std::string fidelity_key(const AcceleratorConfig& config, const Trace& trace, const std::set<Phase>& phases,
                         bool inference);

// measure_fidelity through a directory of cached results (one JSON file per
// key, written atomically, so concurrent sweep workers may share it); an
// unreadable cache entry is recomputed.
FidelityReport cached_fidelity(const std::filesystem::path& cache_dir, const std::string& key,
                               const AcceleratorConfig& config, const Trace& trace,
                               const std::vector<LayerWork>& layers, const std::set<Phase>& phases);

nlohmann::json to_json(const FidelityReport& report);
// The inverses' measurement, as report.json and the cache hold it.
nlohmann::json inverse_fidelity_json(const InverseFidelity& inverse);
InverseFidelity inverse_fidelity_from_json(const nlohmann::json& json);
FidelityReport fidelity_from_json(const nlohmann::json& json);

}  // namespace lpt
