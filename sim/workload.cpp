#include "sim/workload.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "models/common/checked_math.hpp"
#include "models/common/text.hpp"
#include "sim/fusion.hpp"

namespace lpt {

ElementwiseWork& ElementwiseWork::operator+=(const ElementwiseWork& other) {
  read_elements = checked_add(read_elements, other.read_elements);
  write_elements = checked_add(write_elements, other.write_elements);
  ops.alu = checked_add(ops.alu, other.ops.alu);
  ops.exp = checked_add(ops.exp, other.ops.exp);
  ops.div_sqrt = checked_add(ops.div_sqrt, other.ops.div_sqrt);
  rounded_elements = checked_add(rounded_elements, other.rounded_elements);
  return *this;
}

std::int64_t GemmWork::macs() const { return checked_product(m, n, k, count, repeats); }

std::int64_t PhaseWork::output_elements() const {
  std::int64_t total = 0;
  for (const auto& g : gemms) total = checked_add(total, checked_product(g.m, g.n, g.count));
  return total;
}

std::int64_t PhaseWork::macs() const {
  std::int64_t total = 0;
  for (const auto& g : gemms) total = checked_add(total, g.macs());
  return total;
}

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// Per-element cost of an element-wise pass: tensors streamed in and out and the
// SFU operations per element. These are first-order counts of a straightforward
// implementation (e.g. batch-norm forward reads its input twice: statistics,
// then normalisation); docs/architecture.md lists them.
struct PerElement {
  int reads, writes;
  int alu, exp, div_sqrt;
};

ElementwiseWork scaled(const PerElement& c, std::int64_t elements) {
  const auto times = [&](int per) { return checked_mul<std::uint64_t>(per, elements); };
  ElementwiseWork w;
  w.read_elements = checked_mul<std::int64_t>(c.reads, elements);
  w.write_elements = checked_mul<std::int64_t>(c.writes, elements);
  w.ops.alu = times(c.alu);
  w.ops.exp = times(c.exp);
  w.ops.div_sqrt = times(c.div_sqrt);
  return w;
}

struct ElementwiseCost {
  PerElement forward, backward;
};

ElementwiseCost elementwise_cost(ElementwiseOp op) {
  switch (op) {
    case ElementwiseOp::kRelu: return {{1, 1, 1, 0, 0}, {2, 1, 1, 0, 0}};
    case ElementwiseOp::kRelu6: return {{1, 1, 2, 0, 0}, {2, 1, 2, 0, 0}};
    // tanh-approximated GELU: a handful of FMAs around one tanh (exp + divide).
    case ElementwiseOp::kGelu: return {{1, 1, 6, 1, 1}, {2, 1, 9, 1, 1}};
    case ElementwiseOp::kTanh: return {{1, 1, 3, 1, 1}, {2, 1, 2, 0, 0}};
    case ElementwiseOp::kSigmoid: return {{1, 1, 2, 1, 1}, {2, 1, 2, 0, 0}};
    case ElementwiseOp::kSilu: return {{1, 1, 3, 1, 1}, {2, 1, 4, 1, 1}};
    case ElementwiseOp::kHardswish: return {{1, 1, 4, 0, 0}, {2, 1, 4, 0, 0}};
    case ElementwiseOp::kAdd: return {{2, 1, 1, 0, 0}, {1, 1, 0, 0, 0}};
    case ElementwiseOp::kMul: return {{2, 1, 1, 0, 0}, {3, 2, 2, 0, 0}};
    case ElementwiseOp::kBatchNorm: return {{2, 1, 4, 0, 0}, {3, 1, 6, 0, 0}};
    case ElementwiseOp::kLayerNorm: return {{2, 1, 5, 0, 0}, {3, 1, 8, 0, 0}};
    case ElementwiseOp::kSoftmax: return {{2, 1, 3, 1, 1}, {2, 1, 4, 0, 0}};
    case ElementwiseOp::kDropout: return {{1, 1, 2, 0, 0}, {2, 1, 1, 0, 0}};
  }
  throw std::logic_error("unhandled element-wise op");
}

// One divide/rsqrt per normalised row (per channel for batch-norm).
std::int64_t normalisation_rows(const ElementwiseLayer& e, std::int64_t batch) {
  if (e.op == ElementwiseOp::kBatchNorm) return e.shape.front();
  if (e.op == ElementwiseOp::kLayerNorm) return checked_mul(batch, e.elements() / e.last_dim());
  return 0;
}

// The operands of a layer's GEMMs: A of the forward GEMM and of the weight
// gradient is its input (X, Xᵀ), A of the data gradient and B of the weight
// gradient the gradient at its output (dY), B of the forward and data-gradient
// GEMMs its weights (W, Wᵀ).
void mark_operand_sources(LayerWork& work) {
  for (GemmWork& g : work.phase(Phase::kFwd).gemms) {
    g.a_from = OperandSource::kLayerInput;
    g.b_from = OperandSource::kWeights;
  }
  for (GemmWork& g : work.phase(Phase::kBwd).gemms) {
    g.a_from = OperandSource::kOutputGradient;
    g.b_from = OperandSource::kWeights;
  }
  for (GemmWork& g : work.phase(Phase::kWgrad).gemms) {
    g.a_from = OperandSource::kLayerInput;
    g.b_from = OperandSource::kOutputGradient;
  }
}

// The three GEMMs of Y = X·W with Y: m x n, X: m x k, W: k x n.
void add_training_gemms(LayerWork& work, std::int64_t m, std::int64_t n, std::int64_t k,
                        std::int64_t count, bool backward_data) {
  work.phase(Phase::kFwd).gemms.push_back({"Y=X*W", m, n, k, count, 1, Phase::kFwd});
  if (backward_data)
    work.phase(Phase::kBwd).gemms.push_back({"dX=dY*W^T", m, k, n, count, 1, Phase::kBwd});
  work.phase(Phase::kWgrad).gemms.push_back({"dW=X^T*dY", k, n, m, count, 1, Phase::kWgrad});
  mark_operand_sources(work);
}

// Bias gradient: a column sum of dY.
void add_bias_gradient(LayerWork& work, std::int64_t rows, std::int64_t cols) {
  ElementwiseWork w;
  w.read_elements = checked_mul(rows, cols);
  w.write_elements = cols;
  w.ops.alu = static_cast<std::uint64_t>(w.read_elements);
  work.phase(Phase::kWgrad).elementwise += w;
}

// A convolution as implicit GEMMs (docs/architecture.md, "Implicit GEMM"):
// FWD Y = im2col(X)·W and WGRAD dW = im2col(X)ᵀ·dY read the raw input X; the
// data gradient is the transposed convolution dX = im2col↑(dY)·Wᵀ, one output
// row per input pixel, reading the raw dY and writing dX as a tensor. Its
// reduction runs over the output channels and the kernel taps that reach an
// input pixel: (Cout/groups)·kh·kw / (stride_h·stride_w) on average, rounded up.
void expand_conv(LayerWork& work, const ConvLayer& c, std::int64_t batch, bool backward_data) {
  const std::int64_t pixels = checked_product(batch, c.out_h(), c.out_w());
  const std::int64_t in_per_group = c.in_channels / c.groups, out_per_group = c.out_channels / c.groups;
  const std::int64_t kernel_h = (c.kernel_h - 1) * c.dilation_h + 1;
  const std::int64_t kernel_w = (c.kernel_w - 1) * c.dilation_w + 1;
  const std::int64_t taps = checked_mul(c.kernel_h, c.kernel_w);
  const std::int64_t k = checked_mul(in_per_group, taps);
  const ConvWindow input{in_per_group, c.in_h, c.in_w, c.out_h(), c.out_w(), kernel_h, kernel_w,
                         c.stride_h, c.stride_w, false, k, true};
  work.phase(Phase::kFwd).gemms.push_back(
      {"Y=X*W", pixels, out_per_group, k, c.groups, 1, Phase::kFwd, input});
  if (backward_data) {
    const std::int64_t in_pixels = checked_product(batch, c.in_h, c.in_w);
    const std::int64_t reduction = std::max<std::int64_t>(
        1, ceil_div(checked_mul(out_per_group, taps), checked_mul(c.stride_h, c.stride_w)));
    const ConvWindow gradient{out_per_group, c.out_h(), c.out_w(), c.in_h, c.in_w, kernel_h,
                              kernel_w, c.stride_h, c.stride_w, true, reduction, true};
    work.phase(Phase::kBwd).gemms.push_back(
        {"dX=convT(dY,W)", in_pixels, in_per_group, reduction, c.groups, 1, Phase::kBwd, gradient});
  }
  ConvWindow transposed = input;
  transposed.pixels_along_rows = false;
  work.phase(Phase::kWgrad).gemms.push_back(
      {"dW=X^T*dY", k, out_per_group, pixels, c.groups, 1, Phase::kWgrad, transposed});
  mark_operand_sources(work);
  if (c.bias) add_bias_gradient(work, pixels, c.out_channels);
  work.output_elements = checked_mul(pixels, c.out_channels);
}

void expand_linear(LayerWork& work, const LinearLayer& l, std::int64_t batch,
                   bool backward_data) {
  const std::int64_t m = checked_mul(batch, l.tokens);
  add_training_gemms(work, m, l.out_features, l.in_features, 1, backward_data);
  if (l.bias) add_bias_gradient(work, m, l.out_features);
  work.output_elements = checked_mul(m, l.out_features);
}

// C = A·B without weights: both inputs receive gradients in the backward pass,
// dA = dC·Bᵀ (error x operand) and dB = Aᵀ·dC (operand x error, formatted like a
// weight gradient).
void expand_matmul(LayerWork& work, const MatmulLayer& mm, std::int64_t batch,
                   bool backward_data) {
  const std::int64_t count = checked_mul(batch, mm.count);
  work.phase(Phase::kFwd).gemms.push_back({"C=A*B", mm.m, mm.n, mm.k, count, 1, Phase::kFwd});
  work.phase(Phase::kFwd).gemms.back().a_from = OperandSource::kLayerInput;
  if (backward_data) {
    auto& bwd = work.phase(Phase::kBwd).gemms;
    bwd.push_back({"dA=dC*B^T", mm.m, mm.k, mm.n, count, 1, Phase::kBwd});
    bwd.back().a_from = OperandSource::kOutputGradient;
    bwd.push_back({"dB=A^T*dC", mm.k, mm.n, mm.m, count, 1, Phase::kWgrad});
    bwd.back().a_from = OperandSource::kLayerInput;  // Aᵀ
    bwd.back().b_from = OperandSource::kOutputGradient;
  }
  work.output_elements = checked_product(count, mm.m, mm.n);
}

// One LSTM layer (gates i, f, g, o): the input projection runs for all time
// steps at once; the recurrent projection h_{t-1}·W_hh runs once per step, in
// sequence, and so does the gate arithmetic.
void expand_lstm(LayerWork& work, const LstmLayer& l, std::int64_t batch, bool backward_data) {
  const std::int64_t dirs = l.directions();
  const std::int64_t gates = 4 * l.hidden_size;
  const std::int64_t steps = l.seq_len;
  const std::int64_t tokens = checked_mul(batch, steps);

  auto& fwd = work.phase(Phase::kFwd);
  fwd.gemms.push_back({"G=X*W_ih", tokens, gates, l.input_size, dirs, 1, Phase::kFwd});
  fwd.gemms.back().a_from = OperandSource::kLayerInput;
  fwd.gemms.back().b_from = OperandSource::kWeights;
  fwd.gemms.push_back({"G+=h*W_hh", batch, gates, l.hidden_size, dirs, steps, Phase::kFwd});
  fwd.gemms.back().b_from = OperandSource::kWeights;
  // Per hidden unit and step: 3 sigmoids, 2 tanh, 3 products, 1 sum, gate bias adds.
  const std::int64_t cells = checked_product(tokens, l.hidden_size, dirs);
  ElementwiseWork gate_fwd = scaled({5, 2, 14, 5, 5}, cells);
  fwd.elementwise += gate_fwd;

  auto& bwd = work.phase(Phase::kBwd);
  // The recurrent gradient dh_{t-1} = dG·W_hhᵀ is needed even for the first
  // layer: it carries the gradient through time to earlier steps.
  bwd.gemms.push_back({"dh=dG*W_hh^T", batch, l.hidden_size, gates, dirs, steps, Phase::kBwd});
  bwd.gemms.back().b_from = OperandSource::kWeights;
  if (backward_data) {
    bwd.gemms.push_back({"dX=dG*W_ih^T", tokens, l.input_size, gates, dirs, 1, Phase::kBwd});
    bwd.gemms.back().b_from = OperandSource::kWeights;
  }
  bwd.elementwise += scaled({7, 4, 20, 0, 0}, cells);

  auto& wgrad = work.phase(Phase::kWgrad).gemms;
  wgrad.push_back({"dW_ih=X^T*dG", l.input_size, gates, tokens, dirs, 1, Phase::kWgrad});
  wgrad.back().a_from = OperandSource::kLayerInput;
  wgrad.push_back({"dW_hh=h^T*dG", l.hidden_size, gates, tokens, dirs, 1, Phase::kWgrad});
  if (l.bias) add_bias_gradient(work, tokens, gates * dirs);
  work.output_elements = cells;
}

// Forward is a gather; the weight gradient a scatter-add of the rows used.
void expand_embedding(LayerWork& work, const EmbeddingLayer& e, std::int64_t batch) {
  const std::int64_t rows = checked_product(batch, e.tokens, e.dim);
  work.phase(Phase::kFwd).elementwise += scaled({1, 1, 0, 0, 0}, rows);
  work.phase(Phase::kWgrad).elementwise += scaled({2, 1, 1, 0, 0}, rows);
  work.output_elements = rows;
}

void expand_pool(LayerWork& work, const PoolLayer& p, std::int64_t batch, bool backward_data) {
  const std::int64_t in = checked_product(batch, p.channels, p.in_h, p.in_w);
  const std::int64_t out = checked_product(batch, p.channels, p.out_h(), p.out_w());
  const std::int64_t window_ops = checked_product(out, p.kernel_h, p.kernel_w);
  ElementwiseWork fwd;
  fwd.read_elements = in;
  fwd.write_elements = out;
  fwd.ops.alu = static_cast<std::uint64_t>(window_ops);
  work.phase(Phase::kFwd).elementwise += fwd;
  if (backward_data) {
    ElementwiseWork bwd;
    bwd.read_elements = checked_add(out, p.mode == PoolMode::kMax ? out : 0);  // + argmax indices
    bwd.write_elements = in;
    bwd.ops.alu = static_cast<std::uint64_t>(std::max(in, window_ops));
    work.phase(Phase::kBwd).elementwise += bwd;
  }
  work.output_elements = out;
}

void expand_elementwise(LayerWork& work, const ElementwiseLayer& e, std::int64_t batch,
                        bool backward_data) {
  const std::int64_t elements = checked_mul(batch, e.elements());
  const ElementwiseCost cost = elementwise_cost(e.op);
  const auto rows = static_cast<std::uint64_t>(normalisation_rows(e, batch));
  ElementwiseWork fwd = scaled(cost.forward, elements);
  fwd.ops.div_sqrt = checked_add(fwd.ops.div_sqrt, rows);
  work.phase(Phase::kFwd).elementwise += fwd;
  if (backward_data) {
    ElementwiseWork bwd = scaled(cost.backward, elements);
    bwd.ops.div_sqrt = checked_add(bwd.ops.div_sqrt, rows);
    work.phase(Phase::kBwd).elementwise += bwd;
  }
  // Norm scale/shift gradients are reductions over the batch of dY·x̂ and dY.
  if (e.op == ElementwiseOp::kBatchNorm || e.op == ElementwiseOp::kLayerNorm) {
    ElementwiseWork wgrad = scaled({2, 0, 2, 0, 0}, elements);
    wgrad.write_elements = work.parameters;
    work.phase(Phase::kWgrad).elementwise += wgrad;
  }
  work.output_elements = elements;
  work.elementwise_op = e.op;
}

// The limits are powers of two.
std::string limit_text(std::int64_t limit) {
  return "2^" + std::to_string(std::bit_width(static_cast<std::uint64_t>(limit)) - 1);
}

// Every phase of the layer within the limits (throws CountOverflow when its
// totals do not even fit in 64 bits).
void check_limits(const LayerWork& work, std::int64_t batch) {
  for (const PhaseInfo& row : kPhaseTable) {
    const Phase phase = row.phase;
    const PhaseWork& p = work.phase(phase);
    const std::int64_t macs = p.macs();
    const auto& e = p.elementwise;
    const std::uint64_t ops = checked_add(checked_add(e.ops.alu, e.ops.exp), e.ops.div_sqrt);
    const std::int64_t streamed = checked_add(e.read_elements, e.write_elements);
    const auto sfu_ops = static_cast<std::int64_t>(std::min<std::uint64_t>(ops, INT64_MAX));
    const std::int64_t elements = std::max({streamed, sfu_ops, e.rounded_elements});
    const auto over = [&](const char* what, std::int64_t value, std::int64_t limit) {
      throw InputError("", "", std::string("its ") + to_string(phase) + " phase at batch " +
                                   std::to_string(batch) + " needs " + std::to_string(value) + " " +
                                   what + "; the limit is " + limit_text(limit) + " (" +
                                   std::to_string(limit) + ") per layer and phase");
    };
    if (macs > kMaxMacsPerLayerPhase) over("MACs", macs, kMaxMacsPerLayerPhase);
    if (elements > kMaxElementsPerLayerPhase)
      over("element operations", elements, kMaxElementsPerLayerPhase);
  }
}

LayerWork expand_layer(const Layer& layer, std::size_t index, std::int64_t batch,
                       const ExpansionOptions& options) {
  LayerWork work;
  work.layer_index = index;
  work.name = layer.name;
  work.type = layer.type;
  work.where = layer.where;
  work.parameters = layer.parameters();
  const bool backward_data = index > 0;
  std::visit(
      [&](const auto& shape) {
        using T = std::decay_t<decltype(shape)>;
        if constexpr (std::is_same_v<T, ConvLayer>) expand_conv(work, shape, batch, backward_data);
        else if constexpr (std::is_same_v<T, LinearLayer>) expand_linear(work, shape, batch, backward_data);
        else if constexpr (std::is_same_v<T, MatmulLayer>) expand_matmul(work, shape, batch, backward_data);
        else if constexpr (std::is_same_v<T, LstmLayer>) expand_lstm(work, shape, batch, backward_data);
        else if constexpr (std::is_same_v<T, EmbeddingLayer>) expand_embedding(work, shape, batch);
        else if constexpr (std::is_same_v<T, PoolLayer>) expand_pool(work, shape, batch, backward_data);
        else expand_elementwise(work, shape, batch, backward_data);
      },
      layer.shape);
  if (work.parameters > 0)
    work.phase(Phase::kUpdate).elementwise = update_work(options.optimizer, work.parameters);
  check_limits(work, batch);
  return work;
}

}  // namespace

std::vector<LayerWork> expand_inference(const Trace& trace, const ExpansionOptions& options) {
  ExpansionOptions unfused = options;
  unfused.fusion = Fusion::kNone;
  std::vector<LayerWork> layers = expand_training(trace, unfused);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    LayerWork& layer = layers[i];
    for (const PhaseInfo& row : kPhaseTable)
      if (row.phase != Phase::kFwd) layer.phase(row.phase) = {};
    if (layer.elementwise_op == ElementwiseOp::kDropout) {
      layer.phase(Phase::kFwd) = {};
    } else if (layer.elementwise_op == ElementwiseOp::kBatchNorm) {
      if (i > 0 && !layers[i - 1].phase(Phase::kFwd).gemms.empty() &&
          layers[i - 1].output_elements == layer.output_elements) {
        layer.phase(Phase::kFwd) = {};
        layer.fused_into = i - 1;
      } else {
        ElementwiseWork scale_shift;
        scale_shift.read_elements = scale_shift.write_elements = layer.output_elements;
        scale_shift.ops.alu = static_cast<std::uint64_t>(layer.output_elements);
        layer.phase(Phase::kFwd).elementwise = scale_shift;
      }
    }
  }
  // A folded batch-norm no longer separates its GEMM from what follows
  // (fusion passes over layers without work).
  apply_fusion(layers, options.fusion);
  return layers;
}

std::vector<LayerWork> expand_training(const Trace& trace, const ExpansionOptions& options) {
  // Runs `expand` for layer i, its errors attributed to the layer.
  const auto for_layer = [&](std::size_t i, auto&& expand) {
    const Layer& layer = trace.layers[i];
    const std::string subject = "layer " + quoted_excerpt(layer.name) + ": ";
    try {
      expand();
    } catch (const CountOverflow&) {
      throw InputError(trace.file, layer.where,
                       subject + "its work at batch " + std::to_string(trace.batch) +
                           " overflows 64-bit counts; reduce its sizes or the batch");
    } catch (const InputError& e) {
      throw InputError(trace.file, layer.where, subject + e.message());
    }
  };
  std::vector<LayerWork> out;
  out.reserve(trace.layers.size());
  for (std::size_t i = 0; i < trace.layers.size(); ++i)
    for_layer(i, [&] { out.push_back(expand_layer(trace.layers[i], i, trace.batch, options)); });
  apply_fusion(out, options.fusion);
  // After fusion: the optimizer's phases may repeat the fused backward work.
  for (std::size_t i = 0; i < out.size(); ++i)
    for_layer(i, [&] {
      add_optimizer_phases(out[i], options.optimizer);
      check_limits(out[i], trace.batch);
    });
  return out;
}

}  // namespace lpt
