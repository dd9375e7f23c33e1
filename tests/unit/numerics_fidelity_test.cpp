// Fidelity metrics (models/numerics/fidelity.*): hand-computed cases and the SQNR theory
// of numerics.md (about 6.02 dB per significand bit).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "models/numerics/fidelity.hpp"
#include "models/numerics/random.hpp"

namespace lpt::num {
namespace {

Format preset(std::string_view name) { return Format(*find_format(name)); }

TEST(NumericsFidelity, HandComputedErrors) {
  // Error only in the last element: noise 1, signal 1 + 4 + 9 + 16 = 30.
  const std::vector<double> x = {1, 2, 3, 4}, q = {1, 2, 3, 5};
  const FidelityStats s = measure(x, q, preset("fp16"));
  EXPECT_EQ(s.count, 4u);
  EXPECT_NEAR(s.sqnr_db, 10 * std::log10(30.0), 1e-12);
  EXPECT_NEAR(s.relative_l2_error, std::sqrt(1.0 / 30), 1e-15);
  EXPECT_EQ(s.mean_signed_error, 0.25);
  EXPECT_EQ(s.fraction_underflow, 0.0);
  EXPECT_EQ(s.fraction_overflow, 0.0);
  EXPECT_EQ(s.fraction_nan, 0.0);
  EXPECT_EQ(s.max_abs_error, 1.0);
  EXPECT_EQ(measure(x, x, preset("fp16")).sqnr_db, std::numeric_limits<double>::infinity());
}

TEST(NumericsFidelity, TalliesMergeIntoThePooledFigures) {
  const std::vector<double> x = {1, 2, 3, 4}, q = {1.5, 2, 3, 2};
  ErrorTally first, second;
  for (std::size_t e = 0; e < 2; ++e) first.add(x[e], q[e], preset("fp16"));
  for (std::size_t e = 2; e < 4; ++e) second.add(x[e], q[e], preset("fp16"));
  first.merge(second);
  const FidelityStats pooled = first.stats(), whole = measure(x, q, preset("fp16"));
  EXPECT_EQ(pooled.count, whole.count);
  EXPECT_DOUBLE_EQ(pooled.sqnr_db, whole.sqnr_db);
  EXPECT_EQ(pooled.max_abs_error, 2.0);
  EXPECT_DOUBLE_EQ(pooled.mean_signed_error, whole.mean_signed_error);
}

TEST(NumericsFidelity, CountsUnderflowOverflowAndNan) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // fp16: 1e-9 flushes to 0; 1e5 overflows to Inf; 7e4 saturated to 65504 still counts as
  // overflow; a NaN result; a NaN reference is skipped.
  const std::vector<double> x = {1e-9, 1e5, 7e4, 2.0, 1.0, nan}, q = {0.0, inf, 65504.0, nan, 1.0, 1.0};
  const FidelityStats s = measure(x, q, preset("fp16"));
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.nonfinite_references, 1u);
  EXPECT_DOUBLE_EQ(s.fraction_underflow, 1.0 / 5);
  EXPECT_DOUBLE_EQ(s.fraction_overflow, 2.0 / 5);
  EXPECT_DOUBLE_EQ(s.fraction_nan, 1.0 / 5);
  // Finite results: 1e-9 -> 0, 7e4 -> 65504, 1 -> 1.
  EXPECT_DOUBLE_EQ(s.mean_signed_error, (-1e-9 + (65504.0 - 7e4)) / 3);
  EXPECT_THROW(measure(x, std::vector<double>(2), preset("fp16")), std::invalid_argument);
}

TEST(NumericsFidelity, SqnrGrowsSixDecibelsPerSignificandBit) {
  // Normal data well inside both ranges: fp16 (11 bits) vs bf16 (8 bits) differ by 3 bits.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> x(200000);
  for (double& v : x) v = normal(rng);
  const auto sqnr = [&](std::string_view name) {
    const Format f = preset(name);
    std::vector<double> q(x.size());
    for (std::size_t e = 0; e < x.size(); ++e) q[e] = f.round(x[e], Rounding::kNearestEven);
    return measure(x, q, f).sqnr_db;
  };
  const double fp16 = sqnr("fp16"), bf16 = sqnr("bf16"), e4m3 = sqnr("fp8_e4m3");
  EXPECT_NEAR(fp16 - bf16, 3 * 6.02, 1.0);
  EXPECT_NEAR(bf16 - e4m3, 4 * 6.02, 1.5);
  EXPECT_GT(fp16, 6.02 * 11);  // the distribution constant is positive for round-to-nearest
}

TEST(NumericsFidelity, StochasticRoundingIsUnbiasedTruncationIsNot) {
  const Format bf16 = preset("bf16");
  const CounterRandom random(9, 0);
  std::vector<double> x(100000), sr(x.size()), rtz(x.size());
  for (std::size_t e = 0; e < x.size(); ++e) {
    x[e] = 1.0 + random.uniform(e);  // [1, 2): bf16 gap 2^-7
    sr[e] = bf16.round(x[e], Rounding::kStochastic, CounterRandom(9, 1).bits(e), 16);
    rtz[e] = bf16.round(x[e], Rounding::kTowardZero);
  }
  EXPECT_LT(std::fabs(measure(x, sr, bf16).mean_signed_error), 0x1p-7 * 0.02);
  EXPECT_NEAR(measure(x, rtz, bf16).mean_signed_error, -0x1p-8, 0x1p-7 * 0.02);  // half a gap down
}

}  // namespace
}  // namespace lpt::num
