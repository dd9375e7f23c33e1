#include "sim/trace.hpp"

#include "models/common/checked_math.hpp"
#include "models/common/text.hpp"
#include "sim/document_kind.hpp"
#include "sim/scalesim_import.hpp"

#include <set>

namespace lpt {

namespace {

// Each size is bounded alone; products of several are checked where formed
// (models/common/checked_math.hpp) and bounded by the workload's limits.
constexpr std::int64_t kMaxDim = std::int64_t{1} << 31;

std::int64_t conv_out(std::int64_t in, std::int64_t pad, std::int64_t dilation,
                      std::int64_t kernel, std::int64_t stride) {
  const std::int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

struct Pair {
  std::int64_t first, second;
};

Pair read_pair(const JsonReader& in, std::string_view key, std::int64_t min,
               std::optional<Pair> fallback) {
  const auto r = in.find(key);
  if (!r) {
    if (!fallback) in.at(key);  // throws "missing required key"
    return *fallback;
  }
  const auto v = r->integers(2, min, kMaxDim);
  return {v[0], v[1]};
}

std::int64_t read_int(const JsonReader& in, std::string_view key, std::int64_t min,
                      std::optional<std::int64_t> fallback = std::nullopt) {
  const auto r = in.find(key);
  if (!r) {
    if (!fallback) in.at(key);
    return *fallback;
  }
  return r->integer(min, kMaxDim);
}

bool read_bool(const JsonReader& in, std::string_view key, bool fallback) {
  const auto r = in.find(key);
  return r ? r->boolean() : fallback;
}

std::vector<std::int64_t> read_shape(const JsonReader& in, std::size_t min_rank,
                                     std::size_t max_rank) {
  const auto r = in.at("input");
  std::vector<std::int64_t> shape;
  for (const auto& e : r.elements(min_rank, max_rank)) shape.push_back(e.integer(1, kMaxDim));
  return shape;
}

void read_conv_geometry(const JsonReader& in, ConvLayer& c) {
  const auto shape = in.at("input").integers(3, 1, kMaxDim);
  c.in_channels = shape[0];
  c.in_h = shape[1];
  c.in_w = shape[2];
  const auto kernel = read_pair(in, "kernel", 1, std::nullopt);
  const auto stride = read_pair(in, "stride", 1, Pair{1, 1});
  const auto pad = read_pair(in, "padding", 0, Pair{0, 0});
  const auto dilation = read_pair(in, "dilation", 1, Pair{1, 1});
  c.kernel_h = kernel.first, c.kernel_w = kernel.second;
  c.stride_h = stride.first, c.stride_w = stride.second;
  c.pad_h = pad.first, c.pad_w = pad.second;
  c.dilation_h = dilation.first, c.dilation_w = dilation.second;
  c.bias = read_bool(in, "bias", false);
  if (c.out_h() < 1 || c.out_w() < 1)
    in.fail_at("kernel", "kernel (with dilation) larger than the padded input " +
                             std::to_string(c.in_h) + "x" + std::to_string(c.in_w));
}

LayerShape parse_conv(const JsonReader& in) {
  ConvLayer c;
  read_conv_geometry(in, c);
  c.out_channels = read_int(in, "out_channels", 1);
  c.groups = read_int(in, "groups", 1, 1);
  if (c.in_channels % c.groups != 0)
    in.fail_at("groups", "groups (" + std::to_string(c.groups) +
                             ") must divide the input channels (" +
                             std::to_string(c.in_channels) + ")");
  if (c.out_channels % c.groups != 0)
    in.fail_at("groups", "groups (" + std::to_string(c.groups) +
                             ") must divide out_channels (" + std::to_string(c.out_channels) +
                             ")");
  return c;
}

LayerShape parse_depthwise(const JsonReader& in) {
  ConvLayer c;
  read_conv_geometry(in, c);
  c.groups = c.in_channels;
  c.out_channels = c.in_channels * read_int(in, "channel_multiplier", 1, 1);
  c.depthwise = true;
  return c;
}

LayerShape parse_linear(const JsonReader& in) {
  LinearLayer l;
  l.in_features = read_int(in, "in_features", 1);
  l.out_features = read_int(in, "out_features", 1);
  l.tokens = read_int(in, "tokens", 1, 1);
  l.bias = read_bool(in, "bias", false);
  return l;
}

LayerShape parse_matmul(const JsonReader& in) {
  MatmulLayer m;
  m.m = read_int(in, "m", 1);
  m.n = read_int(in, "n", 1);
  m.k = read_int(in, "k", 1);
  m.count = read_int(in, "count", 1, 1);
  return m;
}

LayerShape parse_lstm(const JsonReader& in) {
  LstmLayer l;
  l.input_size = read_int(in, "input_size", 1);
  l.hidden_size = read_int(in, "hidden_size", 1);
  l.seq_len = read_int(in, "seq_len", 1);
  l.bidirectional = read_bool(in, "bidirectional", false);
  l.bias = read_bool(in, "bias", true);
  return l;
}

LayerShape parse_embedding(const JsonReader& in) {
  EmbeddingLayer e;
  e.num_embeddings = read_int(in, "num_embeddings", 1);
  e.dim = read_int(in, "dim", 1);
  e.tokens = read_int(in, "tokens", 1);
  return e;
}

LayerShape parse_pool(const JsonReader& in) {
  PoolLayer p;
  p.mode = in.at("mode").choice<PoolMode>({{"max", PoolMode::kMax}, {"avg", PoolMode::kAvg}});
  const auto shape = in.at("input").integers(3, 1, kMaxDim);
  p.channels = shape[0], p.in_h = shape[1], p.in_w = shape[2];
  p.global = read_bool(in, "global", false);
  if (p.global) {
    for (auto key : {"kernel", "stride", "padding"})
      if (in.has(key)) in.fail_at(key, "not allowed with \"global\": true");
    p.kernel_h = p.in_h, p.kernel_w = p.in_w;
    p.stride_h = p.in_h, p.stride_w = p.in_w;
    return p;
  }
  const auto kernel = read_pair(in, "kernel", 1, std::nullopt);
  const auto stride = read_pair(in, "stride", 1, kernel);
  const auto pad = read_pair(in, "padding", 0, Pair{0, 0});
  p.kernel_h = kernel.first, p.kernel_w = kernel.second;
  p.stride_h = stride.first, p.stride_w = stride.second;
  p.pad_h = pad.first, p.pad_w = pad.second;
  if (p.out_h() < 1 || p.out_w() < 1)
    in.fail_at("kernel", "kernel larger than the padded input");
  return p;
}

LayerShape parse_elementwise(const JsonReader& in, ElementwiseOp op, std::size_t min_rank) {
  ElementwiseLayer e;
  e.op = op;
  e.shape = read_shape(in, min_rank, 8);
  return e;
}

LayerShape parse_activation(const JsonReader& in) {
  const auto op = in.at("function").choice<ElementwiseOp>({{"relu", ElementwiseOp::kRelu},
                                                           {"relu6", ElementwiseOp::kRelu6},
                                                           {"gelu", ElementwiseOp::kGelu},
                                                           {"tanh", ElementwiseOp::kTanh},
                                                           {"sigmoid", ElementwiseOp::kSigmoid},
                                                           {"silu", ElementwiseOp::kSilu},
                                                           {"hardswish", ElementwiseOp::kHardswish}});
  return parse_elementwise(in, op, 1);
}

LayerShape parse_eltwise(const JsonReader& in) {
  const auto op =
      in.at("op").choice<ElementwiseOp>({{"add", ElementwiseOp::kAdd}, {"mul", ElementwiseOp::kMul}});
  return parse_elementwise(in, op, 1);
}

Layer parse_layer(const JsonReader& in) {
  Layer layer;
  layer.name = in.at("name").string();
  const auto type = in.at("type");
  layer.type = type.one_of({"conv2d", "depthwise_conv2d", "linear", "matmul", "lstm",
                            "embedding", "pool", "activation", "eltwise", "batchnorm",
                            "layernorm", "softmax", "dropout"});
  const std::string& t = layer.type;
  if (t == "conv2d") layer.shape = parse_conv(in);
  else if (t == "depthwise_conv2d") layer.shape = parse_depthwise(in);
  else if (t == "linear") layer.shape = parse_linear(in);
  else if (t == "matmul") layer.shape = parse_matmul(in);
  else if (t == "lstm") layer.shape = parse_lstm(in);
  else if (t == "embedding") layer.shape = parse_embedding(in);
  else if (t == "pool") layer.shape = parse_pool(in);
  else if (t == "activation") layer.shape = parse_activation(in);
  else if (t == "eltwise") layer.shape = parse_eltwise(in);
  else if (t == "batchnorm") layer.shape = parse_elementwise(in, ElementwiseOp::kBatchNorm, 1);
  else if (t == "layernorm") layer.shape = parse_elementwise(in, ElementwiseOp::kLayerNorm, 1);
  else if (t == "softmax") layer.shape = parse_elementwise(in, ElementwiseOp::kSoftmax, 1);
  else layer.shape = parse_elementwise(in, ElementwiseOp::kDropout, 1);
  if (const auto fidelity = in.find("fidelity")) {
    if (!layer.has_gemm()) fidelity->fail("only layers with GEMMs (conv2d, depthwise_conv2d, linear, matmul, lstm) take fidelity values");
    layer.fidelity = parse_layer_tensor_values(*fidelity);
  }
  in.finish();
  return layer;
}

}  // namespace

std::int64_t ConvLayer::out_h() const {
  return conv_out(in_h, pad_h, dilation_h, kernel_h, stride_h);
}
std::int64_t ConvLayer::out_w() const {
  return conv_out(in_w, pad_w, dilation_w, kernel_w, stride_w);
}
std::int64_t PoolLayer::out_h() const { return conv_out(in_h, pad_h, 1, kernel_h, stride_h); }
std::int64_t PoolLayer::out_w() const { return conv_out(in_w, pad_w, 1, kernel_w, stride_w); }

std::int64_t ElementwiseLayer::elements() const {
  std::int64_t n = 1;
  for (auto d : shape) n = checked_mul(n, d);
  return n;
}

std::int64_t Layer::parameters() const {
  struct Visitor {
    std::int64_t operator()(const ConvLayer& c) const {
      return checked_add(checked_product(c.out_channels, c.in_channels / c.groups, c.kernel_h,
                                         c.kernel_w),
                         c.bias ? c.out_channels : 0);
    }
    std::int64_t operator()(const LinearLayer& l) const {
      return checked_add(checked_mul(l.in_features, l.out_features), l.bias ? l.out_features : 0);
    }
    std::int64_t operator()(const MatmulLayer&) const { return 0; }
    std::int64_t operator()(const LstmLayer& l) const {
      const std::int64_t gates = 4 * l.hidden_size;
      const std::int64_t per_direction =
          checked_add(checked_mul(gates, checked_add(l.input_size, l.hidden_size)),
                      l.bias ? 2 * gates : 0);
      return checked_mul(l.directions(), per_direction);
    }
    std::int64_t operator()(const EmbeddingLayer& e) const {
      return checked_mul(e.num_embeddings, e.dim);
    }
    std::int64_t operator()(const PoolLayer&) const { return 0; }
    std::int64_t operator()(const ElementwiseLayer& e) const {
      if (e.op == ElementwiseOp::kBatchNorm) return 2 * e.shape.front();
      if (e.op == ElementwiseOp::kLayerNorm) return 2 * e.last_dim();
      return 0;
    }
  };
  return std::visit(Visitor{}, shape);
}

bool Layer::has_gemm() const {
  return std::holds_alternative<ConvLayer>(shape) || std::holds_alternative<LinearLayer>(shape) ||
         std::holds_alternative<MatmulLayer>(shape) || std::holds_alternative<LstmLayer>(shape);
}

const char* to_string(ElementwiseOp op) {
  switch (op) {
    case ElementwiseOp::kRelu: return "relu";
    case ElementwiseOp::kRelu6: return "relu6";
    case ElementwiseOp::kGelu: return "gelu";
    case ElementwiseOp::kTanh: return "tanh";
    case ElementwiseOp::kSigmoid: return "sigmoid";
    case ElementwiseOp::kSilu: return "silu";
    case ElementwiseOp::kHardswish: return "hardswish";
    case ElementwiseOp::kAdd: return "add";
    case ElementwiseOp::kMul: return "mul";
    case ElementwiseOp::kBatchNorm: return "batchnorm";
    case ElementwiseOp::kLayerNorm: return "layernorm";
    case ElementwiseOp::kSoftmax: return "softmax";
    case ElementwiseOp::kDropout: return "dropout";
  }
  return "?";
}

Trace parse_trace(const JsonReader& in) {
  expect_document_kind(in.json(), DocumentKind::kTrace, "");
  Trace trace;
  trace.network = in.at("network").string();
  trace.source = in.at("source").string();
  trace.batch = in.at("batch").integer(1, 1 << 20);
  std::set<std::string> names;
  for (const auto& layer_in : in.at("layers").elements(1)) {
    Layer layer = parse_layer(layer_in);
    layer.where = layer_in.path();
    if (!names.insert(layer.name).second)
      layer_in.fail_at("name", "duplicate layer name " + quoted_excerpt(layer.name));
    trace.layers.push_back(std::move(layer));
  }
  in.finish();
  return trace;
}

Trace load_trace(const std::filesystem::path& file) {
  Trace trace = file.extension() == ".csv"
                    ? import_scalesim_csv(file)
                    : parse_json_file<Trace>(file, [](const JsonReader& in) { return parse_trace(in); });
  trace.file = file.string();
  return trace;
}

namespace {

nlohmann::json pair(std::int64_t a, std::int64_t b) { return nlohmann::json::array({a, b}); }

}  // namespace

void to_json(nlohmann::json& out, const Layer& layer) {
  out = {{"name", layer.name}, {"type", layer.type}};
  struct Visitor {
    nlohmann::json& out;
    void operator()(const ConvLayer& c) const {
      out["input"] = {c.in_channels, c.in_h, c.in_w};
      if (c.depthwise) {
        out["channel_multiplier"] = c.out_channels / c.in_channels;
      } else {
        out["out_channels"] = c.out_channels;
        out["groups"] = c.groups;
      }
      out["kernel"] = pair(c.kernel_h, c.kernel_w);
      out["stride"] = pair(c.stride_h, c.stride_w);
      out["padding"] = pair(c.pad_h, c.pad_w);
      out["dilation"] = pair(c.dilation_h, c.dilation_w);
      out["bias"] = c.bias;
    }
    void operator()(const LinearLayer& l) const {
      out["in_features"] = l.in_features;
      out["out_features"] = l.out_features;
      out["tokens"] = l.tokens;
      out["bias"] = l.bias;
    }
    void operator()(const MatmulLayer& m) const {
      out["m"] = m.m, out["n"] = m.n, out["k"] = m.k, out["count"] = m.count;
    }
    void operator()(const LstmLayer& l) const {
      out["input_size"] = l.input_size;
      out["hidden_size"] = l.hidden_size;
      out["seq_len"] = l.seq_len;
      out["bidirectional"] = l.bidirectional;
      out["bias"] = l.bias;
    }
    void operator()(const EmbeddingLayer& e) const {
      out["num_embeddings"] = e.num_embeddings, out["dim"] = e.dim, out["tokens"] = e.tokens;
    }
    void operator()(const PoolLayer& p) const {
      out["mode"] = p.mode == PoolMode::kMax ? "max" : "avg";
      out["input"] = {p.channels, p.in_h, p.in_w};
      if (p.global) {
        out["global"] = true;
        return;
      }
      out["kernel"] = pair(p.kernel_h, p.kernel_w);
      out["stride"] = pair(p.stride_h, p.stride_w);
      out["padding"] = pair(p.pad_h, p.pad_w);
    }
    void operator()(const ElementwiseLayer& e) const {
      if (e.op <= ElementwiseOp::kHardswish) out["function"] = to_string(e.op);
      else if (e.op == ElementwiseOp::kAdd || e.op == ElementwiseOp::kMul) out["op"] = to_string(e.op);
      out["input"] = e.shape;
    }
  };
  std::visit(Visitor{out}, layer.shape);
  if (!layer.fidelity.empty()) out["fidelity"] = layer.fidelity;
}

void to_json(nlohmann::json& out, const Trace& trace) {
  out = {{"network", trace.network}, {"source", trace.source}, {"batch", trace.batch}};
  out["layers"] = nlohmann::json::array();
  for (const auto& layer : trace.layers) out["layers"].push_back(layer);
}

}  // namespace lpt
