#include "sim/optimizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "sim/config.hpp"
#include "sim/mapping.hpp"
#include "sim/memory_footprint.hpp"
#include "sim/workload.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

using lpt::test_support::source_dir;

// conv 16 -> 32, 3x3 on 8x8 (padding 1), batch-norm, linear 2048 -> 10, at batch 4.
Trace small_network() {
  ConvLayer conv;
  conv.in_channels = 16, conv.in_h = conv.in_w = 8, conv.out_channels = 32;
  conv.kernel_h = conv.kernel_w = 3, conv.pad_h = conv.pad_w = 1;
  LinearLayer fc;
  fc.in_features = 32 * 8 * 8, fc.out_features = 10, fc.bias = true;
  Trace t{"small", "small.json", 4, {}};
  t.layers.push_back({"conv", "conv2d", conv});
  t.layers.push_back({"bn", "norm", ElementwiseLayer{ElementwiseOp::kBatchNorm, {32, 8, 8}}});
  t.layers.push_back({"fc", "linear", fc});
  return t;
}

void expect_gemm(const GemmWork& g, std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t repeats = 1) {
  EXPECT_EQ(g.m, m) << g.label;
  EXPECT_EQ(g.n, n) << g.label;
  EXPECT_EQ(g.k, k) << g.label;
  EXPECT_EQ(g.count, 1) << g.label;
  EXPECT_EQ(g.repeats, repeats) << g.label;
}

TEST(Optimizer, KfacFactorsOfAConvolutionAndALinearLayer) {
  Kfac kfac;
  kfac.newton_schulz_iterations = 5;
  const auto layers = expand_training(small_network(), {kfac});
  // The convolution: a = im2col(X), 4·8·8 = 256 rows of 16·3·3 = 144; g = dY, 256 rows of 32.
  const LayerWork& conv = layers[0];
  ASSERT_EQ(conv.phase(Phase::kCurvature).gemms.size(), 2u);
  expect_gemm(conv.phase(Phase::kCurvature).gemms[0], 144, 144, 256);
  expect_gemm(conv.phase(Phase::kCurvature).gemms[1], 32, 32, 256);
  // A reads the layer's input through the convolution's window, as dW does.
  EXPECT_EQ(conv.phase(Phase::kCurvature).gemms[0].a_window, conv.phase(Phase::kWgrad).gemms[0].a_window);
  EXPECT_EQ(conv.phase(Phase::kCurvature).gemms[0].b_from, OperandSource::kLayerInput);
  EXPECT_EQ(conv.phase(Phase::kCurvature).gemms[1].a_from, OperandSource::kOutputGradient);
  // Newton–Schulz: two d x d x d GEMMs per iteration, in sequence.
  ASSERT_EQ(conv.phase(Phase::kInverse).gemms.size(), 2u);
  expect_gemm(conv.phase(Phase::kInverse).gemms[0], 144, 144, 144, 10);
  expect_gemm(conv.phase(Phase::kInverse).gemms[1], 32, 32, 32, 10);
  // A⁻¹·dW (144 x 32 over 144), then ·G⁻¹ (over 32).
  ASSERT_EQ(conv.phase(Phase::kPrecondition).gemms.size(), 2u);
  expect_gemm(conv.phase(Phase::kPrecondition).gemms[0], 144, 32, 144);
  expect_gemm(conv.phase(Phase::kPrecondition).gemms[1], 144, 32, 32);
  // The running average reads old and new factors and writes one.
  const std::int64_t factor_elements = 144 * 144 + 32 * 32;
  EXPECT_EQ(conv.phase(Phase::kCurvature).elementwise.write_elements, factor_elements);
  EXPECT_EQ(conv.phase(Phase::kCurvature).elementwise.read_elements, 2 * factor_elements);

  // The linear layer: 4 rows of 2048 in, 10 out (its bias in dW's columns, not a factor row).
  const LayerWork& fc = layers[2];
  expect_gemm(fc.phase(Phase::kCurvature).gemms[0], 2048, 2048, 4);
  expect_gemm(fc.phase(Phase::kCurvature).gemms[1], 10, 10, 4);
  expect_gemm(fc.phase(Phase::kPrecondition).gemms[0], 2048, 10, 2048);
  expect_gemm(fc.phase(Phase::kPrecondition).gemms[1], 2048, 10, 10);

  // Batch-norm keeps SGD-momentum's update and has no K-FAC work.
  const LayerWork& bn = layers[1];
  for (const Phase p : {Phase::kCurvature, Phase::kInverse, Phase::kPrecondition})
    EXPECT_TRUE(bn.phase(p).empty()) << to_string(p);
  const auto sgd = expand_training(small_network(), {SgdMomentum{}});
  for (std::size_t i = 0; i < layers.size(); ++i)
    EXPECT_EQ(layers[i].phase(Phase::kUpdate).elementwise.read_elements,
              sgd[i].phase(Phase::kUpdate).elementwise.read_elements);
}

TEST(Optimizer, AdaHessianIsOneMoreBackwardPassAndAdamLikeUpdate) {
  const auto sgd = expand_training(small_network(), {SgdMomentum{}});
  const auto ada = expand_training(small_network(), {AdaHessian{}});
  for (std::size_t i = 0; i < ada.size(); ++i) {
    const LayerWork& layer = ada[i];
    // The Hessian-vector product repeats the backward pass's GEMMs.
    EXPECT_EQ(layer.phase(Phase::kHessian).macs(),
              sgd[i].phase(Phase::kBwd).macs() + sgd[i].phase(Phase::kWgrad).macs())
        << layer.name;
    EXPECT_EQ(layer.phase(Phase::kHessian).gemms.size(),
              sgd[i].phase(Phase::kBwd).gemms.size() + sgd[i].phase(Phase::kWgrad).gemms.size());
    // Hutchinson: z drawn and z·Hz taken per weight; a convolution also averages over its window.
    const std::int64_t backward_writes = sgd[i].phase(Phase::kBwd).elementwise.write_elements +
                                         sgd[i].phase(Phase::kWgrad).elementwise.write_elements;
    const std::int64_t per_weight = layer.parameters == 0 ? 0 : (layer.type == "conv2d" ? 3 : 2);
    EXPECT_EQ(layer.phase(Phase::kHessian).elementwise.write_elements,
              backward_writes + per_weight * layer.parameters)
        << layer.name;
    // Adam's moments with the Hessian's diagonal read in: 5 reads, 3 writes per weight.
    EXPECT_EQ(layer.phase(Phase::kUpdate).elementwise.read_elements, 5 * layer.parameters);
    EXPECT_EQ(layer.phase(Phase::kUpdate).elementwise.write_elements, 3 * layer.parameters);
  }
  EXPECT_EQ(state_per_weight(AdaHessian{}), 2);
}

TEST(Optimizer, KfacIntervalsHoldOverALongRun) {
  const Kfac kfac{10, 100, 12};
  int factors = 0, inverses = 0, both = 0;
  for (std::int64_t step = 0; step < 1000; ++step) {
    const std::set<Phase> at = intermittent_phases_at(kfac, step);
    factors += at.count(Phase::kCurvature);
    inverses += at.count(Phase::kInverse);
    both += at.size() == 2;
    if (at.count(Phase::kInverse)) {
      EXPECT_EQ(step % 100, 0);
    }
  }
  EXPECT_EQ(factors, 100);
  EXPECT_EQ(inverses, 10);
  EXPECT_EQ(both, 10);
  EXPECT_TRUE(intermittent_phases_at(SgdMomentum{}, 0).empty());
}

TEST(Optimizer, StepSharesAreTheScheduleCounted) {
  // Intervals that do not divide each other: lcm(4, 6) = 12 steps repeat.
  const Kfac kfac{4, 6, 12};
  const std::vector<StepShare> shares = step_shares(kfac);
  ASSERT_EQ(shares.size(), 4u);
  EXPECT_TRUE(shares.front().skipped.empty());
  double total = 0;
  for (const StepShare& s : shares) {
    int steps = 0;
    for (std::int64_t step = 0; step < 12; ++step) {
      std::set<Phase> skipped = intermittent_phases(kfac);
      for (const Phase p : intermittent_phases_at(kfac, step)) skipped.erase(p);
      steps += skipped == s.skipped;
    }
    EXPECT_NEAR(s.share, steps / 12.0, 1e-12);
    total += s.share;
  }
  EXPECT_NEAR(total, 1, 1e-12);
  // Every step computes factors and inverses: one kind of step.
  EXPECT_EQ(step_shares(Kfac{1, 1, 12}).size(), 1u);
  EXPECT_EQ(step_shares(Adam{}).size(), 1u);
}

AcceleratorConfig tiny_config() { return load_config((source_dir() / "configs/tiny.json").string()); }

TEST(Optimizer, MemoryFootprintCountsEachKind) {
  AcceleratorConfig config = tiny_config();
  config.precision.update.optimizer = Kfac{};
  const auto layers = expand_training(small_network(), {Kfac{}});
  const MemoryFootprint f = memory_footprint(config, layers);
  std::int64_t parameters = 0;
  for (const LayerWork& l : layers) parameters += l.parameters;
  const auto bytes = [](std::int64_t elements, const num::FormatSpec& format) {
    return core::packed_bytes(static_cast<std::uint64_t>(elements), format.total_bits());
  };
  const PrecisionPolicy& p = config.precision;
  EXPECT_EQ(f.weights, bytes(parameters, p.update.weights));
  EXPECT_EQ(f.optimizer_state, bytes(parameters, p.update.optimizer_state));  // momentum
  // Factors and inverses: 144² + 32² for the convolution, 2048² + 10² for the linear layer.
  const std::int64_t factors = 144 * 144 + 32 * 32 + 2048 * 2048 + 10 * 10;
  // tiny.json has no K-FAC formats: they are the weight gradients' (per layer, first and last too).
  const LayerPosition first = LayerPosition::kFirst, last = LayerPosition::kLast;
  EXPECT_EQ(f.curvature, bytes(144 * 144 + 32 * 32, p.for_gemm(Phase::kWgrad, first).output) * 2 +
                             bytes(2048 * 2048 + 10 * 10, p.for_gemm(Phase::kWgrad, last).output) * 2);
  EXPECT_GT(static_cast<double>(f.curvature), static_cast<double>(factors));
  // Every layer's output is stored: 4·32·8·8 twice (conv, batch-norm) and 4·10.
  EXPECT_EQ(f.activations, bytes(4 * 32 * 64, p.for_gemm(Phase::kFwd, first).output) +
                               bytes(4 * 32 * 64, p.for_gemm(Phase::kFwd, LayerPosition::kMiddle).output) +
                               bytes(4 * 10, p.for_gemm(Phase::kFwd, last).output));
  EXPECT_EQ(f.total(), f.weights + f.gradients + f.optimizer_state + f.curvature + f.activations);

  // Adam keeps two moments; SGD-momentum has no curvature.
  config.precision.update.optimizer = Adam{};
  const MemoryFootprint adam = memory_footprint(config, expand_training(small_network(), {Adam{}}));
  EXPECT_EQ(adam.optimizer_state, bytes(2 * parameters, p.update.optimizer_state));
  EXPECT_EQ(adam.curvature, 0u);
}

TEST(Optimizer, FootprintBeyondTheDramCapacityIsAnErrorSayingByHowMuch) {
  AcceleratorConfig config = tiny_config();
  const MemoryFootprint f = memory_footprint(config, expand_training(small_network(), {}));
  config.chip.dram.capacity_gib = static_cast<double>(f.total()) / (1u << 30) * 1.01;
  EXPECT_NO_THROW(check_memory_capacity(config, f));
  config.chip.dram.capacity_gib = static_cast<double>(f.total()) / (1u << 30) / 2;
  try {
    check_memory_capacity(config, f);
    FAIL() << "a footprint twice the capacity was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(e.message().find("more than"), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("/dram/capacity_gib"), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("optimizer state"), std::string::npos) << e.what();
  }
  config.chip.dram.capacity_gib.reset();
  EXPECT_NO_THROW(check_memory_capacity(config, f));
}

// The first step of `phase` in the program, and its last.
std::pair<std::size_t, std::size_t> steps_of(const MappedProgram& p, std::size_t layer, Phase phase) {
  std::size_t first = p.steps.size(), last = 0;
  for (std::size_t s = 0; s < p.steps.size(); ++s)
    if (p.steps[s].layer == layer && p.steps[s].phase == phase) first = std::min(first, s), last = s;
  return {first, last};
}

TEST(Optimizer, KfacPhasesAreMappedInTheirPlaceAndSkippedWhenAsked) {
  AcceleratorConfig config = tiny_config();
  Kfac kfac;
  kfac.newton_schulz_iterations = 3;
  config.precision.update.optimizer = kfac;
  const auto layers = expand_training(small_network(), {kfac});
  const MappedProgram all = map_training(layers, config, requestable_phases());
  for (const std::size_t layer : {std::size_t{0}, std::size_t{2}}) {
    const auto [curvature, curvature_end] = steps_of(all, layer, Phase::kCurvature);
    const auto [inverse, inverse_end] = steps_of(all, layer, Phase::kInverse);
    const auto [precondition, precondition_end] = steps_of(all, layer, Phase::kPrecondition);
    const auto [update, update_end] = steps_of(all, layer, Phase::kUpdate);
    const auto [wgrad, wgrad_end] = steps_of(all, layer, Phase::kWgrad);
    ASSERT_LT(inverse, all.steps.size());
    // Factors in the backward pass after the weight gradient; then inverses,
    // preconditioning and the update, each waiting for the one before.
    EXPECT_GT(curvature, wgrad_end);
    EXPECT_GT(inverse, curvature_end);
    EXPECT_GE(inverse_end - inverse + 1, 2u * 2 * 3);  // two factors, 2·3 GEMMs each (k-splits add steps)
    const auto& waits = all.program.steps[precondition].depends_on;
    EXPECT_NE(std::find(waits.begin(), waits.end(), inverse_end), waits.end());
    EXPECT_NE(std::find(waits.begin(), waits.end(), wgrad_end), waits.end());
    // The inverses need the factors only, not the gradients.
    const auto& inverse_waits = all.program.steps[inverse].depends_on;
    EXPECT_EQ(inverse_waits, std::vector<std::size_t>{curvature_end});
    // KL clipping sums over every layer: each update waits for the last preconditioning.
    std::size_t last_precondition = 0;
    for (std::size_t s = 0; s < all.steps.size(); ++s)
      if (all.steps[s].phase == Phase::kPrecondition) last_precondition = s;
    EXPECT_GE(last_precondition, precondition_end);
    const auto& update_waits = all.program.steps[update].depends_on;
    EXPECT_NE(std::find(update_waits.begin(), update_waits.end(), last_precondition), update_waits.end());
  }
  // A step without inverses (K-FAC between inverse_interval steps) has none of their steps.
  std::set<Phase> without = requestable_phases();
  without.erase(Phase::kInverse);
  const MappedProgram skipped = map_training(layers, config, without);
  for (const StepInfo& s : skipped.steps) EXPECT_NE(s.phase, Phase::kInverse);
  EXPECT_LT(skipped.steps.size(), all.steps.size());
}

TEST(Optimizer, AdaHessianSecondPassFollowsTheFirst) {
  AcceleratorConfig config = tiny_config();
  config.precision.update.optimizer = AdaHessian{};
  const MappedProgram p =
      map_training(expand_training(small_network(), {AdaHessian{}}), config, requestable_phases());
  std::size_t last_first_pass = 0, first_hessian = p.steps.size();
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    if (p.steps[s].phase == Phase::kBwd || p.steps[s].phase == Phase::kWgrad) last_first_pass = s;
    if (p.steps[s].phase == Phase::kHessian) first_hessian = std::min(first_hessian, s);
  }
  ASSERT_LT(first_hessian, p.steps.size());
  EXPECT_GT(first_hessian, last_first_pass);
  const auto& waits = p.program.steps[first_hessian].depends_on;
  EXPECT_EQ(waits, std::vector<std::size_t>{first_hessian - 1});
  // The last layer's Hessian pass runs first, as a backward pass does.
  EXPECT_EQ(p.steps[first_hessian].layer, 2u);
}

// The collectives of the K-FAC exchange phase, by what they do.
struct Exchanges {
  int factor_all_reduces = 0, inverse_gathers = 0, gradient_gathers = 0;
};

Exchanges exchanges_of(const MappedProgram& p) {
  Exchanges e;
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    if (p.steps[s].phase != Phase::kExchange) continue;
    const core::Collective& c = p.program.steps[s].collective.value();
    if (c.op == core::CollectiveOp::kAllReduce) ++e.factor_all_reduces;
    else if (c.gather_across) ++e.gradient_gathers;
    else ++e.inverse_gathers;
  }
  return e;
}

TEST(Optimizer, KaisaSplitsInversesAndPreconditioningOverTheChips) {
  AcceleratorConfig config = tiny_config();
  config.system = core::SystemParams{4, core::ChipTopologyKind::kRing, true, {}, {25, 500, 5}};
  const auto layers = expand_training(small_network(), {Kfac{}});
  const auto count = [&](const MappedProgram& p, Phase phase, std::size_t layer) {
    return std::count_if(p.steps.begin(), p.steps.end(),
                         [&](const StepInfo& s) { return s.phase == phase && s.layer == layer; });
  };
  std::uint64_t inverse_bytes_at_one = 0;
  for (const double fraction : {1.0, 0.5, 0.25}) {
    Kfac kfac;
    kfac.grad_worker_fraction = fraction;
    config.precision.update.optimizer = kfac;
    const MappedProgram p = map_training(layers, config, requestable_phases());
    const Exchanges e = exchanges_of(p);
    EXPECT_EQ(e.factor_all_reduces, 2) << fraction;  // one per K-FAC layer
    // The linear layer's 2048² factor is the largest: its chip is the busiest, and the one simulated.
    EXPECT_GT(count(p, Phase::kInverse, 2), 0) << fraction;
    EXPECT_EQ(count(p, Phase::kInverse, 0), 0) << fraction;
    const KaisaShare share = kaisa_share(layers, kfac, 4);
    EXPECT_EQ(share.gradient_workers, static_cast<int>(4 * fraction));
    if (fraction == 1.0) {
      // COMM-OPT: every chip preconditions every layer with all-gathered inverses.
      EXPECT_EQ(e.inverse_gathers, 1);
      EXPECT_EQ(e.gradient_gathers, 0);
      EXPECT_GT(count(p, Phase::kPrecondition, 0), 0);
    } else if (fraction == 0.25) {
      // MEM-OPT: each layer's one gradient worker preconditions it and all-gathers the result.
      EXPECT_EQ(e.inverse_gathers, 0);
      EXPECT_EQ(e.gradient_gathers, 1);
      EXPECT_EQ(count(p, Phase::kPrecondition, 0), 0);
      EXPECT_GT(count(p, Phase::kPrecondition, 2), 0);
    }
    // Inverses held per chip shrink with the fraction.
    const std::uint64_t inverse_bytes = memory_footprint(config, layers).curvature;
    if (fraction == 1.0) inverse_bytes_at_one = inverse_bytes;
    else EXPECT_LE(inverse_bytes, inverse_bytes_at_one) << fraction;
  }
}

nlohmann::json tiny_document() {
  nlohmann::json doc = load_json_file((source_dir() / "configs/tiny.json").string());
  doc["chip"] = load_chip_document((source_dir() / "configs/").string() + doc["chip"].get<std::string>());
  return doc;
}

TEST(Optimizer, ReadFromANameOrAnObjectWithItsParameters) {
  nlohmann::json doc = tiny_document();
  doc["precision"]["update"]["optimizer"] = "adahessian";
  EXPECT_TRUE(std::holds_alternative<AdaHessian>(parse_config(JsonReader(doc, "")).precision.update.optimizer));
  doc["precision"]["update"]["optimizer"] = {{"name", "kfac"}, {"inverse_interval", 50}};
  const Optimizer read = parse_config(JsonReader(doc, "")).precision.update.optimizer;
  ASSERT_TRUE(std::holds_alternative<Kfac>(read));
  EXPECT_EQ(std::get<Kfac>(read).inverse_interval, 50);
  EXPECT_EQ(std::get<Kfac>(read).factor_interval, Kfac{}.factor_interval);
  // It round-trips through the resolved config.
  EXPECT_EQ(optimizer_json(read)["inverse_interval"], 50);
}

TEST(Optimizer, BadOptimizersNameTheirPlace) {
  const std::vector<std::tuple<nlohmann::json, std::string, std::string>> cases = {
      {"lbfgs", "/precision/update/optimizer", "kfac"},
      {{{"name", "shampoo"}}, "/precision/update/optimizer/name", "adahessian"},
      {{{"inverse_interval", 10}}, "/precision/update/optimizer/name", "missing"},
      {{{"name", "kfac"}, {"factor_interval", 0}}, "/precision/update/optimizer/factor_interval", "1"},
      {{{"name", "kfac"}, {"dampening", 0.1}}, "/precision/update/optimizer/dampening", "unknown key"},
      {{{"name", "kfac"}, {"damping", 2}}, "/precision/update/optimizer/damping", "expected a number"},
      {{{"name", "adam"}, {"beta1", 0.9}}, "/precision/update/optimizer/beta1", "unknown key"},
      {42, "/precision/update/optimizer", "an optimizer's name"},
      {{{"name", "kfac"}, {"grad_worker_fraction", 0}}, "/precision/update/optimizer/grad_worker_fraction", "in"},
  };
  for (const auto& [value, path, fragment] : cases) {
    nlohmann::json doc = tiny_document();
    doc["precision"]["update"]["optimizer"] = value;
    try {
      parse_config(JsonReader(doc, ""));
      ADD_FAILURE() << "accepted optimizer " << value.dump();
    } catch (const InputError& e) {
      EXPECT_EQ(e.json_path(), path) << value.dump() << ": " << e.what();
      EXPECT_NE(e.message().find(fragment), std::string::npos) << value.dump() << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace lpt
