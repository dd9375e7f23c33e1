#include "sim/gemm_datapath.hpp"

#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

using test_support::source_dir;

GemmWork gemm(Phase formats_of, OperandSource a, OperandSource b) {
  GemmWork g;
  g.label = "g";
  g.m = g.n = g.k = 8;
  g.formats_of = formats_of;
  g.a_from = a;
  g.b_from = b;
  return g;
}

TEST(GemmDatapath, OperandRolesFollowThePhaseAndTheWeights) {
  const auto fwd = gemm(Phase::kFwd, OperandSource::kLayerInput, OperandSource::kWeights);
  EXPECT_EQ(a_role(fwd), TensorRole::kActivation);
  EXPECT_EQ(b_role(fwd), TensorRole::kWeight);
  const auto bwd = gemm(Phase::kBwd, OperandSource::kOutputGradient, OperandSource::kWeights);
  EXPECT_EQ(a_role(bwd), TensorRole::kGradient);
  EXPECT_EQ(b_role(bwd), TensorRole::kWeight);
  const auto wgrad = gemm(Phase::kWgrad, OperandSource::kLayerInput, OperandSource::kOutputGradient);
  EXPECT_EQ(a_role(wgrad), TensorRole::kActivation);
  EXPECT_EQ(b_role(wgrad), TensorRole::kGradient);
  // A matmul's dA = dC·Bᵀ: B is an activation; its dB = Aᵀ·dC has weight-gradient formats.
  const auto d_a = gemm(Phase::kBwd, OperandSource::kOutputGradient, OperandSource::kElsewhere);
  EXPECT_EQ(b_role(d_a), TensorRole::kActivation);
  const auto d_b = gemm(Phase::kWgrad, OperandSource::kLayerInput, OperandSource::kOutputGradient);
  EXPECT_EQ(b_role(d_b), TensorRole::kGradient);
}

TEST(GemmDatapath, ResolvesFormatsChunkingRoundingAndRandomBitsFromTheConfig) {
  AcceleratorConfig config = load_config(source_dir() / "configs/tiny.json");
  config.precision.gemm[1]->accumulation_rounding = num::Rounding::kStochastic;
  const auto bwd = gemm(Phase::kBwd, OperandSource::kOutputGradient, OperandSource::kWeights);
  const GemmDatapath middle = resolve_gemm_datapath(config, bwd, LayerPosition::kMiddle);
  EXPECT_EQ(middle.numerics.operand_a.name, "hfp8_e5m2");
  EXPECT_EQ(middle.numerics.operand_b.name, "hfp8_e4m3");
  EXPECT_EQ(middle.numerics.accumulator.name, "dlfloat16");
  EXPECT_EQ(middle.numerics.chunk_length, config.chip.core.accumulator.chunk_length);
  EXPECT_EQ(middle.numerics.inner_rounding, num::Rounding::kStochastic);
  EXPECT_EQ(middle.numerics.outer_rounding, num::Rounding::kStochastic);
  EXPECT_EQ(middle.numerics.stochastic_bits, config.chip.core.rounder.random_bits);
  EXPECT_EQ(middle.a_role, TensorRole::kGradient);
  EXPECT_EQ(middle.macs_per_pe_per_cycle, std::min(config.chip.core.mac_array.macs_per_pe_per_cycle.at("hfp8_e5m2"),
                                                   config.chip.core.mac_array.macs_per_pe_per_cycle.at("hfp8_e4m3")));
  EXPECT_EQ(middle.label(), "hfp8_e5m2 x hfp8_e4m3 -> dlfloat16 (chunk 16)");
  // The first layer's own formats.
  const GemmDatapath first = resolve_gemm_datapath(config, bwd, LayerPosition::kFirst);
  EXPECT_EQ(first.numerics.operand_a.name, "dlfloat16");
  EXPECT_FALSE(first.numerics.inner_rounding);
  // The program's view names the same formats.
  const core::Datapath program = program_datapath(middle);
  EXPECT_EQ(program.a, "hfp8_e5m2");
  EXPECT_EQ(program.a_bits, 8);
  EXPECT_EQ(program.macs_per_pe_per_cycle, middle.macs_per_pe_per_cycle);
}

TEST(GemmDatapath, FirstAndLastPositionsAreTheOuterLayersWithGemms) {
  std::vector<LayerWork> layers(4);
  layers[1].phases[0].gemms.push_back(gemm(Phase::kFwd, OperandSource::kLayerInput, OperandSource::kWeights));
  layers[2].phases[0].gemms.push_back(gemm(Phase::kFwd, OperandSource::kLayerInput, OperandSource::kWeights));
  const auto positions = layer_positions(layers);
  EXPECT_EQ(positions, (std::vector<LayerPosition>{LayerPosition::kMiddle, LayerPosition::kFirst,
                                                   LayerPosition::kLast, LayerPosition::kMiddle}));
}

}  // namespace
}  // namespace lpt
