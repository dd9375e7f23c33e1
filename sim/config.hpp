// The accelerator config: the chip (models/core/chip_params.hpp) plus the
// precision policy that says which number formats each training phase uses.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"
#include "models/system/system_params.hpp"
#include "models/numerics/format.hpp"
#include "sim/fusion.hpp"
#include "sim/residency.hpp"
#include "sim/workload.hpp"

namespace lpt {

// Formats of one GEMM: operands A and B, the accumulator and the stored output,
// with the roundings of its accumulation and output stages (unset: the
// accumulator's and the output format's own default rounding).
struct GemmPrecision {
  num::FormatSpec a, b, accumulator, output;
  std::optional<num::Rounding> accumulation_rounding, output_rounding;
};

// How error gradients are scaled before they are quantized to an operand
// format, so that small ones do not underflow (Micikevicius et al., ICLR 2018,
// "Mixed Precision Training"): a fixed power of two, or dynamic.
struct LossScale {
  // Dynamic scaling as it settles: the largest power of two that keeps a
  // tensor's gradients within the operand format. The fidelity pass applies it
  // per GEMM operand, the best a single network-wide scale can do.
  bool dynamic = true;
  double factor = 1;  // the static scale, a power of two
  bool operator==(const LossScale&) const = default;
};

struct UpdatePrecision {
  num::FormatSpec weights;          // the stored weights (no FP32 master copy, as in Wang'18)
  num::FormatSpec optimizer_state;  // momentum / Adam moments
  Optimizer optimizer = SgdMomentum{};
  bool stochastic_rounding = true;  // of the written weights and state
};

// Where a layer sits among the layers that have GEMMs: the first and last are
// commonly kept in higher precision.
enum class LayerPosition { kFirst, kMiddle, kLast };

// Formats of the forward GEMMs when the network is deployed (lptsim run --mode
// inference), e.g. INT4 operands with INT4 activations stored between layers.
struct InferencePrecision {
  GemmPrecision gemm;
  std::optional<GemmPrecision> first_layer, last_layer;
};

// GEMM formats by phase (indexed by Phase); a phase without them takes its
// PhaseInfo::formats_default's.
using PhaseFormats = std::array<std::optional<GemmPrecision>, kPhaseCount>;

struct PrecisionPolicy {
  PhaseFormats gemm;  // the phases with their own formats (fwd, bwd and wgrad always)
  UpdatePrecision update;
  // Per-phase overrides; a phase not given keeps the default.
  PhaseFormats first_layer, last_layer;
  std::optional<InferencePrecision> inference;
  LossScale loss_scale;

  const GemmPrecision& for_gemm(Phase formats_of, LayerPosition position) const;
  // The policy with the inference formats as its forward formats. Requires `inference`.
  PrecisionPolicy for_inference() const;
};

// The fidelity pass (sim/fidelity): every GEMM of the training step run
// bit-exactly on sampled output elements against FP64.
struct FidelityParams {
  bool enabled = true;
  // Output elements per GEMM, each with its full reduction: a grid of about
  // sqrt(n) rows by sqrt(n) columns, whose operand rows and columns are drawn.
  int sampled_outputs = 16;
  // Operand values drawn for one GEMM at most, (rows + columns) x K: the grid
  // shrinks for a long reduction, down to one output; a GEMM whose reduction
  // alone exceeds it (K > half of it) is reported as not measured.
  std::int64_t max_operand_values = std::int64_t{1} << 23;
  std::uint64_t seed = 1;
  // Layers whose SQNR in some phase falls below this are flagged.
  double min_sqnr_db = 15;
  // The gradient all-reduce of a system of chips (docs/fidelity.md): synthetic
  // gradients of this many elements per worker, this pairwise correlation
  // between the workers' gradients (an assumption), and CLT-k compression
  // measured over this many steps.
  std::uint64_t allreduce_elements = std::uint64_t{1} << 18;
  double worker_correlation = 0.5;
  int compression_steps = 8;
  // K-FAC's Newton–Schulz inverses measured on a synthetic factor of this
  // dimension (num::measure_newton_schulz).
  int inverse_dimension = 128;
  bool operator==(const FidelityParams&) const = default;
};

// Data-parallel training on a system of chips: each chip trains on its share
// of the batch, and the weight gradients are all-reduced in buckets while the
// backward pass goes on (docs/multi-chip.md).
// ScaleCom's cyclic local top-k (CLT-k; Chen et al., NeurIPS 2020): each step
// a leader chip picks the k = elements / ratio largest entries of its
// error-feedback memory plus gradient, every chip all-reduces only its values
// at those indices, and each keeps the rest in its memory.
struct CompressionParams {
  double ratio = 100;      // elements per value sent
  // The memories' low-pass filter: m <- (1 - beta) m + beta (a - sent); 1 is
  // plain error feedback (the form is our assumption; docs/multi-chip.md).
  double memory_beta = 1;
  bool operator==(const CompressionParams&) const = default;
};

struct DataParallelParams {
  core::CollectiveAlgorithm algorithm = core::CollectiveAlgorithm::kRing;
  // Gradients all-reduced together, filled in the order the backward pass
  // produces them (PyTorch DDP's default bucket is 25 MiB).
  double bucket_mib = 25;
  // The format gradients travel and are added in (the additions rounded to
  // the weight-gradient accumulator); unset: the weight-gradient GEMMs' output.
  std::optional<num::FormatSpec> gradient_format;
  int group_chips = 0;  // hierarchical on a ring or switch: chips per group
  std::optional<CompressionParams> compression;  // none: dense all-reduce
  bool operator==(const DataParallelParams&) const = default;
};

struct AcceleratorConfig {
  std::string name;
  std::string description;
  core::ChipParams chip;
  PrecisionPolicy precision;
  // Which element-wise layers run inside GEMM tiles (sim/fusion.hpp); "none"
  // when the config does not say.
  Fusion fusion = Fusion::kNone;
  // Whether results stay on chip between steps (sim/residency.hpp); "none"
  // when the config does not say.
  Residency residency = Residency::kNone;
  // Whether a step that does not fit the DRAM keeps what does not fit in the
  // host's memory, moved over the chip's host link (sim/memory_footprint).
  bool spill_to_host = false;
  FidelityParams fidelity;
  // A system of identical chips running data-parallel (none: one chip).
  std::optional<core::SystemParams> system;
  DataParallelParams data_parallel;
  // Where it was read from, for messages: the config file, and the chip
  // description file when "chip" names one (empty when the chip is inline).
  std::string file;
  std::string chip_file;

  // Where a chip parameter is written, e.g. "chip-tiny.json: /core/scratchpad/size_kib"
  // or "tiny.json: /chip/core/scratchpad/size_kib" for `path_in_chip` "/core/scratchpad/size_kib".
  std::string chip_location(std::string_view path_in_chip) const;
  int chips() const { return system ? system->chips : 1; }
  // The format gradients are all-reduced in.
  const num::FormatSpec& gradient_format() const;
};

// The config file's keys, declared once: they read it and document it.
const param::Schema<AcceleratorConfig>& config_schema();

// Parses and validates a whole config, including cross-checks between the
// chip and the policy (every operand format must be one the MAC array runs;
// every accumulator format one the accumulator supports). `chip_file` names
// the chip description file that "chip" was read from, if any, so that the
// cross-checks can name it.
AcceleratorConfig parse_config(const JsonReader& in, const std::string& chip_file = {});
// A chip description file, parsed; errors in the energy table it names name that file.
core::ChipParams load_chip(const std::filesystem::path& file);
// A chip description file, its "energy" table inlined when it names a file
// (relative to the chip description).
nlohmann::json load_chip_document(const std::filesystem::path& chip_file);
// Inlines the energy table a chip object names by file, relative to the file
// `named_in` that holds the chip; returns that table's path (empty if inline).
std::filesystem::path inline_energy_table(nlohmann::json& chip, const std::filesystem::path& named_in);
// A config is loaded in three stages: read the document (with the chip
// description and energy table it names read in), apply overrides, parse and
// validate. Errors name the file each part came from and its JSON path.

// Stage 1. In a file, "chip" may be the name of a chip description file (a
// JSON object as under "chip"), relative to the config, and the chip's
// "energy" the name of an energy table file, relative to the chip's file.
struct ConfigDocument {
  nlohmann::json json;  // chip and energy table inlined
  std::filesystem::path file, chip_file, energy_file;  // chip_file, energy_file: empty if inline
  std::vector<std::string> overridden;  // JSON pointers set by overrides, for messages
  // Objects an override created on its way (e.g. "/fidelity" for
  // "/fidelity/seed=2"), with the override's pointer, for messages.
  std::vector<std::pair<std::string, std::string>> created;
};
ConfigDocument read_config_document(const std::filesystem::path& file);

// Stage 2. An override "/json/pointer=value" sets the value at the pointer
// (an object may gain a key; missing objects on the way are created, to be
// validated as any other key — an optional section such as "/fidelity" can be
// set without writing it in the file): "/chip/..." reaches the
// chip description and "/chip/energy/..." its energy table wherever they were
// read from. The value is JSON, or else taken as a string ("/fusion=full").
// A malformed override or a pointer to nowhere is an InputError naming it.
void apply_override(ConfigDocument& doc, std::string_view override_text);

// Stage 3.
AcceleratorConfig parse_config_document(const ConfigDocument& doc);

// The three stages without overrides.
AcceleratorConfig load_config(const std::filesystem::path& file);

void to_json(nlohmann::json& out, const AcceleratorConfig& config);

}  // namespace lpt
