// `lptsim numerics swamping`: relative error of long sums in low-precision accumulators
// against FP64, for n = 2^min ... 2^max, one curve per accumulator configuration (format,
// chunk length, rounding). The experiment behind Wang et al. NeurIPS 2018, Fig. 2: plain
// low-precision accumulation stops growing once the running sum's half-gap exceeds the
// addends ("swamping"); chunk-based accumulation and stochastic rounding keep tracking.
//
// The sums are of products of two operand vectors (a MAC array's dot products) or of one
// vector of values (e.g. a weight-update accumulation); the vectors are random draws
// rounded (RNE) onto an input format. Setups are named bundles of all of this
// (swamping_setup), so that a paper's experiment is one option.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/numerics/rounding.hpp"

namespace lpt {

// One accumulator configuration: a curve of the experiment.
struct SwampingCurveSpec {
  std::string name;                       // CSV config column and plot legend
  std::string accumulator = "fp16";       // a preset format name
  int chunk_length = 0;                   // 0 or 1: one plain running sum
  std::optional<num::Rounding> rounding;  // of every add; unset: the accumulator's default
  int stochastic_bits = 24;               // random bits of round=sr (the datapath's default)
  bool operator==(const SwampingCurveSpec&) const = default;
};

// The default setup's curves: FP32 as the baseline; FP16 plain, chunked (16/64/256), with SR.
std::vector<SwampingCurveSpec> default_swamping_curves();

enum class SwampingSum { kProducts, kValues };

// Where the random inputs are drawn from, before rounding onto the input format.
struct SwampingDistribution {
  enum class Kind { kUniform, kNormal, kConstant };
  Kind kind = Kind::kUniform;
  double a = 0.0;    // uniform: low; normal: mean; constant: the value
  double b = 0.125;  // uniform: high (exclusive); normal: standard deviation
  bool operator==(const SwampingDistribution&) const = default;
};

struct SwampingOptions {
  std::uint64_t seed = 1;
  int min_log2_n = 6;
  int max_log2_n = 20;  // longest sum 2^max_log2_n
  int trials = 4;       // independent random inputs per length
  SwampingSum sum = SwampingSum::kProducts;
  // Uniform in [0, 1/8): the longest default sum (2^20 products of mean 1/256, 4096)
  // stays well inside IEEE FP16's range, so the curves show swamping, not overflow.
  SwampingDistribution distribution;
  std::string input_format = "fp8_e4m3";  // preset the draws are rounded onto (RNE)
  std::vector<SwampingCurveSpec> curves = default_swamping_curves();
};

// Named setups: "default" (the defaults above) and "wang2018" (docs/numerics.md says what of it is the paper's and what is assumed).
std::optional<SwampingOptions> swamping_setup(std::string_view name);
std::string swamping_setup_names();  // comma-separated, for help and errors

// "NAME:key=value,..." with keys acc, chunk, round, bits (see --help). Throws
// std::invalid_argument naming the bad part and what was expected.
SwampingCurveSpec parse_swamping_curve(std::string_view text);
// "uniform:LO,HI", "normal:MEAN,SD" or "constant:V"; throws std::invalid_argument.
SwampingDistribution parse_swamping_distribution(std::string_view text);
std::string describe(const SwampingDistribution& distribution);  // the same syntax
std::string describe(const SwampingCurveSpec& curve);            // NAME:acc=...,chunk=...,round=...

// One accumulator configuration's error curve.
struct SwampingCurve {
  std::string name;
  std::vector<double> mean_relative_error;  // per length
  std::vector<double> max_relative_error;
  std::vector<double> mean_signed_relative_error;  // (accumulated - exact) / |exact|: bias
};

struct SwampingResult {
  std::vector<std::uint64_t> lengths;  // the n of each point
  std::vector<SwampingCurve> curves;
};

// Throws std::invalid_argument (starting with the option at fault) on options out of range.
SwampingResult run_swamping(const SwampingOptions& options);

// Long-format CSV: config,n,mean_relative_error,max_relative_error,mean_signed_relative_error,trials.
void write_swamping_csv(const SwampingResult& result, int trials, std::ostream& out);

int run_numerics_swamping(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                          std::ostream& err);

}  // namespace lpt
