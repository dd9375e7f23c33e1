#include "sim/workload.hpp"

#include "sim/fusion.hpp"

#include "models/common/checked_math.hpp"

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
  // The data gradient is a transposed convolution: one row per input pixel,
  // the 128 * 9 taps over a stride of 2 x 2 reach 288 per pixel on average.
  expect_dims(only_gemm(w, Phase::kBwd), 8 * 56 * 56, 64, 288);
  expect_dims(only_gemm(w, Phase::kWgrad), k, n, m);
  EXPECT_EQ(w.phase(Phase::kFwd).macs(), w.phase(Phase::kBwd).macs());
  EXPECT_EQ(w.phase(Phase::kFwd).macs(), w.phase(Phase::kWgrad).macs());
  EXPECT_EQ(w.phase(Phase::kUpdate).elementwise.read_elements, 3 * w.parameters);
  EXPECT_EQ(w.phase(Phase::kUpdate).elementwise.rounded_elements, 2 * w.parameters);

  // Each GEMM reads its A operand through the convolution's window.
  const ConvWindow input{64, 56, 56, 28, 28, 3, 3, 2, 2, false, k, true};
  EXPECT_EQ(only_gemm(w, Phase::kFwd).a_window, input);
  ConvWindow transposed = input;
  transposed.pixels_along_rows = false;
  EXPECT_EQ(only_gemm(w, Phase::kWgrad).a_window, transposed);
  const ConvWindow gradient{128, 28, 28, 56, 56, 3, 3, 2, 2, true, 288, true};
  EXPECT_EQ(only_gemm(w, Phase::kBwd).a_window, gradient);
}

TEST(Workload, DilationWidensTheWindowNotTheReduction) {
  ConvLayer c;
  c.in_channels = 8, c.in_h = 20, c.in_w = 20, c.out_channels = 8;
  c.kernel_h = c.kernel_w = 3, c.dilation_h = c.dilation_w = 2, c.pad_h = c.pad_w = 2;
  const auto work = expand_training(one_layer(1, {"c", "conv2d", c}), {});
  const GemmWork& fwd = only_gemm(work[1], Phase::kFwd);
  EXPECT_EQ(fwd.k, 8 * 9);
  ASSERT_TRUE(fwd.a_window);
  EXPECT_EQ(fwd.a_window->kernel_h, 5);
  EXPECT_EQ(fwd.a_window->kernel_w, 5);
}

TEST(Workload, DepthwiseConvIsOneSmallGemmPerChannel) {
  ConvLayer c;
  c.in_channels = 32, c.in_h = 10, c.in_w = 10, c.out_channels = 32, c.groups = 32;
  c.kernel_h = c.kernel_w = 3, c.depthwise = true;
  const auto work = expand_training(one_layer(2, {"d", "depthwise_conv2d", c}), {});
  expect_dims(only_gemm(work[1], Phase::kFwd), 2 * 8 * 8, 1, 9, 32);
  // Unpadded: the transposed convolution computes every input pixel with all
  // 9 taps, including the zeros around dY (the border pixels of dX).
  expect_dims(only_gemm(work[1], Phase::kBwd), 2 * 10 * 10, 1, 9, 32);
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
  const auto sgd = expand_training(t, {SgdMomentum{}});
  const auto adam = expand_training(t, {Adam{}});
  EXPECT_LT(sgd[1].phase(Phase::kUpdate).elementwise.read_elements,
            adam[1].phase(Phase::kUpdate).elementwise.read_elements);
  EXPECT_GT(adam[1].phase(Phase::kUpdate).elementwise.ops.div_sqrt, 0u);
}

}  // namespace
}  // namespace lpt

namespace lpt {
namespace {

std::string expansion_error(const Trace& trace) {
  try {
    expand_training(trace, {});
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expanded without error";
  return {};
}

Layer huge_conv() {
  ConvLayer c;
  c.in_channels = c.out_channels = std::int64_t{1} << 31;
  c.in_h = c.in_w = 4;
  c.kernel_h = c.kernel_w = 4;  // 2^66 weights
  return {"c", "conv2d", c, "/layers/1"};
}

TEST(WorkloadLimits, OverflowingCountsNameTheLayerFileAndPath) {
  Trace trace = one_layer(1, huge_conv());
  trace.file = "net.json";
  const std::string message = expansion_error(trace);
  EXPECT_NE(message.find("net.json: /layers/1: layer \"c\""), std::string::npos) << message;
  EXPECT_NE(message.find("overflows 64-bit"), std::string::npos) << message;
}

TEST(WorkloadLimits, WorkAboveTheMacLimitIsAnErrorStatingTheLimit) {
  LinearLayer l;
  l.in_features = l.out_features = l.tokens = 65536;  // 2^48 MACs per sample
  const std::string message = expansion_error(one_layer(8, {"l", "linear", l, "/layers/1"}));
  EXPECT_NE(message.find("the limit is 2^50"), std::string::npos) << message;
  EXPECT_NE(message.find("fwd phase at batch 8"), std::string::npos) << message;
  EXPECT_NO_THROW(expand_training(one_layer(1, {"l", "linear", l, "/layers/1"}), {}));
}

TEST(WorkloadLimits, ElementwiseWorkAboveTheLimitIsAnError) {
  ElementwiseLayer e{ElementwiseOp::kRelu, {std::int64_t{1} << 31, std::int64_t{1} << 20}};
  const std::string message = expansion_error(one_layer(1, {"r", "activation", e, "/layers/1"}));
  EXPECT_NE(message.find("element operations"), std::string::npos) << message;
}

TEST(WorkloadLimits, ParameterCountsAreChecked) {
  EXPECT_THROW(huge_conv().parameters(), CountOverflow);
  LstmLayer l;
  l.input_size = l.hidden_size = std::int64_t{1} << 31;
  l.seq_len = 1;
  EXPECT_THROW((Layer{"l", "lstm", l}.parameters()), CountOverflow);  // 2^33 gates x 2^32 inputs
  l.input_size = l.hidden_size = std::int64_t{1} << 20;
  EXPECT_EQ((Layer{"l", "lstm", l}.parameters()), 4 * (std::int64_t{1} << 41) + 8 * (std::int64_t{1} << 20));
  ElementwiseLayer e{ElementwiseOp::kAdd, std::vector<std::int64_t>(8, std::int64_t{1} << 31)};
  EXPECT_THROW(e.elements(), CountOverflow);
}

}  // namespace
}  // namespace lpt

namespace lpt {
namespace {

TEST(WorkloadInference, BatchNormFoldsAndDropoutGoes) {
  ConvLayer c;
  c.in_channels = 8, c.in_h = 8, c.in_w = 8, c.out_channels = 8, c.kernel_h = c.kernel_w = 3;
  c.pad_h = c.pad_w = 1;
  const Trace t{"n", "s", 1,
                {{"conv", "conv2d", c},
                 {"bn", "batchnorm", ElementwiseLayer{ElementwiseOp::kBatchNorm, {8, 8, 8}}},
                 {"relu", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {8, 8, 8}}},
                 {"drop", "dropout", ElementwiseLayer{ElementwiseOp::kDropout, {8, 8, 8}}},
                 {"pool", "pool", PoolLayer{PoolMode::kMax, 8, 8, 8, 2, 2, 2, 2}},
                 {"bn2", "batchnorm", ElementwiseLayer{ElementwiseOp::kBatchNorm, {8, 4, 4}}}}};
  const auto layers = expand_inference(t, {SgdMomentum{}, Fusion::kEpilogue});
  for (const LayerWork& w : layers)
    for (const Phase p : {Phase::kBwd, Phase::kWgrad, Phase::kUpdate}) EXPECT_TRUE(w.phase(p).empty()) << w.name;
  EXPECT_EQ(layers[1].fused_into, 0u);  // folded into the convolution's weights
  EXPECT_TRUE(layers[1].phase(Phase::kFwd).empty());
  // With the batch-norm folded, the ReLU follows the convolution directly and
  // fuses into its epilogue.
  EXPECT_EQ(layers[2].fused_into, 0u);
  EXPECT_FALSE(layers[0].phase(Phase::kFwd).gemms.front().fused.empty());
  EXPECT_TRUE(layers[3].phase(Phase::kFwd).empty());  // dropout removed
  EXPECT_FALSE(layers[3].fused_into);
  // A batch-norm after no GEMM stays, as one scale and shift per element.
  const ElementwiseWork& bn2 = layers[5].phase(Phase::kFwd).elementwise;
  EXPECT_EQ(bn2.read_elements, 8 * 4 * 4);
  EXPECT_EQ(bn2.write_elements, 8 * 4 * 4);
  EXPECT_EQ(bn2.ops.alu, 8u * 4 * 4);
}

}  // namespace
}  // namespace lpt
