// Operator fusion: element-wise layers that follow a GEMM run inside that
// GEMM's tiles on the SFU lanes (in its output stage, or in the input stage of
// its consumers, which reads the same bytes) instead of streaming through DRAM
// in steps of their own (docs/architecture.md, "Operator fusion").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/common/json_reader.hpp"
#include "models/core/chip_params.hpp"
#include "sim/workload.hpp"

namespace lpt {

enum class Fusion {
  kNone,      // every layer streams its tensors through DRAM (a plain framework)
  kEpilogue,  // activations and dropout right after a GEMM run in its tiles
  kFull,      // also batch-norm, layer-norm, softmax and residual add/mul
};
const char* to_string(Fusion fusion);
// "none" | "epilogue" | "full"; nullopt for anything else.
std::optional<Fusion> fusion_from_string(std::string_view text);
// The names a config or spec may give, as JsonReader::choice takes them.
const std::vector<std::pair<std::string_view, Fusion>>& fusion_choices();
// The same from a config or spec value; anything else is an InputError at its path.
Fusion read_fusion(const JsonReader& in);

// Whether an SFU in that place of the datapath can run the fusion mode; if
// not, why (for the error naming the config and the chip's setting).
std::optional<std::string> unsupported_fusion(core::SfuFusion sfu, Fusion fusion);

// Moves the work of fusible element-wise layers into the GEMM they follow
// (GemmWork::fused) and marks them (LayerWork::fused_into). The trace lists
// layers in execution order: an element-wise layer fuses into the nearest GEMM
// layer before it when only fusible element-wise layers lie between them and
// its tensor has as many elements as the GEMM's output.
void apply_fusion(std::vector<LayerWork>& layers, Fusion fusion);

}  // namespace lpt
