#include "sim/numerics_swamping.hpp"

#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numbers>
#include <ostream>
#include <set>
#include <stdexcept>

#include "models/common/text.hpp"
#include "models/numerics/datapath.hpp"
#include "models/numerics/random.hpp"
#include "sim/cli_options.hpp"

namespace lpt {
namespace po = boost::program_options;

namespace {

constexpr int kMaxLog2N = 26;            // 2^26 inputs per vector: 512 MiB of doubles
constexpr int kMaxChunk = 1 << kMaxLog2N;
constexpr int kMaxTrials = 10000;
// The inputs' Philox streams start here: the datapath's SR streams (trial * 4 + stage,
// num::stage_random) share the seed, and a shared stream would correlate the rounding
// decisions with the inputs.
constexpr std::uint64_t kFirstInputStream = std::uint64_t{1} << 63;

SwampingCurveSpec curve(std::string name, std::string accumulator, int chunk, num::Rounding rounding) {
  SwampingCurveSpec spec;
  spec.name = std::move(name);
  spec.accumulator = std::move(accumulator);
  spec.chunk_length = chunk;
  spec.rounding = rounding;
  return spec;
}

}  // namespace

std::vector<SwampingCurveSpec> default_swamping_curves() {
  using enum num::Rounding;
  return {curve("fp32", "fp32", 0, kNearestEven),          curve("fp16", "fp16", 0, kNearestEven),
          curve("fp16_chunk16", "fp16", 16, kNearestEven), curve("fp16_chunk64", "fp16", 64, kNearestEven),
          curve("fp16_chunk256", "fp16", 256, kNearestEven), curve("fp16_sr", "fp16", 0, kStochastic)};
}

namespace {

// Wang et al. NeurIPS 2018: FP8 (1-5-2) operands, products accumulated in their 16-bit
// 1-6-9 format (dlfloat16 here) with nearest rounding, chunks of 64, or SR.
// What is the paper's and what is assumed: docs/numerics.md.
SwampingOptions wang2018() {
  SwampingOptions options;
  options.max_log2_n = 20;
  options.trials = 8;
  options.sum = SwampingSum::kProducts;
  options.distribution = {SwampingDistribution::Kind::kUniform, 0.0, 1.0};
  options.input_format = "ibm_fp8";
  options.curves = {curve("fp32", "fp32", 0, num::Rounding::kNearestEven),
                    curve("fp16_nearest", "dlfloat16", 0, num::Rounding::kNearestAway),
                    curve("fp16_chunk64", "dlfloat16", 64, num::Rounding::kNearestAway),
                    curve("fp16_sr", "dlfloat16", 0, num::Rounding::kStochastic)};
  return options;
}

// Shortest decimal that reads back as the same double.
std::string decimal(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::optional<double> parse_finite(std::string_view text) {
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || result.ec != std::errc() || result.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// Curve names go into a CSV cell and a plot legend unquoted.
bool valid_curve_name(std::string_view name) {
  if (name.empty() || name.size() > 40) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != '+') return false;
  return true;
}

// One draw of the distribution for element k of a stream.
double draw(const SwampingDistribution& distribution, const num::CounterRandom& random, std::uint64_t k) {
  switch (distribution.kind) {
    case SwampingDistribution::Kind::kConstant: return distribution.a;
    case SwampingDistribution::Kind::kUniform:
      return distribution.a + (distribution.b - distribution.a) * random.uniform(k);
    case SwampingDistribution::Kind::kNormal: {
      // Box-Muller on the element's 128 random bits; u1 in (0, 1] keeps the log finite.
      const auto block = random.block(k);
      const double u1 = static_cast<double>((block[0] >> 11) + 1) * 0x1p-53;
      const double u2 = static_cast<double>(block[1] >> 11) * 0x1p-53;
      return distribution.a +
             distribution.b * std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
    }
  }
  return 0;
}

// Input vector of one trial, rounded (RNE) from draws keyed by (seed, stream).
std::vector<double> input_vector(const num::Format& format, const SwampingOptions& options, std::size_t length,
                                 std::uint64_t stream) {
  const num::CounterRandom random(options.seed, stream);
  std::vector<double> values(length);
  for (std::size_t k = 0; k < length; ++k) {
    const double x = draw(options.distribution, random, k);
    values[k] = format.round(x, num::Rounding::kNearestEven);
    if (!std::isfinite(values[k]))
      throw std::invalid_argument("--dist " + describe(options.distribution) + ": the draw " + decimal(x) +
                                  " is " + decimal(values[k]) + " in --input-format " + format.name() +
                                  "; expected a distribution inside the format's range (±" +
                                  decimal(format.max_finite()) + ")");
  }
  return values;
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

num::DatapathConfig datapath_config(const SwampingCurveSpec& curve, const num::FormatSpec& input,
                                    std::uint64_t seed) {
  const auto accumulator = num::find_format(curve.accumulator);
  if (!accumulator)
    throw std::invalid_argument("--curve " + curve.name + ": acc: unknown format " + quoted_excerpt(curve.accumulator) +
                                "; expected one of " + num::preset_format_names());
  num::DatapathConfig config;
  config.operand_a = config.operand_b = input;
  config.accumulator = *accumulator;
  config.chunk_length = curve.chunk_length;
  config.inner_rounding = config.outer_rounding = curve.rounding;
  config.stochastic_bits = curve.stochastic_bits;
  config.seed = seed;
  return config;
}

}  // namespace

std::optional<SwampingOptions> swamping_setup(std::string_view name) {
  if (name == "default") return SwampingOptions{};
  if (name == "wang2018") return wang2018();
  return std::nullopt;
}

std::string swamping_setup_names() { return "default, wang2018"; }

SwampingCurveSpec parse_swamping_curve(std::string_view text) {
  const std::string prefix = "--curve " + quoted_excerpt(text) + ": ";
  const auto colon = text.find(':');
  if (colon == std::string_view::npos)
    throw std::invalid_argument(prefix + "expected NAME:key=value,... with keys acc, chunk, round, bits "
                                "(e.g. fp16_c64:acc=fp16,chunk=64,round=rne)");
  SwampingCurveSpec spec;
  spec.name = std::string(text.substr(0, colon));
  if (!valid_curve_name(spec.name))
    throw std::invalid_argument(prefix + "the name " + quoted_excerpt(spec.name) +
                                " must be 1..40 letters, digits or _ - . +");
  std::set<std::string, std::less<>> seen;
  std::optional<int> bits;
  // Items are split at every comma, so that an empty one (a stray comma) is an error too.
  const std::string_view items = text.substr(colon + 1);
  for (std::size_t start = 0; !items.empty() && start <= items.size();) {
    const auto comma = std::min(items.find(',', start), items.size());
    const std::string_view item = items.substr(start, comma - start);
    start = comma + 1;
    const auto equals = item.find('=');
    const std::string_view key = item.substr(0, equals);
    const std::string_view value = equals == std::string_view::npos ? std::string_view() : item.substr(equals + 1);
    if (equals == std::string_view::npos || value.empty())
      throw std::invalid_argument(prefix + quoted_excerpt(item) + " is not key=value");
    if (!seen.insert(std::string(key)).second)
      throw std::invalid_argument(prefix + std::string(key) + " is given twice");
    if (key == "acc") {
      if (!num::find_format(value))
        throw std::invalid_argument(prefix + "acc: unknown format " + quoted_excerpt(value) + "; expected one of " +
                                    num::preset_format_names());
      spec.accumulator = std::string(value);
    } else if (key == "chunk") {
      const auto chunk = parse_int(value);
      if (!chunk || *chunk < 0 || *chunk > kMaxChunk)
        throw std::invalid_argument(prefix + "chunk: expected an integer 0.." + std::to_string(kMaxChunk) +
                                    " (0 or 1: no chunks), got " + quoted_excerpt(value));
      spec.chunk_length = *chunk;
    } else if (key == "round") {
      const auto rounding = num::parse_rounding(value);
      if (!rounding)
        throw std::invalid_argument(prefix + "round: expected rne|away|rtz|sr|sr_exact, got " + quoted_excerpt(value));
      spec.rounding = *rounding;
    } else if (key == "bits") {
      bits = parse_int(value);
      if (!bits || *bits < 1 || *bits > num::kMaxStochasticBits)
        throw std::invalid_argument(prefix + "bits: expected an integer 1.." +
                                    std::to_string(num::kMaxStochasticBits) + ", got " + quoted_excerpt(value));
    } else {
      throw std::invalid_argument(prefix + "unknown key " + quoted_excerpt(key) + "; expected acc, chunk, round or bits");
    }
  }
  if (bits) {
    if (spec.rounding != num::Rounding::kStochastic)
      throw std::invalid_argument(prefix + "bits: only with round=sr (the random bits of its rounder)");
    spec.stochastic_bits = *bits;
  }
  return spec;
}

SwampingDistribution parse_swamping_distribution(std::string_view text) {
  const auto fail = [&] {
    return std::invalid_argument("--dist " + quoted_excerpt(text) +
                                 ": expected uniform:LO,HI (LO < HI), normal:MEAN,SD (SD > 0) or constant:V, "
                                 "with finite numbers");
  };
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) throw fail();
  const std::string_view kind = text.substr(0, colon);
  const std::string_view numbers = text.substr(colon + 1);
  if (kind == "constant") {
    const auto value = parse_finite(numbers);
    if (!value) throw fail();
    return {SwampingDistribution::Kind::kConstant, *value, 0.0};
  }
  const auto comma = numbers.find(',');
  if (comma == std::string_view::npos) throw fail();
  const auto a = parse_finite(numbers.substr(0, comma));
  const auto b = parse_finite(numbers.substr(comma + 1));
  if (!a || !b) throw fail();
  if (kind == "uniform" && *a < *b) return {SwampingDistribution::Kind::kUniform, *a, *b};
  if (kind == "normal" && *b > 0) return {SwampingDistribution::Kind::kNormal, *a, *b};
  throw fail();
}

std::string describe(const SwampingDistribution& distribution) {
  switch (distribution.kind) {
    case SwampingDistribution::Kind::kConstant: return "constant:" + decimal(distribution.a);
    case SwampingDistribution::Kind::kUniform: return "uniform:" + decimal(distribution.a) + "," + decimal(distribution.b);
    case SwampingDistribution::Kind::kNormal: return "normal:" + decimal(distribution.a) + "," + decimal(distribution.b);
  }
  return "?";
}

std::string describe(const SwampingCurveSpec& curve) {
  std::string text = curve.name + ":acc=" + curve.accumulator + ",chunk=" + std::to_string(curve.chunk_length);
  if (curve.rounding) text += ",round=" + std::string(num::rounding_name(*curve.rounding));
  if (curve.rounding == num::Rounding::kStochastic) text += ",bits=" + std::to_string(curve.stochastic_bits);
  return text;
}

SwampingResult run_swamping(const SwampingOptions& options) {
  if (options.min_log2_n < 0 || options.min_log2_n > options.max_log2_n || options.max_log2_n > kMaxLog2N)
    throw std::invalid_argument("--min-log2-n/--max-log2-n: expected 0 <= min <= max <= " +
                                std::to_string(kMaxLog2N) + ", got " + std::to_string(options.min_log2_n) + " and " +
                                std::to_string(options.max_log2_n));
  if (options.trials < 1 || options.trials > kMaxTrials)
    throw std::invalid_argument("--trials: expected 1.." + std::to_string(kMaxTrials) + ", got " +
                                std::to_string(options.trials));
  const auto input_spec = num::find_format(options.input_format);
  if (!input_spec)
    throw std::invalid_argument("--input-format: unknown format " + quoted_excerpt(options.input_format) +
                                "; expected one of " + num::preset_format_names());
  if (options.curves.empty()) throw std::invalid_argument("--curve: expected at least one curve");

  std::vector<num::Datapath> datapaths;
  std::set<std::string, std::less<>> names;
  for (const SwampingCurveSpec& curve : options.curves) {
    if (!names.insert(curve.name).second)
      throw std::invalid_argument("--curve " + curve.name + ": the name is used by two curves");
    try {
      datapaths.emplace_back(datapath_config(curve, *input_spec, options.seed));
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      // The datapath's own checks (operand widths, the accumulator's radix and width, sr bits)
      // get the curve's name.
      throw std::invalid_argument(message.starts_with("--curve") ? message : "--curve " + curve.name + ": " + message);
    }
  }

  SwampingResult result;
  for (int e = options.min_log2_n; e <= options.max_log2_n; ++e) result.lengths.push_back(std::uint64_t{1} << e);
  const std::size_t points = result.lengths.size();
  for (const SwampingCurveSpec& curve : options.curves)
    result.curves.push_back({curve.name, std::vector<double>(points, 0.0), std::vector<double>(points, 0.0),
                             std::vector<double>(points, 0.0)});

  const std::size_t length = result.lengths.back();
  const num::Format input(*input_spec);
  for (int trial = 0; trial < options.trials; ++trial) {
    const auto t = static_cast<std::uint64_t>(trial);
    // The addends: products a[k] * b[k] (exact in double: the datapath checked the widths)
    // or the values a[k] themselves.
    std::vector<double> addends = input_vector(input, options, length, kFirstInputStream + 2 * t);
    if (options.sum == SwampingSum::kProducts) {
      const std::vector<double> b = input_vector(input, options, length, kFirstInputStream + 2 * t + 1);
      for (std::size_t k = 0; k < length; ++k) addends[k] *= b[k];
    }
    // FP64 reference at each n: its error (about n * 2^-53 relative for same-sign
    // addends) is far below every curve measured here.
    std::vector<double> reference(points);
    double sum = 0;
    for (std::size_t k = 0, point = 0; k < length; ++k) {
      sum += addends[k];
      if (k + 1 != result.lengths[point]) continue;
      if (sum == 0)
        throw std::invalid_argument("--dist " + describe(options.distribution) + ": the exact sum of trial " +
                                    std::to_string(trial) + "'s first " + std::to_string(k + 1) +
                                    " addends is 0, where a relative error is undefined; expected a distribution "
                                    "whose sums are not 0");
      reference[point++] = sum;
    }
    for (std::size_t s = 0; s < datapaths.size(); ++s) {
      num::ChunkedAccumulator accumulator = datapaths[s].make_accumulator(t);
      SwampingCurve& curve = result.curves[s];
      for (std::size_t k = 0, point = 0; k < length; ++k) {
        accumulator.add(addends[k]);
        if (k + 1 != result.lengths[point]) continue;
        const double signed_error = (accumulator.value() - reference[point]) / std::fabs(reference[point]);
        curve.mean_relative_error[point] += std::fabs(signed_error) / options.trials;
        curve.mean_signed_relative_error[point] += signed_error / options.trials;
        curve.max_relative_error[point] = std::max(curve.max_relative_error[point], std::fabs(signed_error));
        ++point;
      }
    }
  }
  return result;
}

void write_swamping_csv(const SwampingResult& result, int trials, std::ostream& out) {
  out << "config,n,mean_relative_error,max_relative_error,mean_signed_relative_error,trials\n"
      << std::setprecision(6);
  for (const SwampingCurve& curve : result.curves)
    for (std::size_t p = 0; p < result.lengths.size(); ++p)
      out << curve.name << ',' << result.lengths[p] << ',' << curve.mean_relative_error[p] << ','
          << curve.max_relative_error[p] << ',' << curve.mean_signed_relative_error[p] << ',' << trials << '\n';
}

int run_numerics_swamping(const std::vector<std::string>& args, std::istream& /*in*/, std::ostream& out,
                          std::ostream& err) {
  // No default_value on the setup's options: given ones override the setup, and the
  // variables map only holds the given ones.
  po::options_description description("Options");
  description.add_options()
      ("help,h", "show this help")
      ("setup", po::value<std::string>()->default_value("default"),
       ("named experiment the other options change: " + swamping_setup_names()).c_str())
      ("curve", po::value<std::vector<std::string>>()->composing(),
       "NAME:acc=FMT,chunk=K,round=MODE[,bits=R], repeatable; replaces the setup's curves. acc: a preset "
       "(default fp16); chunk: adds per chunk, 0/1 none (default 0); round: rne|away|rtz|sr|sr_exact (default: the "
       "accumulator's own); bits: random bits of sr (default 24)")
      ("sum", po::value<std::string>(), "products: sums of a[k]*b[k]; values: sums of a[k] (default products)")
      ("dist", po::value<std::string>(),
       "inputs' distribution: uniform:LO,HI | normal:MEAN,SD | constant:V (default uniform:0,0.125)")
      ("input-format", po::value<std::string>(), "preset the draws are rounded onto, RNE (default fp8_e4m3)")
      ("min-log2-n", po::value<int>(), "shortest sum: 2^N (default 6)")
      ("max-log2-n", po::value<int>(), "longest sum: 2^N, up to 26 (default 20)")
      ("trials", po::value<int>(), "random inputs per length, 1..10000 (default 4)")
      ("seed", po::value<std::uint64_t>(), "seed of the inputs and of SR (default 1)")
      ("out", po::value<std::string>()->default_value("."), "directory for swamping.csv and swamping.png")
      ("no-plot", "write the CSV only");
  const std::string usage =
      "Usage: lptsim numerics swamping [--setup NAME] [--curve SPEC]...\n"
      "         [--sum products|values] [--dist SPEC] [--input-format FMT] [--min-log2-n N] [--max-log2-n N]\n"
      "         [--trials T] [--seed S] [--out DIR] [--no-plot]\n"
      "Relative error against FP64 of sums of length 2^min..2^max, accumulated in low precision, one\n"
      "curve per accumulator (format, chunk length, rounding). Writes DIR/swamping.csv and, with\n"
      "scripts/plot_swamping.py, DIR/swamping.png. The default setup: FP32, FP16 plain, chunked\n"
      "(16/64/256) and SR on products of fp8_e4m3 inputs from uniform:0,0.125. --setup wang2018: Wang et\n"
      "al. NeurIPS 2018's swamping experiment (docs/numerics.md: what is the paper's, what is assumed).\n"
      "Options given change the setup; the defaults shown below are the default setup's.\n"
      "Example: --curve plain:acc=fp16 --curve c64:acc=fp16,chunk=64 --curve sr:acc=fp16,round=sr,bits=12";
  po::variables_map values;
  if (auto code = parse_command_line("numerics swamping", usage, description, nullptr, args, values, out, err))
    return *code;
  std::ostream& summary = stream_for(verbosity(values), Verbosity::kNormal, out);

  SwampingOptions options;
  SwampingResult result;
  try {
    const std::string setup = values["setup"].as<std::string>();
    const auto preset = swamping_setup(setup);
    if (!preset)
      throw std::invalid_argument("--setup: unknown setup " + quoted_excerpt(setup) + "; expected one of " +
                                  swamping_setup_names());
    options = *preset;
    if (values.count("curve")) {
      options.curves.clear();
      for (const std::string& text : values["curve"].as<std::vector<std::string>>())
        options.curves.push_back(parse_swamping_curve(text));
    }
    if (values.count("sum")) {
      const std::string sum = values["sum"].as<std::string>();
      if (sum != "products" && sum != "values")
        throw std::invalid_argument("--sum: expected products or values, got " + quoted_excerpt(sum));
      options.sum = sum == "values" ? SwampingSum::kValues : SwampingSum::kProducts;
    }
    if (values.count("dist")) options.distribution = parse_swamping_distribution(values["dist"].as<std::string>());
    if (values.count("input-format")) options.input_format = values["input-format"].as<std::string>();
    if (values.count("min-log2-n")) options.min_log2_n = values["min-log2-n"].as<int>();
    if (values.count("max-log2-n")) options.max_log2_n = values["max-log2-n"].as<int>();
    if (values.count("trials")) options.trials = values["trials"].as<int>();
    if (values.count("seed")) options.seed = values["seed"].as<std::uint64_t>();
    result = run_swamping(options);
  } catch (const std::invalid_argument& e) {
    err << "lptsim numerics swamping: " << e.what() << "\n";
    return kExitBadInput;
  }

  const std::filesystem::path directory = values["out"].as<std::string>();
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  const std::filesystem::path csv = directory / "swamping.csv";
  {
    std::ofstream file(csv);
    if (!file) {
      err << "lptsim numerics swamping: cannot write " << csv << "\n";
      return kExitFailed;
    }
    write_swamping_csv(result, options.trials, file);
  }

  summary << "sums of " << (options.sum == SwampingSum::kProducts ? "products of " : "") << options.input_format
          << " inputs from " << describe(options.distribution) << ", " << options.trials << " trials, seed "
          << options.seed << "; curves:\n";
  for (const SwampingCurveSpec& curve : options.curves) summary << "  " << describe(curve) << "\n";
  summary << "mean relative error vs FP64\n" << std::left << std::setw(16) << "curve";
  for (std::size_t p = 0; p < result.lengths.size(); p += 2)
    summary << std::setw(11) << ("2^" + std::to_string(p + static_cast<std::size_t>(options.min_log2_n)));
  summary << "\n";
  for (const SwampingCurve& curve : result.curves) {
    summary << std::setw(16) << curve.name << std::setprecision(2) << std::scientific;
    for (std::size_t p = 0; p < result.lengths.size(); p += 2) summary << std::setw(11) << curve.mean_relative_error[p];
    summary << std::defaultfloat << "\n";
  }
  summary << "wrote " << csv.string() << "\n";
  if (values.count("no-plot")) return kExitOk;

  // Debian's python3 has matplotlib; the first python3 on PATH may not.
  const std::filesystem::path script = std::filesystem::path(LPTSIM_SOURCE_DIR) / "scripts" / "plot_swamping.py";
  const std::filesystem::path png = directory / "swamping.png";
  const std::string command =
      "/usr/bin/python3 " + shell_quote(script.string()) + " " + shell_quote(csv.string()) + " " + shell_quote(png.string());
  if (std::system(command.c_str()) != 0) {
    err << "lptsim numerics swamping: plotting failed (" << command << "); the CSV is written, rerun with --no-plot "
        << "to skip the plot\n";
    return kExitFailed;
  }
  summary << "wrote " << png.string() << "\n";
  return kExitOk;
}

}  // namespace lpt
