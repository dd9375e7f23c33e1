// The reference datapath (models/numerics/accumulate.*, datapath.*): exact products,
// rounding after every add, chunk-based accumulation, output conversion, validation.
// Expected values are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "models/numerics/accumulate.hpp"
#include "models/numerics/datapath.hpp"

namespace lpt::num {
namespace {

FormatSpec preset(std::string_view name) { return *find_format(name); }

DatapathConfig config(std::string_view a, std::string_view b, std::string_view accumulator, int chunk = 0) {
  DatapathConfig c;
  c.operand_a = preset(a);
  c.operand_b = preset(b);
  c.accumulator = preset(accumulator);
  c.chunk_length = chunk;
  return c;
}

double dot_of(const DatapathConfig& c, const std::vector<double>& a, const std::vector<double>& b) {
  return Datapath(c).dot(a, b);
}

std::vector<double> ones(std::size_t n) { return std::vector<double>(n, 1.0); }

TEST(NumericsAccumulate, RoundToOddKeepsTheLostBitsAsAnOddLastBit) {
  // 1 + 2^-60 is not a double: RN gives 1 (even), round-to-odd its upper neighbour.
  EXPECT_EQ(add_round_to_odd(1.0, 0x1p-60), 1.0 + 0x1p-52);
  EXPECT_EQ(add_round_to_odd(1.0, -0x1p-60), 1.0 - 0x1p-53);  // below 1 the spacing halves
  EXPECT_EQ(add_round_to_odd(1.0, 0x1p-52), 1.0 + 0x1p-52);   // exact sums are untouched
  EXPECT_EQ(add_round_to_odd(1.0 + 0x1p-52, 0x1p-60), 1.0 + 0x1p-52);  // already odd
  EXPECT_TRUE(std::isnan(add_round_to_odd(std::numeric_limits<double>::infinity(),
                                          -std::numeric_limits<double>::infinity())));
}

TEST(NumericsAccumulate, AddRoundedRoundsTheExactSumNotTheDoubleSum) {
  // fp16 toward zero: 2048 - 2^-60 truncates to 2047 (fp16 gap 1 below 2048); the double
  // sum 2048 - 2^-60 rounds to 2048 first and would give 2048.
  const Format fp16(preset("fp16"));
  EXPECT_EQ(add_rounded(fp16, 2048.0, -0x1p-60, {Rounding::kTowardZero}, {}), 2047.0);
  EXPECT_EQ(add_rounded(fp16, 2048.0, -0x1p-60, {Rounding::kNearestEven}, {}), 2048.0);
}

TEST(NumericsAccumulate, ExactStochasticAddSeesEveryBitOfTheSum) {
  // 1 + 2^-11 + 2^-60 lies 1/2 + 2^-50 of fp16's gap 2^-10 above 1. The double sum is
  // 1 + 2^-11 and 2^-60 is lost: first that is rounded onto the doubles around the exact
  // sum (up to 1 + 2^-11 + 2^-52 iff word 1 < 2^-8 * 2^64, as 2^-60 is 2^-8 of their gap),
  // then onto fp16 (up iff word 0 / 2^64 < 1/2, or < 1/2 + 2^-42 from the upper double).
  const Format fp16(preset("fp16"));
  const StageRounding exact{Rounding::kStochasticExact};
  const auto add = [&](std::uint64_t word0, std::uint64_t word1) {
    return add_rounded(fp16, 1.0, 0x1p-11 + 0x1p-60, exact, {word0, word1});
  };
  const std::uint64_t half = std::uint64_t{1} << 63;
  EXPECT_EQ(add(half + 5, (std::uint64_t{1} << 56) - 1), 1.0 + 0x1p-10);
  EXPECT_EQ(add(half + 5, std::uint64_t{1} << 56), 1.0);
  EXPECT_EQ(add(half + (std::uint64_t{1} << 22) - 1, 0), 1.0 + 0x1p-10);
  EXPECT_EQ(add(half + (std::uint64_t{1} << 22), 0), 1.0);
  EXPECT_EQ(add(half - 1, ~std::uint64_t{0}), 1.0 + 0x1p-10);
  // An exact sum is left alone whatever the words; a far-below addend rounds up only
  // for a zero word (its fraction of the double gap is below 2^-64).
  EXPECT_EQ(add_rounded(fp16, 1.0, 0x1p-10, exact, {0, 0}), 1.0 + 0x1p-10);
  EXPECT_EQ(add_rounded(fp16, 2048.0, 0x1p-1074, exact, {0, 0}), 2050.0);
  EXPECT_EQ(add_rounded(fp16, 2048.0, 0x1p-1074, exact, {0, 1}), 2048.0);
  EXPECT_EQ(add_rounded(fp16, -2048.0, -0x1p-1074, exact, {0, 0}), -2050.0);
}

TEST(NumericsDatapath, ExactStochasticAccumulationIsUnbiased) {
  // 1024 adds of 2^-12 to 1 in fp16 (gap 2^-10): each is a quarter gap, lost to RNE,
  // kept on average by SR: the sum's mean over seeds is 1.25.
  DatapathConfig c = config("fp8_e5m2", "fp8_e5m2", "fp16");
  c.inner_rounding = Rounding::kStochasticExact;
  std::vector<double> a(1025, 0x1p-6), b(1025, 0x1p-6);
  a[0] = b[0] = 1.0;
  double total = 0;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    c.seed = seed;
    total += Datapath(c).dot(a, b);
  }
  EXPECT_NEAR(total / 64, 1.25, 0.01);
}

// Wang et al. 2018, Fig. 2: a long plain sum in a narrow accumulator stalls.
TEST(NumericsDatapath, PlainFp16SumOfOnesStallsAt2048) {
  // Above 2048 the fp16 gap is 2: 2048 + 1 is a tie, and RNE keeps the even 2048.
  for (std::size_t n : {2048u, 2049u, 4096u}) EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16"), ones(n), ones(n)), 2048.0);
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16"), ones(2047), ones(2047)), 2047.0);
  DatapathConfig toward_zero = config("fp8_e5m2", "fp8_e5m2", "fp16");
  toward_zero.inner_rounding = Rounding::kTowardZero;
  EXPECT_EQ(dot_of(toward_zero, ones(4096), ones(4096)), 2048.0);
}

TEST(NumericsDatapath, DlfloatTiesAwayStallsLaterThanNearestEven) {
  // dlfloat16 keeps 9 fraction bits: the gap is 2 in [1024, 2048) and 4 above.
  // Ties away: 1024 + 1 -> 1026, 1026 + 1 -> 1028, ... each add gains 2 until 2048, where
  // 2048 + 1 is within a quarter gap and is lost. 1024 + 512 adds reach 2048.
  const DatapathConfig away = config("fp8_e5m2", "fp8_e5m2", "dlfloat16");
  EXPECT_EQ(dot_of(away, ones(1025), ones(1025)), 1026.0);
  EXPECT_EQ(dot_of(away, ones(1100), ones(1100)), 1024.0 + 2 * 76);
  EXPECT_EQ(dot_of(away, ones(1536), ones(1536)), 2048.0);
  EXPECT_EQ(dot_of(away, ones(5000), ones(5000)), 2048.0);
  // Nearest-even stalls at 2^(9+1): 1024 + 1 is a tie and 1024 is even.
  DatapathConfig even = away;
  even.inner_rounding = Rounding::kNearestEven;
  EXPECT_EQ(dot_of(even, ones(5000), ones(5000)), 1024.0);
}

TEST(NumericsDatapath, ChunkingRecoversTheSumOfOnes) {
  // 64 chunks of 64 ones: each chunk is exactly 64, and the outer sum of multiples of 64
  // stays exact below 2^(10+1+6).
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16", 64), ones(4096), ones(4096)), 4096.0);
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16", 64), ones(32768), ones(32768)), 32768.0);
  // A chunk length of 1 is plain accumulation.
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16", 1), ones(4096), ones(4096)), 2048.0);
  // Chunks of 4096 ones stall inside the chunk: 2048 each.
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16", 4096), ones(8192), ones(8192)), 4096.0);
}

TEST(NumericsDatapath, ChunkingKeepsSmallAddendsThatPlainAccumulationSwamps) {
  // 1024 followed by 1000 products 0.25: plain fp16 has gap 1 at 1024, each 0.25 is below
  // half a gap and lost: 1024. Chunks of 4: chunk 0 = {1024, .25, .25, .25} -> 1024;
  // chunks 1..249 are 4 x 0.25 = 1 each -> 1024 + 249 = 1273; the last chunk {0.25}
  // merges as 1273.25 -> 1273. The exact sum is 1274.
  std::vector<double> a(1001, 0.25), b(1001, 1.0);
  a[0] = 1024.0;
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16"), a, b), 1024.0);
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16", 4), a, b), 1273.0);
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp32"), a, b), 1274.0);
}

TEST(NumericsDatapath, StochasticAccumulationIsUnbiasedWhereNearestSwamps) {
  // Same stream of 0.25s after 1024, 4000 of them: exact 2024. SR with 24 bits rounds
  // 1024.25 up with probability 1/4 (gap 1), so the expected sum is exact; the mean of
  // 256 seeds must be within a few units (one run's spread is ~ sqrt(4000 * 3/16) = 27,
  // the mean's 1.7).
  std::vector<double> a(4001, 0.25), b(4001, 1.0);
  a[0] = 1024.0;
  DatapathConfig sr = config("fp8_e5m2", "fp8_e5m2", "fp16");
  sr.inner_rounding = Rounding::kStochastic;
  double total = 0;
  for (std::uint64_t seed = 0; seed < 256; ++seed) {
    sr.seed = seed;
    total += dot_of(sr, a, b);
  }
  EXPECT_NEAR(total / 256, 2024.0, 6.0);
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16"), a, b), 1024.0);
  // Same seed, same result.
  sr.seed = 7;
  EXPECT_EQ(dot_of(sr, a, b), dot_of(sr, a, b));
}

TEST(NumericsDatapath, ProductsAreExact) {
  // e4m3 1.875 x 1.875 = 3.515625 needs 7 significant bits: exact in an fp32 accumulator,
  // rounded in fp16 only at the accumulator (3.515625 is an fp16 value too).
  EXPECT_EQ(dot_of(config("fp8_e4m3", "fp8_e4m3", "fp32"), {1.875}, {1.875}), 3.515625);
  // 448 x 448 = 200704 overflows fp16 (max 65504) to Inf; dlfloat16 holds it.
  EXPECT_EQ(dot_of(config("fp8_e4m3", "fp8_e4m3", "fp16"), {448.0}, {448.0}), std::numeric_limits<double>::infinity());
  EXPECT_EQ(dot_of(config("fp8_e4m3", "fp8_e4m3", "dlfloat16"), {448.0}, {448.0}), 200704.0);
  // Subnormal products: e5m2 2^-16 x 2^-16 = 2^-32 is below fp16's 2^-24 half gap: 0.
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16"), {0x1p-16}, {0x1p-16}), 0.0);
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp32"), {0x1p-16}, {0x1p-16}), 0x1p-32);
}

TEST(NumericsDatapath, SpecialValuesPropagate) {
  const double inf = std::numeric_limits<double>::infinity();
  const DatapathConfig c = config("fp8_e5m2", "fp8_e5m2", "fp16", 2);
  EXPECT_TRUE(std::isnan(dot_of(c, {inf, 1.0}, {0.0, 1.0})));          // 0 x Inf
  EXPECT_TRUE(std::isnan(dot_of(c, {inf, -inf}, {1.0, 1.0})));         // Inf - Inf
  EXPECT_EQ(dot_of(c, {inf, 1.0, 2.0}, {1.0, 1.0, 1.0}), inf);         // Inf survives chunk merges
  // Overflow mid-sum: 3 x 24576 = 73728 > 65504 -> Inf in fp16 (RNE).
  EXPECT_EQ(dot_of(c, {24576.0, 24576.0, 24576.0}, {1.0, 1.0, 1.0}), inf);
  // A saturating accumulator clamps instead.
  DatapathConfig saturating = c;
  saturating.accumulator.overflow = Overflow::kSaturate;
  EXPECT_EQ(dot_of(saturating, {24576.0, 24576.0, 24576.0}, {1.0, 1.0, 1.0}), 65504.0);
}

TEST(NumericsDatapath, OutputConversionRoundsTheAccumulatedValueOnce) {
  // fp32 accumulates 1 + 2^-11 exactly; fp16 output RNE: a tie between 1 and 1 + 2^-10,
  // 1 is even. Ties away gives 1 + 2^-10.
  DatapathConfig c = config("fp8_e5m2", "fp8_e5m2", "fp32");
  c.output = preset("fp16");
  EXPECT_EQ(dot_of(c, {1.0, 0x1p-11}, {1.0, 1.0}), 1.0);
  c.output_rounding = Rounding::kNearestAway;
  EXPECT_EQ(dot_of(c, {1.0, 0x1p-11}, {1.0, 1.0}), 1.0 + 0x1p-10);
  // Stochastic output rounding (a weight update to fp16): either neighbour, mean unbiased.
  c.output_rounding = Rounding::kStochastic;
  double total = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    c.seed = seed;
    const double y = dot_of(c, {1.0, 0x1p-12}, {1.0, 1.0});  // a quarter gap above 1
    ASSERT_TRUE(y == 1.0 || y == 1.0 + 0x1p-10) << y;
    total += y;
  }
  EXPECT_NEAR((total / 400 - 1.0) / 0x1p-10, 0.25, 0.08);
}

TEST(NumericsDatapath, RejectsConfigurationsItCannotEmulateExactly) {
  DatapathConfig c = config("fp8_e5m2", "fp8_e5m2", "fp16", 64);
  EXPECT_NO_THROW(Datapath{c});
  DatapathConfig bad = c;
  bad.chunk_length = -1;
  EXPECT_THROW(Datapath{bad}, std::invalid_argument);
  bad = c;
  bad.outer_rounding = Rounding::kStochastic;
  bad.stochastic_bits = 42;  // fp16's sum is exact to 52 - 11 = 41 bits below its last bit
  EXPECT_THROW(Datapath{bad}, std::invalid_argument);
  bad.stochastic_bits = 41;
  EXPECT_NO_THROW(Datapath{bad});
  bad = c;
  bad.output_rounding = Rounding::kNearestAway;  // but no output format
  EXPECT_THROW(Datapath{bad}, std::invalid_argument);
  bad = config("fp32", "fp32", "fp32");
  bad.operand_a.name = "wide";  // 30 significand bits: products with fp32's 24 need 54
  bad.operand_a.exponent_bits = 2;
  bad.operand_a.mantissa_bits = 29;
  bad.operand_a.bias = 1;
  EXPECT_THROW(Datapath{bad}, std::invalid_argument);
  bad = config("fp8_e5m2", "fp8_e5m2", "fp4_radix4");
  EXPECT_THROW(Datapath{bad}, std::invalid_argument);
  // Operands must be values of their formats: 0.3 is not an e4m3 value.
  EXPECT_THROW(dot_of(config("fp8_e4m3", "fp8_e4m3", "fp16"), {0.3}, {1.0}), std::invalid_argument);
  EXPECT_THROW(dot_of(config("fp8_e4m3", "fp8_e4m3", "fp16"), {1.0, 1.0}, {1.0}), std::invalid_argument);
}

TEST(NumericsDatapath, EmptyDotIsZero) {
  EXPECT_EQ(dot_of(config("fp8_e5m2", "fp8_e5m2", "fp16", 16), {}, {}), 0.0);
}

}  // namespace
}  // namespace lpt::num
