#include "sim/memory_footprint.hpp"

#include <cmath>
#include <cstdio>

#include "sim/gemm_datapath.hpp"

namespace lpt {

std::uint64_t MemoryFootprint::total() const {
  return weights + gradients + optimizer_state + curvature + activations;
}

namespace {

std::uint64_t bytes(std::int64_t elements, int bits) {
  return core::packed_bytes(static_cast<std::uint64_t>(elements), bits);
}

std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", static_cast<double>(bytes) / static_cast<double>(std::uint64_t{1} << 30));
  return text;
}

}  // namespace

std::vector<MemoryFootprint> footprint_by_layer(const AcceleratorConfig& config,
                                                const std::vector<LayerWork>& layers) {
  const PrecisionPolicy& p = config.precision;
  const std::vector<LayerPosition> positions = layer_positions(layers);
  const int state = state_per_weight(p.update.optimizer);
  // ESGD's individuals, back-off copies and offspring each keep weights and
  // state; one trains at a time.
  const int copies = weight_copies_per_chip(p.update.optimizer, config.chips());
  const bool adahessian = std::holds_alternative<AdaHessian>(p.update.optimizer);
  const auto* kfac = std::get_if<Kfac>(&p.update.optimizer);
  const KaisaShare kaisa = kfac && config.chips() > 1 ? kaisa_share(layers, *kfac, config.chips()) : KaisaShare{};
  std::vector<MemoryFootprint> out;
  for (const LayerWork& layer : layers) {
    MemoryFootprint& f = out.emplace_back();
    const LayerPosition position = positions[layer.layer_index];
    const int gradient_bits = p.for_gemm(Phase::kWgrad, position).output.total_bits();
    f.weights = bytes(layer.parameters * copies, p.update.weights.total_bits());
    f.gradients = bytes(layer.parameters, gradient_bits);
    f.optimizer_state = bytes(layer.parameters * state * copies, p.update.optimizer_state.total_bits());
    // K-FAC's factors and their inverses are d x d matrices, one per GEMM of
    // each phase (the inverse phase's GEMMs have the inverses' shapes).
    f.curvature = bytes(layer.phase(Phase::kCurvature).output_elements(),
                        p.for_gemm(Phase::kCurvature, position).output.total_bits());
    // KAISA keeps a layer's inverses on its gradient workers only.
    if (kaisa.preconditions.empty() || kaisa.preconditions[layer.layer_index])
      f.curvature += bytes(layer.phase(Phase::kInverse).output_elements(),
                           p.for_gemm(Phase::kInverse, position).output.total_bits());
    if (adahessian) f.curvature += bytes(layer.parameters, gradient_bits);
    if (!layer.fused_into)
      f.activations = bytes(layer.output_elements, p.for_gemm(Phase::kFwd, position).output.total_bits());
  }
  return out;
}

MemoryFootprint& MemoryFootprint::operator+=(const MemoryFootprint& o) {
  weights += o.weights;
  gradients += o.gradients;
  optimizer_state += o.optimizer_state;
  curvature += o.curvature;
  activations += o.activations;
  return *this;
}

MemoryFootprint memory_footprint(const AcceleratorConfig& config, const std::vector<LayerWork>& layers) {
  MemoryFootprint total;
  for (const MemoryFootprint& layer : footprint_by_layer(config, layers)) total += layer;
  return total;
}

SpillPlan plan_spill(const AcceleratorConfig& config, const std::vector<LayerWork>& layers,
                     const MemoryFootprint& footprint) {
  SpillPlan plan;
  const auto capacity = config.chip.dram.capacity_bytes();
  if (!config.spill_to_host || !capacity || footprint.total() <= *capacity) return plan;
  const Optimizer& optimizer = config.precision.update.optimizer;
  const double copies = weight_copies_per_chip(optimizer, config.chips());
  const auto* esgd = std::get_if<Esgd>(&optimizer);
  const double steps_per_turn = esgd ? esgd->steps_per_generation : 1;
  // Per layer: ESGD's idle copies (one individual's comes in and one goes
  // out per turn of K steps), then what the step uses every time (one copy's
  // state, the curvature); the idle copies are spilled first.
  std::vector<double> every_step, idle, one_copy;
  double every_total = 0, idle_total = 0;
  for (const MemoryFootprint& f : footprint_by_layer(config, layers)) {
    one_copy.push_back(static_cast<double>(f.weights + f.optimizer_state) / copies);
    every_step.push_back(static_cast<double>(f.optimizer_state) / copies + static_cast<double>(f.curvature));
    idle.push_back(one_copy.back() * (copies - 1));
    every_total += every_step.back();
    idle_total += idle.back();
  }
  const double spillable = every_total + idle_total;
  const double excess = static_cast<double>(footprint.total() - *capacity);
  if (excess > spillable)
    throw InputError("", "", "the training step needs " + describe(footprint) + " of DRAM per chip; with all " +
                                 gib(static_cast<std::uint64_t>(spillable)) +
                                 " GiB of optimizer state, curvature and copies in host memory the rest still "
                                 "exceeds the " + gib(*capacity) + " GiB at " +
                                 config.chip_location("/dram/capacity_gib") + "; reduce the batch");
  // The same share of each layer's idle copies lives in host memory (the
  // individual whose turn comes is there with that chance), then the same
  // share of what every step uses.
  const double idle_share = idle_total > 0 ? std::min(1.0, excess / idle_total) : 0;
  const double every_share = every_total > 0 ? std::max(0.0, excess - idle_total) / every_total : 0;
  plan.spilled_bytes = static_cast<std::uint64_t>(std::ceil(excess));
  for (std::size_t i = 0; i < layers.size(); ++i)
    plan.bytes_per_layer.push_back(static_cast<std::uint64_t>(
        std::ceil(idle_share * one_copy[i] / steps_per_turn + every_share * every_step[i])));
  return plan;
}

std::uint64_t SpillPlan::moved_per_step() const {
  std::uint64_t total = 0;
  for (const std::uint64_t b : bytes_per_layer) total += b;
  return total;
}

std::string describe(const MemoryFootprint& f) {
  return gib(f.total()) + " GiB (weights " + gib(f.weights) + ", gradients " + gib(f.gradients) +
         ", optimizer state " + gib(f.optimizer_state) + ", curvature " + gib(f.curvature) + ", activations " +
         gib(f.activations) + ")";
}

void check_memory_capacity(const AcceleratorConfig& config, const MemoryFootprint& footprint) {
  const auto capacity = config.chip.dram.capacity_bytes();
  if (!capacity || footprint.total() <= *capacity || config.spill_to_host) return;
  throw InputError("", "", "the training step needs " + describe(footprint) + " of DRAM per chip, " +
                               gib(footprint.total() - *capacity) + " GiB more than the " +
                               gib(*capacity) + " GiB at " + config.chip_location("/dram/capacity_gib") +
                               "; reduce the batch" + (config.chips() > 1 ? "" : " or spread it over a `system` of chips") +
                               ", choose formats or an optimizer that keep less, or allow `spill_to_host`");
}

}  // namespace lpt
