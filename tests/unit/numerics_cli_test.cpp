// `lptsim numerics formats|convert|swamping` through run_numerics_command (sim/numerics_cli.*).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/numerics/format.hpp"
#include "sim/numerics_cli.hpp"

namespace lpt {
namespace {

struct Result {
  int status;
  std::string out;
  std::string err;
};

Result run(std::vector<std::string> args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out, err;
  const int status = run_numerics_command(args, in, out, err);
  return {status, out.str(), err.str()};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) result.push_back(line);
  return result;
}

TEST(NumericsCli, ConvertPrintsBitsValueAndClass) {
  const Result r = run({"convert", "--to", "fp8_e4m3"}, "0.3\n0x1.8p-3\n1000\n-0\n0x1p-10\n0x1p-8\nnan\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 7u) << r.out;
  EXPECT_EQ(out[0], "0.3\t0x2a\t0x1.4p-2\t0.3125\tnormal");
  EXPECT_EQ(out[1], "0x1.8p-3\t0x24\t0x1.8p-3\t0.1875\tnormal");
  EXPECT_EQ(out[2], "1000\t0x7f\tnan\tnan\tnan");  // E4M3FN overflow is NaN
  EXPECT_EQ(out[3], "-0\t0x80\t-0x0p+0\t-0\tzero");
  EXPECT_EQ(out[4], "0x1p-10\t0x00\t0x0p+0\t0\tzero");  // the XLA tie to zero
  EXPECT_EQ(out[5], "0x1p-8\t0x02\t0x1p-8\t0.00390625\tsubnormal");
  EXPECT_EQ(out[6].substr(out[6].size() - 3), "nan");
}

TEST(NumericsCli, SaturateAndRoundingOptions) {
  Result r = run({"convert", "--to", "fp8_e4m3", "--saturate"}, "1000\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1000\t0x7e\t0x1.cp+8\t448\tsaturated\n");
  r = run({"convert", "--to", "fp8_e5m2", "--round", "rtz"}, "1.7\n");
  EXPECT_EQ(r.out, "1.7\t0x3e\t0x1.8p+0\t1.5\tnormal\n");
  // dlfloat16's own rounding is ties-away; rne can be asked for.
  // 1 + 2^-10 is half an ulp above 1.
  r = run({"convert", "--to", "dlfloat16"}, "0x1.004p0\n");
  EXPECT_EQ(r.out, "0x1.004p0\t0x3e01\t0x1.008p+0\t1.001953125\tnormal\n");
  r = run({"convert", "--to", "dlfloat16", "--round", "rne"}, "0x1.004p0\n");
  EXPECT_EQ(r.out, "0x1.004p0\t0x3e00\t0x1p+0\t1\tnormal\n");
}

// docs/numerics.md, "Conventions": --saturate gives finite results for every non-NaN
// input, whether or not the target has an Inf code.
TEST(NumericsCli, SaturateClampsInfinitiesInEveryFormat) {
  for (const auto& spec : num::preset_formats()) {
    const num::Format format(spec);
    const Result r = run({"convert", "--to", spec.name, "--saturate"}, "inf\n-inf\n1e300\n");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto out = lines(r.out);
    ASSERT_EQ(out.size(), 3u) << spec.name;
    for (int i = 0; i < 3; ++i) {
      // Columns: input, bits, hex-float value, decimal value, class.
      std::vector<std::string> columns;
      std::istringstream line(out[i]);
      for (std::string column; std::getline(line, column, '\t');) columns.push_back(column);
      ASSERT_EQ(columns.size(), 5u) << out[i];
      EXPECT_EQ(columns[4], "saturated") << spec.name << ": " << out[i];
      EXPECT_EQ(std::strtod(columns[2].c_str(), nullptr), i == 1 ? format.lowest_finite() : format.max_finite())
          << spec.name << ": " << out[i];
    }
  }
  // Without it, Inf stays Inf where there is an Inf code and overflows by the format's
  // policy where there is none.
  Result r = run({"convert", "--to", "fp16"}, "inf\n");
  EXPECT_EQ(r.out, "inf\t0x7c00\tinf\tinf\tinf\n");
  r = run({"convert", "--to", "fp8_e4m3", "--json"}, "-inf\n");
  const auto record = nlohmann::json::parse(r.out);
  EXPECT_EQ(record["bits"], "0xff");
  EXPECT_EQ(record["class"], "nan");
  EXPECT_EQ(record["overflow"], true);
  EXPECT_EQ(record["invalid"], false);
  r = run({"convert", "--to", "fp8_e4m3", "--saturate", "--json"}, "-inf\n");
  EXPECT_EQ(nlohmann::json::parse(r.out)["bits"], "0xfe");  // -448
  // NaN is not clamped.
  r = run({"convert", "--to", "fp8_e4m3", "--saturate"}, "nan\n");
  EXPECT_EQ(r.out, "nan\t0x7f\tnan\tnan\tnan\n");
  // --from values saturate the same way: FP16's -Inf bits into E5M2.
  r = run({"convert", "--from", "fp16", "--to", "fp8_e5m2", "--saturate"}, "0xfc00\n");
  EXPECT_EQ(r.out, "0xfc00\t0xfb\t-0x1.cp+15\t-57344\tsaturated\n");
}

TEST(NumericsCli, NanIntoAFormatWithoutNanIsPlusZeroAndInvalid) {
  for (const char* format : {"int8", "int2", "fp4_radix4"}) {
    const Result r = run({"convert", "--to", format}, "nan\n-nan\n");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto out = lines(r.out);
    ASSERT_EQ(out.size(), 2u);
    for (const std::string& line : out) {
      EXPECT_NE(line.find("\t0x0p+0\t0\tinvalid"), std::string::npos) << format << ": " << line;
      EXPECT_EQ(line.find("\t0x1"), std::string::npos) << format << ": " << line;  // +0: no sign bit set
    }
  }
  const Result r = run({"convert", "--to", "int8", "--json", "--saturate"}, "nan\n");
  const auto record = nlohmann::json::parse(r.out);
  EXPECT_EQ(record["bits"], "0x00");
  EXPECT_EQ(record["class"], "invalid");
  EXPECT_EQ(record["invalid"], true);
}

TEST(NumericsCli, DlfloatRoundsBelowItsSmallestValueBetweenZeroAndIt) {
  // DLFloat16 has no subnormals and its all-zero code is 0: the smallest positive value is
  // (1 + 2^-9) * 2^-31 = 0x1.008p-31, and below it results round within {0, 0x1.008p-31}
  // by the rounding mode, halfway at 0x1.008p-32.
  const std::string input = "0x1p-31\n0x1.008p-32\n-0x1.008p-32\n0x1.0081p-32\n0x1.007fp-32\n0x1p-40\n";
  Result r = run({"convert", "--to", "dlfloat16"}, input);  // its own rounding: ties away
  EXPECT_EQ(r.out,
            "0x1p-31\t0x0001\t0x1.008p-31\t4.665707820095122e-10\tnormal\n"
            "0x1.008p-32\t0x0001\t0x1.008p-31\t4.665707820095122e-10\tnormal\n"
            "-0x1.008p-32\t0x8001\t-0x1.008p-31\t-4.665707820095122e-10\tnormal\n"
            "0x1.0081p-32\t0x0001\t0x1.008p-31\t4.665707820095122e-10\tnormal\n"
            "0x1.007fp-32\t0x0000\t0x0p+0\t0\tzero\n"
            "0x1p-40\t0x0000\t0x0p+0\t0\tzero\n");
  r = run({"convert", "--to", "dlfloat16", "--round", "rne"}, input);  // the tie goes to the even 0
  EXPECT_EQ(lines(r.out)[1], "0x1.008p-32\t0x0000\t0x0p+0\t0\tzero");
  EXPECT_EQ(lines(r.out)[2], "-0x1.008p-32\t0x8000\t-0x0p+0\t-0\tzero");
  r = run({"convert", "--to", "dlfloat16", "--round", "rtz"}, input);
  EXPECT_EQ(lines(r.out)[0], "0x1p-31\t0x0000\t0x0p+0\t0\tzero");
  r = run({"convert", "--to", "dlfloat16", "--json"}, "0x1p-40\n");
  EXPECT_EQ(nlohmann::json::parse(r.out)["underflow"], true);
}

// `numerics swamping`'s command line; the experiment itself is in
// numerics_datapath_swamping_test.cpp.
TEST(NumericsCli, SwampingTakesCurvesAndInputs) {
  const std::filesystem::path out = std::filesystem::path(testing::TempDir()) / "lptsim_swamping_cli";
  std::filesystem::remove_all(out);
  const Result r = run({"swamping", "--out", out.string(), "--no-plot", "--curve", "plain:acc=bf16",
                        "--curve", "c8:acc=bf16,chunk=8,round=away", "--curve", "sr:acc=bf16,round=sr,bits=9",
                        "--sum", "values", "--dist", "normal:1,0.25", "--input-format", "fp8_e5m2",
                        "--min-log2-n", "4", "--max-log2-n", "7", "--trials", "3", "--seed", "9"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("sums of fp8_e5m2 inputs from normal:1,0.25, 3 trials, seed 9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("c8:acc=bf16,chunk=8,round=away"), std::string::npos) << r.out;
  std::ifstream csv(out / "swamping.csv");
  std::stringstream text;
  text << csv.rdbuf();
  const auto rows = lines(text.str());
  ASSERT_EQ(rows.size(), 1u + 3 * 4);
  EXPECT_EQ(rows[1].rfind("plain,16,", 0), 0u) << rows[1];
  EXPECT_EQ(rows[12].rfind("sr,128,", 0), 0u) << rows[12];
  EXPECT_EQ(rows[12].substr(rows[12].size() - 2), ",3");
  EXPECT_EQ(run({"swamping", "--out", out.string(), "--no-plot", "--quiet", "--max-log2-n", "6"}).out, "");
  std::filesystem::remove_all(out);
}

TEST(NumericsCli, SwampingUsageErrorsNameTheOption) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--curve", "x:acc=fp7"}, "--curve \"x:acc=fp7\": acc: unknown format \"fp7\"; expected one of"},
      {{"--curve", "x:acc=fp16,round=sr,bits=42"}, "--curve x: datapath: inner stochastic rounding into \"fp16\" needs 1..41"},
      {{"--curve", "x:acc=fp16", "--curve", "x:acc=bf16"}, "--curve x: the name is used by two curves"},
      {{"--sum", "both"}, "--sum: expected products or values, got \"both\""},
      {{"--dist", "normal:0"}, "--dist \"normal:0\": expected uniform:LO,HI"},
      {{"--input-format", "fp9"}, "--input-format: unknown format \"fp9\""},
      {{"--setup", "wang2019"}, "--setup: unknown setup \"wang2019\"; expected one of default, wang2018"},
      {{"--min-log2-n", "9", "--max-log2-n", "8"}, "--min-log2-n/--max-log2-n: expected 0 <= min <= max <= 26"},
      {{"--trials", "-1"}, "--trials: expected 1..10000, got -1"},
      {{"--trials", "many"}, "the argument ('many') for option '--trials' is invalid"},
  };
  for (const auto& [options, message] : cases) {
    std::vector<std::string> args = {"swamping", "--no-plot", "--out", testing::TempDir()};
    args.insert(args.end(), options.begin(), options.end());
    const Result r = run(args);
    EXPECT_EQ(r.status, 2) << message;
    EXPECT_EQ(r.err.rfind("lptsim numerics swamping: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << message;
  }
}

TEST(NumericsCli, StochasticRoundingIsReproducibleForASeed) {
  std::string input;
  for (int i = 0; i < 200; ++i) input += "1.05\n";
  const Result a = run({"convert", "--to", "fp8_e4m3", "--round", "sr", "--sr-bits", "8", "--seed", "7"}, input);
  const Result b = run({"convert", "--to", "fp8_e4m3", "--round", "sr", "--sr-bits", "8", "--seed", "7"}, input);
  const Result c = run({"convert", "--to", "fp8_e4m3", "--round", "sr", "--sr-bits", "8", "--seed", "8"}, input);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  // 1.05 lies 0.4 of the way from 1 to 1.125: both neighbours appear.
  EXPECT_NE(a.out.find("\t1\t"), std::string::npos);
  EXPECT_NE(a.out.find("\t1.125\t"), std::string::npos);
}

TEST(NumericsCli, FromReadsBitPatterns) {
  const Result r = run({"convert", "--from", "fp8_e5m2", "--to", "fp16"}, "0b0_10001_11\n0x7c\n0x3C\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], "0b0_10001_11\t0x4700\t0x1.cp+2\t7\tnormal");
  EXPECT_EQ(out[1], "0x7c\t0x7c00\tinf\tinf\tinf");
  EXPECT_EQ(out[2], "0x3C\t0x3c00\t0x1p+0\t1\tnormal");
}

TEST(NumericsCli, JsonOutputAndCustomDescriptors) {
  const Result r = run({"convert", "--to", R"({"base": "fp8_e5m2", "overflow": "saturate"})", "--json"}, "1e9\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto record = nlohmann::json::parse(r.out);
  EXPECT_EQ(record["bits"], "0x7b");
  EXPECT_EQ(record["decimal"], "57344");
  EXPECT_EQ(record["class"], "saturated");
  EXPECT_EQ(record["overflow"], true);
  EXPECT_EQ(record["input"], "1e9");
}

TEST(NumericsCli, BadInputIsAClearErrorNotACrash) {
  Result r = run({"convert", "--to", "fp9"}, "1\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown format \"fp9\""), std::string::npos) << r.err;
  r = run({"convert"}, "1\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--to"), std::string::npos) << r.err;
  r = run({"convert", "--to", R"({"exponent_bits": 4, "mantissa_bits": 3, "radix": 4})"}, "1\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("radix 4"), std::string::npos) << r.err;
  r = run({"convert", "--to", "{not json"}, "1\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("invalid JSON"), std::string::npos) << r.err;
  r = run({"convert", "--to", "fp16", "--round", "nearest"}, "1\n");
  EXPECT_EQ(r.status, 2);
  r = run({"convert", "--to", "fp16", "--sr-bits", "0"}, "1\n");
  EXPECT_EQ(r.status, 2);
  r = run({"convert", "--to", "fp16", "--bogus"}, "1\n");
  EXPECT_EQ(r.status, 2);
  // A bad line is reported with its number; the good lines are still converted.
  r = run({"convert", "--to", "fp16"}, "1\nabc\n2\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.out).size(), 2u);
  r = run({"convert", "--from", "fp8_e4m3", "--to", "fp16"}, "0x1ff\n0.5\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("does not fit in 8 bits"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  r = run({"nosuch"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown subcommand"), std::string::npos);
  EXPECT_EQ(run({}).status, 2);
}

TEST(NumericsCli, FormatsListsEveryPreset) {
  Result r = run({"formats"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const auto& spec : num::preset_formats()) EXPECT_NE(r.out.find(spec.name), std::string::npos) << spec.name;
  r = run({"formats", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), num::preset_formats().size());
  const auto e4m3 = nlohmann::json::parse(out[1]);
  EXPECT_EQ(e4m3["name"], "fp8_e4m3");
  EXPECT_EQ(e4m3["max"], "0x1.cp+8");
  EXPECT_EQ(e4m3["encodings"], 256);
  EXPECT_EQ(e4m3["descriptor"]["specials"], "fn");
}

TEST(NumericsCli, HelpOnEverySubcommand) {
  const Result top = run({"--help"});
  EXPECT_EQ(top.status, 0);
  for (const auto& sub : numerics_subcommands()) {
    EXPECT_NE(top.out.find(sub.name), std::string::npos);
    const Result r = run({std::string(sub.name), "--help"});
    EXPECT_EQ(r.status, 0) << sub.name;
    EXPECT_NE(r.out.find("Usage: lptsim numerics " + std::string(sub.name)), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace lpt
