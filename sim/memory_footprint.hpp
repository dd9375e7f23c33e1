// What one chip keeps in DRAM through a training step, by kind: weights,
// their gradients, the optimizer's state, curvature (K-FAC's factors and
// their inverses, AdaHessian's Hessian diagonal) and the activations the
// backward pass reads. Checked against the DRAM's capacity, when the chip
// description gives one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config.hpp"
#include "sim/workload.hpp"

namespace lpt {

struct MemoryFootprint {
  std::uint64_t weights = 0;          // in the update's weights format (every ESGD copy on the chip)
  std::uint64_t gradients = 0;        // in the weight-gradient GEMMs' output format
  std::uint64_t optimizer_state = 0;  // state_per_weight per weight, in the optimizer-state format
  // Factors (curvature output), inverses (inverse output; with KAISA those of
  // the chip's gradient-worker layers), AdaHessian's Hessian diagonal.
  std::uint64_t curvature = 0;
  std::uint64_t activations = 0;      // every stored forward output (fwd output format), at the chip's batch
  std::uint64_t total() const;
  MemoryFootprint& operator+=(const MemoryFootprint& other);
};

// With `spill_to_host`, what does not fit the DRAM lives in host memory:
// first ESGD's idle copies (one individual's comes in and one goes out per
// turn of K steps: 1/K of a copy per step), then the same share of each
// layer's optimizer state and curvature, moved in over the host link before
// the layer's optimizer phases and out after its update.
struct SpillPlan {
  std::uint64_t spilled_bytes = 0;            // kept in host memory
  std::vector<std::uint64_t> bytes_per_layer;  // moved each way per step (empty: nothing spilled)
  std::uint64_t moved_per_step() const;        // each way
};

// The footprint of the expanded step on one chip. A layer fused into another
// stores no output of its own (an upper bound otherwise: no recomputation,
// every output kept until its backward).
MemoryFootprint memory_footprint(const AcceleratorConfig& config, const std::vector<LayerWork>& layers);

// "12.3 GiB (weights 0.1, gradients 0.1, ...)"
std::string describe(const MemoryFootprint& footprint);

// An InputError at the chip's /dram/capacity_gib when the footprint exceeds
// it and the config does not allow spilling, saying by how much and what it
// is made of.
void check_memory_capacity(const AcceleratorConfig& config, const MemoryFootprint& footprint);
// The spill of a step that exceeds the capacity, with `spill_to_host` (empty
// otherwise). An InputError when even spilling all it may does not fit.
SpillPlan plan_spill(const AcceleratorConfig& config, const std::vector<LayerWork>& layers,
                     const MemoryFootprint& footprint);

}  // namespace lpt
