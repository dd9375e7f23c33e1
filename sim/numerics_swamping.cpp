#include "sim/numerics_swamping.hpp"

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <stdexcept>

#include "models/numerics/datapath.hpp"
#include "models/numerics/random.hpp"
#include "sim/cli_options.hpp"

namespace lpt {
namespace po = boost::program_options;

namespace {

constexpr int kMinLog2N = 6;

struct Setup {
  const char* name;
  const char* accumulator;
  int chunk_length;
  num::Rounding rounding;
};

// The configurations of the experiment; SR uses the datapath's default rounder width.
constexpr Setup kSetups[] = {
    {"fp32", "fp32", 0, num::Rounding::kNearestEven},
    {"fp16", "fp16", 0, num::Rounding::kNearestEven},
    {"fp16_chunk16", "fp16", 16, num::Rounding::kNearestEven},
    {"fp16_chunk64", "fp16", 64, num::Rounding::kNearestEven},
    {"fp16_chunk256", "fp16", 256, num::Rounding::kNearestEven},
    {"fp16_sr", "fp16", 0, num::Rounding::kStochastic},
};

// Operand vectors of one trial, quantized (RNE) from uniform draws keyed by (seed, trial).
std::vector<double> operand_vector(const num::Format& format, const SwampingOptions& options, std::size_t length,
                                   std::uint64_t stream) {
  const num::CounterRandom random(options.seed, stream);
  std::vector<double> values(length);
  for (std::size_t k = 0; k < length; ++k) {
    const double u = random.uniform(k);
    values[k] = format.round(options.range * (options.mixed_sign ? 2 * u - 1 : u), num::Rounding::kNearestEven);
  }
  return values;
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

SwampingResult run_swamping(const SwampingOptions& options) {
  if (options.max_log2_n < kMinLog2N || options.max_log2_n > 26)
    throw std::invalid_argument("--max-log2-n: expected " + std::to_string(kMinLog2N) + "..26, got " +
                                std::to_string(options.max_log2_n));
  if (!(options.range > 0) || !std::isfinite(options.range))
    throw std::invalid_argument("--range: expected a positive number, got " + std::to_string(options.range));
  if (options.trials < 1 || options.trials > 10000)
    throw std::invalid_argument("--trials: expected 1..10000, got " + std::to_string(options.trials));
  const auto operand_spec = num::find_format(options.operand);
  if (!operand_spec)
    throw std::invalid_argument("--operand: unknown format \"" + options.operand + "\"; expected one of " +
                                num::preset_format_names());

  std::vector<num::Datapath> datapaths;
  for (const Setup& setup : kSetups) {
    num::DatapathConfig config;
    config.operand_a = config.operand_b = *operand_spec;
    config.accumulator = *num::find_format(setup.accumulator);
    config.chunk_length = setup.chunk_length;
    config.inner_rounding = config.outer_rounding = setup.rounding;
    config.seed = options.seed;
    datapaths.emplace_back(config);  // throws std::invalid_argument for unusable operands
  }

  SwampingResult result;
  for (int e = kMinLog2N; e <= options.max_log2_n; ++e) result.lengths.push_back(std::uint64_t{1} << e);
  const std::size_t points = result.lengths.size();
  for (const Setup& setup : kSetups)
    result.curves.push_back({setup.name, std::vector<double>(points, 0.0), std::vector<double>(points, 0.0)});

  const std::size_t length = result.lengths.back();
  const num::Format operand(*operand_spec);
  for (int trial = 0; trial < options.trials; ++trial) {
    const auto t = static_cast<std::uint64_t>(trial);
    const std::vector<double> a = operand_vector(operand, options, length, 2 * t);
    const std::vector<double> b = operand_vector(operand, options, length, 2 * t + 1);
    // FP64 reference at each n: the products are exact, the double sum's error (about
    // n * 2^-53 relative) is far below every curve measured here.
    std::vector<double> reference(points);
    double sum = 0;
    for (std::size_t k = 0, point = 0; k < length; ++k) {
      sum += a[k] * b[k];
      if (k + 1 == result.lengths[point]) reference[point++] = sum;
    }
    for (std::size_t s = 0; s < datapaths.size(); ++s) {
      num::ChunkedAccumulator accumulator = datapaths[s].make_accumulator(t);
      SwampingCurve& curve = result.curves[s];
      for (std::size_t k = 0, point = 0; k < length; ++k) {
        accumulator.add(a[k] * b[k]);
        if (k + 1 != result.lengths[point]) continue;
        const double error = std::fabs(accumulator.value() - reference[point]) / std::fabs(reference[point]);
        curve.mean_relative_error[point] += error / options.trials;
        curve.max_relative_error[point] = std::max(curve.max_relative_error[point], error);
        ++point;
      }
    }
  }
  return result;
}

void write_swamping_csv(const SwampingResult& result, int trials, std::ostream& out) {
  out << "config,n,mean_relative_error,max_relative_error,trials\n" << std::setprecision(6);
  for (const SwampingCurve& curve : result.curves)
    for (std::size_t p = 0; p < result.lengths.size(); ++p)
      out << curve.name << ',' << result.lengths[p] << ',' << curve.mean_relative_error[p] << ','
          << curve.max_relative_error[p] << ',' << trials << '\n';
}

int run_numerics_swamping(const std::vector<std::string>& args, std::istream& /*in*/, std::ostream& out,
                          std::ostream& err) {
  po::options_description description("Options");
  description.add_options()
      ("help,h", "show this help")
      ("out", po::value<std::string>()->default_value("."), "directory for swamping.csv and swamping.png")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed of the operand vectors and of SR")
      ("max-log2-n", po::value<int>()->default_value(20), "longest dot product: 2^N (6..26)")
      ("trials", po::value<int>()->default_value(4), "random vector pairs per configuration")
      ("inputs", po::value<std::string>()->default_value("positive"),
       "positive: operands uniform in [0,R); mixed: uniform in [-R,R)")
      ("range", po::value<double>()->default_value(0.125), "R, the operand bound (small enough that sums stay in range)")
      ("operand", po::value<std::string>()->default_value("fp8_e4m3"), "operand format (a preset name)")
      ("no-plot", "write the CSV only");
  const char* usage =
      "Usage: lptsim numerics swamping [--out DIR] [--seed S] [--max-log2-n N] [--trials T]\n"
      "                                [--inputs positive|mixed] [--range R] [--operand FMT] [--no-plot]\n"
      "Relative error of dot products of length 2^6..2^N against FP64, for FP32, plain FP16, FP16\n"
      "chunked (16/64/256) and FP16 with stochastic rounding; the operands are RNE-quantized\n"
      "uniform draws. Writes DIR/swamping.csv and, with scripts/plot_swamping.py, DIR/swamping.png.";
  po::variables_map values;
  SwampingOptions options;
  std::filesystem::path directory;
  if (auto code = parse_command_line("numerics swamping", usage, description, nullptr, args, values,
                                     out, err))
    return *code;
  try {
    options.seed = values["seed"].as<std::uint64_t>();
    options.max_log2_n = values["max-log2-n"].as<int>();
    options.trials = values["trials"].as<int>();
    options.operand = values["operand"].as<std::string>();
    options.range = values["range"].as<double>();
    const std::string inputs = values["inputs"].as<std::string>();
    if (inputs != "positive" && inputs != "mixed")
      throw std::invalid_argument("--inputs: expected positive or mixed, got \"" + inputs + "\"");
    options.mixed_sign = inputs == "mixed";
    directory = values["out"].as<std::string>();
  } catch (const std::invalid_argument& e) {
    err << "lptsim numerics swamping: " << e.what() << "\n";
    return 2;
  }

  SwampingResult result;
  try {
    result = run_swamping(options);
  } catch (const std::invalid_argument& e) {
    err << "lptsim numerics swamping: " << e.what() << "\n";
    return 2;
  }
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  const std::filesystem::path csv = directory / "swamping.csv";
  {
    std::ofstream file(csv);
    if (!file) {
      err << "lptsim numerics swamping: cannot write " << csv << "\n";
      return 1;
    }
    write_swamping_csv(result, options.trials, file);
  }

  out << "mean relative error vs FP64 (" << options.trials << " trials, " << (options.mixed_sign ? "mixed" : "positive")
      << " " << options.operand << " operands in " << (options.mixed_sign ? "[-R, R)" : "[0, R)") << ", R = "
      << options.range << ")\n" << std::left << std::setw(16) << "config";
  for (std::size_t p = 0; p < result.lengths.size(); p += 2) out << std::setw(11) << ("2^" + std::to_string(p + kMinLog2N));
  out << "\n";
  for (const SwampingCurve& curve : result.curves) {
    out << std::setw(16) << curve.name << std::setprecision(2) << std::scientific;
    for (std::size_t p = 0; p < result.lengths.size(); p += 2) out << std::setw(11) << curve.mean_relative_error[p];
    out << std::defaultfloat << "\n";
  }
  out << "wrote " << csv.string() << "\n";
  if (values.count("no-plot")) return 0;

  // Debian's python3 has matplotlib; the first python3 on PATH may not.
  const std::filesystem::path script = std::filesystem::path(LPTSIM_SOURCE_DIR) / "scripts" / "plot_swamping.py";
  const std::filesystem::path png = directory / "swamping.png";
  const std::string command =
      "/usr/bin/python3 " + shell_quote(script.string()) + " " + shell_quote(csv.string()) + " " + shell_quote(png.string());
  if (std::system(command.c_str()) != 0) {
    err << "lptsim numerics swamping: plotting failed (" << command << "); the CSV is written, rerun with --no-plot "
        << "to skip the plot\n";
    return 1;
  }
  out << "wrote " << png.string() << "\n";
  return 0;
}

}  // namespace lpt
