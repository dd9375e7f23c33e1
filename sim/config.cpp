#include "sim/config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/common/text.hpp"
#include "sim/document_kind.hpp"
#include "sim/format_json.hpp"
#include "sim/gemm_datapath.hpp"

namespace lpt {

namespace {

// The phases the precision policy gives GEMM formats for, under their names.
std::vector<Phase> phases_with_formats() {
  std::vector<Phase> out;
  for (const PhaseInfo& row : kPhaseTable)
    if (row.precision_key) out.push_back(row.phase);
  return out;
}

// "the wgrad GEMMs' formats": what a phase without formats takes.
std::string default_formats_text(const PhaseInfo& row) {
  return "the " + std::string(to_string(*row.formats_default)) + " GEMMs' formats";
}

template <class T, class Member>
param::Key<T> format(std::string name, Member member, std::string description) {
  param::Key<T> key = param::Keys<T>::value(
      {std::move(name), "format", {}, "a preset name (docs/numerics.md) or a format object (below)", {},
       std::move(description)},
      member, [](const JsonReader& in) { return num::format_from_json(in); });
  key.describe_nested = num::describe_format_object;
  return key;
}

// The roundings a stage may name, for optional rounding keys.
std::vector<std::pair<std::string_view, std::optional<num::Rounding>>> stage_roundings() {
  std::vector<std::pair<std::string_view, std::optional<num::Rounding>>> out;
  for (const auto& [name, rounding] : num::rounding_names()) out.emplace_back(name, rounding);
  return out;
}

const param::Schema<GemmPrecision>& gemm_precision_schema() {
  using K = param::Keys<GemmPrecision>;
  static const param::Schema<GemmPrecision> schema(
      "Formats of one GEMM. The array runs it at the lower of its operand formats' `macs_per_pe_per_cycle`; the "
      "formats' widths set the bytes moved.",
      {format<GemmPrecision>("a", &GemmPrecision::a, "operand A; one the chip's MAC array runs"),
       format<GemmPrecision>("b", &GemmPrecision::b, "operand B; one the chip's MAC array runs"),
       format<GemmPrecision>("accumulator", &GemmPrecision::accumulator,
                             "the accumulator; one of the chip's `core/accumulator/formats`"),
       format<GemmPrecision>("output", &GemmPrecision::output, "the stored result"),
       K::optional(K::choice("accumulation_rounding", &GemmPrecision::accumulation_rounding, stage_roundings(),
                             "of every add of the accumulation (inside a chunk and merging chunks); `sr` uses the "
                             "chip's `core/rounder/random_bits`"),
                   "the accumulator format's own rounding"),
       K::optional(K::choice("output_rounding", &GemmPrecision::output_rounding, stage_roundings(),
                             "of the conversion of each result to `output`; `sr` uses the chip's "
                             "`core/rounder/random_bits`"),
                   "the output format's own rounding")});
  return schema;
}

const param::Schema<PhaseFormats>& overrides_schema() {
  static const param::Schema<PhaseFormats> schema(
      "Formats of the first or the last layer with GEMMs, by phase.", [] {
        std::vector<param::Key<PhaseFormats>> keys;
        for (const Phase phase : phases_with_formats())
          keys.push_back(param::Keys<PhaseFormats>::optional_object(
              to_string(phase),
              [i = index_of(phase)](PhaseFormats& o) -> std::optional<GemmPrecision>& { return o[i]; },
              gemm_precision_schema(), "the phase's formats of the policy",
              std::string("that layer's ") + to_string(phase) + " GEMMs"));
        return keys;
      }());
  return schema;
}

const param::Schema<UpdatePrecision>& update_schema() {
  using K = param::Keys<UpdatePrecision>;
  static const param::Schema<UpdatePrecision> schema(
      "The weight update.",
      {format<UpdatePrecision>("weights", &UpdatePrecision::weights,
                               "the stored weights (no FP32 master copy); the update's reads and writes, state "
                               "included, are sized in this format"),
       format<UpdatePrecision>("optimizer_state", &UpdatePrecision::optimizer_state,
                               "momentum or Adam moments; recorded only: the update's traffic is sized by "
                               "`weights`"),
       [] {
         param::Key<UpdatePrecision> key = K::value(
             {"optimizer", "string or object", {}, optimizer_names(), {},
              "the optimizer (docs/optimizers.md): a name, or an object with `name` and that optimizer's parameters "
              "(below); it sets the update's work per weight and adds its own phases"},
             &UpdatePrecision::optimizer, read_optimizer);
         key.describe_nested = describe_optimizers;
         return key;
       }(),
       K::choice("rounding", &UpdatePrecision::stochastic_rounding, {{"stochastic", true}, {"nearest", false}},
                 "of the written weights and state; recorded only: the model charges the rounders either way")});
  return schema;
}

const param::Schema<InferencePrecision>& inference_schema() {
  using K = param::Keys<InferencePrecision>;
  static const param::Schema<InferencePrecision> schema(
      "The forward GEMMs' formats when the network is deployed (`lptsim run --mode inference`).",
      {K::object("gemm", &InferencePrecision::gemm, gemm_precision_schema(), "every forward GEMM"),
       K::optional_object("first_layer", &InferencePrecision::first_layer, gemm_precision_schema(), "`gemm`",
                          "the first layer with GEMMs"),
       K::optional_object("last_layer", &InferencePrecision::last_layer, gemm_precision_schema(), "`gemm`",
                          "the last layer with GEMMs")});
  return schema;
}

LossScale read_loss_scale(const JsonReader& in) {
  if (in.json().is_string()) {
    in.one_of({"dynamic"});
    return LossScale{};
  }
  const double factor = in.number(0x1p-64, 0x1p64);
  int exponent = 0;
  if (std::frexp(factor, &exponent) != 0.5) in.fail("expected \"dynamic\" or a power of two, got " + param::shown_number(factor));
  return LossScale{false, factor};
}

const param::Schema<FidelityParams>& fidelity_schema() {
  using K = param::Keys<FidelityParams>;
  static const param::Schema<FidelityParams> schema(
      "The fidelity pass: every GEMM of the training step run bit-exactly on its datapath on sampled output "
      "elements, each with its full reduction, against FP64 (docs/fidelity.md).",
      {K::optional(K::boolean("enabled", &FidelityParams::enabled, "whether `run` measures fidelity "
                                                                   "(`run --no-fidelity` also skips it)")),
       K::optional(K::integer("sampled_outputs", &FidelityParams::sampled_outputs, 1, 4096, "elements",
                              "output elements per GEMM, a grid of about √n rows × √n columns; the cost is "
                              "(rows + columns) × K operand values and n × K MACs per GEMM")),
       K::optional(K::integer("max_operand_values", &FidelityParams::max_operand_values, 2, std::int64_t{1} << 30,
                              "values", "operand values drawn for one GEMM at most, (rows + columns) × K: a long "
                                        "reduction gets fewer sampled outputs, and a GEMM with K above half of it "
                                        "is reported as not measured")),
       K::optional(K::integer("seed", &FidelityParams::seed, 0, std::numeric_limits<std::int64_t>::max(), {},
                              "of the sampled operands and every stochastic rounding")),
       K::optional(K::number("min_sqnr_db", &FidelityParams::min_sqnr_db, -1000, 1000, "dB",
                             "layers with a phase below it (and the gradient all-reduce, if below it) are flagged "
                             "in the summary and report")),
       K::optional(K::integer("allreduce_elements", &FidelityParams::allreduce_elements, std::int64_t{1} << 10,
                              std::int64_t{1} << 24, "elements",
                              "with a `system` of chips: synthetic gradient elements per worker whose all-reduce "
                              "is measured against FP64; the cost is about chips × elements roundings (and "
                              "`compression_steps` times that with `data_parallel/compression`)")),
       K::optional(K::number("worker_correlation", &FidelityParams::worker_correlation, 0, 1, {},
                             "with a `system` of chips: the correlation between any two workers' synthetic "
                             "gradients in the all-reduce's measurement, an ASSUMPTION (0: independent, 1: "
                             "identical); it sets how much the sum cancels")),
       K::optional(K::integer("inverse_dimension", &FidelityParams::inverse_dimension, 2, 1024, "rows",
                              "with the `kfac` optimizer: the synthetic damped factor whose Newton–Schulz inverse is "
                              "run on the inverse GEMMs' datapath against FP64; the cost is 2 × iterations × d³ MACs")),
       K::optional(K::integer("compression_steps", &FidelityParams::compression_steps, 1, 1000, "steps",
                              "with `data_parallel/compression`: training steps of CLT-k with error feedback "
                              "measured (each step's error, the cumulative error after them, top-k overlap)"))});
  return schema;
}

// A required GEMM-formats object kept in a std::optional (the phases without
// a default always have one).
template <class Member>
param::Key<PrecisionPolicy> required_formats(std::string name, Member member, std::string description) {
  param::Key<PrecisionPolicy> key = param::Keys<PrecisionPolicy>::value(
      {std::move(name), "object", {}, {}, {}, std::move(description)}, member,
      [](const JsonReader& in) { return gemm_precision_schema().read(in); });
  key.describe_nested = [](const std::string& path, param::ObjectDocs& docs) {
    gemm_precision_schema().describe(path, docs);
  };
  return key;
}

const param::Schema<PrecisionPolicy>& precision_schema() {
  using K = param::Keys<PrecisionPolicy>;
  static const param::Schema<PrecisionPolicy> schema(
      "The precision policy: the formats each training phase uses.", [] {
        std::vector<param::Key<PrecisionPolicy>> keys;
        for (const Phase phase : phases_with_formats()) {
          const PhaseInfo& row = info(phase);
          const auto member = [i = index_of(phase)](PrecisionPolicy& p) -> std::optional<GemmPrecision>& {
            return p.gemm[i];
          };
          const std::string what = "the " + std::string(row.name) + " GEMMs: " + std::string(row.description);
          keys.push_back(row.formats_default
                             ? K::optional_object(row.name.data(), member, gemm_precision_schema(),
                                                  default_formats_text(row), what)
                             : required_formats(row.name.data(), member, what));
        }
        keys.push_back(K::object("update", &PrecisionPolicy::update, update_schema(), "the weight update"));
        keys.push_back(K::optional(K::object("first_layer", &PrecisionPolicy::first_layer, overrides_schema(),
                                             "the first layer with GEMMs, by phase (commonly kept in higher precision)"),
                                   "no overrides"));
        keys.push_back(K::optional(K::object("last_layer", &PrecisionPolicy::last_layer, overrides_schema(),
                                             "the last layer with GEMMs, by phase"),
                                   "no overrides"));
        keys.push_back(K::optional(
            K::value({"loss_scale", "string or number", {}, "`dynamic`, or a power of two in [2^-64, 2^64]", {},
                      "how error gradients are scaled before they are quantized to an operand format: `dynamic` "
                      "(as dynamic loss scaling settles: the largest power of two that keeps a tensor's "
                      "gradients in range) or a fixed factor; used by the fidelity pass"},
                     &PrecisionPolicy::loss_scale, read_loss_scale),
            "`dynamic`"));
        keys.push_back(K::optional_object("inference", &PrecisionPolicy::inference, inference_schema(),
                                          "`--mode inference` is an error",
                                          "formats for `lptsim run --mode inference`"));
        return keys;
      }());
  return schema;
}

// The policy may only ask for what the chip has.
void check_against_chip(const JsonReader& precision_in, const GemmPrecision& p,
                        const std::string& where, const AcceleratorConfig& config) {
  const auto& rates = config.chip.core.mac_array.macs_per_pe_per_cycle;
  const auto& accumulators = config.chip.core.accumulator.formats;
  const auto known = [&] {
    std::string s;
    for (const auto& [name, rate] : rates) s += (s.empty() ? "" : ", ") + name;
    return s;
  };
  for (const auto* operand : {&p.a, &p.b}) {
    if (!rates.count(operand->name))
      throw InputError("", precision_in.path() + where + (operand == &p.a ? "/a" : "/b"),
                       "format " + quoted_excerpt(operand->name) + " is not run by the MAC array (" +
                           config.chip_location("/core/mac_array/macs_per_pe_per_cycle") +
                           " lists: " + known() + ")");
  }
  if (std::find(accumulators.begin(), accumulators.end(), p.accumulator.name) ==
      accumulators.end())
    throw InputError("", precision_in.path() + where + "/accumulator",
                     "format " + quoted_excerpt(p.accumulator.name) + " is not one of " +
                         config.chip_location("/core/accumulator/formats"));
  // The fidelity pass runs every GEMM on this datapath; one the numerics
  // library cannot emulate bit-exactly is an error here, not in mid-run.
  try {
    num::Datapath{gemm_numerics(p, config.chip, 0)};
  } catch (const std::invalid_argument& e) {
    throw InputError("", precision_in.path() + where,
                     std::string(e.what()) + " (accumulator chunk length and random bits: " +
                         config.chip_location("/core/accumulator") + ", " + config.chip_location("/core/rounder") + ")");
  }
  // Energy is never a silent zero: the table must price every datapath the policy uses.
  const auto& energy = config.chip.energy;
  if (!energy.multiply(p.a.name, p.b.name))
    throw InputError("", "/chip/energy/multiply_pj",
                     "the energy table has no multiply energy for " + p.a.name + " x " + p.b.name +
                         " (used at " + precision_in.path() + where + "): add " + quoted_excerpt(p.a.name) +
                         " and " + quoted_excerpt(p.b.name) + ", or the pair " +
                         quoted_excerpt(p.a.name + " x " + p.b.name));
  if (!energy.pipeline(p.a.name, p.b.name))
    throw InputError("", "/chip/energy/array/pipeline_pj_per_pe_cycle",
                     "the energy table has no pipeline energy for " + p.a.name + " x " + p.b.name + " (used at " +
                         precision_in.path() + where + "): add " + quoted_excerpt(p.a.name) + " and " +
                         quoted_excerpt(p.b.name) + ", or the pair " + quoted_excerpt(p.a.name + " x " + p.b.name));
  if (!energy.accumulate_pj.count(p.accumulator.name))
    throw InputError("", "/chip/energy/accumulate_pj",
                     "the energy table has no accumulate energy for " + p.accumulator.name + " (used at " +
                         precision_in.path() + where + "/accumulator)");
}

const param::Schema<CompressionParams>& compression_schema() {
  using K = param::Keys<CompressionParams>;
  static const param::Schema<CompressionParams> schema(
      "ScaleCom's cyclic local top-k gradient compression (CLT-k; Chen et al., NeurIPS 2020): a leader chip picks "
      "the k = elements / ratio largest entries of its error-feedback memory plus gradient, broadcasts their indices, "
      "and every chip all-reduces only its values there; each chip keeps what it did not send in its memory. The "
      "selection, the index broadcast and the memory update run on the chips' SFUs and DRAM (docs/multi-chip.md).",
      {K::optional(K::number("ratio", &CompressionParams::ratio, 1, 1e6, "elements per value",
                             "compression ratio: elements of a bucket per value sent")),
       K::optional(K::number("memory_beta", &CompressionParams::memory_beta, 1e-6, 1, {},
                             "the memories' low-pass filter, m ← (1 − β)·m + β·(a − sent); 1: plain error feedback "
                             "(the filter's form is assumed: the paper's equation was not available to us)"))});
  return schema;
}

const param::Schema<DataParallelParams>& data_parallel_schema() {
  using K = param::Keys<DataParallelParams>;
  using core::CollectiveAlgorithm;
  static const param::Schema<DataParallelParams> schema(
      "Data-parallel training on the `system`: the batch is split evenly across the chips, and each bucket of "
      "weight gradients is all-reduced once the backward pass has produced it, while the pass goes on; a layer's "
      "update waits for its bucket (docs/multi-chip.md).",
      {K::optional(K::choice("algorithm", &DataParallelParams::algorithm,
                             {{"ring", CollectiveAlgorithm::kRing},
                              {"tree", CollectiveAlgorithm::kTree},
                              {"hierarchical", CollectiveAlgorithm::kHierarchical}},
                             "`ring`: reduce-scatter and all-gather around all chips; `tree`: reduce up a binary "
                             "tree and broadcast down (whole buckets, not pipelined); `hierarchical`: reduce-scatter "
                             "within groups (a torus's rows, or `group_chips`), ring all-reduce across them, "
                             "all-gather within")),
       K::optional(K::number("bucket_mib", &DataParallelParams::bucket_mib, 1.0 / 1024, 1 << 20, "MiB",
                             "gradients (in `gradient_format`) all-reduced together; a layer's gradients are "
                             "never split")),
       K::optional(format<DataParallelParams>("gradient_format", &DataParallelParams::gradient_format,
                                              "the format gradients travel and are added in (the additions rounded "
                                              "to the weight gradients' accumulator); a floating-point format the "
                                              "chip's MAC array or accumulator has"),
                   "the weight-gradient GEMMs' `output`"),
       K::optional(K::integer("group_chips", &DataParallelParams::group_chips, 2, core::kMaxChips, "chips",
                              "`hierarchical` on a ring or switch: chips per group (consecutive chips; it must "
                              "divide `system/chips`)"),
                   "none"),
       K::optional_object("compression", &DataParallelParams::compression, compression_schema(),
                          "dense: every gradient is all-reduced", "ScaleCom CLT-k compression of the gradients")});
  return schema;
}

// The reduction of gradients is done in their format by the chip's adders:
// one the chip knows, with an exponent.
void check_gradient_format(const JsonReader& in, const AcceleratorConfig& c) {
  const num::FormatSpec& format = c.gradient_format();
  const auto& chip = c.chip.core;
  const bool known = chip.mac_array.macs_per_pe_per_cycle.count(format.name) ||
                     std::count(chip.accumulator.formats.begin(), chip.accumulator.formats.end(), format.name);
  const std::string where = in.find("data_parallel") && in.at("data_parallel").find("gradient_format")
                                ? "/data_parallel/gradient_format"
                                : "/precision/wgrad/output";
  if (format.is_integer || !known)
    throw InputError("", where,
                     "the chips cannot all-reduce gradients in " + quoted_excerpt(format.name) +
                         ": it must be a floating-point format of the chip's " +
                         c.chip_location("/core/mac_array/macs_per_pe_per_cycle") + " or " +
                         c.chip_location("/core/accumulator/formats") +
                         (where == "/data_parallel/gradient_format" ? std::string()
                                                                    : "; set /data_parallel/gradient_format"));
}

}  // namespace

const num::FormatSpec& AcceleratorConfig::gradient_format() const {
  return data_parallel.gradient_format ? *data_parallel.gradient_format
                                       : precision.for_gemm(Phase::kWgrad, LayerPosition::kMiddle).output;
}

const param::Schema<AcceleratorConfig>& config_schema() {
  using K = param::Keys<AcceleratorConfig>;
  static const param::Schema<AcceleratorConfig> schema(
      "An accelerator config file: the chip and the precision policy (`lptsim run --config`).",
      {K::text("name", &AcceleratorConfig::name, "the config's name, shown in progress lines and reports"),
       K::optional(K::text("description", &AcceleratorConfig::description, "free text")),
       K::value({"chip", "object or string", {}, {}, {},
                 "the chip description (below), or its file name relative to the config"},
                &AcceleratorConfig::chip, [](const JsonReader& in) { return core::chip_schema().read(in); }),
       K::object("precision", &AcceleratorConfig::precision, precision_schema(), "the precision policy"),
       K::optional(K::choice("fusion", &AcceleratorConfig::fusion, fusion_choices(),
                             "element-wise layers run inside GEMM tiles: `epilogue` activations and dropout, `full` "
                             "also batch-norm, layer-norm, softmax and residual add/mul; the chip's "
                             "`core/sfu/fusion` must allow it; `run --fusion` overrides it")),
       K::optional(K::choice("residency", &AcceleratorConfig::residency, residency_choices(),
                             "`liveness`: results stay in the scratchpads while later steps read them and they fit; "
                             "`none`: every result goes through DRAM; `run --residency` overrides it")),
       K::optional(K::boolean("spill_to_host", &AcceleratorConfig::spill_to_host,
                              "when the step's memory footprint exceeds the chip's `dram/capacity_gib`: keep the "
                              "excess of the optimizer state, curvature and ESGD's copies in host memory, moved over "
                              "the chip's `host_link` around each layer's optimizer phases (simulated); `false` makes "
                              "such a step an error")),
       K::optional(K::object("fidelity", &AcceleratorConfig::fidelity, fidelity_schema(), "the fidelity pass"),
                   "the defaults below"),
       K::optional_object("system", &AcceleratorConfig::system, core::system_schema(), "one chip",
                          "a system of `chips` copies of the chip, joined by links (docs/multi-chip.md)"),
       K::optional(K::object("data_parallel", &AcceleratorConfig::data_parallel, data_parallel_schema(),
                             "how a `system` trains: gradient buckets, all-reduce algorithm and format"),
                   "the defaults below")});
  return schema;
}

const GemmPrecision& PrecisionPolicy::for_gemm(Phase formats_of, LayerPosition position) const {
  const std::size_t i = index_of(formats_of);
  if (position == LayerPosition::kFirst && first_layer[i]) return *first_layer[i];
  if (position == LayerPosition::kLast && last_layer[i]) return *last_layer[i];
  if (gemm[i]) return *gemm[i];
  if (const auto fallback = info(formats_of).formats_default) return for_gemm(*fallback, position);
  throw std::logic_error(std::string("the precision policy has no formats for phase ") + to_string(formats_of));
}

PrecisionPolicy PrecisionPolicy::for_inference() const {
  PrecisionPolicy p = *this;
  const std::size_t fwd = index_of(Phase::kFwd);
  p.gemm[fwd] = inference.value().gemm;
  p.first_layer[fwd] = inference->first_layer;
  p.last_layer[fwd] = inference->last_layer;
  return p;
}

std::string AcceleratorConfig::chip_location(std::string_view path_in_chip) const {
  if (!chip_file.empty()) return chip_file + ": " + std::string(path_in_chip);
  return (file.empty() ? std::string() : file + ": ") + "/chip" + std::string(path_in_chip);
}

AcceleratorConfig parse_config(const JsonReader& in, const std::string& chip_file) {
  AcceleratorConfig c = config_schema().read(in);
  c.chip_file = chip_file;
  const JsonReader precision_in = in.at("precision");

  if (const auto why = unsupported_fusion(c.chip.core.sfu.fusion, c.fusion))
    throw InputError("", "/fusion", *why + ", set at " + c.chip_location("/core/sfu/fusion"));
  for (const auto& [name, rate] : c.chip.core.mac_array.macs_per_pe_per_cycle)
    if (!num::find_format(name))
      throw InputError("", "/chip/core/mac_array/macs_per_pe_per_cycle/" + name,
                       "unknown format name " + quoted_excerpt(name) +
                           "; `lptsim numerics formats` lists them");
  // An L0 buffer must hold the operands of the smallest tile the mapper may
  // give a corelet: one PE-row block of A and one column block of B, one
  // k-granule deep, at every format the array runs.
  if (const auto& l0 = c.chip.core.mac_array.l0) {
    const auto& array = c.chip.core.mac_array;
    for (const auto& [name, rate] : array.macs_per_pe_per_cycle) {
      const int bits = num::find_format(name)->total_bits();
      const std::uint64_t tile = core::packed_bytes(static_cast<std::uint64_t>(array.rows) * rate, bits) +
                                 core::packed_bytes(static_cast<std::uint64_t>(array.cols) * rate, bits);
      if (tile > l0->size_bytes())
        throw InputError("", "/chip/core/mac_array/l0/size_kib",
                         "an L0 of " + std::to_string(l0->size_kib) + " KiB cannot hold one " + name +
                             " tile of a " + std::to_string(array.rows) + "x" + std::to_string(array.cols) +
                             " corelet (" + std::to_string(tile) + " bytes)");
    }
  }
  if (c.spill_to_host && !c.chip.host_link)
    throw InputError("", "/spill_to_host",
                     "spilling to host memory needs the chip's link to it: add " + c.chip_location("/host_link"));
  if (in.find("data_parallel") && !c.system)
    in.at("data_parallel").fail("data-parallel training needs a \"system\" of chips");
  if (c.system) {
    check_gradient_format(in, c);
    const bool groups_apply = c.data_parallel.algorithm == core::CollectiveAlgorithm::kHierarchical &&
                              c.system->topology != core::ChipTopologyKind::kTorus2d;
    if (groups_apply && (c.data_parallel.group_chips == 0 || c.system->chips % c.data_parallel.group_chips != 0 ||
                         c.data_parallel.group_chips == c.system->chips))
      throw InputError("", "/data_parallel/group_chips",
                       "a hierarchical all-reduce on a " + std::string(core::to_string(c.system->topology)) +
                           " needs groups of chips: a number that divides the " + std::to_string(c.system->chips) +
                           " chips, less than all of them (on a torus2d the groups are its rows)");
    if (!groups_apply && c.data_parallel.group_chips != 0)
      in.at("data_parallel").at("group_chips").fail("only a hierarchical all-reduce on a ring or switch has groups");
  }
  if (const auto* kfac = std::get_if<Kfac>(&c.precision.update.optimizer); kfac && c.system) {
    const double workers = kfac->grad_worker_fraction * c.system->chips;
    if (std::abs(workers - std::round(workers)) > 1e-9 || std::round(workers) < 1 ||
        c.system->chips % static_cast<int>(std::round(workers)) != 0)
      throw InputError("", "/precision/update/optimizer/grad_worker_fraction",
                       "KAISA's gradient workers are a whole number of chips dividing the " +
                           std::to_string(c.system->chips) + ": " + param::shown_number(kfac->grad_worker_fraction) +
                           " × " + std::to_string(c.system->chips) + " chips is " + param::shown_number(workers));
  }
  for (const Phase p : phases_with_formats()) {
    const std::size_t i = index_of(p);
    const std::string phase = "/" + std::string(to_string(p));
    if (c.precision.gemm[i]) check_against_chip(precision_in, *c.precision.gemm[i], phase, c);
    if (c.precision.first_layer[i])
      check_against_chip(precision_in, *c.precision.first_layer[i], "/first_layer" + phase, c);
    if (c.precision.last_layer[i])
      check_against_chip(precision_in, *c.precision.last_layer[i], "/last_layer" + phase, c);
  }
  if (const auto& inference = c.precision.inference) {
    check_against_chip(precision_in, inference->gemm, "/inference/gemm", c);
    if (inference->first_layer)
      check_against_chip(precision_in, *inference->first_layer, "/inference/first_layer", c);
    if (inference->last_layer)
      check_against_chip(precision_in, *inference->last_layer, "/inference/last_layer", c);
  }
  return c;
}

std::filesystem::path inline_energy_table(nlohmann::json& chip, const std::filesystem::path& named_in) {
  if (!chip.contains("energy") || !chip["energy"].is_string()) return {};
  const std::filesystem::path energy_file = named_in.parent_path() / chip["energy"].get<std::string>();
  try {
    chip["energy"] = load_json_file(energy_file);
  } catch (const InputError& e) {
    throw InputError(e.file(), e.json_path(), e.message() + " (the energy table named by " + named_in.string() + ")");
  }
  return energy_file;
}

nlohmann::json load_chip_document(const std::filesystem::path& chip_file) {
  nlohmann::json chip = load_json_file(chip_file);
  if (chip.is_object()) inline_energy_table(chip, chip_file);
  return chip;
}

core::ChipParams load_chip(const std::filesystem::path& file) {
  nlohmann::json doc = load_json_file(file);
  const std::filesystem::path energy_file = doc.is_object() ? inline_energy_table(doc, file) : std::filesystem::path();
  try {
    core::ChipParams chip;
    from_json(JsonReader(doc, ""), chip);
    return chip;
  } catch (const InputError& e) {
    const std::string& path = e.json_path();
    if (!energy_file.empty() && e.file().empty() && (path == "/energy" || path.starts_with("/energy/")))
      throw InputError(energy_file.string(), path.substr(7), e.message() + " (energy table of " + file.string() + ")");
    throw e.in_file(file.string());
  }
}

ConfigDocument read_config_document(const std::filesystem::path& file) {
  ConfigDocument doc;
  doc.file = file;
  doc.json = load_json_file(file);
  expect_document_kind(doc.json, DocumentKind::kConfig, file.string());
  // "chip" may name a chip description file (relative to this config), so that
  // several precision policies share one chip without copies.
  if (doc.json.is_object() && doc.json.contains("chip") && doc.json["chip"].is_string()) {
    doc.chip_file = file.parent_path() / doc.json["chip"].get<std::string>();
    try {
      doc.json["chip"] = load_json_file(doc.chip_file);
    } catch (const InputError& e) {
      throw InputError(e.file(), e.json_path(),
                       e.message() + " (the chip description named at " + file.string() + ": /chip)");
    }
  }
  if (doc.json.is_object() && doc.json.contains("chip") && doc.json["chip"].is_object())
    doc.energy_file = inline_energy_table(doc.json["chip"], doc.chip_file.empty() ? file : doc.chip_file);
  return doc;
}

void apply_override(ConfigDocument& doc, std::string_view text) {
  const std::string where = "--set " + quoted_excerpt(text);
  const auto equals = text.find('=');
  if (equals == std::string_view::npos || text.empty() || text.front() != '/')
    throw InputError(doc.file.string(), "", where + ": expected /json/pointer=value, e.g. /chip/cores=8");
  const std::string pointer_text(text.substr(0, equals));
  const std::string value_text(text.substr(equals + 1));
  nlohmann::json::json_pointer pointer;
  try {
    pointer = nlohmann::json::json_pointer(pointer_text);
  } catch (const nlohmann::json::exception&) {
    throw InputError(doc.file.string(), pointer_text, where + ": not a JSON pointer (RFC 6901)");
  }
  nlohmann::json value = nlohmann::json::parse(value_text, nullptr, false);
  if (value.is_discarded()) value = value_text;  // a bare word is a string
  const nlohmann::json::json_pointer parent = pointer.parent_pointer();
  if (!doc.json.contains(parent)) {
    // Create the missing objects below the deepest object that exists.
    std::vector<nlohmann::json::json_pointer> missing;
    for (auto p = parent; !doc.json.contains(p); p = p.parent_pointer()) missing.push_back(p);
    const nlohmann::json::json_pointer existing = missing.back().parent_pointer();
    if (!doc.json[existing].is_object())
      throw InputError(doc.file.string(), missing.back().to_string(),
                       where + ": the config has nothing at " + missing.back().to_string() + " (" +
                           (existing.empty() ? std::string("the document") : existing.to_string()) +
                           " is not an object)");
    for (auto p = missing.rbegin(); p != missing.rend(); ++p) {
      doc.json[*p] = nlohmann::json::object();
      doc.created.emplace_back(p->to_string(), pointer_text);
    }
  }
  nlohmann::json& container = doc.json[parent];
  const std::string& key = pointer.back();
  if (container.is_array()) {
    // RFC 6901 array indices: digits, no leading zero.
    const bool index = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos &&
                       (key.size() == 1 || key[0] != '0');
    if (!index || key.size() > 18 || std::stoull(key) >= container.size())
      throw InputError(doc.file.string(), pointer_text,
                       where + ": no element " + quoted_excerpt(key) + " in an array of " +
                           std::to_string(container.size()));
  } else if (!container.is_object()) {
    throw InputError(doc.file.string(), parent.to_string(), where + ": " + parent.to_string() + " is not an object");
  }
  doc.json[pointer] = std::move(value);
  doc.overridden.push_back(pointer_text);
}

AcceleratorConfig parse_config_document(const ConfigDocument& doc) {
  const std::string file = doc.file.string();
  try {
    AcceleratorConfig config = parse_config(JsonReader(doc.json, ""), doc.chip_file.string());
    config.file = file;
    return config;
  } catch (const InputError& e) {
    std::string message = e.message();
    const std::string& path = e.json_path();
    for (const std::string& pointer : doc.overridden)
      if (path == pointer || path.starts_with(pointer + "/")) message += " (set by --set " + pointer + ")";
    for (const auto& [object, pointer] : doc.created)
      if (path == object) message += " (created by --set " + pointer + ")";
    const bool in_energy = path == "/chip/energy" || path.starts_with("/chip/energy/");
    if (!doc.energy_file.empty() && e.file().empty() && in_energy)
      throw InputError(doc.energy_file.string(), path.substr(12),
                       message + " (energy table of " + (doc.chip_file.empty() ? doc.file : doc.chip_file).string() + ")");
    if (!doc.chip_file.empty() && e.file().empty() && (path == "/chip" || path.starts_with("/chip/")))
      throw InputError(doc.chip_file.string(), path.substr(5), message + " (chip description of " + file + ")");
    throw InputError(e.file().empty() ? file : e.file(), path, message);
  }
}

AcceleratorConfig load_config(const std::filesystem::path& file) {
  return parse_config_document(read_config_document(file));
}

namespace {

nlohmann::json gemm_json(const GemmPrecision& p) {
  nlohmann::json out = {{"a", p.a}, {"b", p.b}, {"accumulator", p.accumulator}, {"output", p.output}};
  if (p.accumulation_rounding) out["accumulation_rounding"] = num::rounding_name(*p.accumulation_rounding);
  if (p.output_rounding) out["output_rounding"] = num::rounding_name(*p.output_rounding);
  return out;
}

nlohmann::json phase_formats_json(const PhaseFormats& formats) {
  nlohmann::json out = nlohmann::json::object();
  for (const Phase phase : phases_with_formats())
    if (const auto& f = formats[index_of(phase)]) out[std::string(to_string(phase))] = gemm_json(*f);
  return out;
}

}  // namespace

void to_json(nlohmann::json& out, const AcceleratorConfig& config) {
  nlohmann::json precision = phase_formats_json(config.precision.gemm);
  const auto& u = config.precision.update;
  precision["update"] = {
      {"weights", u.weights},
      {"optimizer_state", u.optimizer_state},
      {"optimizer", optimizer_json(u.optimizer)},
      {"rounding", u.stochastic_rounding ? "stochastic" : "nearest"}};
  precision["loss_scale"] = config.precision.loss_scale.dynamic ? nlohmann::json("dynamic")
                                                                 : nlohmann::json(config.precision.loss_scale.factor);
  precision["first_layer"] = phase_formats_json(config.precision.first_layer);
  precision["last_layer"] = phase_formats_json(config.precision.last_layer);
  if (const auto& inference = config.precision.inference) {
    nlohmann::json j = {{"gemm", gemm_json(inference->gemm)}};
    if (inference->first_layer) j["first_layer"] = gemm_json(*inference->first_layer);
    if (inference->last_layer) j["last_layer"] = gemm_json(*inference->last_layer);
    precision["inference"] = j;
  }
  out = {{"name", config.name},
         {"description", config.description},
         {"chip", config.chip},
         {"precision", precision},
         {"fusion", to_string(config.fusion)},
         {"residency", to_string(config.residency)},
         {"spill_to_host", config.spill_to_host},
         {"fidelity",
          {{"enabled", config.fidelity.enabled},
           {"sampled_outputs", config.fidelity.sampled_outputs},
           {"max_operand_values", config.fidelity.max_operand_values},
           {"seed", config.fidelity.seed},
           {"min_sqnr_db", config.fidelity.min_sqnr_db},
           {"allreduce_elements", config.fidelity.allreduce_elements},
           {"worker_correlation", config.fidelity.worker_correlation},
           {"compression_steps", config.fidelity.compression_steps},
           {"inverse_dimension", config.fidelity.inverse_dimension}}}};
  if (config.system) {
    out["system"] = *config.system;
    const auto& dp = config.data_parallel;
    out["data_parallel"] = {{"algorithm", core::to_string(dp.algorithm)},
                            {"bucket_mib", dp.bucket_mib},
                            {"gradient_format", config.gradient_format()}};
    if (dp.group_chips > 0) out["data_parallel"]["group_chips"] = dp.group_chips;
    if (dp.compression)
      out["data_parallel"]["compression"] = {{"ratio", dp.compression->ratio},
                                             {"memory_beta", dp.compression->memory_beta}};
  }
}

}  // namespace lpt
