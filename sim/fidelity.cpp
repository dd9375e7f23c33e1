#include "sim/fidelity.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <numbers>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "models/common/checked_math.hpp"
#include "models/common/input_file.hpp"
#include "models/common/text.hpp"
#include "models/numerics/datapath.hpp"
#include "models/numerics/gemm.hpp"
#include "models/numerics/gradient_reduction.hpp"
#include "models/numerics/random.hpp"
#include "sim/format_json.hpp"
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

// An activation operand as the defaults see it: standard normal (normalised
// data, norm layers' or GEMMs' outputs); the layer's own input (the previous
// layer's output in the trace) through the nearest nonlinearity before the
// layer, or, after a softmax, its probabilities over the forward reduction k
// (exp(z) / (k sqrt(e)) for z ~ N(0, 1): log-normal). Other activation
// operands (a matmul's B, an LSTM's h) are standard normal.
TensorValues default_activations(const Trace& trace, std::size_t layer, bool layer_input, std::int64_t reduction) {
  TensorValues v;
  if (!layer_input) return v;
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

// The sizes a real tensor of the layer may have, for a .npy given for `key`:
// the weights whole (a matmul has none), activations and gradients as any
// number of samples (a multiple of one sample's elements). Empty: none fits.
struct TensorSizes {
  std::vector<std::int64_t> whole, per_sample;
  std::string what;
};

struct TensorSizesOf {
  const std::string& key;
  TensorSizes operator()(const ConvLayer& c) const {
    if (key == "weights")
      return {{checked_product(c.out_channels, c.in_channels / c.groups, c.kernel_h, c.kernel_w)}, {},
              "the layer's weights, out_channels x in_channels/groups x kh x kw"};
    if (key == "activations") return {{}, {checked_product(c.in_channels, c.in_h, c.in_w)}, "samples of the layer's input"};
    return {{}, {checked_product(c.out_channels, c.out_h(), c.out_w())}, "samples of the gradient at the layer's output"};
  }
  TensorSizes operator()(const LinearLayer& l) const {
    if (key == "weights") return {{checked_mul(l.in_features, l.out_features)}, {}, "the layer's weights, out x in"};
    if (key == "activations") return {{}, {l.in_features}, "rows of the layer's input (in_features each)"};
    return {{}, {l.out_features}, "rows of the gradient at the layer's output (out_features each)"};
  }
  TensorSizes operator()(const MatmulLayer& m) const {
    if (key == "weights") return {{}, {}, "nothing: a matmul has no weights"};
    if (key == "activations")
      return {{}, {checked_mul(m.m, m.k), checked_mul(m.k, m.n)}, "samples of A (m x k) or of B (k x n)"};
    return {{}, {checked_mul(m.m, m.n)}, "samples of the gradient at C (m x n)"};
  }
  TensorSizes operator()(const LstmLayer& l) const {
    const std::int64_t gates = 4 * l.hidden_size;
    if (key == "weights")
      return {{checked_mul(gates, l.input_size), checked_mul(gates, l.hidden_size),
               checked_mul(gates, checked_add(l.input_size, l.hidden_size))}, {},
              "W_ih (4h x input), W_hh (4h x h) or both"};
    if (key == "activations") return {{}, {l.input_size, l.hidden_size}, "rows of the input or of h"};
    return {{}, {gates}, "rows of the gates' gradient (4h each)"};
  }
  TensorSizes operator()(const auto&) const { return {{}, {}, "nothing: the layer has no GEMM"}; }
};

TensorSizes tensor_sizes(const Layer& layer, const std::string& key) {
  return std::visit(TensorSizesOf{key}, layer.shape);
}

bool fits(const TensorSizes& sizes, std::size_t elements) {
  const auto n = static_cast<std::int64_t>(elements);
  for (const std::int64_t whole : sizes.whole)
    if (n == whole) return true;
  for (const std::int64_t sample : sizes.per_sample)
    if (sample > 0 && n > 0 && n % sample == 0) return true;
  return false;
}

std::string expected_sizes(const TensorSizes& sizes) {
  std::string text;
  for (const std::int64_t whole : sizes.whole) text += (text.empty() ? "" : " or ") + std::to_string(whole);
  for (const std::int64_t sample : sizes.per_sample)
    text += (text.empty() ? "a multiple of " : " or a multiple of ") + std::to_string(sample);
  return text.empty() ? "no tensor" : text + " elements";
}

// Where a trace's .npy files are looked for: beside the trace.
std::filesystem::path trace_directory(const Trace& trace) {
  return trace.file.empty() ? std::filesystem::path() : std::filesystem::path(trace.file).parent_path();
}

// The trace's override for an operand's role, and that role's key in the trace.
const std::optional<TensorValues>& given_values(const LayerTensorValues& given, TensorRole role) {
  return role == TensorRole::kWeight ? given.weights : role == TensorRole::kGradient ? given.gradients : given.activations;
}

std::string role_key(TensorRole role) {
  return role == TensorRole::kWeight ? "weights" : role == TensorRole::kGradient ? "gradients" : "activations";
}

class SourceResolver {
 public:
  SourceResolver(const Trace& trace) : trace_(trace) {}

  ValueSource resolve(const LayerWork& work, TensorRole role, OperandSource from) {
    const Layer& layer = trace_.layers.at(work.layer_index);
    const std::optional<TensorValues>& override = given_values(layer.fidelity, role);
    ValueSource source;
    if (override) {
      source.values = *override;
      if (source.values.kind == TensorValues::Kind::kFile)
        source.elements = elements(layer, role_key(role), source.values.file);
      source.description = describe(source.values) + " (trace)";
      return source;
    }
    switch (role) {
      case TensorRole::kWeight: source.values = default_weights(work); break;
      case TensorRole::kGradient: source.values = default_gradients(); break;
      case TensorRole::kActivation:
        source.values = default_activations(
            trace_, work.layer_index, from == OperandSource::kLayerInput,
            work.phase(Phase::kFwd).gemms.empty() ? 1 : work.phase(Phase::kFwd).gemms.front().k);
        break;
    }
    source.description = describe(source.values);
    return source;
  }

 private:
  std::shared_ptr<const std::vector<double>> elements(const Layer& layer, const std::string& key,
                                                      const std::string& file) {
    const std::filesystem::path path = trace_directory(trace_) / file;
    const std::string where = layer.where + "/fidelity/" + key + "/npy";
    // Read once per layer and role: each use is checked against its layer's tensor.
    const std::string use = path.string() + "\n" + where;
    if (const auto known = files_.find(use); known != files_.end()) return known->second;
    NpyArray array;
    try {
      array = read_npy(path);
    } catch (const InputError& e) {
      throw InputError(trace_.file, where, e.message() + " (" + path.string() + ")");
    }
    const TensorSizes sizes = tensor_sizes(layer, key);
    if (!fits(sizes, array.values.size()))
      throw InputError(trace_.file, where,
                       path.string() + " has shape " + array.shape_text() + " (" + std::to_string(array.values.size()) +
                           " elements); expected " + sizes.what + ": " + expected_sizes(sizes));
    std::vector<double> finite;
    for (const double v : array.values)
      if (std::isfinite(v)) finite.push_back(v);
    if (finite.empty())
      throw InputError(trace_.file, where, path.string() + " has no finite element to draw from (shape " +
                                               array.shape_text() + ")");
    auto shared = std::make_shared<const std::vector<double>>(std::move(finite));
    files_.emplace(use, shared);
    return shared;
  }

  const Trace& trace_;
  std::map<std::string, std::shared_ptr<const std::vector<double>>> files_;
};

double largest_magnitude(const std::vector<double>& values) {
  double largest = 0;
  for (const double v : values) largest = std::max(largest, std::fabs(v));
  return largest;
}

// The largest power of two that keeps `largest` within `format` (within the
// range of double).
double fitting_scale(const num::Format& format, double largest) {
  if (largest == 0) return 1;
  return std::exp2(std::clamp(std::floor(std::log2(format.max_finite() / largest)), -1000.0, 1000.0));
}

// The power of two the operand is multiplied by before quantization: the loss
// scale for error gradients; for an integer format, max calibration (the
// sample's largest value onto the format's largest), since integer datapaths
// always run with a per-tensor scale.
double operand_scale(TensorRole role, const LossScale& loss_scale, const num::Format& format,
                     const std::vector<double>& values) {
  if (format.spec().is_integer) return fitting_scale(format, largest_magnitude(values));
  if (role != TensorRole::kGradient) return 1;
  if (!loss_scale.dynamic) return loss_scale.factor;
  return fitting_scale(format, largest_magnitude(values));
}

// Quantizes `values` (times `scale`) to `format` with its own rounding; a
// stochastic one draws element e's random word from `random`.
num::EncodedMatrix quantize(const num::Format& format, const std::vector<double>& values, std::size_t rows,
                            std::size_t cols, double scale, const num::CounterRandom& random, int stochastic_bits,
                            OperandCounts& counts) {
  num::EncodedMatrix out{rows, cols, std::vector<std::uint32_t>(values.size())};
  const bool flushes = format.spec().subnormals == num::Subnormals::kFlush;
  const num::Rounding rounding = format.spec().default_rounding;
  const bool stochastic = num::is_stochastic(rounding);
  for (std::size_t e = 0; e < values.size(); ++e) {
    const double x = values[e] * scale;
    const num::Conversion c = format.convert(x, rounding, stochastic ? random.bits(e) : 0, stochastic_bits);
    out.codes[e] = c.bits;
    ++counts.values;
    if (c.flags.underflow) ++counts.underflow;
    if (c.flags.overflow) ++counts.overflow;
    if (flushes && x != 0 && std::fabs(x) < format.min_normal()) ++counts.flushed_subnormals;
  }
  return out;
}

// A GEMM's identity in the workload, which keys its random numbers: the same
// GEMM draws the same operands whatever else the run holds.
std::uint64_t gemm_key(std::size_t layer, Phase phase, std::size_t index_in_phase) {
  return (static_cast<std::uint64_t>(layer) << 8) | (static_cast<std::uint64_t>(phase) << 4) | index_in_phase;
}

// The outputs of one attempt of the datapath on the drawn operands.
struct Attempt {
  OperandCounts operands;
  num::Matrix result;
  std::size_t overflowed = 0;  // results NaN, infinite or at the result format's largest value
};

GemmFidelity measure_gemm(const GemmWork& g, const LayerWork& layer, Phase phase, const GemmDatapath& datapath,
                          const ValueSource& a_source, const ValueSource& b_source, const FidelityParams& params,
                          std::uint64_t key) {
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
  // A grid of about sqrt(n) x sqrt(n) outputs (more rows when the output is
  // narrow), shrunk to the budget.
  std::int64_t wanted = params.sampled_outputs;
  for (;; wanted = std::max<std::int64_t>(1, wanted / 2)) {
    const auto side = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(wanted))));
    f.cols = std::min<std::int64_t>(g.n, side);
    f.rows = std::min<std::int64_t>(g.m, (wanted + f.cols - 1) / f.cols);
    if ((f.rows + f.cols) * g.k <= params.max_operand_values || wanted == 1) break;
  }
  const auto rows = static_cast<std::size_t>(f.rows), cols = static_cast<std::size_t>(f.cols);
  const auto k = static_cast<std::size_t>(g.k);

  // Streams: two per GEMM, so each operand's elements are independent of every other's.
  const num::CounterRandom a_random(params.seed, 2 * key), b_random(params.seed, 2 * key + 1);
  num::Matrix a(rows, k), b(k, cols);
  for (std::size_t e = 0; e < a.values.size(); ++e) a.values[e] = a_source.draw(a_random, e);
  for (std::size_t e = 0; e < b.values.size(); ++e) b.values[e] = b_source.draw(b_random, e);

  num::DatapathConfig numerics = datapath.numerics;
  numerics.seed = params.seed ^ (key * 0x9e3779b97f4a7c15ull);  // its own stochastic roundings
  // Stochastic operand conversions take stage 3 of output elements 0 and 1,
  // which accumulation (stages 0-2, num::stage_random) never uses.
  const num::CounterRandom a_rounding(numerics.seed, 3), b_rounding(numerics.seed, 7);
  const num::Matrix reference = num::gemm_fp64(a, b);
  f.a_scale = operand_scale(datapath.a_role, datapath.loss_scale, num::Format(numerics.operand_a), a.values);
  f.b_scale = operand_scale(datapath.b_role, datapath.loss_scale, num::Format(numerics.operand_b), b.values);

  const auto attempt = [&](num::DatapathConfig config) {
    // An integer output is requantized with its own per-tensor scale: the
    // smallest power of two that keeps the largest (scaled) result in range.
    if (config.output && config.output->is_integer) {
      const double largest = largest_magnitude(reference.values) * f.a_scale * f.b_scale;
      const double range = num::Format(*config.output).max_finite() / config.output->scale;
      if (largest > 0)
        config.output->scale = std::exp2(std::clamp(std::ceil(std::log2(largest / range)), -1000.0, 1000.0));
    }
    const num::Datapath emulated(config);
    Attempt out;
    const num::EncodedMatrix a_codes =
        quantize(emulated.operand_a(), a.values, rows, k, f.a_scale, a_rounding, config.stochastic_bits, out.operands);
    const num::EncodedMatrix b_codes =
        quantize(emulated.operand_b(), b.values, k, cols, f.b_scale, b_rounding, config.stochastic_bits, out.operands);
    out.result = num::gemm(emulated, a_codes, b_codes);
    const double largest = emulated.result_format().max_finite();
    out.overflowed = static_cast<std::size_t>(std::count_if(out.result.values.begin(), out.result.values.end(),
                                                            [&](double v) { return !(std::fabs(v) < largest); }));
    return std::pair(out, emulated.result_format());
  };

  // Dynamic scaling also backs off when the scaled results overflow (as dynamic
  // loss scaling halves its scale on an overflowed step): start from the scale
  // that leaves the largest reference result a factor 2 of headroom, then
  // halve while that lowers the overflowed results (an overflow the other
  // operand causes is not the loss scale's to fix).
  const bool dynamic = datapath.loss_scale.dynamic &&
                       (datapath.a_role == TensorRole::kGradient || datapath.b_role == TensorRole::kGradient);
  double& scale = datapath.a_role == TensorRole::kGradient ? f.a_scale : f.b_scale;
  const num::Format result_format(numerics.output.value_or(numerics.accumulator));
  if (dynamic && !result_format.spec().is_integer) {
    const double fit = largest_magnitude(reference.values) * f.a_scale * f.b_scale;
    if (fit > 0 && fit > result_format.max_finite() / 2)
      scale /= std::exp2(std::ceil(std::log2(2 * fit / result_format.max_finite())));
  }
  auto [best, best_format] = attempt(numerics);
  for (int back_off = 0; dynamic && best.overflowed > 0 && back_off < 64; ++back_off) {
    scale /= 2;
    auto [next, next_format] = attempt(numerics);
    if (next.overflowed >= best.overflowed) {
      scale *= 2;
      break;
    }
    best = std::move(next);
    best_format = next_format;
  }
  f.operands = best.operands;
  const double scales = f.a_scale * f.b_scale;
  const double unscale = 1 / scales;  // a power of two: exact
  for (std::size_t e = 0; e < reference.values.size(); ++e)
    f.result.add(reference.values[e], best.result.values[e] * unscale, best_format, scales);
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


// The all-reduce's synthetic gradients: a random sign and log2 |s| ~ N(0, 3),
// the same spread as the pass's default error gradients (an assumption); the
// median is immaterial, as a power-of-two scale fits them to the formats.
constexpr double kAllReduceGradientSpread = kGradientLog2Std;
// CLT-k holds 2 x workers x elements doubles: its elements are capped at
// 2^25 / workers (512 MiB).
constexpr std::uint64_t kCltkValuesBudget = std::uint64_t{1} << 25;

std::string rounding_text(const num::StageRounding& r) {
  std::string s(num::rounding_name(r.rounding));
  if (num::is_stochastic(r.rounding)) s += " (" + std::to_string(r.stochastic_bits) + " random bits)";
  return s;
}

// The numerics library's all-reduce takes formats by preset name: a format
// changed from its preset (e.g. {"base": ..., "overflow": ...}) cannot be named.
std::string unnamed_format(const num::FormatSpec& spec) {
  const auto preset = num::find_format(spec.name);
  return preset && *preset == spec ? std::string()
                                   : "\"" + spec.name + "\" differs from the preset of its name, which the "
                                                        "all-reduce's numerics (by preset name) cannot emulate";
}

// The largest power of two (within [2^-64, 2^64]) that keeps a bound of the
// sum of the workers' magnitudes, the bound of every partial sum, a factor
// `headroom` below the smaller of the formats' largest values: the scale
// dynamic loss scaling would settle at. The bound, N x the largest element
// scale s x t, t = sqrt(2 ln(M)) + 2, needs only the scales, not a pass over
// every worker's gradient: each |g| is s |z| with z standard normal, and one
// of the M = N x elements deviates exceeds t with a probability below
// M P(|z| > t) < e^-(2 sqrt(2 ln M) + 2) (< 1e-4 for M >= 2^11), and then
// the sum of N of them hardly exceeds the headroom.
double allreduce_scale(const num::SyntheticGradientParams& params, const num::Format& communication,
                       const num::Format& accumulator, double headroom) {
  const num::SyntheticGradients gradients(params);
  constexpr std::uint64_t kTile = 1 << 14;
  std::vector<double> tile(kTile);
  double largest = 0;
  for (std::uint64_t first = 0; first < params.elements; first += kTile) {
    const auto n = static_cast<std::size_t>(std::min(kTile, params.elements - first));
    gradients.fill_scale(first, std::span<double>(tile.data(), n));
    for (std::size_t e = 0; e < n; ++e) largest = std::max(largest, std::fabs(tile[e]));
  }
  const double values = static_cast<double>(params.workers) * static_cast<double>(params.elements);
  largest *= static_cast<double>(params.workers) * (std::sqrt(2 * std::log(values)) + 2);
  if (!(largest > 0)) return 1;
  const double limit = std::min(communication.max_finite(), accumulator.max_finite()) / headroom;
  return std::exp2(std::clamp(std::floor(std::log2(limit / largest)), -64.0, 64.0));
}

nlohmann::json real_json(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

double real_from_json(const nlohmann::json& j) {
  if (!j.is_string()) return j.get<double>();
  const std::string s = j;
  return s == "inf" ? HUGE_VAL : s == "-inf" ? -HUGE_VAL : std::nan("");
}

nlohmann::json stats_json(const num::FidelityStats& s) {
  return {{"count", s.count}, {"nonfinite_references", s.nonfinite_references}, {"sqnr_db", real_json(s.sqnr_db)},
          {"relative_l2_error", real_json(s.relative_l2_error)}, {"max_abs_error", real_json(s.max_abs_error)},
          {"mean_signed_error", real_json(s.mean_signed_error)}, {"fraction_underflow", s.fraction_underflow},
          {"fraction_overflow", s.fraction_overflow}, {"fraction_nan", s.fraction_nan}};
}

num::FidelityStats stats_from_json(const nlohmann::json& j) {
  num::FidelityStats s;
  s.count = j.at("count"), s.nonfinite_references = j.at("nonfinite_references");
  s.sqnr_db = real_from_json(j.at("sqnr_db")), s.relative_l2_error = real_from_json(j.at("relative_l2_error"));
  s.max_abs_error = real_from_json(j.at("max_abs_error"));
  s.mean_signed_error = real_from_json(j.at("mean_signed_error"));
  s.fraction_underflow = j.at("fraction_underflow"), s.fraction_overflow = j.at("fraction_overflow");
  s.fraction_nan = j.at("fraction_nan");
  return s;
}

}  // namespace

nlohmann::json inverse_fidelity_json(const InverseFidelity& i) {
  const auto reals = [](const std::vector<double>& values) {
    nlohmann::json out = nlohmann::json::array();
    for (const double v : values) out.push_back(real_json(v));
    return out;
  };
  return {{"datapath", i.datapath},
          {"dimension", i.params.dimension},
          {"iterations", i.params.iterations},
          {"damping", i.params.damping},
          {"spread_binades", i.params.spread_binades},
          {"seed", i.params.seed},
          {"condition", real_json(i.result.condition)},
          {"residual", reals(i.result.residual)},
          {"fp64_residual", reals(i.result.fp64_residual)},
          {"inverse", stats_json(i.result.inverse)},
          {"not_measured", i.not_measured}};
}

InverseFidelity inverse_fidelity_from_json(const nlohmann::json& j) {
  InverseFidelity i;
  i.datapath = j.at("datapath");
  i.params.dimension = j.at("dimension");
  i.params.iterations = j.at("iterations");
  i.params.damping = j.at("damping");
  i.params.spread_binades = j.at("spread_binades");
  i.params.seed = j.at("seed");
  i.result.condition = real_from_json(j.at("condition"));
  for (const auto& v : j.at("residual")) i.result.residual.push_back(real_from_json(v));
  for (const auto& v : j.at("fp64_residual")) i.result.fp64_residual.push_back(real_from_json(v));
  i.result.inverse = stats_from_json(j.at("inverse"));
  i.not_measured = j.at("not_measured");
  return i;
}

namespace {

nlohmann::json allreduce_cache_json(const AllReduceFidelity& a) {
  nlohmann::json j = {{"workers", a.workers}, {"elements", a.elements}, {"correlation", a.correlation},
                      {"spread_binades", a.spread_binades}, {"scale", a.scale},
                      {"communication_format", a.communication_format},
                      {"communication_rounding", a.communication_rounding},
                      {"accumulator_format", a.accumulator_format}, {"accumulator_rounding", a.accumulator_rounding},
                      {"algorithm", a.algorithm}, {"order", a.order}, {"not_measured", a.not_measured},
                      {"total", tally_json(a.total)}, {"quantization", tally_json(a.quantization)},
                      {"reduction", tally_json(a.reduction)}};
  if (const auto& c = a.compression) {
    nlohmann::json steps = nlohmann::json::array();
    for (const num::CltkStep& s : c->steps)
      steps.push_back({{"leader", s.leader}, {"step", stats_json(s.step)}, {"cumulative", stats_json(s.cumulative)},
                       {"topk_overlap", s.topk_overlap}});
    j["compression"] = {{"ratio", c->ratio}, {"memory_beta", c->memory_beta}, {"elements", c->elements},
                        {"k", c->k}, {"bytes_per_worker_per_step", c->bytes_per_worker_per_step},
                        {"steps", steps}, {"per_step", stats_json(c->per_step)},
                        {"cumulative", stats_json(c->cumulative)}, {"topk_overlap", c->topk_overlap}};
  }
  return j;
}

AllReduceFidelity allreduce_from_cache_json(const nlohmann::json& j) {
  AllReduceFidelity a;
  a.workers = j.at("workers"), a.elements = j.at("elements"), a.correlation = j.at("correlation");
  a.spread_binades = j.at("spread_binades"), a.scale = j.at("scale");
  a.communication_format = j.at("communication_format"), a.communication_rounding = j.at("communication_rounding");
  a.accumulator_format = j.at("accumulator_format"), a.accumulator_rounding = j.at("accumulator_rounding");
  a.algorithm = j.at("algorithm"), a.order = j.at("order"), a.not_measured = j.at("not_measured");
  a.total = tally_from_json(j.at("total"));
  a.quantization = tally_from_json(j.at("quantization"));
  a.reduction = tally_from_json(j.at("reduction"));
  if (j.contains("compression")) {
    const auto& c = j.at("compression");
    CompressionFidelity f;
    f.ratio = c.at("ratio"), f.memory_beta = c.at("memory_beta"), f.elements = c.at("elements");
    f.k = c.at("k"), f.bytes_per_worker_per_step = c.at("bytes_per_worker_per_step");
    for (const auto& s : c.at("steps"))
      f.steps.push_back({s.at("leader").get<int>(), stats_from_json(s.at("step")), stats_from_json(s.at("cumulative")),
                         s.at("topk_overlap").get<double>()});
    f.per_step = stats_from_json(c.at("per_step"));
    f.cumulative = stats_from_json(c.at("cumulative"));
    f.topk_overlap = c.at("topk_overlap");
    a.compression = std::move(f);
  }
  return a;
}

bool measures_allreduce(const AcceleratorConfig& config, const std::set<Phase>& phases) {
  return config.chips() > 1 && phases.count(Phase::kWgrad) > 0;
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

AllReduceFidelity measure_allreduce_fidelity(const AcceleratorConfig& config) {
  const FidelityParams& params = config.fidelity;
  AllReduceFidelity out;
  out.workers = config.chips();
  out.elements = params.allreduce_elements;
  out.correlation = params.worker_correlation;
  out.spread_binades = kAllReduceGradientSpread;
  out.algorithm = core::to_string(config.data_parallel.algorithm);
  // A hierarchical all-reduce is measured as a ring (its groups' rings and the ring across them).
  const bool tree = config.data_parallel.algorithm == core::CollectiveAlgorithm::kTree;
  out.order = tree ? "tree" : "ring";
  const num::FormatSpec& communication = config.gradient_format();
  // The weight-gradient GEMMs' accumulator and its rounding, resolved as for the GEMMs themselves.
  const num::DatapathConfig wgrad =
      gemm_numerics(config.precision.for_gemm(Phase::kWgrad, LayerPosition::kMiddle), config.chip, params.seed);
  out.communication_format = communication.name;
  out.accumulator_format = wgrad.accumulator.name;
  const num::StageRounding communication_rounding{communication.default_rounding,
                                                  config.chip.core.rounder.random_bits};
  out.communication_rounding = rounding_text(communication_rounding);
  num::StageRounding accumulator_rounding;
  try {
    accumulator_rounding = num::Datapath(wgrad).inner();
  } catch (const std::invalid_argument& e) {
    out.not_measured = e.what();
    return out;
  }
  out.accumulator_rounding = rounding_text(accumulator_rounding);
  for (const num::FormatSpec* spec : {&communication, &wgrad.accumulator})
    if (out.not_measured.empty()) out.not_measured = unnamed_format(*spec);
  if (!out.not_measured.empty()) return out;

  num::SyntheticGradientParams gradients;
  gradients.workers = out.workers;
  gradients.elements = out.elements;
  gradients.correlation = out.correlation;
  gradients.log2_median = 0;
  gradients.spread_binades = out.spread_binades;
  gradients.seed = params.seed;
  num::AllReduceParams reduction;
  reduction.communication_format = communication.name;
  reduction.communication_rounding = communication_rounding;
  reduction.accumulator_format = wgrad.accumulator.name;
  reduction.accumulator_rounding = accumulator_rounding;
  reduction.order = tree ? num::ReductionOrder::kTree : num::ReductionOrder::kRing;
  reduction.rounding_seed = params.seed ^ 0xa11'4ed0'ce5eull;
  const num::Format communication_format(communication), accumulator_format(wgrad.accumulator);
  try {
    reduction.scale = allreduce_scale(gradients, communication_format, accumulator_format, 2);
    out.scale = reduction.scale;
    const num::AllReduceResult result = num::measure_allreduce(gradients, reduction);
    out.total = result.total_tally;
    out.quantization = result.quantization_tally;
    out.reduction = result.reduction_tally;
    if (const auto& compression = config.data_parallel.compression) {
      CompressionFidelity c;
      c.ratio = compression->ratio;
      c.memory_beta = compression->memory_beta;
      num::SyntheticGradientParams sparse = gradients;
      sparse.elements = std::min(gradients.elements, kCltkValuesBudget / static_cast<std::uint64_t>(out.workers));
      c.elements = sparse.elements;
      num::CltkParams cltk;
      cltk.compression_ratio = c.ratio;
      cltk.steps = params.compression_steps;
      cltk.error_feedback = true;
      cltk.memory_beta = c.memory_beta;
      // The memory plus gradient grows by up to a gradient per step: that much more headroom.
      num::AllReduceParams sparse_reduction = reduction;
      sparse_reduction.scale = std::max(
          0x1p-64, reduction.scale / static_cast<double>(std::bit_ceil(static_cast<unsigned>(cltk.steps))));
      const num::CltkResult r = num::measure_cltk(sparse, sparse_reduction, cltk);
      c.k = r.k;
      c.bytes_per_worker_per_step = r.bytes_per_worker_per_step;
      c.steps = r.steps;
      c.per_step = r.per_step;
      c.cumulative = r.cumulative;
      c.topk_overlap = r.topk_overlap;
      out.compression = std::move(c);
    }
  } catch (const std::invalid_argument& e) {  // parameters the numerics library refuses
    out.not_measured = e.what();
  }
  return out;
}

namespace {

// K-FAC runs whose step computes inverses.
bool measures_inverse(const AcceleratorConfig& config, const std::vector<LayerWork>& layers,
                      const std::set<Phase>& phases) {
  return std::holds_alternative<Kfac>(config.precision.update.optimizer) && phases.count(Phase::kInverse) &&
         std::any_of(layers.begin(), layers.end(),
                     [](const LayerWork& l) { return !l.phase(Phase::kInverse).empty(); });
}

InverseFidelity measure_inverse_fidelity(const AcceleratorConfig& config) {
  const Kfac& kfac = std::get<Kfac>(config.precision.update.optimizer);
  InverseFidelity out;
  const GemmPrecision& precision = config.precision.for_gemm(Phase::kInverse, LayerPosition::kMiddle);
  out.params.dimension = config.fidelity.inverse_dimension;
  out.params.iterations = kfac.newton_schulz_iterations;
  out.params.damping = kfac.damping;
  out.params.seed = config.fidelity.seed;
  try {
    const num::Datapath datapath(gemm_numerics(precision, config.chip, config.fidelity.seed));
    GemmWork inverse{"X=X*(2I-F*X)", 1, 1, 1, 1, 1, Phase::kInverse};
    out.datapath = resolve_gemm_datapath(config, inverse, LayerPosition::kMiddle).label();
    out.result = num::measure_newton_schulz(datapath, out.params);
  } catch (const std::invalid_argument& e) {
    out.not_measured = e.what();
  }
  return out;
}

}  // namespace

FidelityReport measure_fidelity(const AcceleratorConfig& config, const Trace& trace,
                                const std::vector<LayerWork>& layers, const std::set<Phase>& phases) {
  FidelityReport report;
  report.params = config.fidelity;
  const std::vector<LayerPosition> positions = layer_positions(layers);
  SourceResolver sources(trace);
  for (const LayerWork& layer : layers) {
    for (const Phase phase : phases) {
      if (!info(phase).fidelity) continue;
      const auto& gemms = layer.phase(phase).gemms;
      for (std::size_t i = 0; i < gemms.size(); ++i) {
        const GemmWork& g = gemms[i];
        const GemmDatapath datapath = resolve_gemm_datapath(config, g, positions[layer.layer_index]);
        const ValueSource a = sources.resolve(layer, datapath.a_role, g.a_from);
        const ValueSource b = sources.resolve(layer, datapath.b_role, g.b_from);
        try {
          report.gemms.push_back(
              measure_gemm(g, layer, phase, datapath, a, b, config.fidelity, gemm_key(layer.layer_index, phase, i)));
        } catch (const std::invalid_argument& e) {  // a datapath the drawn values make impossible
          throw InputError(trace.file, trace.layers.at(layer.layer_index).where,
                           std::string(to_string(phase)) + " GEMM " + g.label + ": " + e.what());
        }
      }
    }
  }
  if (measures_allreduce(config, phases)) report.allreduce = measure_allreduce_fidelity(config);
  if (measures_inverse(config, layers, phases)) report.inverse = measure_inverse_fidelity(config);
  return report;
}

std::string fidelity_key(const AcceleratorConfig& config, const Trace& trace, const std::set<Phase>& phases,
                         bool inference) {
  // Only what the results depend on, so that a sweep over anything else (the
  // update's formats, the fidelity threshold, the chip's timing) shares them.
  nlohmann::json config_json = config;
  nlohmann::json precision = config_json.at("precision");
  precision.erase("update");
  if (!inference) precision.erase("inference");
  const auto& core = config_json.at("chip").at("core");
  nlohmann::json trace_json = trace;
  trace_json.erase("network");
  trace_json.erase("source");
  nlohmann::json key = {{"method", kFidelityMethodVersion},
                        {"version", LPTSIM_VERSION},
                        {"precision", precision},
                        {"chunk_length", core.at("accumulator").at("chunk_length")},
                        {"random_bits", core.at("rounder").at("random_bits")},
                        {"sampled_outputs", config.fidelity.sampled_outputs},
                        {"max_operand_values", config.fidelity.max_operand_values},
                        {"seed", config.fidelity.seed},
                        {"trace", trace_json},
                        {"inference", inference}};
  for (const Phase p : phases)
    if (info(p).fidelity) key["phases"].push_back(to_string(p));
  // The gradient all-reduce of a system of chips (a single chip's key is as before).
  // K-FAC adds measured GEMMs (its factors) and the inverses' measurement.
  if (const auto* kfac = std::get_if<Kfac>(&config.precision.update.optimizer)) {
    key["kfac"] = true;
    if (phases.count(Phase::kInverse))
      key["kfac_inverse"] = {{"iterations", kfac->newton_schulz_iterations},
                             {"damping", kfac->damping},
                             {"dimension", config.fidelity.inverse_dimension}};
  }
  if (measures_allreduce(config, phases)) {
    nlohmann::json allreduce = {{"workers", config.chips()},
                                {"algorithm", core::to_string(config.data_parallel.algorithm)},
                                {"gradient_format", config.gradient_format()},
                                {"elements", config.fidelity.allreduce_elements},
                                {"correlation", config.fidelity.worker_correlation}};
    if (const auto& c = config.data_parallel.compression)
      allreduce["compression"] = {{"ratio", c->ratio},
                                  {"memory_beta", c->memory_beta},
                                  {"steps", config.fidelity.compression_steps}};
    key["allreduce"] = std::move(allreduce);
  }
  // A real tensor's file is part of the input: its size and time of change stand for its contents.
  const std::filesystem::path base = trace_directory(trace);
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

namespace {

std::optional<FidelityReport> read_cache_entry(const std::filesystem::path& entry) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(entry, error)) return std::nullopt;
  try {
    FidelityReport cached = fidelity_from_json(nlohmann::json::parse(read_input_file(entry, std::uintmax_t{256} << 20)));
    cached.from_cache = true;
    return cached;
  } catch (const std::exception&) {
    // A damaged entry (a worker killed mid-write cannot leave one, but a full
    // disk can) is recomputed and rewritten.
    return std::nullopt;
  }
}

// An exclusive lock on a file, released when it goes out of scope or its
// process dies (flock), so a killed sweep worker never blocks the others.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& file) : fd_(::open(file.c_str(), O_CREAT | O_RDWR, 0644)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

}  // namespace

FidelityReport cached_fidelity(const std::filesystem::path& cache_dir, const std::string& key,
                               const AcceleratorConfig& config, const Trace& trace,
                               const std::vector<LayerWork>& layers, const std::set<Phase>& phases) {
  const std::filesystem::path entry = cache_dir / (key + ".json");
  // An entry may come from a run with another threshold (not in the key).
  const auto with_params = [&](FidelityReport cached) {
    cached.params = config.fidelity;
    return cached;
  };
  if (auto cached = read_cache_entry(entry)) return with_params(*std::move(cached));
  std::error_code error;
  std::filesystem::create_directories(cache_dir, error);
  // Sweep workers starting together would all compute the same pass: the
  // first takes the entry's lock, the others wait for it and then read its
  // result. Without a lock (a file system that refuses one) each computes.
  const FileLock lock(cache_dir / (key + ".lock"));
  if (auto cached = read_cache_entry(entry)) return with_params(*std::move(cached));
  FidelityReport report = measure_fidelity(config, trace, layers, phases);
  const std::filesystem::path temporary = cache_dir / (key + ".json." + std::to_string(::getpid()));
  {
    std::ofstream out(temporary, std::ios::binary);
    out << to_json(report).dump();
    if (out.flush()) std::filesystem::rename(temporary, entry, error);
  }
  std::filesystem::remove(temporary, error);  // a cache that cannot be written only costs time
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
            {"min_sqnr_db", r.params.min_sqnr_db},
            {"allreduce_elements", r.params.allreduce_elements},
            {"worker_correlation", r.params.worker_correlation},
            {"compression_steps", r.params.compression_steps},
            {"inverse_dimension", r.params.inverse_dimension}}},
          {"gemms", gemms},
          {"allreduce", r.allreduce ? allreduce_cache_json(*r.allreduce) : nlohmann::json()},
          {"inverse", r.inverse ? inverse_fidelity_json(*r.inverse) : nlohmann::json()}};
}

FidelityReport fidelity_from_json(const nlohmann::json& j) {
  FidelityReport r;
  const auto& p = j.at("params");
  r.params.enabled = p.at("enabled");
  r.params.sampled_outputs = p.at("sampled_outputs");
  r.params.seed = p.at("seed");
  r.params.min_sqnr_db = p.at("min_sqnr_db");
  r.params.max_operand_values = p.at("max_operand_values");
  r.params.allreduce_elements = p.value("allreduce_elements", r.params.allreduce_elements);
  r.params.worker_correlation = p.value("worker_correlation", r.params.worker_correlation);
  r.params.compression_steps = p.value("compression_steps", r.params.compression_steps);
  r.params.inverse_dimension = p.value("inverse_dimension", r.params.inverse_dimension);
  if (const auto a = j.find("allreduce"); a != j.end() && !a->is_null()) r.allreduce = allreduce_from_cache_json(*a);
  if (const auto i = j.find("inverse"); i != j.end() && !i->is_null()) r.inverse = inverse_fidelity_from_json(*i);
  for (const auto& g : j.at("gemms")) {
    GemmFidelity f;
    f.layer = g.at("layer");
    const std::string phase = g.at("phase");
    f.phase = phase_named(phase).value_or(Phase::kFwd);
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
