#include "sim/trace.hpp"

#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

#include <cstdlib>

namespace lpt {
namespace {

Trace parse(const char* text) { return parse_trace(JsonReader(nlohmann::json::parse(text), "")); }

// Expects parsing to fail at `path` with a message containing `fragment`.
void expect_error(const char* text, const std::string& path, const std::string& fragment) {
  try {
    parse(text);
    FAIL() << "accepted: " << text;
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), path) << e.what();
    EXPECT_NE(e.message().find(fragment), std::string::npos) << e.what();
  }
}

using lpt::test_support::source_dir;

TEST(Trace, ParsesConvWithDefaultsAndOutputSize) {
  const Trace t = parse(R"({"network": "n", "source": "s", "batch": 4, "layers": [
    {"name": "c", "type": "conv2d", "input": [3, 224, 224], "out_channels": 64,
     "kernel": [7, 7], "stride": [2, 2], "padding": [3, 3]}]})");
  ASSERT_EQ(t.layers.size(), 1u);
  const auto& c = std::get<ConvLayer>(t.layers[0].shape);
  EXPECT_EQ(c.out_h(), 112);
  EXPECT_EQ(c.out_w(), 112);
  EXPECT_EQ(c.groups, 1);
  EXPECT_EQ(c.dilation_h, 1);
  EXPECT_EQ(t.layers[0].parameters(), 64 * 3 * 7 * 7);
}

TEST(Trace, DepthwiseSetsGroups) {
  const Trace t = parse(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "d", "type": "depthwise_conv2d", "input": [32, 8, 8], "kernel": [3, 3],
     "padding": [1, 1], "channel_multiplier": 2}]})");
  const auto& c = std::get<ConvLayer>(t.layers[0].shape);
  EXPECT_EQ(c.groups, 32);
  EXPECT_EQ(c.out_channels, 64);
  EXPECT_EQ(t.layers[0].parameters(), 64 * 9);
}

TEST(Trace, ShippedTracesLoad) {
  const Trace t = load_trace((source_dir() / "traces/tiny-cnn.json").string());
  EXPECT_EQ(t.network, "tiny-cnn");
  EXPECT_EQ(t.layers.size(), 10u);
}

TEST(Trace, RoundTripsThroughJson) {
  const Trace t = load_trace((source_dir() / "traces/tiny-cnn.json").string());
  const nlohmann::json written = t;
  const Trace again = parse_trace(JsonReader(written, ""));
  const nlohmann::json rewritten = again;
  EXPECT_EQ(written, rewritten);
}

TEST(Trace, LayersMayGiveTheirTensorsValuesForTheFidelityPass) {
  const Trace t = parse(R"({"network": "n", "source": "s", "batch": 2, "layers": [
    {"name": "fc", "type": "linear", "in_features": 8, "out_features": 4,
     "fidelity": {"activations": {"distribution": "normal", "std": 0.5, "function": "gelu"},
                  "weights": {"npy": "fc_weight.npy"},
                  "gradients": {"distribution": "log_normal", "log2_median": -12, "log2_std": 2}}}]})");
  const LayerTensorValues& v = t.layers[0].fidelity;
  ASSERT_TRUE(v.activations && v.weights && v.gradients);
  EXPECT_EQ(v.activations->kind, TensorValues::Kind::kNormal);
  EXPECT_EQ(v.activations->std, 0.5);
  EXPECT_EQ(v.activations->function, Nonlinearity::kGelu);
  EXPECT_EQ(v.weights->kind, TensorValues::Kind::kFile);
  EXPECT_EQ(v.weights->file, "fc_weight.npy");
  EXPECT_EQ(v.gradients->log2_median, -12);
  // It survives the resolved trace's JSON.
  const nlohmann::json written = t;
  EXPECT_EQ(parse_trace(JsonReader(written, "")).layers[0].fidelity, v);
}

TEST(Trace, BadFidelityValuesAreErrorsAtTheirPath) {
  const auto layer = [](const std::string& fidelity) {
    return R"({"network": "n", "source": "s", "batch": 2, "layers": [
      {"name": "fc", "type": "linear", "in_features": 8, "out_features": 4, "fidelity": )" + fidelity + "}]}";
  };
  expect_error(layer(R"({"weights": {"distribution": "cauchy"}})").c_str(), "/layers/0/fidelity/weights/distribution",
               "expected one of normal|uniform|log_normal");
  expect_error(layer(R"({"weights": {"distribution": "uniform", "low": 1, "high": 1}})").c_str(),
               "/layers/0/fidelity/weights/high", "above low");
  expect_error(layer(R"({"biases": {"distribution": "normal"}})").c_str(), "/layers/0/fidelity/biases", "unknown key");
  expect_error(layer(R"({"activations": {"distribution": "normal", "function": "swish"}})").c_str(),
               "/layers/0/fidelity/activations/function", "expected one of none|relu");
  expect_error(R"({"network": "n", "source": "s", "batch": 2, "layers": [
      {"name": "r", "type": "activation", "function": "relu", "input": [4],
       "fidelity": {"activations": {"distribution": "normal"}}}]})",
               "/layers/0/fidelity", "only layers with GEMMs");
}

TEST(Trace, RejectsBadInput) {
  expect_error(R"({"network": "n", "source": "s", "batch": 0, "layers": []})", "/batch",
               "integer in [1,");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": []})", "/layers",
               "at least 1");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layerz": []})", "/layers",
               "missing required key");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "c", "type": "conv3d"}]})", "/layers/0/type", "expected one of");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "c", "type": "linear", "in_features": 4, "out_features": "8"}]})",
               "/layers/0/out_features", "got string");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "c", "type": "linear", "in_features": 4, "out_features": 8, "bais": true}]})",
               "/layers/0/bais", "unknown key");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "c", "type": "conv2d", "input": [6, 8, 8], "out_channels": 8, "kernel": [3, 3],
     "groups": 4}]})", "/layers/0/groups", "must divide");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "c", "type": "conv2d", "input": [3, 2, 2], "out_channels": 8, "kernel": [5, 5]}]})",
               "/layers/0/kernel", "larger than");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "c", "type": "conv2d", "input": [3, 8], "out_channels": 8, "kernel": [1, 1]}]})",
               "/layers/0/input", "array of 3");
  expect_error(R"({"network": "n", "source": "s", "batch": 1, "layers": [
    {"name": "a", "type": "softmax", "input": [4]}, {"name": "a", "type": "softmax", "input": [4]}]})",
               "/layers/1/name", "duplicate");
}

TEST(Trace, FileErrorsNameTheFile) {
  try {
    load_trace("/nonexistent/trace.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "/nonexistent/trace.json");
  }
}

}  // namespace
}  // namespace lpt
