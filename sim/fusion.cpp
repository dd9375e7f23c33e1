#include "sim/fusion.hpp"

#include <algorithm>

#include "models/common/checked_math.hpp"

namespace lpt {

const char* to_string(Fusion fusion) {
  switch (fusion) {
    case Fusion::kNone: return "none";
    case Fusion::kEpilogue: return "epilogue";
    case Fusion::kFull: return "full";
  }
  return "?";
}

std::optional<Fusion> fusion_from_string(std::string_view text) {
  for (const Fusion f : {Fusion::kNone, Fusion::kEpilogue, Fusion::kFull})
    if (text == to_string(f)) return f;
  return std::nullopt;
}

const std::vector<std::pair<std::string_view, Fusion>>& fusion_choices() {
  static const std::vector<std::pair<std::string_view, Fusion>> choices = {
      {"none", Fusion::kNone}, {"epilogue", Fusion::kEpilogue}, {"full", Fusion::kFull}};
  return choices;
}

Fusion read_fusion(const JsonReader& in) { return in.choice(std::span(fusion_choices())); }

std::optional<std::string> unsupported_fusion(core::SfuFusion sfu, Fusion fusion) {
  if (fusion == Fusion::kEpilogue && sfu == core::SfuFusion::kNone)
    return "fusion \"epilogue\" runs activations on the MAC arrays' output path, and this chip's SFU "
           "streams from the scratchpad only (sfu.fusion \"none\")";
  if (fusion == Fusion::kFull && sfu != core::SfuFusion::kFull)
    return std::string("fusion \"full\" also reduces over the output stream and reads a second tensor beside "
                       "it (batch-norm statistics, residual adds), which this chip's SFU does not (sfu.fusion \"") +
           (sfu == core::SfuFusion::kNone ? "none" : "epilogue") + "\")";
  return std::nullopt;
}

namespace {

bool is_activation(ElementwiseOp op) {
  switch (op) {
    case ElementwiseOp::kRelu: case ElementwiseOp::kRelu6: case ElementwiseOp::kGelu:
    case ElementwiseOp::kTanh: case ElementwiseOp::kSigmoid: case ElementwiseOp::kSilu:
    case ElementwiseOp::kHardswish: case ElementwiseOp::kDropout:
      return true;
    default:
      return false;
  }
}

bool fuses(ElementwiseOp op, Fusion fusion) {
  if (fusion == Fusion::kFull) return true;
  return fusion == Fusion::kEpilogue && is_activation(op);
}

bool has_second_operand(ElementwiseOp op) { return op == ElementwiseOp::kAdd || op == ElementwiseOp::kMul; }

// Whether the op's backward needs its forward input (recomputed from the
// GEMM's stored output): everything but an add, whose gradient passes through,
// and dropout, whose mask is regenerated from its random seed.
bool backward_reads_forward_values(ElementwiseOp op) {
  return op != ElementwiseOp::kAdd && op != ElementwiseOp::kDropout;
}

bool has_work(const LayerWork& layer) {
  return std::any_of(layer.phases.begin(), layer.phases.end(), [](const PhaseWork& p) { return !p.empty(); });
}

// The element-wise layers after GEMM layer `producer` that fuse into it. A
// layer with no work of its own (a batch-norm folded into the weights, a
// dropout removed for inference) neither joins nor ends the chain.
std::vector<std::size_t> chain_after(const std::vector<LayerWork>& layers, std::size_t producer,
                                     Fusion fusion) {
  std::vector<std::size_t> chain;
  for (std::size_t j = producer + 1; j < layers.size(); ++j) {
    const LayerWork& next = layers[j];
    if (!has_work(next)) continue;
    if (!next.elementwise_op || !fuses(*next.elementwise_op, fusion) ||
        next.output_elements != layers[producer].output_elements)
      break;
    chain.push_back(j);
  }
  return chain;
}

ElementwiseWork ops_only(const ElementwiseWork& w) {
  ElementwiseWork out;
  out.ops = w.ops;
  return out;
}

void fuse_chain(std::vector<LayerWork>& layers, std::size_t producer,
                const std::vector<std::size_t>& chain) {
  LayerWork& gemm_layer = layers[producer];
  const std::int64_t elements = gemm_layer.output_elements;

  // Forward: the chain's operations on the GEMM's output tiles. The GEMM
  // stores its own output (the backward pass needs it, and a consumer applies
  // statistics-dependent steps such as batch-norm at its input stage from
  // it); a residual add or a gate multiply reads its second operand, and its
  // result is stored too, as consumers would need both tensors otherwise.
  ElementwiseWork forward;
  bool second_operand = false;
  for (const std::size_t j : chain) {
    forward += ops_only(layers[j].phase(Phase::kFwd).elementwise);
    if (has_second_operand(*layers[j].elementwise_op)) {
      forward.read_elements = checked_add(forward.read_elements, elements);
      second_operand = true;
    }
  }
  if (second_operand) forward.write_elements = checked_add(forward.write_elements, elements);
  if (!gemm_layer.phase(Phase::kFwd).gemms.empty())
    gemm_layer.phase(Phase::kFwd).gemms.back().fused += forward;

  // Backward: the gradient arrives at the chain's output; the chain's backward
  // runs in the input stage of the first GEMM that reads it (the data
  // gradient's, else the weight gradient's: the first layer has none), which
  // reads the stored GEMM output once to recompute what the chain needs
  // (activations, x̂ of a norm) and, when another GEMM of the layer reads the
  // gradient too, stores the gradient at the GEMM's output for it. Norm
  // scale/shift gradients are reductions of the same pass.
  ElementwiseWork backward;
  bool reads_forward = false;
  for (const std::size_t j : chain) {
    const ElementwiseOp op = *layers[j].elementwise_op;
    if (op != ElementwiseOp::kAdd) backward += ops_only(layers[j].phase(Phase::kBwd).elementwise);
    backward += ops_only(layers[j].phase(Phase::kWgrad).elementwise);
    backward.write_elements =
        checked_add(backward.write_elements, layers[j].phase(Phase::kWgrad).elementwise.write_elements);
    if (op == ElementwiseOp::kMul) backward.read_elements = checked_add(backward.read_elements, elements);
    reads_forward = reads_forward || backward_reads_forward_values(op);
  }
  if (reads_forward) backward.read_elements = checked_add(backward.read_elements, elements);
  auto& bwd = gemm_layer.phase(Phase::kBwd).gemms;
  auto& wgrad = gemm_layer.phase(Phase::kWgrad).gemms;
  if ((!backward.ops.empty() || backward.read_elements > 0) && bwd.size() + wgrad.size() > 0) {
    if (bwd.size() + wgrad.size() > 1) backward.write_elements = checked_add(backward.write_elements, elements);
    (bwd.empty() ? wgrad : bwd).front().fused += backward;
  }

  for (const std::size_t j : chain) {
    for (const Phase p : {Phase::kFwd, Phase::kBwd, Phase::kWgrad}) layers[j].phase(p) = {};
    layers[j].fused_into = producer;
  }
}

// A bias gradient is a column sum of dY, which the weight-gradient GEMM
// already streams: only its operations and the bias written remain.
void fuse_bias_gradient(LayerWork& layer) {
  PhaseWork& wgrad = layer.phase(Phase::kWgrad);
  if (wgrad.gemms.empty() || wgrad.elementwise.empty()) return;
  ElementwiseWork bias = ops_only(wgrad.elementwise);
  bias.write_elements = wgrad.elementwise.write_elements;
  wgrad.gemms.back().fused += bias;
  wgrad.elementwise = {};
}

}  // namespace

void apply_fusion(std::vector<LayerWork>& layers, Fusion fusion) {
  if (fusion == Fusion::kNone) return;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    LayerWork& layer = layers[i];
    if (layer.phase(Phase::kFwd).gemms.empty()) {
      // Not after a GEMM: a residual add's gradient still passes through
      // unchanged, so its backward aliases the incoming gradient.
      if (layer.elementwise_op == ElementwiseOp::kAdd) layer.phase(Phase::kBwd) = {};
      continue;
    }
    fuse_bias_gradient(layer);
    const std::vector<std::size_t> chain = chain_after(layers, i, fusion);
    if (chain.empty()) continue;
    fuse_chain(layers, i, chain);
    i = chain.back();
  }
}

}  // namespace lpt
