// The swamping experiment (sim/numerics_swamping.*): its option parsing, and the papers'
// shapes at small sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "sim/numerics_swamping.hpp"

namespace lpt {
namespace {

const SwampingCurve& curve(const SwampingResult& result, const std::string& name) {
  for (const SwampingCurve& c : result.curves)
    if (c.name == name) return c;
  throw std::logic_error("no curve " + name);
}

// The message of the std::invalid_argument `body` throws ("" if none).
template <class Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(NumericsSwamping, PlainFp16StallsWhileChunksAndSrKeepTracking) {
  SwampingOptions options;
  options.max_log2_n = 14;
  options.trials = 2;
  const SwampingResult result = run_swamping(options);
  ASSERT_EQ(result.lengths.size(), 9u);  // 2^6 .. 2^14
  const std::size_t last = result.lengths.size() - 1;
  // Products average 1/256 (at most 1/64): plain FP16 stops moving once half its gap
  // exceeds them, at a sum of a few times 2^5, while the exact sum at n = 2^14 is 64.
  EXPECT_GT(curve(result, "fp16").mean_relative_error[last], 0.3);
  EXPECT_LT(curve(result, "fp16").mean_relative_error[0], 0.01);
  for (const char* chunked : {"fp16_chunk16", "fp16_chunk64", "fp16_chunk256"})
    EXPECT_LT(curve(result, chunked).mean_relative_error[last], 0.01) << chunked;
  EXPECT_LT(curve(result, "fp16_sr").mean_relative_error[last], 0.05);
  EXPECT_LT(curve(result, "fp32").mean_relative_error[last], 1e-5);
  // Plain FP16's error grows with n, and it errs low: swamping loses addends.
  EXPECT_GT(curve(result, "fp16").mean_relative_error[last], 10 * curve(result, "fp16").mean_relative_error[2]);
  EXPECT_NEAR(curve(result, "fp16").mean_signed_relative_error[last], -curve(result, "fp16").mean_relative_error[last],
              1e-12);

  std::ostringstream csv;
  write_swamping_csv(result, options.trials, csv);
  const std::string text = csv.str();
  EXPECT_EQ(text.rfind("config,n,mean_relative_error,max_relative_error,mean_signed_relative_error,trials\n", 0), 0u);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 6 * 9);
}

TEST(NumericsSwamping, SumOfSixteenthsStallsInPlainFp16ButNotInChunks) {
  // 2^16 values of 1/16 (exact: 4096). Plain FP16 with RNE stops at 128, where the gap is
  // 1/8 and 128 + 1/16 ties to the even 128; chunks of 64 sum to exactly 4 and the chunk
  // sums to exactly 4096; FP32 is exact throughout.
  SwampingOptions options;
  options.sum = SwampingSum::kValues;
  options.distribution = parse_swamping_distribution("constant:0.0625");
  options.input_format = "fp16";
  options.min_log2_n = options.max_log2_n = 16;
  options.trials = 1;
  options.curves = {parse_swamping_curve("plain:acc=fp16,round=rne"), parse_swamping_curve("c64:acc=fp16,chunk=64"),
                    parse_swamping_curve("fp32:acc=fp32")};
  const SwampingResult result = run_swamping(options);
  EXPECT_DOUBLE_EQ(curve(result, "plain").mean_relative_error[0], 1 - 128.0 / 4096);
  EXPECT_EQ(curve(result, "c64").mean_relative_error[0], 0.0);
  EXPECT_EQ(curve(result, "fp32").mean_relative_error[0], 0.0);
}

TEST(NumericsSwamping, StochasticRoundingIsUnbiasedOnAverage) {
  // The sum of sixteenths with SR: each trial errs by a percent or two either way, the
  // mean of the signed errors over the trials is near zero, while RNE's is below -0.7.
  SwampingOptions options;
  options.sum = SwampingSum::kValues;
  options.distribution = parse_swamping_distribution("constant:0.0625");
  options.input_format = "fp16";
  options.min_log2_n = options.max_log2_n = 14;
  options.trials = 64;
  options.curves = {parse_swamping_curve("sr:acc=fp16,round=sr,bits=16"), parse_swamping_curve("srx:acc=fp16,round=sr_exact"),
                    parse_swamping_curve("rne:acc=fp16")};
  const SwampingResult result = run_swamping(options);
  for (const char* name : {"sr", "srx"}) {
    const SwampingCurve& sr = curve(result, name);
    EXPECT_GT(sr.mean_relative_error[0], 1e-3) << name;  // it does round, both ways
    // The mean signed error is within a few standard errors of zero (the errors' spread
    // is about their mean magnitude).
    EXPECT_LT(std::fabs(sr.mean_signed_relative_error[0]), 4 * sr.mean_relative_error[0] / std::sqrt(options.trials))
        << name;
  }
  EXPECT_LT(curve(result, "rne").mean_signed_relative_error[0], -0.7);
}

TEST(NumericsSwamping, SumsOfValuesAndOfProducts) {
  // 2^12 values of 3/4 (exact in fp8_e4m3) sum to 3072 exactly; their products, 9/16, to
  // 2304. In FP16 with RNE both running sums stop at 2048, where half the gap (1) exceeds
  // the addend (numpy's float16 gives the same).
  SwampingOptions options;
  options.distribution = parse_swamping_distribution("constant:0.75");
  options.min_log2_n = options.max_log2_n = 12;
  options.trials = 1;
  options.curves = {parse_swamping_curve("plain:acc=fp16")};
  options.sum = SwampingSum::kValues;
  EXPECT_DOUBLE_EQ(run_swamping(options).curves[0].mean_relative_error[0], 1 - 2048.0 / 3072);
  options.sum = SwampingSum::kProducts;
  EXPECT_DOUBLE_EQ(run_swamping(options).curves[0].mean_relative_error[0], 1 - 2048.0 / 2304);
}

TEST(NumericsSwamping, NormalInputsAreDrawnAroundTheirMean) {
  // Values from normal(1, 0.5), rounded to fp16: FP32's sum of 2^12 of them is close to
  // the exact one, which is about 4096; a normal(0, 1) sum in FP16 has no swamping floor.
  SwampingOptions options;
  options.sum = SwampingSum::kValues;
  options.distribution = parse_swamping_distribution("normal:1,0.5");
  options.input_format = "fp16";
  options.min_log2_n = options.max_log2_n = 12;
  options.curves = {parse_swamping_curve("fp32:acc=fp32"), parse_swamping_curve("fp16:acc=fp16")};
  const SwampingResult result = run_swamping(options);
  EXPECT_LT(curve(result, "fp32").mean_relative_error[0], 1e-6);
  EXPECT_GT(curve(result, "fp16").mean_relative_error[0], 1e-4);
  EXPECT_LT(curve(result, "fp16").mean_relative_error[0], 0.1);
}

TEST(NumericsSwamping, TheSameSeedGivesTheSameCurves) {
  SwampingOptions options;
  options.max_log2_n = 10;
  const SwampingResult a = run_swamping(options);
  const SwampingResult b = run_swamping(options);
  options.seed = 2;
  const SwampingResult c = run_swamping(options);
  EXPECT_EQ(curve(a, "fp16_sr").mean_relative_error, curve(b, "fp16_sr").mean_relative_error);
  EXPECT_NE(curve(a, "fp16").mean_relative_error, curve(c, "fp16").mean_relative_error);
}

TEST(NumericsSwamping, CurveSpecsParse) {
  SwampingCurveSpec spec = parse_swamping_curve("c64:acc=bf16,chunk=64,round=away");
  EXPECT_EQ(spec.name, "c64");
  EXPECT_EQ(spec.accumulator, "bf16");
  EXPECT_EQ(spec.chunk_length, 64);
  EXPECT_EQ(spec.rounding, num::Rounding::kNearestAway);
  spec = parse_swamping_curve("sr12:round=sr,bits=12");
  EXPECT_EQ(spec.accumulator, "fp16");  // the defaults
  EXPECT_EQ(spec.chunk_length, 0);
  EXPECT_EQ(spec.rounding, num::Rounding::kStochastic);
  EXPECT_EQ(spec.stochastic_bits, 12);
  spec = parse_swamping_curve("own:acc=dlfloat16");
  EXPECT_FALSE(spec.rounding.has_value());  // the accumulator's own (ties away for DLFloat)
  EXPECT_EQ(describe(parse_swamping_curve("x:acc=fp32,round=sr,bits=7")), "x:acc=fp32,chunk=0,round=sr,bits=7");
  EXPECT_EQ(parse_swamping_curve(describe(spec)), spec);
}

TEST(NumericsSwamping, BadCurveSpecsSayWhatIsWrongAndWhatWasExpected) {
  const auto error = [](const char* text) { return error_of([&] { parse_swamping_curve(text); }); };
  EXPECT_NE(error("plain").find("expected NAME:key=value"), std::string::npos) << error("plain");
  EXPECT_NE(error(":acc=fp16").find("the name \"\" must be"), std::string::npos);
  EXPECT_NE(error("a b:acc=fp16").find("must be 1..40 letters"), std::string::npos);
  EXPECT_NE(error("x:acc=fp7").find("acc: unknown format \"fp7\"; expected one of fp8_e5m2"), std::string::npos);
  EXPECT_NE(error("x:chunk=six").find("chunk: expected an integer 0.."), std::string::npos);
  EXPECT_NE(error("x:chunk=-1").find("chunk: expected"), std::string::npos);
  EXPECT_NE(error("x:round=up").find("round: expected rne|away|rtz|sr|sr_exact, got \"up\""), std::string::npos);
  EXPECT_NE(error("x:round=sr,bits=0").find("bits: expected an integer 1..64"), std::string::npos);
  EXPECT_NE(error("x:bits=8").find("bits: only with round=sr"), std::string::npos);
  EXPECT_NE(error("x:acc=fp16,acc=bf16").find("acc is given twice"), std::string::npos);
  EXPECT_NE(error("x:colour=red").find("unknown key \"colour\"; expected acc, chunk, round or bits"),
            std::string::npos);
  EXPECT_NE(error("x:acc").find("\"acc\" is not key=value"), std::string::npos);
  EXPECT_NE(error("x:acc=fp16,").find("\"\" is not key=value"), std::string::npos);
  for (const char* text : {"plain", "x:acc=fp7", "x:round=up"}) EXPECT_EQ(error(text).rfind("--curve \"", 0), 0u);
}

TEST(NumericsSwamping, DistributionsParse) {
  EXPECT_EQ(parse_swamping_distribution("uniform:-1,1"),
            (SwampingDistribution{SwampingDistribution::Kind::kUniform, -1.0, 1.0}));
  EXPECT_EQ(parse_swamping_distribution("normal:0.5,2e-1"),
            (SwampingDistribution{SwampingDistribution::Kind::kNormal, 0.5, 0.2}));
  EXPECT_EQ(parse_swamping_distribution("constant:0x1p-4"),
            (SwampingDistribution{SwampingDistribution::Kind::kConstant, 0.0625, 0.0}));
  EXPECT_EQ(describe(parse_swamping_distribution("uniform:0,0.125")), "uniform:0,0.125");
  for (const char* bad : {"uniform", "uniform:1,1", "uniform:2,1", "uniform:0", "uniform:0,1,2", "normal:0,0",
                          "normal:0,-1", "normal:nan,1", "constant:inf", "constant:", "poisson:1,2", "uniform:0,x"}) {
    const std::string message = error_of([&] { parse_swamping_distribution(bad); });
    EXPECT_NE(message.find("expected uniform:LO,HI (LO < HI), normal:MEAN,SD (SD > 0) or constant:V"),
              std::string::npos)
        << bad << ": " << message;
    EXPECT_EQ(message.rfind("--dist \"", 0), 0u) << message;
  }
}

TEST(NumericsSwamping, RejectsOptionsOutOfRange) {
  const auto error = [](SwampingOptions options) { return error_of([&] { run_swamping(options); }); };
  SwampingOptions options;
  options.min_log2_n = 8;
  options.max_log2_n = 7;
  EXPECT_NE(error(options).find("--min-log2-n/--max-log2-n: expected 0 <= min <= max <= 26"), std::string::npos);
  options = {};
  options.max_log2_n = 27;
  EXPECT_NE(error(options).find("--min-log2-n/--max-log2-n"), std::string::npos);
  options = {};
  options.trials = 0;
  EXPECT_NE(error(options).find("--trials: expected 1..10000, got 0"), std::string::npos);
  options = {};
  options.input_format = "fp7";
  EXPECT_NE(error(options).find("--input-format: unknown format \"fp7\""), std::string::npos);
  options = {};
  options.curves.clear();
  EXPECT_NE(error(options).find("--curve: expected at least one curve"), std::string::npos);
  options = {};
  options.curves = {parse_swamping_curve("a:acc=fp16"), parse_swamping_curve("a:acc=fp32")};
  EXPECT_NE(error(options).find("--curve a: the name is used by two curves"), std::string::npos);
  // The datapath's limits, named by curve: SR into FP16 reads at most 41 exact bits.
  options.curves = {parse_swamping_curve("wide:acc=fp16,round=sr,bits=42")};
  EXPECT_NE(error(options).find("--curve wide: datapath: inner stochastic rounding into \"fp16\" needs 1..41"),
            std::string::npos)
      << error(options);
  options.curves = {parse_swamping_curve("r4:acc=fp4_radix4")};
  EXPECT_NE(error(options).find("--curve r4: datapath: accumulator \"fp4_radix4\" must have radix 2"),
            std::string::npos);
  // Draws outside the input format's range would make NaN or Inf inputs.
  options = {};
  options.distribution = parse_swamping_distribution("uniform:0,1000");
  EXPECT_NE(error(options).find("in --input-format fp8_e4m3; expected a distribution inside the format's range"),
            std::string::npos)
      << error(options);
  options.distribution = parse_swamping_distribution("constant:0");
  EXPECT_NE(error(options).find("--dist constant:0: the exact sum of trial 0's first 64 addends is 0"),
            std::string::npos)
      << error(options);
}

TEST(NumericsSwamping, SetupsAreNamed) {
  EXPECT_EQ(swamping_setup("default")->curves, default_swamping_curves());
  const auto wang = swamping_setup("wang2018");
  ASSERT_TRUE(wang);
  EXPECT_EQ(wang->input_format, "ibm_fp8");
  EXPECT_EQ(wang->sum, SwampingSum::kProducts);
  ASSERT_EQ(wang->curves.size(), 4u);
  EXPECT_EQ(wang->curves[2].accumulator, "dlfloat16");
  EXPECT_EQ(wang->curves[2].chunk_length, 64);
  EXPECT_FALSE(swamping_setup("wang2019"));
  // Its curves keep their shape at a small size: nearest stalls, chunks and SR do not.
  SwampingOptions small = *wang;
  small.max_log2_n = 14;
  small.trials = 2;
  const SwampingResult result = run_swamping(small);
  EXPECT_GT(curve(result, "fp16_nearest").mean_relative_error.back(), 0.3);
  EXPECT_LT(curve(result, "fp16_chunk64").mean_relative_error.back(), 0.02);
  EXPECT_LT(curve(result, "fp16_sr").mean_relative_error.back(), 0.05);
}

}  // namespace
}  // namespace lpt
