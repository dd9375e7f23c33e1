#include "sim/gemm_datapath.hpp"

#include <algorithm>

namespace lpt {

std::string GemmDatapath::label() const {
  std::string s = numerics.operand_a.name + " x " + numerics.operand_b.name + " -> " + numerics.accumulator.name;
  if (numerics.chunk_length > 1) s += " (chunk " + std::to_string(numerics.chunk_length) + ")";
  if (numerics.output && numerics.output->name != numerics.accumulator.name) s += " -> " + numerics.output->name;
  return s;
}

TensorRole a_role(const GemmWork& gemm) {
  if (gemm.a_from == OperandSource::kWeights) return TensorRole::kWeight;
  return gemm.formats_of == Phase::kBwd || gemm.a_from == OperandSource::kOutputGradient ? TensorRole::kGradient
                                                                                         : TensorRole::kActivation;
}

TensorRole b_role(const GemmWork& gemm) {
  if (gemm.b_from == OperandSource::kWeights) return TensorRole::kWeight;
  return gemm.formats_of == Phase::kWgrad || gemm.b_from == OperandSource::kOutputGradient ? TensorRole::kGradient
                                                                                           : TensorRole::kActivation;
}

std::vector<LayerPosition> layer_positions(const std::vector<LayerWork>& layers) {
  std::vector<LayerPosition> position(layers.size(), LayerPosition::kMiddle);
  std::vector<std::size_t> gemm_layers;
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (!layers[i].phase(Phase::kFwd).gemms.empty()) gemm_layers.push_back(i);
  if (!gemm_layers.empty()) {
    position[gemm_layers.back()] = LayerPosition::kLast;
    position[gemm_layers.front()] = LayerPosition::kFirst;
  }
  return position;
}

num::DatapathConfig gemm_numerics(const GemmPrecision& p, const core::ChipParams& chip, std::uint64_t seed) {
  num::DatapathConfig n;
  n.operand_a = p.a;
  n.operand_b = p.b;
  n.accumulator = p.accumulator;
  n.chunk_length = chip.core.accumulator.chunk_length;
  n.inner_rounding = p.accumulation_rounding;
  n.outer_rounding = p.accumulation_rounding;
  n.output = p.output;
  n.output_rounding = p.output_rounding;
  n.stochastic_bits = chip.core.rounder.random_bits;
  n.seed = seed;
  return n;
}

GemmDatapath resolve_gemm_datapath(const AcceleratorConfig& config, const GemmWork& gemm, LayerPosition position) {
  const GemmPrecision& p = config.precision.for_gemm(gemm.formats_of, position);
  GemmDatapath d;
  d.numerics = gemm_numerics(p, config.chip, config.fidelity.seed);
  d.a_role = a_role(gemm);
  d.b_role = b_role(gemm);
  d.loss_scale = config.precision.loss_scale;
  const auto& rates = config.chip.core.mac_array.macs_per_pe_per_cycle;
  d.macs_per_pe_per_cycle = std::min(rates.at(p.a.name), rates.at(p.b.name));
  return d;
}

core::Datapath program_datapath(const GemmDatapath& d) {
  return {d.numerics.operand_a.name, d.numerics.operand_b.name, d.numerics.accumulator.name,
          d.a_bits(), d.b_bits(), d.macs_per_pe_per_cycle};
}

}  // namespace lpt
