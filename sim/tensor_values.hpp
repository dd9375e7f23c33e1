// The values of a layer's tensors as the fidelity pass (sim/fidelity) draws
// them: a distribution, or the elements of a real tensor in a .npy file. A
// trace layer may give them under "fidelity" (docs/fidelity.md); what it does
// not give has defaults by tensor role and layer (sim/fidelity).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"

namespace lpt {

// What a tensor passed through before a GEMM reads it.
enum class Nonlinearity { kNone, kRelu, kRelu6, kGelu, kTanh, kSigmoid, kSilu, kHardswish };
const char* to_string(Nonlinearity function);
double apply(Nonlinearity function, double x);

struct TensorValues {
  enum class Kind {
    kNormal,     // mean + std * N(0, 1)
    kUniform,    // uniform in [low, high)
    kLogNormal,  // random sign, log2 of the magnitude ~ N(log2_median, log2_std)
    kFile,       // the elements of a .npy tensor, drawn uniformly
  };
  Kind kind = Kind::kNormal;
  double mean = 0, std = 1;
  double low = 0, high = 1;
  double log2_median = 0, log2_std = 1;
  bool positive = false;  // kLogNormal: all positive (e.g. softmax outputs) instead of a random sign
  // A nonlinearity applied to each drawn value: activations after it.
  Nonlinearity function = Nonlinearity::kNone;
  std::string file;  // kFile: as written, relative to the trace file
  bool operator==(const TensorValues&) const = default;
};

// A layer's overrides, by the role its tensors play in its GEMMs.
struct LayerTensorValues {
  std::optional<TensorValues> activations, weights, gradients;
  bool empty() const { return !activations && !weights && !gradients; }
  bool operator==(const LayerTensorValues&) const = default;
};

// The "fidelity" object of a trace layer; errors at its JSON path.
LayerTensorValues parse_layer_tensor_values(const JsonReader& in);
void to_json(nlohmann::json& out, const TensorValues& values);
void to_json(nlohmann::json& out, const LayerTensorValues& values);

}  // namespace lpt
