// The vectorised GEMM (models/numerics/gemm.*) against the per-element reference, bit for
// bit, on random and corner inputs: overflow, underflow, NaN, Inf, subnormal sums, ties.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "models/numerics/gemm.hpp"

namespace lpt::num {
namespace {

FormatSpec preset(std::string_view name) { return *find_format(name); }

// How operand codes are drawn: from the finite codes between two quantiles of magnitude,
// plus NaN/Inf codes with some probability.
struct Distribution {
  const char* name;
  double low_quantile;
  double high_quantile;
  double special_probability;
};

const Distribution kDistributions[] = {
    {"all-finite", 0.0, 1.0, 0.0},     // every finite code: tiny and huge products mixed
    {"middle", 0.35, 0.8, 0.0},        // ordinary magnitudes: the fast path's common case
    {"tiny", 0.0, 0.3, 0.0},           // subnormal and underflowing sums
    {"huge", 0.85, 1.0, 0.0},          // overflow
    {"specials", 0.3, 0.9, 0.002},     // occasional NaN / Inf operands
};

EncodedMatrix random_matrix(const Format& format, std::size_t rows, std::size_t cols, const Distribution& d,
                            std::mt19937_64& rng) {
  std::vector<std::uint32_t> finite, special;
  for (std::uint32_t code = 0; code < format.encoding_count(); ++code) {
    const double value = format.decode(code);
    (std::isfinite(value) ? finite : special).push_back(code);
  }
  std::stable_sort(finite.begin(), finite.end(), [&](std::uint32_t x, std::uint32_t y) {
    return std::fabs(format.decode(x)) < std::fabs(format.decode(y));
  });
  const std::size_t first = static_cast<std::size_t>(d.low_quantile * (finite.size() - 1));
  const std::size_t last = static_cast<std::size_t>(d.high_quantile * (finite.size() - 1));
  std::uniform_int_distribution<std::size_t> pick_finite(first, last);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  EncodedMatrix m{rows, cols, std::vector<std::uint32_t>(rows * cols)};
  for (auto& code : m.codes) {
    if (!special.empty() && unit(rng) < d.special_probability)
      code = special[std::uniform_int_distribution<std::size_t>(0, special.size() - 1)(rng)];
    else
      code = finite[pick_finite(rng)];
  }
  return m;
}

struct Case {
  const char* name;
  const char* a;
  const char* b;
  const char* accumulator;
  int chunk;
  Rounding inner;
  Rounding outer;
  const char* output;  // "" for none
  Rounding output_rounding;
  LaneKind expected_inner;
  LaneKind expected_outer;
  int stochastic_bits = 24;
};

const Case kCases[] = {
    // The benchmark's configuration: HFP8-style FP8 products into FP16 chunks of 64.
    {"e4m3_fp16_c64", "fp8_e4m3", "fp8_e4m3", "fp16", 64, Rounding::kNearestEven, Rounding::kNearestEven, "",
     Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kDouble},
    {"e5m2_fp16_plain", "fp8_e5m2", "fp8_e5m2", "fp16", 0, Rounding::kNearestEven, Rounding::kNearestEven, "",
     Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kReference},
    {"e5m2xe4m3_dlfloat_c16", "fp8_e5m2", "fp8_e4m3", "dlfloat16", 16, Rounding::kNearestAway,
     Rounding::kNearestAway, "", Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kDouble},
    {"hfp8_fp16_rtz_c8", "hfp8_e4m3", "hfp8_e5m2", "fp16", 8, Rounding::kTowardZero, Rounding::kTowardZero, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble},
    {"e5m2_bf16_c32", "fp8_e5m2", "fp8_e5m2", "bf16", 32, Rounding::kNearestEven, Rounding::kNearestEven, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble},
    {"e4m3_fp32_c64_sr_out", "fp8_e4m3", "fp8_e4m3", "fp32", 64, Rounding::kNearestEven, Rounding::kNearestEven,
     "fp16", Rounding::kStochastic, LaneKind::kDouble, LaneKind::kDouble},
    {"e4m3_fp16_away_c5_out_e5m2", "fp8_e4m3", "fp8_e4m3", "fp16", 5, Rounding::kNearestAway,
     Rounding::kTowardZero, "fp8_e5m2", Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kDouble},
    {"e5m2_fp16_outer_sr_c16", "fp8_e5m2", "fp8_e5m2", "fp16", 16, Rounding::kNearestEven, Rounding::kStochastic,
     "", Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kDouble},
    {"e5m2_fp16_inner_sr_c16", "fp8_e5m2", "fp8_e5m2", "fp16", 16, Rounding::kStochastic, Rounding::kNearestEven,
     "", Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble},
    // Stochastically rounded accumulation (double lanes): sums exact in double (fp16) or
    // rounded to odd (dlfloat16, bf16, fp32), 8/16/24 random bits, chunked and plain.
    {"e4m3_fp16_sr8_c64", "fp8_e4m3", "fp8_e4m3", "fp16", 64, Rounding::kStochastic, Rounding::kStochastic, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble, 8},
    {"e5m2_fp16_sr24_plain", "fp8_e5m2", "fp8_e5m2", "fp16", 0, Rounding::kStochastic, Rounding::kStochastic, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kReference, 24},
    {"hfp8_fp16_sr16_c8_rtz_outer", "hfp8_e4m3", "hfp8_e5m2", "fp16", 8, Rounding::kStochastic,
     Rounding::kTowardZero, "", Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble, 16},
    {"e4m3_dlfloat_sr16_c16", "fp8_e4m3", "fp8_e4m3", "dlfloat16", 16, Rounding::kStochastic, Rounding::kStochastic,
     "", Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble, 16},
    {"e5m2_dlfloat_sr8_plain", "fp8_e5m2", "fp8_e5m2", "dlfloat16", 0, Rounding::kStochastic,
     Rounding::kStochastic, "", Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kReference, 8},
    {"e4m3_bf16_sr16_c32", "fp8_e4m3", "fp8_e4m3", "bf16", 32, Rounding::kStochastic, Rounding::kStochastic, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble, 16},
    {"e5m2_bf16_sr24_plain_out_e4m3", "fp8_e5m2", "fp8_e5m2", "bf16", 0, Rounding::kStochastic,
     Rounding::kStochastic, "fp8_e4m3", Rounding::kStochastic, LaneKind::kDouble, LaneKind::kReference, 24},
    {"e4m3_fp32_sr24_c64", "fp8_e4m3", "fp8_e4m3", "fp32", 64, Rounding::kStochastic, Rounding::kStochastic, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble, 24},
    {"fp16_fp32_sr8_plain", "fp16", "fp16", "fp32", 0, Rounding::kStochastic, Rounding::kStochastic, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kReference, 8},
    {"e4m3_fp16_rne_inner_sr24_outer_c64", "fp8_e4m3", "fp8_e4m3", "fp16", 64, Rounding::kNearestEven,
     Rounding::kStochastic, "", Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kDouble, 24},
    // sr_exact needs the exact sum's whole fraction: its stages stay on the reference.
    {"e4m3_fp16_sr_exact_c16", "fp8_e4m3", "fp8_e4m3", "fp16", 16, Rounding::kStochasticExact,
     Rounding::kNearestEven, "", Rounding::kNearestEven, LaneKind::kReference, LaneKind::kDouble},
    {"e4m3_fp16_sr_exact_outer_c16", "fp8_e4m3", "fp8_e4m3", "fp16", 16, Rounding::kNearestEven,
     Rounding::kStochasticExact, "", Rounding::kNearestEven, LaneKind::kFloat, LaneKind::kReference},
    {"fp16_fp32_rtz_plain", "fp16", "fp16", "fp32", 0, Rounding::kTowardZero, Rounding::kTowardZero, "",
     Rounding::kNearestEven, LaneKind::kReference, LaneKind::kReference},
    {"ibm_fp8_fp16_rtz_c4", "ibm_fp8", "hfp8_e4m3", "fp16", 4, Rounding::kTowardZero, Rounding::kNearestEven, "",
     Rounding::kNearestEven, LaneKind::kDouble, LaneKind::kDouble},
};

Datapath make_datapath(const Case& c) {
  DatapathConfig config;
  config.operand_a = preset(c.a);
  config.operand_b = preset(c.b);
  config.accumulator = preset(c.accumulator);
  config.chunk_length = c.chunk;
  config.inner_rounding = c.inner;
  config.outer_rounding = c.outer;
  if (std::string(c.output).size() > 0) {
    config.output = preset(c.output);
    config.output_rounding = c.output_rounding;
  }
  config.stochastic_bits = c.stochastic_bits;
  config.seed = 1234;
  return Datapath(config);
}

void expect_bitwise_equal(const Matrix& fast, const Matrix& reference, const std::string& label) {
  ASSERT_EQ(fast.rows, reference.rows);
  ASSERT_EQ(fast.cols, reference.cols);
  std::size_t mismatches = 0;
  for (std::size_t e = 0; e < fast.values.size(); ++e) {
    if (std::bit_cast<std::uint64_t>(fast.values[e]) == std::bit_cast<std::uint64_t>(reference.values[e])) continue;
    if (++mismatches <= 5)
      ADD_FAILURE() << label << " element " << e << ": fast " << fast.values[e] << " reference " << reference.values[e];
  }
  EXPECT_EQ(mismatches, 0u) << label;
}

TEST(NumericsDatapathGemm, KernelSelectionFollowsTheExactnessConditions) {
  for (const Case& c : kCases) {
    const GemmKernel kernel = select_gemm_kernel(make_datapath(c));
    // Builds for AVX512-FP16 sum into binary16 with RNE in its own lanes.
    const bool half =
        half_lanes_compiled() && std::string(c.accumulator) == "fp16" && c.inner == Rounding::kNearestEven;
    EXPECT_EQ(lane_kind_name(kernel.inner), lane_kind_name(half ? LaneKind::kHalf : c.expected_inner)) << c.name;
    EXPECT_EQ(lane_kind_name(kernel.outer), lane_kind_name(c.expected_outer)) << c.name;
  }
}

TEST(NumericsDatapathGemm, FastGemmMatchesTheReferenceBitForBit) {
  std::mt19937_64 rng(20240611);
  for (const Case& c : kCases) {
    const Datapath datapath = make_datapath(c);
    for (const Distribution& d : kDistributions) {
      // K = 150 leaves a partial last chunk for every chunk length above.
      const EncodedMatrix a = random_matrix(datapath.operand_a(), 5, 150, d, rng);
      const EncodedMatrix b = random_matrix(datapath.operand_b(), 150, 37, d, rng);
      expect_bitwise_equal(gemm(datapath, a, b), gemm_reference(datapath, a, b), std::string(c.name) + "/" + d.name);
    }
  }
}

TEST(NumericsDatapathGemm, MixedMagnitudesPerOperand) {
  // Tiny A against huge B and the reverse: products spread over the whole product range.
  std::mt19937_64 rng(7);
  for (const Case& c : kCases) {
    const Datapath datapath = make_datapath(c);
    const EncodedMatrix a = random_matrix(datapath.operand_a(), 4, 100, kDistributions[2], rng);
    const EncodedMatrix b = random_matrix(datapath.operand_b(), 100, 33, kDistributions[3], rng);
    expect_bitwise_equal(gemm(datapath, a, b), gemm_reference(datapath, a, b), std::string(c.name) + "/tiny-x-huge");
    const EncodedMatrix huge_a = random_matrix(datapath.operand_a(), 4, 100, kDistributions[3], rng);
    const EncodedMatrix any_b = random_matrix(datapath.operand_b(), 100, 33, kDistributions[0], rng);
    expect_bitwise_equal(gemm(datapath, huge_a, any_b), gemm_reference(datapath, huge_a, any_b),
                         std::string(c.name) + "/huge-x-any");
  }
}

TEST(NumericsDatapathGemm, TiesAndStallsOfLongSumsOfOnes) {
  // All-ones rows of 5000 reach the fp16 stall (2048 + 1 is a tie every add) and the
  // dlfloat16 ties-away staircase; signs alternate per column to test negative ties.
  for (const Case& c : kCases) {
    const Datapath datapath = make_datapath(c);
    const std::size_t k = 5000, n = 9;
    Matrix a_values(2, k, 1.0), b_values(k, n, 1.0);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t r = 0; r < k; ++r) b_values(r, j) = (j % 2 ? -1.0 : 1.0) * (j % 3 ? 1.0 : 0.5);
    const EncodedMatrix a = encode_matrix(datapath.operand_a(), a_values, Rounding::kNearestEven);
    const EncodedMatrix b = encode_matrix(datapath.operand_b(), b_values, Rounding::kNearestEven);
    expect_bitwise_equal(gemm(datapath, a, b), gemm_reference(datapath, a, b), std::string(c.name) + "/ones");
  }
}

TEST(NumericsDatapathGemm, StochasticSumsBeyondDoublePrecision) {
  // A large sum plus products 2^-32 of opposite sign: the exact sum needs more than
  // double's 53 bits, so it is rounded to odd, and then its random bits decide whether
  // it stays or drops a step (it drops where the draw is 0, 1 in 2^8 adds). Big products
  // open every other chunk, so chunk sums of both sizes meet in the outer sums too.
  std::mt19937_64 rng(5);
  for (const char* accumulator : {"bf16", "fp32", "dlfloat16"})
    for (int chunk : {0, 8}) {
      DatapathConfig config;
      config.operand_a = config.operand_b = preset("fp8_e5m2");
      config.accumulator = preset(accumulator);
      config.chunk_length = chunk;
      config.inner_rounding = config.outer_rounding = Rounding::kStochastic;
      config.stochastic_bits = 8;
      config.seed = 77;
      const Datapath datapath(config);
      ASSERT_EQ(lane_kind_name(select_gemm_kernel(datapath).inner), "double");
      const std::size_t m = 3, k = 400, n = 40;
      const std::size_t span = chunk > 0 ? chunk : k;
      std::uniform_int_distribution<int> pick(0, 5);
      Matrix a_values(m, k), b_values(k, n);
      for (std::size_t r = 0; r < k; ++r) {
        const bool big = r % span == 0 && (r / span) % 2 == 0;
        for (std::size_t i = 0; i < m; ++i) a_values(i, r) = big ? 4096.0 : std::ldexp(1.0, -16);
        for (std::size_t j = 0; j < n; ++j) {
          const double sign = pick(rng) % 2 ? -1.0 : 1.0;
          b_values(r, j) = sign * (big ? 4096.0 * (1 + pick(rng) / 8.0) : std::ldexp(1.0 + pick(rng) % 2, -16));
        }
      }
      const EncodedMatrix a = encode_matrix(datapath.operand_a(), a_values, Rounding::kNearestEven);
      const EncodedMatrix b = encode_matrix(datapath.operand_b(), b_values, Rounding::kNearestEven);
      expect_bitwise_equal(gemm(datapath, a, b), gemm_reference(datapath, a, b),
                           std::string(accumulator) + "/chunk " + std::to_string(chunk));
    }
}

TEST(NumericsDatapathGemm, ResultsDoNotDependOnTheThreadCount) {
  // Large enough to run on threads: many rows (row blocks), three rows (column blocks),
  // and datapaths on the lanes, with stochastic output rounding, and through the reference.
  struct Shape {
    std::size_t m, k, n;
  };
  std::mt19937_64 rng(99);
  for (const char* name : {"e4m3_fp16_c64", "e4m3_fp32_c64_sr_out", "e4m3_dlfloat_sr16_c16", "fp16_fp32_rtz_plain"}) {
    const Case& c = *std::find_if(std::begin(kCases), std::end(kCases),
                                  [&](const Case& x) { return std::string(x.name) == name; });
    const Datapath datapath = make_datapath(c);
    const bool reference = select_gemm_kernel(datapath).inner == LaneKind::kReference;
    for (const Shape& shape : {Shape{reference ? 16u : 128u, 300, 120}, Shape{3, reference ? 300u : 8000u, 200}}) {
      const EncodedMatrix a = random_matrix(datapath.operand_a(), shape.m, shape.k, kDistributions[1], rng);
      const EncodedMatrix b = random_matrix(datapath.operand_b(), shape.k, shape.n, kDistributions[1], rng);
      const Matrix expected = gemm_reference(datapath, a, b);
      for (int threads : {1, 2, 3, 7, 0}) {
        const std::string label = std::string(name) + "/" + std::to_string(shape.m) + "x" + std::to_string(shape.k) +
                                  "x" + std::to_string(shape.n) + "/threads " + std::to_string(threads);
        expect_bitwise_equal(gemm(datapath, a, b, GemmOptions{threads}), expected, label);
      }
    }
  }
  EXPECT_THROW(gemm(make_datapath(kCases[0]), EncodedMatrix{1, 1, {0}}, EncodedMatrix{1, 1, {0}}, GemmOptions{-1}),
               std::invalid_argument);
}

TEST(NumericsDatapathGemm, MatchesTheDotProductAndTheFp64Baseline) {
  DatapathConfig config;
  config.operand_a = preset("fp8_e4m3");
  config.operand_b = preset("fp8_e4m3");
  config.accumulator = preset("fp32");
  const Datapath datapath(config);
  Matrix a(1, 3), b(3, 1);
  a.values = {1.5, -2.0, 0.125};
  b.values = {4.0, 0.5, 8.0};
  const Matrix c = gemm(datapath, encode_matrix(datapath.operand_a(), a, Rounding::kNearestEven),
                        encode_matrix(datapath.operand_b(), b, Rounding::kNearestEven));
  EXPECT_EQ(c(0, 0), 6.0);  // 6 - 1 + 1
  EXPECT_EQ(c(0, 0), datapath.dot(a.values, b.values));
  EXPECT_EQ(gemm_fp64(a, b)(0, 0), 6.0);
}

TEST(NumericsDatapathGemm, RejectsMismatchedShapes) {
  const Datapath datapath = make_datapath(kCases[0]);
  const EncodedMatrix a{2, 3, std::vector<std::uint32_t>(6)}, b{4, 2, std::vector<std::uint32_t>(8)};
  EXPECT_THROW(gemm(datapath, a, b), std::invalid_argument);
  EXPECT_THROW(gemm_reference(datapath, a, b), std::invalid_argument);
  const EncodedMatrix short_b{3, 2, std::vector<std::uint32_t>(5)};
  EXPECT_THROW(gemm(datapath, a, short_b), std::invalid_argument);
  EXPECT_THROW(gemm_fp64(Matrix(2, 3), Matrix(2, 3)), std::invalid_argument);
}

}  // namespace
}  // namespace lpt::num
