// `lptsim numerics swamping`: relative error of long dot products in low-precision
// accumulators against FP64, n = 2^6 ... 2^max, for FP32, plain FP16, FP16 chunked and FP16
// with stochastic rounding (the experiment behind Wang et al. NeurIPS 2018, Fig. 2/3:
// plain FP16 stops growing once the running sum's half-gap exceeds the addends; chunking
// and SR track FP32).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace lpt {

struct SwampingOptions {
  std::uint64_t seed = 1;
  int max_log2_n = 20;       // longest dot product 2^max_log2_n
  int trials = 4;            // independent random vectors per configuration
  bool mixed_sign = false;   // operands uniform in [-range, range) instead of [0, range)
  // Operand magnitude bound. 1/8 keeps the longest default sum (2^20 products of mean
  // 1/256: 4096) well inside IEEE FP16's range, so the curves show swamping, not overflow.
  double range = 0.125;
  std::string operand = "fp8_e4m3";
};

// One accumulator configuration's error curve.
struct SwampingCurve {
  std::string name;                       // e.g. "fp16_chunk64"
  std::vector<double> mean_relative_error;  // per n = 2^6 ... 2^max_log2_n
  std::vector<double> max_relative_error;
};

struct SwampingResult {
  std::vector<std::uint64_t> lengths;  // the n of each point
  std::vector<SwampingCurve> curves;
};

// Throws std::invalid_argument on options out of range.
SwampingResult run_swamping(const SwampingOptions& options);

// Long-format CSV: config,n,mean_relative_error,max_relative_error,trials.
void write_swamping_csv(const SwampingResult& result, int trials, std::ostream& out);

int run_numerics_swamping(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                          std::ostream& err);

}  // namespace lpt
