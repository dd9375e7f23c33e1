#include "sim/workload.hpp"

#include <gtest/gtest.h>

namespace lpt {
namespace {

Trace one_layer(std::int64_t batch, Layer layer, bool prepend = true) {
  Trace t{"n", "s", batch, {}};
  // A leading layer so that the layer under test is not the first one (which
  // gets no backward-data GEMM).
  if (prepend)
    t.layers.push_back({"first", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {1}}});
  t.layers.push_back(std::move(layer));
  return t;
}

const GemmWork& only_gemm(const LayerWork& w, Phase p) {
  EXPECT_EQ(w.phase(p).gemms.size(), 1u) << to_string(p);
  return w.phase(p).gemms.front();
}

void expect_dims(const GemmWork& g, std::int64_t m, std::int64_t n, std::int64_t k,
                 std::int64_t count = 1) {
  EXPECT_EQ(g.m, m) << g.label;
  EXPECT_EQ(g.n, n) << g.label;
  EXPECT_EQ(g.k, k) << g.label;
  EXPECT_EQ(g.count, count) << g.label;
}

TEST(Workload, ConvWithStrideAndPaddingIsImplicitGemm) {
  ConvLayer c;
  c.in_channels = 64, c.in_h = 56, c.in_w = 56, c.out_channels = 128;
  c.kernel_h = c.kernel_w = 3, c.stride_h = c.stride_w = 2, c.pad_h = c.pad_w = 1;
  const auto work = expand_training(one_layer(8, {"c", "conv2d", c}), {});
  const LayerWork& w = work[1];
  // Ho = floor((56 + 2 - 2 - 1) / 2) + 1 = 28
  const std::int64_t m = 8 * 28 * 28, k = 64 * 9, n = 128;
  expect_dims(only_gemm(w, Phase::kFwd), m, n, k);
  expect_dims(only_gemm(w, Phase::kBwd), m, k, n);
  expect_dims(only_gemm(w, Phase::kWgrad), k, n, m);
  EXPECT_EQ(w.phase(Phase::kFwd).macs(), w.phase(Phase::kBwd).macs());
  EXPECT_EQ(w.phase(Phase::kFwd).macs(), w.phase(Phase::kWgrad).macs());
  EXPECT_EQ(w.phase(Phase::kUpdate).elementwise.read_elements, 3 * w.parameters);
  EXPECT_EQ(w.phase(Phase::kUpdate).elementwise.rounded_elements, 2 * w.parameters);
}

TEST(Workload, DepthwiseConvIsOneSmallGemmPerChannel) {
  ConvLayer c;
  c.in_channels = 32, c.in_h = 10, c.in_w = 10, c.out_channels = 32, c.groups = 32;
  c.kernel_h = c.kernel_w = 3, c.depthwise = true;
  const auto work = expand_training(one_layer(2, {"d", "depthwise_conv2d", c}), {});
  expect_dims(only_gemm(work[1], Phase::kFwd), 2 * 8 * 8, 1, 9, 32);
  expect_dims(only_gemm(work[1], Phase::kWgrad), 9, 1, 2 * 8 * 8, 32);
}

TEST(Workload, LinearUsesTokensAndBiasGradient) {
  const auto work = expand_training(
      one_layer(4, {"fc", "linear", LinearLayer{768, 3072, 128, true}}), {});
  expect_dims(only_gemm(work[1], Phase::kFwd), 4 * 128, 3072, 768);
  expect_dims(only_gemm(work[1], Phase::kBwd), 4 * 128, 768, 3072);
  expect_dims(only_gemm(work[1], Phase::kWgrad), 768, 3072, 4 * 128);
  EXPECT_EQ(work[1].phase(Phase::kWgrad).elementwise.ops.alu, 4u * 128 * 3072);
  EXPECT_EQ(work[1].parameters, 768 * 3072 + 3072);
}

TEST(Workload, AttentionMatmulIsBatchedAndBothInputsGetGradients) {
  const auto work = expand_training(one_layer(2, {"qk", "matmul", MatmulLayer{128, 128, 64, 12}}), {});
  expect_dims(only_gemm(work[1], Phase::kFwd), 128, 128, 64, 24);
  const auto& bwd = work[1].phase(Phase::kBwd).gemms;
  ASSERT_EQ(bwd.size(), 2u);
  expect_dims(bwd[0], 128, 64, 128, 24);
  expect_dims(bwd[1], 64, 128, 128, 24);
  EXPECT_EQ(bwd[1].formats_of, Phase::kWgrad);
  EXPECT_TRUE(work[1].phase(Phase::kWgrad).gemms.empty());
  EXPECT_TRUE(work[1].phase(Phase::kUpdate).empty());
}

TEST(Workload, FirstLayerHasNoBackwardData) {
  ConvLayer c;
  c.in_channels = 3, c.in_h = 8, c.in_w = 8, c.out_channels = 4, c.kernel_h = c.kernel_w = 1;
  const auto work = expand_training(one_layer(1, {"c", "conv2d", c}, false), {});
  EXPECT_TRUE(work[0].phase(Phase::kBwd).empty());
  EXPECT_FALSE(work[0].phase(Phase::kWgrad).empty());
}

TEST(Workload, LstmRecurrenceIsSequential) {
  const auto work = expand_training(
      one_layer(4, {"l", "lstm", LstmLayer{40, 256, 100, true, true}}), {});
  const auto& fwd = work[1].phase(Phase::kFwd).gemms;
  ASSERT_EQ(fwd.size(), 2u);
  expect_dims(fwd[0], 400, 1024, 40, 2);
  expect_dims(fwd[1], 4, 1024, 256, 2);
  EXPECT_EQ(fwd[1].repeats, 100);
  EXPECT_EQ(work[1].parameters, 2 * (1024 * 40 + 1024 * 256 + 2 * 1024));
}

TEST(Workload, AdamReadsMoreThanSgd) {
  const Trace t = one_layer(1, {"fc", "linear", LinearLayer{10, 10, 1, false}});
  const auto sgd = expand_training(t, {Optimizer::kSgdMomentum});
  const auto adam = expand_training(t, {Optimizer::kAdam});
  EXPECT_LT(sgd[1].phase(Phase::kUpdate).elementwise.read_elements,
            adam[1].phase(Phase::kUpdate).elementwise.read_elements);
  EXPECT_GT(adam[1].phase(Phase::kUpdate).elementwise.ops.div_sqrt, 0u);
}

}  // namespace
}  // namespace lpt
