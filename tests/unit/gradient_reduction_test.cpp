// Gradient all-reduce and CLT-k numerics (models/numerics/gradient_reduction.*): exact
// cases, a ring reduce-scatter written out here from its definition, orderings of formats
// and summation orders that follow from the formats' precisions, and input checks.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/numerics/accumulate.hpp"
#include "models/numerics/gradient_reduction.hpp"
#include "models/numerics/random.hpp"

namespace lpt::num {
namespace {

Format preset(const std::string& name) { return Format(*find_format(name)); }

// Integers in [-range, range], keyed by (seed, stream, index).
std::vector<double> small_integers(std::uint64_t stream, std::size_t n, int range) {
  const CounterRandom random(7, stream);
  std::vector<double> out(n);
  for (std::size_t e = 0; e < n; ++e)
    out[e] = static_cast<double>(static_cast<int>(random.bits(e) % static_cast<std::uint64_t>(2 * range + 1)) - range);
  return out;
}

std::vector<std::span<const double>> spans(const std::vector<std::vector<double>>& rows) {
  return {rows.begin(), rows.end()};
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(y.size());
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

bool same_value(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

void expect_same_stats(const FidelityStats& a, const FidelityStats& b) {
  EXPECT_EQ(a.count, b.count);
  EXPECT_TRUE(same_value(a.sqnr_db, b.sqnr_db)) << a.sqnr_db << " vs " << b.sqnr_db;
  EXPECT_TRUE(same_value(a.relative_l2_error, b.relative_l2_error));
  EXPECT_TRUE(same_value(a.max_abs_error, b.max_abs_error));
  EXPECT_TRUE(same_value(a.mean_signed_error, b.mean_signed_error));
}

// Expects `call` to throw std::invalid_argument whose message contains `parameter`.
template <class Call>
void expect_rejected(Call call, const std::string& parameter) {
  try {
    call();
    ADD_FAILURE() << "no exception for " << parameter;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(parameter), std::string::npos) << e.what();
  }
}

TEST(GradientReduction, Fp32SumOfSmallIntegersIsExact) {
  const int workers = 8;
  std::vector<std::vector<double>> gradients;
  for (int w = 0; w < workers; ++w) gradients.push_back(small_integers(static_cast<std::uint64_t>(w), 1000, 1000));
  for (const ReductionOrder order : {ReductionOrder::kRing, ReductionOrder::kTree}) {
    AllReduceParams params;  // fp32 communication and accumulator
    params.order = order;
    const std::vector<double> reduced = allreduce(spans(gradients), params);
    for (std::size_t e = 0; e < reduced.size(); ++e) {
      double sum = 0;
      for (const auto& g : gradients) sum += g[e];
      ASSERT_EQ(reduced[e], sum) << "element " << e;
    }
    const AllReduceResult r = measure_allreduce(spans(gradients), params);
    EXPECT_EQ(r.total.count, 1000u);
    EXPECT_EQ(r.total.sqnr_db, std::numeric_limits<double>::infinity());
    EXPECT_EQ(r.total.max_abs_error, 0.0);
    EXPECT_EQ(r.quantization.max_abs_error, 0.0);
    EXPECT_EQ(r.reduction.max_abs_error, 0.0);
  }
}

// The ring as its definition says, through the codec: chunk c of ceil(E / N) elements
// starts at worker c + 1; every hop adds the next worker's value rounded in the
// accumulator and rounds the partial sum to the communication format.
std::vector<double> ring_by_definition(const std::vector<std::vector<double>>& g, const Format& communication,
                                       const Format& accumulator) {
  const std::size_t n = g.size(), elements = g[0].size(), chunk = (elements + n - 1) / n;
  std::vector<double> out(elements);
  for (std::size_t e = 0; e < elements; ++e) {
    const std::size_t start = (e / chunk + 1) % n;
    double sum = communication.round(g[start][e], Rounding::kNearestEven);
    for (std::size_t hop = 1; hop < n; ++hop) {
      const double value = communication.round(g[(start + hop) % n][e], Rounding::kNearestEven);
      sum = communication.round(add_rounded(accumulator, sum, value, StageRounding{}, {}), Rounding::kNearestEven);
    }
    out[e] = sum;
  }
  return out;
}

TEST(GradientReduction, RingMatchesItsDefinitionBitForBit) {
  // A wide spread reaches fp16's and fp8's subnormals and overflows.
  SyntheticGradientParams p;
  p.workers = 5;
  p.elements = 2000;
  p.correlation = 0.7;
  p.spread_binades = 8;
  const SyntheticGradients source(p);
  std::vector<std::vector<double>> g;
  for (int w = 0; w < p.workers; ++w) g.push_back(source.worker_gradient(w));
  const std::vector<std::pair<std::string, std::string>> formats = {
      {"fp32", "fp32"}, {"fp16", "fp32"}, {"fp16", "fp16"}, {"bf16", "fp32"}, {"fp8_e5m2", "fp16"}, {"fp8_e4m3", "bf16"}};
  for (const auto& [communication, accumulator] : formats) {
    AllReduceParams params;
    params.communication_format = communication;
    params.accumulator_format = accumulator;
    const std::vector<double> reduced = allreduce(spans(g), params);
    const std::vector<double> expected = ring_by_definition(g, preset(communication), preset(accumulator));
    for (std::size_t e = 0; e < reduced.size(); ++e)
      ASSERT_TRUE(same_value(reduced[e], expected[e]) || (std::isnan(reduced[e]) && std::isnan(expected[e])))
          << communication << "/" << accumulator << " element " << e << ": " << reduced[e] << " vs " << expected[e];
  }
}

TEST(GradientReduction, ErrorGrowsAsTheCommunicationFormatNarrows) {
  SyntheticGradientParams g;
  g.workers = 8;
  g.elements = 1 << 14;
  double previous = 0;
  for (const char* format : {"fp32", "fp16", "fp8_e5m2"}) {
    AllReduceParams params;
    params.communication_format = format;
    const AllReduceResult r = measure_allreduce(g, params);
    EXPECT_GT(r.total.relative_l2_error, previous) << format;
    EXPECT_GT(r.quantization.relative_l2_error, 0.0) << format;
    previous = r.total.relative_l2_error;
  }
}

TEST(GradientReduction, QuantizationAndReductionAreSeparated) {
  // fp32 inputs into a bf16 accumulator: the reduction's error dwarfs the inputs' rounding.
  SyntheticGradientParams g;
  g.workers = 8;
  g.elements = 1 << 12;
  AllReduceParams params;
  params.accumulator_format = "bf16";
  const AllReduceResult r = measure_allreduce(g, params);
  EXPECT_GT(r.reduction.relative_l2_error, 100 * r.quantization.relative_l2_error);
}

TEST(GradientReduction, GeneratedCorrelationIsRho) {
  for (const double rho : {0.0, 0.5, 0.9}) {
    SyntheticGradientParams p;
    p.workers = 3;
    p.elements = 1 << 16;
    p.correlation = rho;
    const SyntheticGradients source(p);
    // Divided by the shared scale: the heavy-tailed s would make the estimate noisy.
    std::vector<double> scale(p.elements);
    source.fill_scale(0, scale);
    std::vector<std::vector<double>> z;
    for (int w = 0; w < p.workers; ++w) {
      std::vector<double> g = source.worker_gradient(w);
      for (std::size_t e = 0; e < g.size(); ++e) g[e] /= scale[e];
      z.push_back(std::move(g));
    }
    // The estimate's standard deviation is about 1 / sqrt(2^16) = 0.004.
    EXPECT_NEAR(pearson(z[0], z[1]), rho, 0.02) << rho;
    EXPECT_NEAR(pearson(z[1], z[2]), rho, 0.02) << rho;
    // Unit variance.
    double sum_squares = 0;
    for (const double x : z[0]) sum_squares += x * x;
    EXPECT_NEAR(sum_squares / static_cast<double>(p.elements), 1.0, 0.03);
  }
  // Without a spread the gradients themselves correlate by rho.
  SyntheticGradientParams p;
  p.workers = 2;
  p.elements = 1 << 16;
  p.correlation = 0.5;
  p.spread_binades = 0;
  const SyntheticGradients source(p);
  EXPECT_NEAR(pearson(source.worker_gradient(0), source.worker_gradient(1)), 0.5, 0.02);
}

TEST(GradientReduction, TemporalCorrelationBetweenSteps) {
  SyntheticGradientParams p;
  p.workers = 2;
  p.elements = 1 << 16;
  p.spread_binades = 0;
  p.temporal_correlation = 0.6;
  const SyntheticGradients source(p);
  EXPECT_NEAR(pearson(source.worker_gradient(1, 0), source.worker_gradient(1, 1)), 0.6, 0.02);
  EXPECT_NEAR(pearson(source.worker_gradient(1, 2), source.worker_gradient(1, 5)), 0.6, 0.02);
  p.temporal_correlation = 0;
  const SyntheticGradients fresh(p);
  EXPECT_NEAR(pearson(fresh.worker_gradient(1, 0), fresh.worker_gradient(1, 1)), 0.0, 0.02);
}

TEST(GradientReduction, TilesDoNotChangeValues) {
  SyntheticGradientParams p;
  p.workers = 3;
  p.elements = 10000;
  p.correlation = 0.3;
  p.temporal_correlation = 0.2;
  const SyntheticGradients source(p);
  const std::vector<double> whole = source.worker_gradient(2, 4);
  std::vector<double> part(5001);
  source.fill(2, 4, 3, part);  // an odd start inside a Philox block
  for (std::size_t e = 0; e < part.size(); ++e) ASSERT_EQ(part[e], whole[e + 3]) << e;
}

TEST(GradientReduction, TreeBeatsRingOnLongSumsInANarrowAccumulator) {
  // Pairwise summation's error bound grows with log2 N, a running sum's with N (Higham,
  // "Accuracy and Stability of Numerical Algorithms", 2nd ed., Sec. 4.2). With 64 workers
  // of well-correlated gradients, partial sums grow with the number of terms, and the RMS
  // error of the ring's N - 1 roundings is about sqrt(N / 6) = 3x the tree's. Asserted:
  // 1.25x, on the summation alone (this seed gives about 1.7x).
  SyntheticGradientParams g;
  g.workers = 64;
  g.elements = 1 << 12;
  g.correlation = 0.9;
  AllReduceParams ring;
  ring.communication_format = ring.accumulator_format = "bf16";
  AllReduceParams tree = ring;
  tree.order = ReductionOrder::kTree;
  const AllReduceResult r = measure_allreduce(g, ring), t = measure_allreduce(g, tree);
  EXPECT_TRUE(std::isfinite(r.total.relative_l2_error));
  EXPECT_GT(t.total.relative_l2_error, 0.0);
  EXPECT_LT(1.25 * t.reduction.relative_l2_error, r.reduction.relative_l2_error);
  EXPECT_LT(t.total.relative_l2_error, r.total.relative_l2_error);
  // Same inputs, so the same quantization error.
  EXPECT_EQ(r.quantization.relative_l2_error, t.quantization.relative_l2_error);
}

TEST(GradientReduction, ScaleIsExactForAnExactReduction) {
  std::vector<std::vector<double>> gradients;
  for (int w = 0; w < 4; ++w) gradients.push_back(small_integers(static_cast<std::uint64_t>(w) + 10, 500, 100));
  AllReduceParams params;
  params.scale = 1024;
  const AllReduceResult r = measure_allreduce(spans(gradients), params);
  EXPECT_EQ(r.total.max_abs_error, 0.0);
  // Gradients of about 2^-24 (fp16's smallest subnormal) underflow in fp16 unless scaled
  // up: with a spread of 3 binades about a third are below its round-to-zero threshold.
  SyntheticGradientParams g;
  g.workers = 4;
  g.elements = 1 << 12;
  g.log2_median = -24;
  AllReduceParams plain;
  plain.communication_format = "fp16";
  AllReduceParams scaled = plain;
  scaled.scale = 1 << 16;
  const AllReduceResult p = measure_allreduce(g, plain), s = measure_allreduce(g, scaled);
  EXPECT_GT(p.total.fraction_underflow, 0.2);
  EXPECT_LT(s.total.fraction_underflow, p.total.fraction_underflow / 10);
  EXPECT_LT(s.total.relative_l2_error, p.total.relative_l2_error);
}

TEST(GradientReduction, DeterministicForASeed) {
  SyntheticGradientParams g;
  g.workers = 4;
  g.elements = 1 << 12;
  AllReduceParams params;
  params.communication_format = "fp8_e5m2";
  params.communication_rounding.rounding = Rounding::kStochastic;
  params.accumulator_format = "fp16";
  params.accumulator_rounding.rounding = Rounding::kStochasticExact;
  params.rounding_seed = 3;
  const AllReduceResult a = measure_allreduce(g, params), b = measure_allreduce(g, params);
  expect_same_stats(a.total, b.total);
  expect_same_stats(a.quantization, b.quantization);

  SyntheticGradientParams other_gradients = g;
  other_gradients.seed = 2;
  EXPECT_NE(measure_allreduce(other_gradients, params).total.relative_l2_error, a.total.relative_l2_error);
  AllReduceParams other_rounding = params;
  other_rounding.rounding_seed = 4;
  const AllReduceResult c = measure_allreduce(g, other_rounding);
  EXPECT_NE(c.total.relative_l2_error, a.total.relative_l2_error);
  EXPECT_EQ(c.total.count, a.total.count);

  CltkParams cltk;
  cltk.steps = 3;
  const CltkResult x = measure_cltk(g, params, cltk), y = measure_cltk(g, params, cltk);
  expect_same_stats(x.cumulative, y.cumulative);
  EXPECT_EQ(x.topk_overlap, y.topk_overlap);
  EXPECT_NE(measure_cltk(other_gradients, params, cltk).cumulative.relative_l2_error, x.cumulative.relative_l2_error);
}

TEST(GradientReduction, CompressedBytes) {
  EXPECT_EQ(cltk_k(1000, 10), 100u);
  EXPECT_EQ(cltk_k(1000, 3), 333u);
  EXPECT_EQ(cltk_k(1000, 5000), 1u);  // at least one element
  EXPECT_EQ(cltk_k(1000, 1), 1000u);
  EXPECT_EQ(compressed_bytes(1000, 10, "fp16"), 100u * 2 + 100u * 4);
  EXPECT_EQ(compressed_bytes(1000, 10, "fp8_e4m3"), 100u * 1 + 100u * 4);
  EXPECT_EQ(compressed_bytes(1000, 10, preset("fp32")), 100u * 4 + 100u * 4);
  EXPECT_EQ(compressed_bytes(1000, 5000, "dlfloat16"), 2u + 4u);
  EXPECT_EQ(compressed_bytes(std::uint64_t{1} << 20, 100, "fp32"), 10485u * 8);
}

TEST(GradientReduction, CltkWithEveryElementIsTheUncompressedSum) {
  const int workers = 4;
  const std::uint64_t elements = 300;
  const GradientSource integers = [](int worker, std::uint64_t step, std::span<double> out) {
    const std::vector<double> v = small_integers(static_cast<std::uint64_t>(worker) * 100 + step, out.size(), 1000);
    std::copy(v.begin(), v.end(), out.begin());
  };
  CltkParams params;
  params.compression_ratio = 1;
  params.steps = 4;
  const CltkResult r = measure_cltk(workers, elements, integers, AllReduceParams{}, params);
  EXPECT_EQ(r.k, elements);
  ASSERT_EQ(r.steps.size(), 4u);
  for (const CltkStep& step : r.steps) {
    EXPECT_EQ(step.step.max_abs_error, 0.0);
    EXPECT_EQ(step.cumulative.max_abs_error, 0.0);
    EXPECT_EQ(step.topk_overlap, 1.0);
  }
  EXPECT_EQ(r.cumulative.sqnr_db, std::numeric_limits<double>::infinity());

  // Inexact formats: step 0 of CLT-k with k = all is the plain all-reduce, rounding for rounding.
  SyntheticGradientParams g;
  g.workers = 4;
  g.elements = 1 << 10;
  AllReduceParams fp8;
  fp8.communication_format = "fp8_e4m3";
  fp8.accumulator_format = "fp16";
  CltkParams one_step;
  one_step.compression_ratio = 1;
  one_step.steps = 1;
  expect_same_stats(measure_cltk(g, fp8, one_step).steps[0].step, measure_allreduce(g, fp8).total);
}

TEST(GradientReduction, ErrorFeedbackKeepsTheCumulativeSumClose) {
  // Unit scales: with a spread of binades the top 1/8 would carry nearly all the energy.
  // Steps correlated, as consecutive minibatches' gradients are.
  SyntheticGradientParams g;
  g.workers = 4;
  g.elements = 1 << 12;
  g.correlation = 0.5;
  g.spread_binades = 0;
  g.temporal_correlation = 0.5;
  CltkParams params;
  params.compression_ratio = 8;
  params.steps = 32;
  const CltkResult with = measure_cltk(g, AllReduceParams{}, params);
  params.error_feedback = false;
  const CltkResult without = measure_cltk(g, AllReduceParams{}, params);
  // Without feedback every step drops most of its gradient for good; with it the dropped
  // part waits in the memories, so the cumulative error is the memories' sum, not the
  // sum of every step's loss.
  EXPECT_LT(4 * with.cumulative.relative_l2_error, without.cumulative.relative_l2_error);
  EXPECT_LT(with.steps.back().cumulative.relative_l2_error, with.steps.front().cumulative.relative_l2_error);
  // Each step alone is no closer: feedback only moves error between steps.
  EXPECT_GT(with.per_step.relative_l2_error, 0.3);
  EXPECT_GT(without.per_step.relative_l2_error, 0.3);

  // The low-pass filter (beta < 1) still feeds back: far better than none.
  params.error_feedback = true;
  params.memory_beta = 0.5;
  const CltkResult filtered = measure_cltk(g, AllReduceParams{}, params);
  EXPECT_LT(filtered.cumulative.relative_l2_error, without.cumulative.relative_l2_error);
}

TEST(GradientReduction, TopKOverlapGrowsWithCorrelation) {
  SyntheticGradientParams g;
  g.workers = 8;
  g.elements = 1 << 14;
  g.spread_binades = 0;  // no shared scale to make the top-k agree regardless
  CltkParams params;
  params.compression_ratio = 20;
  params.steps = 3;
  g.correlation = 0;
  const double independent = measure_cltk(g, AllReduceParams{}, params).topk_overlap;
  g.correlation = 0.9;
  const double correlated = measure_cltk(g, AllReduceParams{}, params).topk_overlap;
  // Independent workers' top 5% agree by chance on about 5%.
  EXPECT_NEAR(independent, 1 / params.compression_ratio, 0.03);
  EXPECT_GT(correlated, independent + 0.3);
  EXPECT_LE(correlated, 1.0);
}

TEST(GradientReduction, BadInputsNameTheParameter) {
  SyntheticGradientParams g;
  g.workers = 2;
  g.elements = 64;
  const AllReduceParams ok;
  auto with = [&](auto change) {
    SyntheticGradientParams bad = g;
    change(bad);
    return [bad, &ok] { measure_allreduce(bad, ok); };
  };
  expect_rejected(with([](auto& p) { p.workers = 0; }), "workers");
  expect_rejected(with([](auto& p) { p.elements = 0; }), "elements");
  expect_rejected(with([](auto& p) { p.correlation = -0.1; }), "correlation");
  expect_rejected(with([](auto& p) { p.correlation = 1.5; }), "correlation");
  expect_rejected(with([](auto& p) { p.correlation = std::nan(""); }), "correlation");
  expect_rejected(with([](auto& p) { p.temporal_correlation = 2; }), "temporal_correlation");
  expect_rejected(with([](auto& p) { p.spread_binades = -1; }), "spread_binades");
  expect_rejected([] { SyntheticGradients(SyntheticGradientParams{.workers = -3}); }, "workers");

  auto reduce_with = [&](auto change) {
    AllReduceParams bad;
    change(bad);
    return [bad, &g] { measure_allreduce(g, bad); };
  };
  expect_rejected(reduce_with([](auto& p) { p.communication_format = "fp7"; }), "communication_format");
  expect_rejected(reduce_with([](auto& p) { p.communication_format = "fp7"; }), "unknown format \"fp7\"; expected one of");
  expect_rejected(reduce_with([](auto& p) { p.accumulator_format = "float"; }), "accumulator_format");
  expect_rejected(reduce_with([](auto& p) { p.scale = 3; }), "scale");
  expect_rejected(reduce_with([](auto& p) { p.scale = 0; }), "scale");
  expect_rejected(reduce_with([](auto& p) { p.communication_rounding.stochastic_bits = 0; }),
                  "communication_rounding.stochastic_bits");

  auto cltk_with = [&](auto change) {
    CltkParams bad;
    change(bad);
    return [bad, &g, &ok] { measure_cltk(g, ok, bad); };
  };
  expect_rejected(cltk_with([](auto& p) { p.compression_ratio = 0.5; }), "compression_ratio");
  expect_rejected(cltk_with([](auto& p) { p.steps = 0; }), "steps");
  expect_rejected(cltk_with([](auto& p) { p.memory_beta = 0; }), "memory_beta");
  expect_rejected([] { compressed_bytes(100, 0.9, "fp16"); }, "compression_ratio");
  expect_rejected([] { compressed_bytes(100, 2, "fp9"); }, "format");

  const std::vector<double> a(4), b(5);
  const std::vector<std::span<const double>> uneven = {a, b};
  expect_rejected([&] { allreduce(uneven, ok); }, "gradients");
  expect_rejected([&] { allreduce(std::span<const std::span<const double>>(), ok); }, "workers");
  expect_rejected([&] { measure_cltk(0, 10, GradientSource([](int, std::uint64_t, std::span<double>) {}), ok, {}); },
                  "workers");
}

}  // namespace
}  // namespace lpt::num
