// The datapath each GEMM of the workload runs on, resolved from the config in
// one place: operand formats by phase and layer position (the precision
// policy), the accumulator with its chunk length and rounding (policy and
// chip), the stochastic rounders' random bits (chip), the output conversion and
// the loss scale of error-gradient operands. The mapper sizes tiles with it,
// the report names it, and the fidelity pass runs it bit-exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/core/program.hpp"
#include "models/numerics/datapath.hpp"
#include "sim/config.hpp"
#include "sim/workload.hpp"

namespace lpt {

// What an operand of a GEMM holds, which sets both its defaults for the
// fidelity pass and whether the loss scale multiplies it.
enum class TensorRole { kActivation, kWeight, kGradient };

struct GemmDatapath {
  num::DatapathConfig numerics;  // formats, chunking, stage roundings, random bits, output
  TensorRole a_role = TensorRole::kActivation;
  TensorRole b_role = TensorRole::kWeight;
  LossScale loss_scale;          // applies to the gradient operand, if there is one
  int macs_per_pe_per_cycle = 1; // the array's rate: the lower of its operand formats'

  int a_bits() const { return numerics.operand_a.total_bits(); }
  int b_bits() const { return numerics.operand_b.total_bits(); }
  int accumulator_bits() const { return numerics.accumulator.total_bits(); }
  int output_bits() const { return numerics.output ? numerics.output->total_bits() : accumulator_bits(); }
  // e.g. "hfp8_e5m2 x hfp8_e4m3 -> dlfloat16 (chunk 64)"
  std::string label() const;
};

// The operands' roles: weights where the GEMM reads the layer's weights,
// error gradients for A of data gradients and B of weight gradients (GemmWork::
// formats_of) and where an operand is the gradient at the layer's output,
// activations otherwise.
TensorRole a_role(const GemmWork& gemm);
TensorRole b_role(const GemmWork& gemm);

// Where each layer sits among the layers with GEMMs (first and last may have
// their own formats); layers without GEMMs are kMiddle.
std::vector<LayerPosition> layer_positions(const std::vector<LayerWork>& layers);

// The numerics of a GEMM of these formats on this chip: chunk length from the
// accumulator, stochastic stages as wide as the chip's rounders.
num::DatapathConfig gemm_numerics(const GemmPrecision& precision, const core::ChipParams& chip, std::uint64_t seed);

// The one resolution of a GEMM's datapath from the config (validated by
// parse_config: operand formats the array runs, accumulators it offers).
GemmDatapath resolve_gemm_datapath(const AcceleratorConfig& config, const GemmWork& gemm, LayerPosition position);

// The program's view of a datapath, for counting MACs by datapath.
core::Datapath program_datapath(const GemmDatapath& datapath);

}  // namespace lpt
