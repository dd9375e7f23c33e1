// Gradient-side numerics: two-phase rounding (models/numerics/two_phase.*) and dynamic
// loss scaling (models/numerics/loss_scale.*).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "models/numerics/loss_scale.hpp"
#include "models/numerics/two_phase.hpp"

namespace lpt::num {
namespace {

TwoPhaseParams fp4_params() {
  TwoPhaseParams params;
  params.grid = *find_format("fp4_radix4");
  return params;
}

std::vector<double> normal_gradient(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1e-3);
  std::vector<double> g(n);
  for (double& v : g) v = normal(rng);
  return g;
}

// log2 |v| of a nonzero grid value (all are powers of two).
int log2_of(double v) {
  int exponent = 0;
  EXPECT_EQ(std::frexp(std::fabs(v), &exponent), 0.5) << v;
  return exponent - 1;
}

TEST(NumericsTwoPhase, PhasesUseEvenAndOddPowersOfTwo) {
  const std::vector<double> g = normal_gradient(5000, 1);
  const TwoPhaseGradients r = round_two_phase(g, fp4_params());
  std::size_t nonzero = 0;
  for (std::size_t e = 0; e < g.size(); ++e) {
    if (r.bwd_data.values[e] != 0) {
      EXPECT_EQ(((log2_of(r.bwd_data.values[e]) % 2) + 2) % 2, 0);
      ++nonzero;
    }
    if (r.wgrad.values[e] != 0) {
      EXPECT_EQ(((log2_of(r.wgrad.values[e]) % 2) + 2) % 2, 1);
    }
    if (r.bwd_data.values[e] != 0) {  // signs are kept
      EXPECT_EQ(std::signbit(r.bwd_data.values[e]), std::signbit(g[e]));
    }
  }
  EXPECT_GT(nonzero, g.size() * 9 / 10);
  // The scales: the smallest power of the phase's parity at or above max |g| (top of the
  // grid is 4^0 times the scale), so nothing saturates.
  double largest = 0;
  for (double v : g) largest = std::max(largest, std::fabs(v));
  EXPECT_GE(r.bwd_data.scale, largest);
  EXPECT_LT(r.bwd_data.scale / 4, largest);
  EXPECT_GE(r.wgrad.scale, largest);
  EXPECT_LT(r.wgrad.scale / 4, largest);
  EXPECT_EQ(log2_of(r.bwd_data.scale) % 2, 0);
  EXPECT_NE(log2_of(r.wgrad.scale) % 2, 0);
}

TEST(NumericsTwoPhase, TheTwoPhasesErrorsPartlyCancel) {
  const std::vector<double> g = normal_gradient(20000, 2);
  const TwoPhaseGradients r = round_two_phase(g, fp4_params());
  double even = 0, odd = 0, mean = 0;
  for (std::size_t e = 0; e < g.size(); ++e) {
    const double a = r.bwd_data.values[e] - g[e], b = r.wgrad.values[e] - g[e];
    even += a * a;
    odd += b * b;
    mean += (a + b) * (a + b) / 4;
  }
  // Offset grids: the average of the two copies is much closer than either one.
  EXPECT_LT(mean, 0.6 * std::min(even, odd));
}

TEST(NumericsTwoPhase, WhichPhaseFeedsWhichGemmIsAParameter) {
  const std::vector<double> g = normal_gradient(100, 3);
  TwoPhaseParams params = fp4_params();
  const TwoPhaseGradients even_first = round_two_phase(g, params);
  params.bwd_data_phase = GradientPhase::kOdd;
  const TwoPhaseGradients odd_first = round_two_phase(g, params);
  EXPECT_EQ(even_first.bwd_data.values, odd_first.wgrad.values);
  EXPECT_EQ(even_first.wgrad.values, odd_first.bwd_data.values);
}

TEST(NumericsTwoPhase, RejectsNonRadix4GridsAndNonFiniteGradients) {
  TwoPhaseParams params = fp4_params();
  EXPECT_THROW(round_two_phase(std::vector<double>{1.0, std::numeric_limits<double>::infinity()}, params),
               std::invalid_argument);
  params.grid = *find_format("fp8_e5m2");
  EXPECT_THROW(round_two_phase(std::vector<double>{1.0}, params), std::invalid_argument);
  // An all-zero gradient stays zero.
  const TwoPhaseGradients zero = round_two_phase(std::vector<double>(3, 0.0), fp4_params());
  EXPECT_EQ(zero.bwd_data.values, std::vector<double>(3, 0.0));
}

TEST(NumericsLossScale, ScaleAndUnscaleAreExactAndOverflowIsDetected) {
  LossScaler scaler(LossScaleParams{});
  std::vector<double> g = {0x1.8p-30, -3.0, 1e-20};
  const std::vector<double> original = g;
  scaler.scale_values(g);
  EXPECT_EQ(g[0], 0x1.8p-14);
  scaler.unscale_values(g);
  EXPECT_EQ(g, original);
  EXPECT_FALSE(has_overflow(g, 65504));
  EXPECT_TRUE(has_overflow(std::vector<double>{1.0, 70000.0}, 65504));
  EXPECT_TRUE(has_overflow(std::vector<double>{std::numeric_limits<double>::quiet_NaN()}, 65504));
}

TEST(NumericsLossScale, BacksOffOnOverflowAndGrowsAfterCleanSteps) {
  LossScaleParams params;
  params.initial_scale = 1024;
  params.growth_interval = 3;
  params.min_scale = 256;
  params.max_scale = 2048;
  LossScaler scaler(params);
  EXPECT_FALSE(scaler.update(true));  // skipped, halved
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_TRUE(scaler.update(false));  // third clean step: doubled
  EXPECT_EQ(scaler.scale(), 1024);
  for (int i = 0; i < 9; ++i) scaler.update(false);
  EXPECT_EQ(scaler.scale(), 2048);  // clamped at max
  for (int i = 0; i < 5; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 256);  // clamped at min
  EXPECT_EQ(scaler.skipped_steps(), 6);
}

TEST(NumericsLossScale, RejectsParametersThatWouldMakeScalingInexact) {
  LossScaleParams params;
  params.growth_factor = 3;
  EXPECT_THROW(LossScaler{params}, std::invalid_argument);
  params = {};
  params.backoff_factor = 2;
  EXPECT_THROW(LossScaler{params}, std::invalid_argument);
  params = {};
  params.initial_scale = 1000;
  EXPECT_THROW(LossScaler{params}, std::invalid_argument);
  params = {};
  params.min_scale = 1 << 20;
  params.initial_scale = 1 << 16;
  EXPECT_THROW(LossScaler{params}, std::invalid_argument);
  params = {};
  params.growth_interval = 0;
  EXPECT_THROW(LossScaler{params}, std::invalid_argument);
}

}  // namespace
}  // namespace lpt::num
