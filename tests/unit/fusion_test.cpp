#include "sim/fusion.hpp"

#include <algorithm>

#include <gtest/gtest.h>

#include "sim/mapping.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

// conv (8 -> 16 channels, 3x3, 10x10 images) followed by element-wise layers
// over its output, batch 2: E = 2 * 16 * 10 * 10 elements.
constexpr std::int64_t kBatch = 2, kChannels = 16, kElements = kBatch * kChannels * 10 * 10;

Layer conv(const std::string& name) {
  ConvLayer c;
  c.in_channels = 8, c.in_h = 10, c.in_w = 10, c.out_channels = kChannels;
  c.kernel_h = c.kernel_w = 3, c.pad_h = c.pad_w = 1;
  return {name, "conv2d", c};
}

Layer elementwise(const std::string& name, ElementwiseOp op) {
  return {name, "elementwise", ElementwiseLayer{op, {kChannels, 10, 10}}};
}

Trace network(std::vector<Layer> layers) {
  // A leading layer gives the conv a data-gradient GEMM.
  layers.insert(layers.begin(), elementwise("input", ElementwiseOp::kRelu));
  return Trace{"n", "s", kBatch, std::move(layers)};
}

std::vector<LayerWork> expand(const Trace& t, Fusion fusion) {
  return expand_training(t, {SgdMomentum{}, fusion});
}

TEST(Fusion, ModesByName) {
  for (const Fusion f : {Fusion::kNone, Fusion::kEpilogue, Fusion::kFull})
    EXPECT_EQ(fusion_from_string(to_string(f)), f);
  EXPECT_FALSE(fusion_from_string("fused"));
}

TEST(Fusion, NoneLeavesEveryLayerItsOwnWork) {
  const Trace t = network({conv("c"), elementwise("bn", ElementwiseOp::kBatchNorm),
                           elementwise("relu", ElementwiseOp::kRelu)});
  const auto none = expand(t, Fusion::kNone);
  for (const LayerWork& w : none) EXPECT_FALSE(w.fused_into) << w.name;
  for (const Phase p : {Phase::kFwd, Phase::kBwd, Phase::kWgrad})
    for (const GemmWork& g : none[1].phase(p).gemms) EXPECT_TRUE(g.fused.empty()) << g.label;
  // Unfused batch-norm is a two-pass kernel: reads its input twice, writes once.
  EXPECT_EQ(none[2].phase(Phase::kFwd).elementwise.read_elements, 2 * kElements);
  EXPECT_EQ(none[2].phase(Phase::kFwd).elementwise.write_elements, kElements);
}

TEST(Fusion, FullFusesBatchNormAndReluIntoTheConvolution) {
  const Trace t = network({conv("c"), elementwise("bn", ElementwiseOp::kBatchNorm),
                           elementwise("relu", ElementwiseOp::kRelu)});
  const auto none = expand(t, Fusion::kNone);
  const auto full = expand(t, Fusion::kFull);
  EXPECT_EQ(full[2].fused_into, 1u);
  EXPECT_EQ(full[3].fused_into, 1u);
  for (const std::size_t j : {2u, 3u})
    for (const Phase p : {Phase::kFwd, Phase::kBwd, Phase::kWgrad}) EXPECT_TRUE(full[j].phase(p).empty());
  // The scale and shift are still updated.
  EXPECT_FALSE(full[2].phase(Phase::kUpdate).empty());

  // Forward: the operations of both, on the conv's output tiles; no tensor of
  // their own moves.
  const ElementwiseWork& fwd = full[1].phase(Phase::kFwd).gemms.front().fused;
  EXPECT_EQ(fwd.ops.alu, none[2].phase(Phase::kFwd).elementwise.ops.alu +
                             none[3].phase(Phase::kFwd).elementwise.ops.alu);
  EXPECT_EQ(fwd.ops.div_sqrt, static_cast<std::uint64_t>(kChannels));  // one rsqrt per channel
  EXPECT_EQ(fwd.read_elements, 0);
  EXPECT_EQ(fwd.write_elements, 0);

  // Backward: in the data gradient's input stage, which reads the stored conv
  // output once and stores the gradient at it for the weight gradient; the
  // norm's scale/shift gradients (2 parameters per channel) are written.
  const ElementwiseWork& bwd = full[1].phase(Phase::kBwd).gemms.front().fused;
  EXPECT_EQ(bwd.read_elements, kElements);
  EXPECT_EQ(bwd.write_elements, kElements + 2 * kChannels);
  EXPECT_EQ(bwd.ops.alu, none[2].phase(Phase::kBwd).elementwise.ops.alu +
                             none[3].phase(Phase::kBwd).elementwise.ops.alu +
                             none[2].phase(Phase::kWgrad).elementwise.ops.alu);
  EXPECT_TRUE(full[1].phase(Phase::kWgrad).gemms.front().fused.empty());
}

TEST(Fusion, EpilogueFusesOnlyActivationsRightAfterTheGemm) {
  const auto bn_first = expand(network({conv("c"), elementwise("bn", ElementwiseOp::kBatchNorm),
                                        elementwise("relu", ElementwiseOp::kRelu)}),
                               Fusion::kEpilogue);
  EXPECT_FALSE(bn_first[2].fused_into);
  EXPECT_FALSE(bn_first[3].fused_into);  // the batch-norm between them stops the chain

  const auto relu_first = expand(network({conv("c"), elementwise("relu", ElementwiseOp::kRelu),
                                          elementwise("bn", ElementwiseOp::kBatchNorm)}),
                                 Fusion::kEpilogue);
  EXPECT_EQ(relu_first[2].fused_into, 1u);
  EXPECT_FALSE(relu_first[3].fused_into);
  // ReLU's backward needs its input: one read of the stored conv output.
  EXPECT_EQ(relu_first[1].phase(Phase::kBwd).gemms.front().fused.read_elements, kElements);
}

TEST(Fusion, ResidualAddReadsTheSkipAndStoresTheSum) {
  const auto full = expand(network({conv("c"), elementwise("bn", ElementwiseOp::kBatchNorm),
                                    elementwise("add", ElementwiseOp::kAdd),
                                    elementwise("relu", ElementwiseOp::kRelu)}),
                           Fusion::kFull);
  EXPECT_EQ(full[4].fused_into, 1u);
  const ElementwiseWork& fwd = full[1].phase(Phase::kFwd).gemms.front().fused;
  EXPECT_EQ(fwd.read_elements, kElements);
  EXPECT_EQ(fwd.write_elements, kElements);
}

TEST(Fusion, AResidualAddsBackwardAliasesTheGradient) {
  // After a pooling layer, the add does not fuse, but its backward passes the
  // gradient on without a copy once fusion is on.
  const Trace t{"n", "s", kBatch,
                {elementwise("a", ElementwiseOp::kRelu), {"pool", "pool", PoolLayer{PoolMode::kMax, 4, 8, 8, 2, 2, 2, 2}},
                 {"add", "eltwise", ElementwiseLayer{ElementwiseOp::kAdd, {4, 4, 4}}}}};
  EXPECT_FALSE(expand(t, Fusion::kNone)[2].phase(Phase::kBwd).empty());
  EXPECT_TRUE(expand(t, Fusion::kEpilogue)[2].phase(Phase::kBwd).empty());
  EXPECT_FALSE(expand(t, Fusion::kEpilogue)[2].fused_into);
}

TEST(Fusion, ADifferentShapeEndsTheChain) {
  const Trace t = network({conv("c"), {"small", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {kChannels, 5, 5}}}});
  EXPECT_FALSE(expand(t, Fusion::kFull)[2].fused_into);
}

core::ChipParams tiny_chip() {
  return load_config(test_support::source_dir() / "configs/tiny.json").chip;
}

// DRAM bytes moved by the steps of `layers` (all of them when empty).
std::uint64_t dram_bytes(const MappedProgram& p, const std::vector<std::size_t>& layers = {}) {
  std::uint64_t bytes = 0;
  for (std::size_t s = 0; s < p.program.steps.size(); ++s) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), p.steps[s].layer) == layers.end())
      continue;
    for (const auto& tasks : p.program.steps[s].tasks_per_core)
      for (const auto& task : tasks) {
        for (const auto& l : task.loads) bytes += l.bytes;
        for (const auto& st : task.stores) bytes += st.bytes;
      }
  }
  return bytes;
}

TEST(Fusion, FusedBatchNormReluMovesFiveTensorsLessForward) {
  AcceleratorConfig config = load_config(test_support::source_dir() / "configs/tiny.json");
  const Trace t = network({conv("c"), elementwise("bn", ElementwiseOp::kBatchNorm),
                           elementwise("relu", ElementwiseOp::kRelu)});
  const auto none = map_training(expand(t, Fusion::kNone), config, {Phase::kFwd});
  const auto full = map_training(expand(t, Fusion::kFull), config, {Phase::kFwd});
  // Unfused: batch-norm reads twice and writes once, ReLU reads and writes
  // once: 5 tensors of E 16-bit elements. Fused, they have no steps, and the
  // convolution's fused work moves nothing (it moves what its tiling needs).
  const std::uint64_t bits = config.precision.gemm[0]->output.total_bits();
  EXPECT_EQ(dram_bytes(none, {2, 3}), 5 * kElements * bits / 8);
  EXPECT_EQ(full.program.steps.size(), 2u);  // the leading layer and the conv
  const ElementwiseWork& fused = expand(t, Fusion::kFull)[1].phase(Phase::kFwd).gemms.front().fused;
  EXPECT_EQ(fused.read_elements + fused.write_elements, 0);
}

TEST(Fusion, WorkFusedIntoARecurrenceIsSharedByItsTimeSteps) {
  AcceleratorConfig config = load_config(test_support::source_dir() / "configs/tiny.json");
  const Trace t{"n", "s", 2,
                {{"lstm", "lstm", LstmLayer{8, 16, 7, false, true}},
                 {"drop", "dropout", ElementwiseLayer{ElementwiseOp::kDropout, {7, 16}}}}};
  const auto none = expand(t, Fusion::kNone);
  const auto full = expand(t, Fusion::kFull);
  ASSERT_EQ(full[1].fused_into, 0u);
  const MappedProgram mapped = map_training(full, config, {Phase::kFwd});
  std::uint64_t alu = 0;
  for (const auto& step : mapped.program.steps)
    for (const auto& tasks : step.tasks_per_core)
      for (const auto& task : tasks) alu += task.sfu.alu;
  // The LSTM's own gate arithmetic and the dropout's, once each.
  EXPECT_EQ(alu, none[0].phase(Phase::kFwd).elementwise.ops.alu + none[1].phase(Phase::kFwd).elementwise.ops.alu);
}

TEST(Fusion, SpreadWorkAddsUpToItsTotals) {
  const core::ChipParams chip = tiny_chip();
  GemmWork g{"Y", 1000, 64, 300, 1, 1, Phase::kFwd};
  GemmFormats f;
  f.macs_per_pe_per_cycle = chip.core.mac_array.macs_per_pe_per_cycle.begin()->second;
  core::Step step = map_gemm(chip, g, f, choose_gemm_tiling(chip, g, f), "s");
  const std::uint64_t before = [&] {
    std::uint64_t b = 0;
    for (const auto& tasks : step.tasks_per_core)
      for (const auto& task : tasks) for (const auto& l : task.loads) b += l.bytes;
    return b;
  }();
  ElementwiseWork w;
  w.read_elements = 12345, w.write_elements = 999, w.ops.alu = 77777, w.ops.exp = 3;
  spread_fused_work(step, w, 16);
  std::uint64_t loaded = 0, stored = 0, alu = 0, exp = 0;
  for (const auto& tasks : step.tasks_per_core)
    for (const auto& task : tasks) {
      for (const auto& l : task.loads) loaded += l.bytes;
      for (const auto& s : task.stores) stored += s.bytes;
      alu += task.sfu.alu, exp += task.sfu.exp;
    }
  EXPECT_EQ(loaded - before, 12345u * 2);
  EXPECT_EQ(stored, 1000u * 64 * 2 + 999 * 2);
  EXPECT_EQ(alu, 77777u);
  EXPECT_EQ(exp, 3u);
}

}  // namespace
}  // namespace lpt
