// `lptsim numerics formats|convert` through run_numerics_command (sim/numerics_cli.*).
#include <gtest/gtest.h>

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
