#include "sim/fidelity.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <numbers>
#include <sstream>
#include <system_error>
#include <unistd.h>

#include "models/common/input_file.hpp"
#include "models/common/text.hpp"
#include "models/numerics/gemm.hpp"
#include "models/numerics/random.hpp"
#include "sim/npy.hpp"

namespace lpt {

namespace {

// Bumped when the pass's method changes, so that cached results of an older
// method are not served.
constexpr int kFidelityMethodVersion = 1;

// Default error gradients (an assumption, overridable per layer): a random
// sign and a log2-magnitude spread of 3 binades, wider than the 1.6 binades of
// a normal variable, for the heavy tails of backpropagated errors. The median
// matters only under a static loss scale; 2^-20 puts it where unscaled FP16
// gradients start to underflow.
constexpr double kGradientLog2Median = -20;
constexpr double kGradientLog2Std = 3;

// A tensor's values as drawn: the distribution, or a real tensor's elements.
struct ValueSource {
  TensorValues values;
  std::shared_ptr<const std::vector<double>> elements;  // kFile
  std::string description;

  // Element `index` of the tensor keyed by `random`: a pure function of both.
  double draw(const num::CounterRandom& random, std::uint64_t index) const {
    const auto block = random.block(index);
    const double u1 = static_cast<double>(block[0] >> 11) * 0x1p-53;
    const double u2 = static_cast<double>(block[1] >> 11) * 0x1p-53;
    const auto standard_normal = [&] {
      // Box-Muller; 1 - u1 is in (0, 1], so the log is finite.
      return std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * std::numbers::pi * u2);
    };
    double x = 0;
    switch (values.kind) {
      case TensorValues::Kind::kNormal: x = values.mean + values.std * standard_normal(); break;
      case TensorValues::Kind::kUniform: x = values.low + (values.high - values.low) * u2; break;
      case TensorValues::Kind::kLogNormal: {
        const double magnitude = std::exp2(values.log2_median + values.log2_std * standard_normal());
        x = values.positive || (block[1] & 1) ? magnitude : -magnitude;
        break;
      }
      case TensorValues::Kind::kFile:
        x = (*elements)[static_cast<std::size_t>(block[1] % elements->size())];
        break;
    }
    return apply(values.function, x);
  }
};

std::string describe(const TensorValues& v) {
  std::ostringstream s;
  switch (v.kind) {
    case TensorValues::Kind::kNormal: s << "normal(" << v.mean << ", " << v.std << ")"; break;
    case TensorValues::Kind::kUniform: s << "uniform[" << v.low << ", " << v.high << ")"; break;
    case TensorValues::Kind::kLogNormal:
      s << (v.positive ? "" : "±") << "2^normal(" << v.log2_median << ", " << v.log2_std << ")";
      break;
    case TensorValues::Kind::kFile: s << v.file; break;
  }
  if (v.function != Nonlinearity::kNone) s << " through " << to_string(v.function);
  return s.str();
}

Nonlinearity nonlinearity_of(ElementwiseOp op) {
  switch (op) {
    case ElementwiseOp::kRelu: return Nonlinearity::kRelu;
    case ElementwiseOp::kRelu6: return Nonlinearity::kRelu6;
    case ElementwiseOp::kGelu: return Nonlinearity::kGelu;
    case ElementwiseOp::kTanh: return Nonlinearity::kTanh;
    case ElementwiseOp::kSigmoid: return Nonlinearity::kSigmoid;
    case ElementwiseOp::kSilu: return Nonlinearity::kSilu;
    case ElementwiseOp::kHardswish: return Nonlinearity::kHardswish;
    default: return Nonlinearity::kNone;
  }
}

// A layer's input as the defaults see it: standard normal (normalised data,
// batch- or layer-norm outputs) through the nearest nonlinearity before the
// layer in the trace; softmax probabilities over the reduction when a softmax
// comes first (exp(z) / (k sqrt(e)) for z ~ N(0, 1): log-normal).
TensorValues default_activations(const Trace& trace, std::size_t layer, std::int64_t reduction) {
  TensorValues v;
  for (std::size_t i = layer; i-- > 0;) {
    const Layer& before = trace.layers[i];
    if (before.has_gemm()) break;
    const auto* e = std::get_if<ElementwiseLayer>(&before.shape);
    if (!e) continue;  // a pooling layer keeps the distribution's kind
    if (e->op == ElementwiseOp::kDropout) continue;
    if (e->op == ElementwiseOp::kSoftmax) {
      v.kind = TensorValues::Kind::kLogNormal;
      v.positive = true;
      v.log2_std = std::numbers::log2e;
      v.log2_median = -std::log2(static_cast<double>(std::max<std::int64_t>(reduction, 1))) - 0.5 * std::numbers::log2e;
      return v;
    }
    v.function = nonlinearity_of(e->op);
    break;
  }
  return v;
}

// He initialisation (He et al., ICCV 2015): N(0, 2 / fan-in), the fan-in being
// the reduction of the layer's first forward GEMM that reads weights.
TensorValues default_weights(const LayerWork& layer) {
  std::int64_t fan_in = 1;
  for (const GemmWork& g : layer.phase(Phase::kFwd).gemms)
    if (g.b_from == OperandSource::kWeights) {
      fan_in = g.k;
      break;
    }
  TensorValues v;
  v.std = std::sqrt(2.0 / static_cast<double>(std::max<std::int64_t>(fan_in, 1)));
  return v;
}

TensorValues default_gradients() {
  TensorValues v;
  v.kind = TensorValues::Kind::kLogNormal;
  v.log2_median = kGradientLog2Median;
  v.log2_std = kGradientLog2Std;
  return v;
}

class SourceResolver {
 public:
  SourceResolver(const Trace& trace) : trace_(trace) {}

  ValueSource resolve(const LayerWork& work, TensorRole role, std::int64_t reduction) {
    const Layer& layer = trace_.layers.at(work.layer_index);
    const LayerTensorValues& given = layer.fidelity;
    const std::optional<TensorValues>& override = role == TensorRole::kWeight     ? given.weights
                                                  : role == TensorRole::kGradient ? given.gradients
                                                                                  : given.activations;
    ValueSource source;
    if (override) {
      source.values = *override;
      if (source.values.kind == TensorValues::Kind::kFile) {
        const std::string key = std::string(role == TensorRole::kWeight     ? "weights"
                                            : role == TensorRole::kGradient ? "gradients"
                                                                            : "activations");
        source.elements = elements(layer, key, source.values.file);
      }
      source.description = describe(source.values) + " (trace)";
      return source;
    }
    switch (role) {
      case TensorRole::kWeight: source.values = default_weights(work); break;
      case TensorRole::kGradient: source.values = default_gradients(); break;
      case TensorRole::kActivation:
        source.values = default_activations(trace_, work.layer_index, reduction);
        break;
    }
    source.description = describe(source.values);
    return source;
  }

 private:
  std::shared_ptr<const std::vector<double>> elements(const Layer& layer, const std::string& key,
                                                      const std::string& file) {
    const std::filesystem::path base =
        trace_.file.empty() ? std::filesystem::path() : std::filesystem::path(trace_.file).parent_path();
    const std::filesystem::path path = base / file;
    if (const auto known = files_.find(path.string()); known != files_.end()) return known->second;
    const std::string where = layer.where + "/fidelity/" + key + "/npy";
    NpyArray array;
    try {
      array = read_npy(path);
    } catch (const InputError& e) {
      throw InputError(trace_.file, where, e.message() + " (" + path.string() + ")");
    }
    std::vector<double> finite;
    for (const double v : array.values)
      if (std::isfinite(v)) finite.push_back(v);
    if (finite.empty())
      throw InputError(trace_.file, where, path.string() + " has no finite element to draw from (shape " +
                                               array.shape_text() + ")");
    auto shared = std::make_shared<const std::vector<double>>(std::move(finite));
    files_.emplace(path.string(), shared);
    return shared;
  }

  const Trace& trace_;
  std::map<std::string, std::shared_ptr<const std::vector<double>>> files_;
};

// The power of two the operand is multiplied by before quantization.
double operand_scale(TensorRole role, const LossScale& loss_scale, const num::Format& format,
                     const std::vector<double>& values) {
  if (role != TensorRole::kGradient) return 1;
  if (!loss_scale.dynamic) return loss_scale.factor;
  double largest = 0;
  for (const double v : values) largest = std::max(largest, std::fabs(v));
  if (largest == 0) return 1;
  return std::exp2(std::floor(std::log2(format.max_finite() / largest)));
}

// Quantizes `values` (times `scale`) to `format` with its own rounding.
num::EncodedMatrix quantize(const num::Format& format, const std::vector<double>& values, std::size_t rows,
                            std::size_t cols, double scale, OperandCounts& counts) {
  num::EncodedMatrix out{rows, cols, std::vector<std::uint32_t>(values.size())};
  const bool flushes = format.spec().subnormals == num::Subnormals::kFlush;
  for (std::size_t e = 0; e < values.size(); ++e) {
    const double x = values[e] * scale;
    const num::Conversion c = format.convert(x, format.spec().default_rounding);
    out.codes[e] = c.bits;
    ++counts.values;
    if (c.flags.underflow) ++counts.underflow;
    if (c.flags.overflow) ++counts.overflow;
    if (flushes && x != 0 && std::fabs(x) < format.min_normal()) ++counts.flushed_subnormals;
  }
  return out;
}

GemmFidelity measure_gemm(const GemmWork& g, const LayerWork& layer, Phase phase, const GemmDatapath& datapath,
                          const ValueSource& a_source, const ValueSource& b_source, const FidelityParams& params,
                          std::uint64_t gemm_index) {
  GemmFidelity f;
  f.layer = layer.layer_index;
  f.phase = phase;
  f.label = g.label;
  f.m = g.m, f.n = g.n, f.k = g.k;
  f.datapath = datapath.label();
  f.a_values = a_source.description;
  f.b_values = b_source.description;
  if (2 * g.k > params.max_operand_values) {
    f.not_measured = "its reduction of " + std::to_string(g.k) + " needs more than fidelity/max_operand_values = " +
                     std::to_string(params.max_operand_values) + " operand values";
    return f;
  }
  // The grid of about sqrt(n) x sqrt(n) outputs, shrunk to the budget.
  std::int64_t wanted = params.sampled_outputs;
  for (;; wanted = std::max<std::int64_t>(1, wanted / 2)) {
    f.rows = std::min<std::int64_t>(g.m, static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(wanted)))));
    f.cols = std::min<std::int64_t>(g.n, (wanted + f.rows - 1) / f.rows);
    if ((f.rows + f.cols) * g.k <= params.max_operand_values || wanted == 1) break;
  }
  const auto rows = static_cast<std::size_t>(f.rows), cols = static_cast<std::size_t>(f.cols);
  const auto k = static_cast<std::size_t>(g.k);

  // Streams: two per GEMM, so each operand's elements are independent of every other's.
  const num::CounterRandom a_random(params.seed, 2 * gemm_index), b_random(params.seed, 2 * gemm_index + 1);
  num::Matrix a(rows, k), b(k, cols);
  for (std::size_t e = 0; e < a.values.size(); ++e) a.values[e] = a_source.draw(a_random, e);
  for (std::size_t e = 0; e < b.values.size(); ++e) b.values[e] = b_source.draw(b_random, e);

  num::DatapathConfig numerics = datapath.numerics;
  numerics.seed = params.seed ^ (gemm_index * 0x9e3779b97f4a7c15ull);  // its own stochastic roundings
  const num::Datapath emulated(numerics);
  const num::Format& result_format = emulated.result_format();
  const num::Matrix reference = num::gemm_fp64(a, b);
  f.a_scale = operand_scale(datapath.a_role, datapath.loss_scale, emulated.operand_a(), a.values);
  f.b_scale = operand_scale(datapath.b_role, datapath.loss_scale, emulated.operand_b(), b.values);
  // Dynamic scaling also backs off when the scaled results overflow (as dynamic
  // loss scaling halves its scale on an overflowed step): start from the scale
  // that leaves the largest reference result a factor 2 of headroom, then
  // halve while any result overflows.
  const bool dynamic = datapath.loss_scale.dynamic &&
                       (datapath.a_role == TensorRole::kGradient || datapath.b_role == TensorRole::kGradient);
  double& scale = datapath.a_role == TensorRole::kGradient ? f.a_scale : f.b_scale;
  if (dynamic) {
    double largest = 0;
    for (const double v : reference.values) largest = std::max(largest, std::fabs(v));
    const double fit = largest * f.a_scale * f.b_scale;
    if (fit > 0 && fit > result_format.max_finite() / 2)
      scale /= std::exp2(std::ceil(std::log2(2 * fit / result_format.max_finite())));
  }
  for (int attempt = 0;; ++attempt) {
    OperandCounts counts;
    const num::EncodedMatrix a_codes = quantize(emulated.operand_a(), a.values, rows, k, f.a_scale, counts);
    const num::EncodedMatrix b_codes = quantize(emulated.operand_b(), b.values, k, cols, f.b_scale, counts);
    const num::Matrix result = num::gemm(emulated, a_codes, b_codes);
    const bool overflowed = std::any_of(result.values.begin(), result.values.end(), [&](double v) {
      return !std::isfinite(v) || std::fabs(v) >= result_format.max_finite();
    });
    if (dynamic && overflowed && attempt < 64) {
      scale /= 2;
      continue;
    }
    f.operands = counts;
    const double unscale = 1 / (f.a_scale * f.b_scale);  // a power of two: exact
    for (std::size_t e = 0; e < reference.values.size(); ++e)
      f.result.add(reference.values[e], result.values[e] * unscale, result_format);
    break;
  }
  return f;
}

nlohmann::json tally_json(const num::ErrorTally& t) {
  return {{"count", t.count},   {"nonfinite_references", t.nonfinite_references}, {"finite_results", t.finite_results},
          {"underflow", t.underflow}, {"overflow", t.overflow}, {"nan", t.nan},
          {"signal", t.signal}, {"noise", t.noise}, {"signed_error", t.signed_error},
          {"max_abs_error", t.max_abs_error}};
}

num::ErrorTally tally_from_json(const nlohmann::json& j) {
  num::ErrorTally t;
  t.count = j.at("count"), t.nonfinite_references = j.at("nonfinite_references");
  t.finite_results = j.at("finite_results"), t.underflow = j.at("underflow"), t.overflow = j.at("overflow");
  t.nan = j.at("nan"), t.signal = j.at("signal"), t.noise = j.at("noise");
  t.signed_error = j.at("signed_error"), t.max_abs_error = j.at("max_abs_error");
  return t;
}

}  // namespace

void OperandCounts::merge(const OperandCounts& o) {
  values += o.values;
  underflow += o.underflow;
  overflow += o.overflow;
  flushed_subnormals += o.flushed_subnormals;
}

std::vector<LayerPhaseFidelity> FidelityReport::layer_phases() const {
  std::vector<LayerPhaseFidelity> out;
  std::vector<num::ErrorTally> tallies;
  for (const GemmFidelity& g : gemms) {
    if (out.empty() || out.back().layer != g.layer || out.back().phase != g.phase) {
      out.push_back({g.layer, g.phase, {}, {}});
      tallies.emplace_back();
    }
    tallies.back().merge(g.result);
    out.back().operands.merge(g.operands);
    if (!g.not_measured.empty()) ++out.back().not_measured;
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i].result = tallies[i].stats();
  return out;
}

FidelityReport measure_fidelity(const AcceleratorConfig& config, const Trace& trace,
                                const std::vector<LayerWork>& layers, const std::set<Phase>& phases) {
  FidelityReport report;
  report.params = config.fidelity;
  const std::vector<LayerPosition> positions = layer_positions(layers);
  SourceResolver sources(trace);
  std::uint64_t gemm_index = 0;
  for (const LayerWork& layer : layers) {
    for (const Phase phase : phases) {
      if (phase == Phase::kUpdate) continue;
      for (const GemmWork& g : layer.phase(phase).gemms) {
        const GemmDatapath datapath = resolve_gemm_datapath(config, g, positions[layer.layer_index]);
        const ValueSource a = sources.resolve(layer, datapath.a_role, g.k);
        const ValueSource b = sources.resolve(layer, datapath.b_role, g.k);
        report.gemms.push_back(measure_gemm(g, layer, phase, datapath, a, b, config.fidelity, gemm_index++));
      }
    }
  }
  return report;
}

std::string fidelity_key(const AcceleratorConfig& config, const Trace& trace, const std::set<Phase>& phases,
                         bool inference) {
  nlohmann::json config_json = config;
  nlohmann::json key = {{"method", kFidelityMethodVersion},
                        {"version", LPTSIM_VERSION},
                        {"precision", config_json.at("precision")},
                        {"accumulator", config_json.at("chip").at("core").at("accumulator")},
                        {"rounder", config_json.at("chip").at("core").at("rounder")},
                        {"fidelity", config_json.at("fidelity")},
                        {"trace", trace},
                        {"inference", inference}};
  for (const Phase p : phases) key["phases"].push_back(to_string(p));
  // A real tensor's file is part of the input: its size and time of change stand for its contents.
  const std::filesystem::path base =
      trace.file.empty() ? std::filesystem::path() : std::filesystem::path(trace.file).parent_path();
  for (const Layer& layer : trace.layers)
    for (const auto* v : {&layer.fidelity.activations, &layer.fidelity.weights, &layer.fidelity.gradients})
      if (*v && (*v)->kind == TensorValues::Kind::kFile) {
        std::error_code error;
        const auto path = base / (*v)->file;
        const auto size = std::filesystem::file_size(path, error);
        const auto time = std::filesystem::last_write_time(path, error);
        key["files"].push_back({path.string(), error ? 0 : size,
                                error ? 0 : static_cast<std::int64_t>(time.time_since_epoch().count())});
      }
  return stable_digest(key.dump());
}

FidelityReport cached_fidelity(const std::filesystem::path& cache_dir, const std::string& key,
                               const AcceleratorConfig& config, const Trace& trace,
                               const std::vector<LayerWork>& layers, const std::set<Phase>& phases) {
  const std::filesystem::path entry = cache_dir / (key + ".json");
  std::error_code error;
  if (std::filesystem::is_regular_file(entry, error)) {
    try {
      FidelityReport cached = fidelity_from_json(nlohmann::json::parse(read_input_file(entry, std::uintmax_t{256} << 20)));
      cached.from_cache = true;
      return cached;
    } catch (const std::exception&) {
      // A damaged entry (a worker killed mid-write cannot leave one, but a
      // full disk can) is recomputed and rewritten.
    }
  }
  FidelityReport report = measure_fidelity(config, trace, layers, phases);
  std::filesystem::create_directories(cache_dir, error);
  const std::filesystem::path temporary = cache_dir / (key + ".json." + std::to_string(::getpid()));
  {
    std::ofstream out(temporary, std::ios::binary);
    out << to_json(report).dump();
    if (!out.flush()) {
      std::filesystem::remove(temporary, error);
      return report;  // a cache that cannot be written only costs time
    }
  }
  std::filesystem::rename(temporary, entry, error);
  if (error) std::filesystem::remove(temporary, error);
  return report;
}

nlohmann::json to_json(const FidelityReport& r) {
  nlohmann::json gemms = nlohmann::json::array();
  for (const GemmFidelity& g : r.gemms)
    gemms.push_back({{"layer", g.layer},
                     {"phase", to_string(g.phase)},
                     {"label", g.label},
                     {"m", g.m}, {"n", g.n}, {"k", g.k},
                     {"rows", g.rows}, {"cols", g.cols}, {"not_measured", g.not_measured},
                     {"datapath", g.datapath},
                     {"a_values", g.a_values}, {"b_values", g.b_values},
                     {"a_scale", g.a_scale}, {"b_scale", g.b_scale},
                     {"result", tally_json(g.result)},
                     {"operands",
                      {{"values", g.operands.values},
                       {"underflow", g.operands.underflow},
                       {"overflow", g.operands.overflow},
                       {"flushed_subnormals", g.operands.flushed_subnormals}}}});
  return {{"params",
           {{"enabled", r.params.enabled},
            {"sampled_outputs", r.params.sampled_outputs},
            {"max_operand_values", r.params.max_operand_values},
            {"seed", r.params.seed},
            {"min_sqnr_db", r.params.min_sqnr_db}}},
          {"gemms", gemms}};
}

FidelityReport fidelity_from_json(const nlohmann::json& j) {
  FidelityReport r;
  const auto& p = j.at("params");
  r.params.enabled = p.at("enabled");
  r.params.sampled_outputs = p.at("sampled_outputs");
  r.params.seed = p.at("seed");
  r.params.min_sqnr_db = p.at("min_sqnr_db");
  r.params.max_operand_values = p.at("max_operand_values");
  for (const auto& g : j.at("gemms")) {
    GemmFidelity f;
    f.layer = g.at("layer");
    const std::string phase = g.at("phase");
    f.phase = phase == "bwd" ? Phase::kBwd : phase == "wgrad" ? Phase::kWgrad : Phase::kFwd;
    f.label = g.at("label");
    f.m = g.at("m"), f.n = g.at("n"), f.k = g.at("k");
    f.rows = g.at("rows"), f.cols = g.at("cols");
    f.not_measured = g.at("not_measured");
    f.datapath = g.at("datapath");
    f.a_values = g.at("a_values"), f.b_values = g.at("b_values");
    f.a_scale = g.at("a_scale"), f.b_scale = g.at("b_scale");
    f.result = tally_from_json(g.at("result"));
    const auto& o = g.at("operands");
    f.operands = {o.at("values"), o.at("underflow"), o.at("overflow"), o.at("flushed_subnormals")};
    r.gemms.push_back(std::move(f));
  }
  return r;
}

}  // namespace lpt
