// Stochastic rounding and its counter-based random numbers (models/numerics/rounding.*,
// random.hpp, and the stochastic paths of format.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "models/numerics/format.hpp"
#include "models/numerics/random.hpp"
#include "models/numerics/rounding.hpp"

namespace lpt::num {
namespace {

Format preset(std::string_view name) { return Format(*find_format(name)); }

TEST(NumericsRounding, ShortNamesRoundTrip) {
  for (const auto& [name, rounding] : rounding_names()) {
    EXPECT_EQ(rounding_name(rounding), name);
    EXPECT_EQ(parse_rounding(name), rounding);
  }
  EXPECT_EQ(parse_rounding("rne"), Rounding::kNearestEven);
  EXPECT_EQ(parse_rounding("away"), Rounding::kNearestAway);
  EXPECT_EQ(parse_rounding("rtz"), Rounding::kTowardZero);
  EXPECT_EQ(parse_rounding("sr"), Rounding::kStochastic);
  EXPECT_EQ(parse_rounding("sr_exact"), Rounding::kStochasticExact);
  EXPECT_FALSE(parse_rounding("nearest").has_value());
  EXPECT_FALSE(parse_rounding("").has_value());
  EXPECT_TRUE(is_stochastic(Rounding::kStochastic));
  EXPECT_FALSE(is_stochastic(Rounding::kNearestAway));
}

// A point at `fraction` of the gap above `lower` (a value of the format with a power-of-two
// gap `gap` to the next one).
struct GapCase {
  const char* format;
  double lower;
  double gap;
};

const GapCase kGaps[] = {
    {"fp8_e4m3", 1.0, 0.125},       {"fp8_e4m3", 0x1p-9, 0x1p-9},  // subnormal gap
    {"fp8_e5m2", -3.0, -0.5},       {"hfp8_e4m3", 16.0, 2.0},
    {"fp16", 1024.0, 1.0},          {"bf16", 0x1p-130, 0x1p-133},  {"dlfloat16", 1.0, 0x1p-9},
    {"int8", -5.0, -1.0},           {"fp32", 1.0, 0x1p-23},
};

// Hardware SR with R bits over every one of the 2^R draws rounds up exactly
// floor(fraction * 2^R) times: the bias numerics.md describes.
TEST(NumericsRounding, HardwareStochasticRoundingCountsOverAllDraws) {
  for (const GapCase& gap : kGaps) {
    const Format format = preset(gap.format);
    for (int bits : {1, 3, 6, 10}) {
      for (double fraction : {0.0, 1.0 / 3, 0.5, 0.7, 0x1p-12, 0.999, 0.0625}) {
        const double x = gap.lower + fraction * gap.gap;
        const double exact_fraction = (x - gap.lower) / gap.gap;  // exact: power-of-two gap
        const auto expected_ups = static_cast<std::uint64_t>(std::floor(std::ldexp(exact_fraction, bits)));
        std::uint64_t ups = 0;
        for (std::uint64_t draw = 0; draw < (std::uint64_t{1} << bits); ++draw) {
          // Bits above the R used ones must not matter.
          const double y = format.round(x, Rounding::kStochastic, draw | 0xABCD000000000000ull, bits);
          ASSERT_TRUE(y == gap.lower || y == gap.lower + gap.gap) << gap.format << " " << x << " -> " << y;
          ups += y != gap.lower;
        }
        EXPECT_EQ(ups, expected_ups) << gap.format << " x=" << x << " R=" << bits;
      }
    }
  }
}

// sr_exact rounds up iff random / 2^64 < fraction: check both sides of the boundary draw.
TEST(NumericsRounding, ExactStochasticRoundingSwitchesAtTheFraction) {
  for (const GapCase& gap : kGaps) {
    const Format format = preset(gap.format);
    for (int k : {1, 5, 8, 13}) {  // fraction = k / 16
      const double x = gap.lower + gap.gap * k / 16;
      const std::uint64_t boundary = static_cast<std::uint64_t>(k) << 60;
      EXPECT_EQ(format.round(x, Rounding::kStochasticExact, boundary - 1), gap.lower + gap.gap) << gap.format;
      EXPECT_EQ(format.round(x, Rounding::kStochasticExact, boundary), gap.lower) << gap.format;
    }
    // A fraction far below 2^-64 of the gap still rounds up, for the zero draw only.
    const double tiny = format.min_positive() * 0x1p-70;
    EXPECT_EQ(format.round(tiny, Rounding::kStochasticExact, 0), format.min_positive()) << gap.format;
    EXPECT_EQ(format.round(tiny, Rounding::kStochasticExact, 1), 0.0) << gap.format;
  }
}

// Statistical: with N independent draws the round-up frequency estimates the probability
// p with standard deviation sqrt(p(1-p)/N); we allow 5 sigma (a false alarm about once in
// 1.7 million runs; the draws are a fixed function of the seed, so the test is repeatable).
void expect_unbiased(const Format& format, double x, double lower, double upper, Rounding rounding,
                     int bits, std::uint64_t seed) {
  const CounterRandom random(seed, /*stream=*/42);
  constexpr int kDraws = 200000;
  std::int64_t ups = 0;
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    const double y = format.round(x, rounding, random.bits(static_cast<std::uint64_t>(i)), bits);
    ASSERT_TRUE(y == lower || y == upper) << format.name() << " " << x << " -> " << y;
    ups += y == upper;
    sum += y;
  }
  const double p = (x - lower) / (upper - lower);
  // Hardware SR with R bits rounds up with floor(p * 2^R) / 2^R, at most 2^-R below p.
  const double p_hardware = rounding == Rounding::kStochastic ? std::floor(std::ldexp(p, bits)) / std::ldexp(1.0, bits) : p;
  const double sigma = std::sqrt(p_hardware * (1 - p_hardware) / kDraws);
  const double frequency = static_cast<double>(ups) / kDraws;
  EXPECT_NEAR(frequency, p_hardware, 5 * sigma + 1e-12) << format.name() << " x=" << x;
  // Unbiased: the mean of the rounded values is x, within the same 5 sigma (plus the
  // hardware's deterministic 2^-R shortfall).
  const double mean_bound = 5 * sigma * std::fabs(upper - lower) + std::fabs(upper - lower) * (p - p_hardware);
  EXPECT_NEAR(sum / kDraws, x, mean_bound + 1e-15) << format.name() << " x=" << x;
}

TEST(NumericsRounding, StochasticRoundingIsUnbiasedForUniformAndNonUniformGaps) {
  expect_unbiased(preset("fp8_e4m3"), 1.0 + 0.125 * 0.3, 1.0, 1.125, Rounding::kStochasticExact, 64, 1);
  expect_unbiased(preset("fp8_e4m3"), 1.0 + 0.125 * 0.3, 1.0, 1.125, Rounding::kStochastic, 16, 2);
  expect_unbiased(preset("fp8_e5m2"), -(0x1p-16 * 0.77), -0.0, -0x1p-16, Rounding::kStochasticExact, 64, 3);
  expect_unbiased(preset("dlfloat16"), 1.0 + 0x1p-9 / 3, 1.0, 1.0 + 0x1p-9, Rounding::kStochastic, 12, 4);
  // Radix-4 FP4: the gap from 1/16 to 1/4 is 3/16, not a power of two.
  expect_unbiased(preset("fp4_radix4"), 0.1, 0.0625, 0.25, Rounding::kStochasticExact, 64, 5);
  expect_unbiased(preset("fp4_radix4"), 0.2, 0.0625, 0.25, Rounding::kStochastic, 20, 6);
  // DLFloat below its smallest value: the gap from 0 is (1 + 2^-9) * 2^-31.
  const Format dl = preset("dlfloat16");
  expect_unbiased(dl, dl.min_positive() * 0.4, 0.0, dl.min_positive(), Rounding::kStochasticExact, 64, 7);
  expect_unbiased(preset("int8"), -17.25, -17.0, -18.0, Rounding::kStochastic, 8, 8);
}

TEST(NumericsRounding, StochasticOverflowFollowsThePolicy) {
  const Format e5m2 = preset("fp8_e5m2");
  const double x = 57344 + 8192 * 0.5;  // half-way from max to the (missing) 2^16
  EXPECT_EQ(e5m2.round(x, Rounding::kStochasticExact, 0), std::numeric_limits<double>::infinity());
  EXPECT_EQ(e5m2.round(x, Rounding::kStochasticExact, ~std::uint64_t{0}), 57344);
  const Format int8 = preset("int8");
  EXPECT_EQ(int8.round(127.5, Rounding::kStochasticExact, 0), 127);  // saturates
}

TEST(NumericsRounding, StochasticRoundingIsSignSymmetric) {
  const Format format = preset("fp8_e4m3");
  const CounterRandom random(9, 1);
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const double x = 0.001 + 0.37 * static_cast<double>(i);
    for (Rounding rounding : {Rounding::kStochastic, Rounding::kStochasticExact})
      ASSERT_EQ(format.round(-x, rounding, random.bits(i), 9), -format.round(x, rounding, random.bits(i), 9));
  }
}

TEST(NumericsRounding, RandomBitCountIsChecked) {
  const Format format = preset("fp16");
  EXPECT_THROW(format.round(1.1, Rounding::kStochastic, 0, 0), std::invalid_argument);
  EXPECT_THROW(format.round(1.1, Rounding::kStochastic, 0, 65), std::invalid_argument);
  EXPECT_NO_THROW(format.round(1.1, Rounding::kStochastic, 0, 64));
}

// --- the counter-based generator ------------------------------------------------------------

// Known-answer vector of Philox4x32-10 from Random123's kat_vectors (counter 0, key 0):
// 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
TEST(NumericsRandom, PhiloxKnownAnswer) {
  const CounterRandom random(0, 0);
  const auto block = random.block(0);
  EXPECT_EQ(block[0], 0xe169c58d6627e8d5ull);
  EXPECT_EQ(block[1], 0x9b00dbd8bc57ac4cull);
}

TEST(NumericsRandom, DrawsDependOnlyOnSeedStreamAndIndex) {
  const CounterRandom a(123, 7), same(123, 7), other_seed(124, 7), other_stream(123, 8);
  std::vector<std::uint64_t> forward(4096), backward(4096), threaded(4096);
  for (std::uint64_t i = 0; i < forward.size(); ++i) forward[i] = a.bits(i);
  for (std::uint64_t i = backward.size(); i-- > 0;) backward[i] = same.bits(i);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::uint64_t i = t; i < threaded.size(); i += 4) threaded[i] = a.bits(i);
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(forward, backward);
  EXPECT_EQ(forward, threaded);
  int equal_seed = 0, equal_stream = 0;
  for (std::uint64_t i = 0; i < forward.size(); ++i) {
    equal_seed += other_seed.bits(i) == forward[i];
    equal_stream += other_stream.bits(i) == forward[i];
  }
  EXPECT_EQ(equal_seed, 0);
  EXPECT_EQ(equal_stream, 0);
}

TEST(NumericsRandom, UniformIsInTheUnitIntervalWithMeanOneHalf) {
  const CounterRandom random(5, 0);
  constexpr int kDraws = 100000;
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    const double u = random.uniform(static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of uniforms: sigma = sqrt(1/12 / N); 5 sigma.
  EXPECT_NEAR(sum / kDraws, 0.5, 5 * std::sqrt(1.0 / 12 / kDraws));
}

TEST(NumericsRandom, EveryBitOfTheWordIsFair) {
  const CounterRandom random(77, 3);
  constexpr int kDraws = 50000;
  std::vector<int> ones(64, 0);
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t word = random.bits(static_cast<std::uint64_t>(i));
    for (int b = 0; b < 64; ++b) ones[b] += (word >> b) & 1;
  }
  const double sigma = std::sqrt(0.25 * kDraws);
  for (int b = 0; b < 64; ++b) EXPECT_NEAR(ones[b], kDraws / 2.0, 5 * sigma) << "bit " << b;
}

}  // namespace
}  // namespace lpt::num
