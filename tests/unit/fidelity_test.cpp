#include "sim/fidelity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>

#include "sim/workload.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

using test_support::source_dir;

AcceleratorConfig tiny_config() { return load_config(source_dir() / "configs/tiny.json"); }

// Every phase of every layer in the tiny config's middle-layer formats: the
// trace's layers sit between a first and a last layer.
GemmPrecision precision(const std::string& operands, const std::string& accumulator) {
  GemmPrecision p;
  p.a = p.b = *num::find_format(operands);
  p.accumulator = p.output = *num::find_format(accumulator);
  return p;
}

void set_all(AcceleratorConfig& config, const GemmPrecision& p) {
  for (auto& g : config.precision.gemm) g = p;
  config.precision.first_layer = {};
  config.precision.last_layer = {};
}

Layer linear(const std::string& name, std::int64_t in, std::int64_t out, std::int64_t tokens = 1) {
  LinearLayer l;
  l.in_features = in, l.out_features = out, l.tokens = tokens;
  return {name, "linear", l};
}

Trace mlp(std::int64_t batch, std::int64_t tokens = 1) {
  Trace t{"mlp", "test", batch, {}};
  t.layers.push_back(linear("fc1", 64, 256, tokens));
  t.layers.push_back({"relu", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {tokens, 256}}});
  t.layers.push_back(linear("fc2", 256, 256, tokens));
  t.layers.push_back({"relu2", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {tokens, 256}}});
  t.layers.push_back(linear("fc3", 256, 10, tokens));
  return t;
}

const std::set<Phase> kGemmPhases{Phase::kFwd, Phase::kBwd, Phase::kWgrad};

FidelityReport run(const AcceleratorConfig& config, const Trace& trace) {
  return measure_fidelity(config, trace, expand_training(trace, {}), kGemmPhases);
}

double pooled_sqnr(const FidelityReport& r) {
  num::ErrorTally all;
  for (const auto& g : r.gemms) all.merge(g.result);
  return all.stats().sqnr_db;
}

TEST(Fidelity, MeasuresEveryGemmOfTheStep) {
  const Trace trace = mlp(8);
  const FidelityReport r = run(tiny_config(), trace);
  // fc1 has no data gradient: 3 + 3 + 2 GEMMs.
  ASSERT_EQ(r.gemms.size(), 8u);
  EXPECT_EQ(r.gemms.front().rows * r.gemms.front().cols, 16);  // the default 16 sampled outputs
  for (const auto& g : r.gemms) {
    EXPECT_GT(g.result.count, 0u);
    EXPECT_TRUE(std::isfinite(g.result.stats().sqnr_db)) << g.label;
  }
  // The first and last layers run DLFloat16 in the tiny policy, the middle HFP8.
  EXPECT_NE(r.gemms[0].datapath.find("dlfloat16 x dlfloat16"), std::string::npos) << r.gemms[0].datapath;
  EXPECT_NE(r.gemms[2].datapath.find("hfp8_e4m3 x hfp8_e4m3"), std::string::npos) << r.gemms[2].datapath;
  const auto phases = r.layer_phases();
  ASSERT_EQ(phases.size(), 8u);
  EXPECT_EQ(phases[0].layer, 0u);
  EXPECT_EQ(phases[0].phase, Phase::kFwd);
}

TEST(Fidelity, Fp8IsWorseThanFp16OnTheSameData) {
  AcceleratorConfig fp8 = tiny_config(), fp16 = tiny_config();
  set_all(fp8, precision("fp8_e5m2", "fp32"));
  set_all(fp16, precision("fp16", "fp32"));
  const Trace trace = mlp(32);
  const double sqnr8 = pooled_sqnr(run(fp8, trace)), sqnr16 = pooled_sqnr(run(fp16, trace));
  // About 6 dB per significand bit: 2 vs 10 stored bits.
  EXPECT_GT(sqnr16, sqnr8 + 30) << sqnr8 << " vs " << sqnr16;
}

TEST(Fidelity, ChunkingImprovesALongReduction) {
  AcceleratorConfig plain = tiny_config();
  set_all(plain, precision("fp16", "fp16"));  // operands exact enough that the sums dominate
  plain.chip.core.accumulator.chunk_length = 0;
  AcceleratorConfig chunked = plain;
  chunked.chip.core.accumulator.chunk_length = 64;
  // The weight gradients reduce over 8 x 4096 tokens.
  const Trace trace = mlp(8, 4096);
  const auto wgrad_sqnr = [&](const AcceleratorConfig& c) {
    num::ErrorTally t;
    for (const auto& g : run(c, trace).gemms)
      if (g.phase == Phase::kWgrad) t.merge(g.result);
    return t.stats().sqnr_db;
  };
  const double plain_db = wgrad_sqnr(plain), chunked_db = wgrad_sqnr(chunked);
  // 39 vs 48 dB with this seed: chunks keep the running sums short.
  EXPECT_GT(chunked_db, plain_db + 6) << plain_db << " vs " << chunked_db;
}

TEST(Fidelity, ALongReductionGetsFewerOutputsAndOneBeyondTheBudgetIsNotMeasured) {
  AcceleratorConfig config = tiny_config();
  // The weight gradients reduce over 64 x 16 = 1024 tokens, the others over 64 or 256.
  const Trace trace = mlp(64, 16);
  config.fidelity.max_operand_values = 1024 * 4;
  const FidelityReport r = run(config, trace);
  for (const auto& g : r.gemms) {
    if (g.k > 2048) continue;
    EXPECT_TRUE(g.not_measured.empty()) << g.label;
    EXPECT_LE((g.rows + g.cols) * g.k, config.fidelity.max_operand_values) << g.label;
    if (g.phase == Phase::kWgrad) EXPECT_LT(g.rows * g.cols, 16) << g.label;
  }
  config.fidelity.max_operand_values = 1024;  // the weight gradients' K alone exceeds half of it
  for (const auto& g : run(config, trace).gemms) {
    EXPECT_EQ(g.phase == Phase::kWgrad, !g.not_measured.empty()) << g.label;
    if (g.phase == Phase::kWgrad) EXPECT_EQ(g.result.count, 0u);
  }
}

TEST(Fidelity, IntegerFormatsAreCalibratedPerTensor) {
  // Weights of N(0, 0.18) in INT4 at scale 1 would all be zero; calibrated, INT8 beats INT4 by ~6 dB a bit.
  const auto forward_sqnr = [](const std::string& format) {
    AcceleratorConfig config = tiny_config();
    config.chip.core.mac_array.macs_per_pe_per_cycle[format] = 8;  // the tiny chip runs no integers
    GemmPrecision p = precision(format, "fp32");
    p.accumulator = *num::find_format("fp32");
    set_all(config, p);
    num::ErrorTally t;
    for (const auto& g : run(config, mlp(32)).gemms)
      if (g.phase == Phase::kFwd) t.merge(g.result);
    return t.stats().sqnr_db;
  };
  const double int4 = forward_sqnr("int4"), int8 = forward_sqnr("int8");
  EXPECT_GT(int4, 3);
  EXPECT_GT(int8, int4 + 15) << int4 << " vs " << int8;
}

TEST(Fidelity, AGemmDrawsTheSameOperandsWhateverElseTheRunHolds) {
  const Trace trace = mlp(8);
  const AcceleratorConfig config = tiny_config();
  const auto layers = expand_training(trace, {});
  const FidelityReport all = measure_fidelity(config, trace, layers, kGemmPhases);
  const FidelityReport fwd = measure_fidelity(config, trace, layers, {Phase::kFwd});
  for (const GemmFidelity& g : fwd.gemms) {
    const auto same = std::find_if(all.gemms.begin(), all.gemms.end(), [&](const GemmFidelity& h) {
      return h.layer == g.layer && h.phase == g.phase && h.label == g.label;
    });
    ASSERT_NE(same, all.gemms.end());
    EXPECT_EQ(same->result.noise, g.result.noise) << g.label;
  }
}

TEST(Fidelity, StochasticOperandFormatsRoundStochastically) {
  const auto run_with = [](const char* rounding) {
    AcceleratorConfig config = tiny_config();
    GemmPrecision p = precision("fp8_e5m2", "fp32");
    p.a.default_rounding = p.b.default_rounding = *num::parse_rounding(rounding);
    set_all(config, p);
    return run(config, mlp(16));
  };
  // The same drawn operands, converted with the formats' own roundings.
  const FidelityReport sr = run_with("sr"), rtz = run_with("rtz"), rne = run_with("rne");
  EXPECT_NE(to_json(sr)["gemms"], to_json(rtz)["gemms"]);
  EXPECT_NE(to_json(sr)["gemms"], to_json(rne)["gemms"]);
  EXPECT_EQ(to_json(sr)["gemms"], to_json(run_with("sr"))["gemms"]);  // keyed by the seed
}

TEST(Fidelity, IsDeterministicForASeed) {
  const Trace trace = mlp(8);
  AcceleratorConfig config = tiny_config();
  const FidelityReport a = run(config, trace), b = run(config, trace);
  EXPECT_EQ(to_json(a)["gemms"], to_json(b)["gemms"]);
  config.fidelity.seed = 2;
  EXPECT_NE(to_json(a)["gemms"], to_json(run(config, trace))["gemms"]);
}

// A .npy of small integers: exact in every operand format and in the sums.
std::filesystem::path write_integer_npy(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto file = dir / "small_integers.npy";
  // 128 elements: the weights of a 16 x 8 linear layer, and whole rows of its input (16) and output (8).
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (128,), }";
  header.resize(118, ' ');
  header += '\n';
  std::ofstream out(file, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t length = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&length), 2);
  out << header;
  for (int i = 0; i < 128; ++i) {
    const float v = static_cast<float>(i % 9 - 4);
    out.write(reinterpret_cast<const char*>(&v), 4);
  }
  return file;
}

TEST(Fidelity, AnExactDatapathHasInfiniteSqnrAndNoError) {
  const auto dir = std::filesystem::temp_directory_path() / "lptsim-fidelity-exact";
  write_integer_npy(dir);
  AcceleratorConfig config = tiny_config();
  set_all(config, precision("fp16", "fp32"));
  Trace trace{"exact", "test", 4, {}};
  trace.file = (dir / "trace.json").string();
  Layer layer = linear("fc", 16, 8);
  TensorValues integers;
  integers.kind = TensorValues::Kind::kFile;
  integers.file = "small_integers.npy";
  layer.fidelity = {integers, integers, integers};
  trace.layers.push_back(layer);
  config.precision.loss_scale = {false, 1};
  const FidelityReport r = run(config, trace);
  ASSERT_FALSE(r.gemms.empty());
  for (const auto& g : r.gemms) {
    const num::FidelityStats s = g.result.stats();
    EXPECT_EQ(s.sqnr_db, std::numeric_limits<double>::infinity()) << g.label;
    EXPECT_EQ(s.max_abs_error, 0) << g.label;
    EXPECT_EQ(s.relative_l2_error, 0) << g.label;
    EXPECT_NE(g.a_values.find("(trace)"), std::string::npos);
  }
}

TEST(Fidelity, AStaticLossScaleTooSmallUnderflowsGradients) {
  AcceleratorConfig config = tiny_config();
  set_all(config, precision("fp8_e5m2", "fp32"));
  const Trace trace = mlp(16);
  const auto gradient_underflow = [&](const AcceleratorConfig& c) {
    OperandCounts counts;
    for (const auto& g : run(c, trace).gemms)
      if (g.phase != Phase::kFwd) counts.merge(g.operands);
    return static_cast<double>(counts.underflow) / static_cast<double>(counts.values);
  };
  const double dynamic = gradient_underflow(config);
  config.precision.loss_scale = {false, 1};  // gradients around 2^-20 into E5M2 (smallest 2^-16)
  const double unscaled = gradient_underflow(config);
  EXPECT_LT(dynamic, 0.01);
  EXPECT_GT(unscaled, 0.3);
}

TEST(Fidelity, CachedResultsEqualFreshOnesAndAreServedFromTheCache) {
  const auto dir = std::filesystem::temp_directory_path() / "lptsim-fidelity-cache";
  std::filesystem::remove_all(dir);
  const AcceleratorConfig config = tiny_config();
  const Trace trace = mlp(8);
  const auto layers = expand_training(trace, {});
  const std::string key = fidelity_key(config, trace, kGemmPhases, false);
  const FidelityReport fresh = cached_fidelity(dir, key, config, trace, layers, kGemmPhases);
  EXPECT_FALSE(fresh.from_cache);
  const FidelityReport cached = cached_fidelity(dir, key, config, trace, layers, kGemmPhases);
  EXPECT_TRUE(cached.from_cache);
  EXPECT_EQ(to_json(fresh)["gemms"], to_json(cached)["gemms"]);
  // What the results depend on changes the key; what they do not, does not.
  AcceleratorConfig other = config;
  other.chip.dram.channels *= 2;
  EXPECT_EQ(fidelity_key(other, trace, kGemmPhases, false), key);
  other.chip.core.accumulator.chunk_length = 32;
  EXPECT_NE(fidelity_key(other, trace, kGemmPhases, false), key);
  other = config;
  other.fidelity.seed = 7;
  EXPECT_NE(fidelity_key(other, trace, kGemmPhases, false), key);
}

TEST(Fidelity, ABadNpyNamesTheFileAndTheLayer) {
  const auto dir = std::filesystem::temp_directory_path() / "lptsim-fidelity-bad-npy";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "text.npy") << "not numpy";
  Trace trace{"bad", "test", 2, {}};
  trace.file = (dir / "trace.json").string();
  Layer layer = linear("fc", 4, 4);
  layer.where = "/layers/0";
  TensorValues file;
  file.kind = TensorValues::Kind::kFile;
  file.file = "text.npy";
  layer.fidelity.weights = file;
  trace.layers.push_back(layer);
  try {
    run(tiny_config(), trace);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), trace.file);
    EXPECT_EQ(e.json_path(), "/layers/0/fidelity/weights/npy");
    EXPECT_NE(e.message().find("magic"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("text.npy"), std::string::npos) << e.message();
  }
}

// --- the gradient all-reduce of a system of chips ---

// The tiny config as a system of `chips` chips; a small all-reduce, for speed.
AcceleratorConfig system_config(int chips) {
  AcceleratorConfig config = tiny_config();
  config.system = core::SystemParams{};
  config.system->chips = chips;
  config.fidelity.allreduce_elements = 1 << 12;
  return config;
}

double allreduce_sqnr(const AllReduceFidelity& a) { return a.total.stats().sqnr_db; }

TEST(Fidelity, MeasuresTheAllReduceOfASystemOfChipsOnly) {
  const Trace trace = mlp(8);
  const FidelityReport system = run(system_config(4), trace);
  ASSERT_TRUE(system.allreduce.has_value());
  const AllReduceFidelity& a = *system.allreduce;
  EXPECT_EQ(a.not_measured, "");
  EXPECT_EQ(a.workers, 4);
  EXPECT_EQ(a.elements, 1u << 12);
  EXPECT_EQ(a.correlation, 0.5);
  EXPECT_EQ(a.order, "ring");
  EXPECT_EQ(a.communication_format, "dlfloat16");  // the wgrad output, gradient_format's default
  EXPECT_EQ(a.accumulator_format, "dlfloat16");
  EXPECT_EQ(a.total.count, 1u << 12);
  EXPECT_TRUE(std::isfinite(allreduce_sqnr(a)));
  EXPECT_FALSE(a.compression.has_value());
  // Deterministic for the seed, and the seed matters.
  EXPECT_EQ(to_json(run(system_config(4), trace))["allreduce"], to_json(system)["allreduce"]);
  AcceleratorConfig reseeded = system_config(4);
  reseeded.fidelity.seed = 9;
  EXPECT_NE(to_json(run(reseeded, trace))["allreduce"], to_json(system)["allreduce"]);
  // One chip, or a run without weight gradients: none.
  EXPECT_FALSE(run(system_config(1), trace).allreduce.has_value());
  EXPECT_FALSE(run(tiny_config(), trace).allreduce.has_value());
  EXPECT_FALSE(measure_fidelity(system_config(4), trace, expand_training(trace, {}), {Phase::kFwd, Phase::kBwd})
                   .allreduce.has_value());
  // A tree all-reduce is measured in tree order.
  AcceleratorConfig tree = system_config(4);
  tree.data_parallel.algorithm = core::CollectiveAlgorithm::kTree;
  EXPECT_EQ(measure_allreduce_fidelity(tree).order, "tree");
}

TEST(Fidelity, WiderGradientFormatsAllReduceMoreAccurately) {
  // An FP32 accumulator, so that the communication format's rounding is what
  // differs: 24, 11 and 3 significant bits.
  AcceleratorConfig config = system_config(8);
  config.precision.gemm[static_cast<std::size_t>(Phase::kWgrad)]->accumulator = *num::find_format("fp32");
  const auto sqnr_in = [&](const std::string& format) {
    config.data_parallel.gradient_format = *num::find_format(format);
    const AllReduceFidelity a = measure_allreduce_fidelity(config);
    EXPECT_EQ(a.not_measured, "") << format;
    EXPECT_EQ(a.communication_format, format);
    return allreduce_sqnr(a);
  };
  const double fp32 = sqnr_in("fp32"), fp16 = sqnr_in("fp16"), hfp8 = sqnr_in("hfp8_e5m2");
  // Each binary digit less loses about 6 dB: far more than any sampling noise.
  EXPECT_GT(fp32, fp16 + 30);
  EXPECT_GT(fp16, hfp8 + 30);
}

TEST(Fidelity, CompressionAddsCltkStepsToTheAllReduce) {
  AcceleratorConfig config = system_config(4);
  config.data_parallel.compression = CompressionParams{64, 1};
  config.fidelity.compression_steps = 5;
  const Trace trace = mlp(8);
  const FidelityReport r = run(config, trace);
  ASSERT_TRUE(r.allreduce && r.allreduce->compression);
  const CompressionFidelity& c = *r.allreduce->compression;
  EXPECT_EQ(c.ratio, 64);
  EXPECT_EQ(c.k, (1u << 12) / 64);
  ASSERT_EQ(c.steps.size(), 5u);
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    EXPECT_EQ(c.steps[i].leader, static_cast<int>(i % 4));
    EXPECT_GE(c.steps[i].topk_overlap, 0);
    EXPECT_LE(c.steps[i].topk_overlap, 1);
  }
  EXPECT_EQ(c.cumulative.count, 1u << 12);
  EXPECT_GT(c.per_step.relative_l2_error, 0);
  // Sending more of each step's values (a lower ratio) loses less of it.
  AcceleratorConfig denser = config;
  denser.data_parallel.compression = CompressionParams{4, 1};
  const AllReduceFidelity dense = measure_allreduce_fidelity(denser);
  ASSERT_TRUE(dense.compression);
  EXPECT_LT(dense.compression->per_step.relative_l2_error, c.per_step.relative_l2_error);
  // Cached results read back whole.
  const FidelityReport back = fidelity_from_json(to_json(r));
  EXPECT_EQ(to_json(back), to_json(r));
  ASSERT_TRUE(back.allreduce && back.allreduce->compression);
  EXPECT_EQ(back.allreduce->compression->steps.size(), 5u);
}

TEST(Fidelity, TheCacheKeyHoldsWhatTheAllReduceDependsOn) {
  const Trace trace = mlp(8);
  const AcceleratorConfig config = system_config(4);
  const std::string key = fidelity_key(config, trace, kGemmPhases, false);
  AcceleratorConfig other = config;
  other.data_parallel.gradient_format = *num::find_format("fp32");
  EXPECT_NE(fidelity_key(other, trace, kGemmPhases, false), key);
  other = config;
  other.system->chips = 8;
  EXPECT_NE(fidelity_key(other, trace, kGemmPhases, false), key);
  other = config;
  other.fidelity.worker_correlation = 0.9;
  EXPECT_NE(fidelity_key(other, trace, kGemmPhases, false), key);
  other = config;
  other.data_parallel.compression = CompressionParams{};
  EXPECT_NE(fidelity_key(other, trace, kGemmPhases, false), key);
  other = config;
  other.data_parallel.bucket_mib = 1;  // timing only
  EXPECT_EQ(fidelity_key(other, trace, kGemmPhases, false), key);
  // A single chip's key does not hold the all-reduce's parameters.
  AcceleratorConfig one = tiny_config();
  const std::string single = fidelity_key(one, trace, kGemmPhases, false);
  one.fidelity.worker_correlation = 0.9;
  one.data_parallel.gradient_format = *num::find_format("fp32");
  EXPECT_EQ(fidelity_key(one, trace, kGemmPhases, false), single);
}

}  // namespace
}  // namespace lpt
