// Layer traces: a network's layers with per-sample shapes (docs/trace-format.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "sim/tensor_values.hpp"

namespace lpt {

struct ConvLayer {
  std::int64_t in_channels = 0, in_h = 0, in_w = 0;
  std::int64_t out_channels = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
  bool bias = false;
  bool depthwise = false;  // written as depthwise_conv2d (groups == in_channels)

  std::int64_t out_h() const;
  std::int64_t out_w() const;
};

struct LinearLayer {
  std::int64_t in_features = 0, out_features = 0;
  std::int64_t tokens = 1;  // rows per sample
  bool bias = false;
};

// `count` independent (m x k)·(k x n) products per sample, without weights.
struct MatmulLayer {
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t count = 1;
};

struct LstmLayer {
  std::int64_t input_size = 0, hidden_size = 0, seq_len = 0;
  bool bidirectional = false;
  bool bias = true;
  std::int64_t directions() const { return bidirectional ? 2 : 1; }
};

struct EmbeddingLayer {
  std::int64_t num_embeddings = 0, dim = 0, tokens = 0;
};

enum class PoolMode { kMax, kAvg };

struct PoolLayer {
  PoolMode mode = PoolMode::kMax;
  std::int64_t channels = 0, in_h = 0, in_w = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  bool global = false;

  std::int64_t out_h() const;
  std::int64_t out_w() const;
};

enum class ElementwiseOp {
  kRelu, kRelu6, kGelu, kTanh, kSigmoid, kSilu, kHardswish,  // activation functions
  kAdd, kMul,                                                 // eltwise
  kBatchNorm, kLayerNorm, kSoftmax, kDropout,
};

struct ElementwiseLayer {
  ElementwiseOp op = ElementwiseOp::kRelu;
  std::vector<std::int64_t> shape;  // per sample

  std::int64_t elements() const;  // throws CountOverflow beyond 64 bits
  std::int64_t last_dim() const { return shape.back(); }
};

using LayerShape = std::variant<ConvLayer, LinearLayer, MatmulLayer, LstmLayer, EmbeddingLayer,
                                PoolLayer, ElementwiseLayer>;

struct Layer {
  std::string name;
  std::string type;  // as written in the trace
  LayerShape shape;
  std::string where = {};  // its place in the trace file: "/layers/3", or "line 7" of a CSV
  // Its tensors' values for the fidelity pass, where the trace gives them.
  LayerTensorValues fidelity = {};

  // Number of trainable parameters (weights, biases, norm scales/shifts).
  // Throws CountOverflow if it does not fit in 64 bits.
  std::int64_t parameters() const;
  bool has_gemm() const;  // conv, linear, matmul, lstm
};

struct Trace {
  std::string network;
  std::string source;
  std::int64_t batch = 1;
  std::vector<Layer> layers;
  std::string file = {};  // where it was read from (for messages); empty if built in memory
};

Trace parse_trace(const JsonReader& in);
// Loads a trace file. JSON by default; `.csv` files are SCALE-Sim topologies.
Trace load_trace(const std::filesystem::path& file);

void to_json(nlohmann::json& out, const Layer& layer);
void to_json(nlohmann::json& out, const Trace& trace);

const char* to_string(ElementwiseOp op);

}  // namespace lpt
