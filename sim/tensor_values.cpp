#include "sim/tensor_values.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lpt {

namespace {

constexpr std::pair<std::string_view, Nonlinearity> kFunctions[] = {
    {"none", Nonlinearity::kNone}, {"relu", Nonlinearity::kRelu}, {"relu6", Nonlinearity::kRelu6},
    {"gelu", Nonlinearity::kGelu}, {"tanh", Nonlinearity::kTanh}, {"sigmoid", Nonlinearity::kSigmoid},
    {"silu", Nonlinearity::kSilu}, {"hardswish", Nonlinearity::kHardswish}};

constexpr double kHuge = 1e300;

TensorValues parse_tensor_values(const JsonReader& in) {
  TensorValues v;
  if (const auto file = in.find("npy")) {
    v.kind = TensorValues::Kind::kFile;
    v.file = file->string();
    in.finish();
    return v;
  }
  const auto kind = in.at("distribution")
                        .choice<TensorValues::Kind>({{"normal", TensorValues::Kind::kNormal},
                                                     {"uniform", TensorValues::Kind::kUniform},
                                                     {"log_normal", TensorValues::Kind::kLogNormal}});
  v.kind = kind;
  switch (kind) {
    case TensorValues::Kind::kNormal:
      if (const auto mean = in.find("mean")) v.mean = mean->number(-kHuge, kHuge);
      if (const auto std = in.find("std")) v.std = std->number(0, kHuge);
      break;
    case TensorValues::Kind::kUniform:
      v.low = in.at("low").number(-kHuge, kHuge);
      v.high = in.at("high").number(-kHuge, kHuge);
      if (!(v.high > v.low)) in.fail_at("high", "expected a number above low (" + std::to_string(v.low) + ")");
      break;
    case TensorValues::Kind::kLogNormal:
      v.log2_median = in.at("log2_median").number(-1000, 1000);
      v.log2_std = in.at("log2_std").number(0, 100);
      if (const auto sign = in.find("sign")) v.positive = sign->one_of({"random", "positive"}) == "positive";
      break;
    case TensorValues::Kind::kFile: break;
  }
  if (const auto function = in.find("function"))
    v.function = function->choice(std::span<const std::pair<std::string_view, Nonlinearity>>(kFunctions));
  in.finish();
  return v;
}

}  // namespace

const char* to_string(Nonlinearity function) {
  for (const auto& [name, f] : kFunctions)
    if (f == function) return name.data();
  return "?";
}

double apply(Nonlinearity function, double x) {
  switch (function) {
    case Nonlinearity::kNone: return x;
    case Nonlinearity::kRelu: return std::max(0.0, x);
    case Nonlinearity::kRelu6: return std::clamp(x, 0.0, 6.0);
    case Nonlinearity::kGelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Nonlinearity::kTanh: return std::tanh(x);
    case Nonlinearity::kSigmoid: return 1 / (1 + std::exp(-x));
    case Nonlinearity::kSilu: return x / (1 + std::exp(-x));
    case Nonlinearity::kHardswish: return x * std::clamp(x + 3, 0.0, 6.0) / 6;
  }
  return x;
}

LayerTensorValues parse_layer_tensor_values(const JsonReader& in) {
  LayerTensorValues v;
  if (const auto a = in.find("activations")) v.activations = parse_tensor_values(*a);
  if (const auto w = in.find("weights")) v.weights = parse_tensor_values(*w);
  if (const auto g = in.find("gradients")) v.gradients = parse_tensor_values(*g);
  in.finish();
  return v;
}

void to_json(nlohmann::json& out, const TensorValues& v) {
  switch (v.kind) {
    case TensorValues::Kind::kNormal: out = {{"distribution", "normal"}, {"mean", v.mean}, {"std", v.std}}; break;
    case TensorValues::Kind::kUniform:
      out = {{"distribution", "uniform"}, {"low", v.low}, {"high", v.high}};
      break;
    case TensorValues::Kind::kLogNormal:
      out = {{"distribution", "log_normal"}, {"log2_median", v.log2_median}, {"log2_std", v.log2_std},
             {"sign", v.positive ? "positive" : "random"}};
      break;
    case TensorValues::Kind::kFile: out = {{"npy", v.file}}; return;
  }
  if (v.function != Nonlinearity::kNone) out["function"] = to_string(v.function);
}

void to_json(nlohmann::json& out, const LayerTensorValues& v) {
  out = nlohmann::json::object();
  if (v.activations) out["activations"] = *v.activations;
  if (v.weights) out["weights"] = *v.weights;
  if (v.gradients) out["gradients"] = *v.gradients;
}

}  // namespace lpt
