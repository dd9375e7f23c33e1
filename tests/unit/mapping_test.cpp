#include "sim/mapping.hpp"

#include "models/core/chip.hpp"

#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace lpt {
namespace {

using lpt::test_support::source_dir;

AcceleratorConfig config(const char* name) {
  return load_config((source_dir() / "configs/").string() + name + ".json");
}

GemmFormats fp8_formats() {
  GemmFormats f;
  f.a_bits = f.b_bits = 8;
  f.accumulator_bits = f.output_bits = 16;
  f.macs_per_pe_per_cycle = 4;
  return f;
}

struct Totals {
  std::uint64_t macs = 0, loaded = 0, stored = 0, rounded = 0;
  // Loads of the results of steps 100 (operand A) and 200 (B) in kSources,
  // and stores of the step's own result.
  std::uint64_t loaded_a = 0, loaded_b = 0, stored_result = 0;
  core::SfuWork sfu;
  std::size_t busy_cores = 0;
};

Totals totals(const core::Step& step) {
  Totals t;
  for (const auto& tasks : step.tasks_per_core) {
    if (!tasks.empty()) ++t.busy_cores;
    for (const auto& task : tasks) {
      if (!task.mac.empty()) t.macs += task.mac.macs();
      for (const auto& l : task.loads) {
        t.loaded += l.bytes;
        if (l.result_of == std::optional<std::size_t>(100)) t.loaded_a += l.bytes;
        if (l.result_of == std::optional<std::size_t>(200)) t.loaded_b += l.bytes;
      }
      for (const auto& s : task.stores) {
        t.stored += s.bytes;
        if (s.is_result) t.stored_result += s.bytes;
      }
      t.rounded += task.rounded_elements;
      t.sfu.alu += task.sfu.alu, t.sfu.exp += task.sfu.exp, t.sfu.div_sqrt += task.sfu.div_sqrt;
    }
  }
  return t;
}

// Every tiling the mapper may choose must cover the GEMM exactly once.
void check_gemm_mapping(const core::ChipParams& chip, const GemmWork& g) {
  const GemmFormats f = fp8_formats();
  const GemmTiling tiling = choose_gemm_tiling(chip, g, f);
  const core::Step step = map_gemm(chip, g, f, tiling, "test");
  const Totals t = totals(step);
  EXPECT_EQ(t.macs, static_cast<std::uint64_t>(g.macs())) << g.label;
  // Outputs are rounded and stored once: by the GEMM step, or after a k-split
  // by the reduction step.
  const Totals written = tiling.k_splits > 1
                             ? totals(map_gemm_reduction(chip, g, f, tiling, "reduce"))
                             : t;
  EXPECT_EQ(written.stored, static_cast<std::uint64_t>(g.count * g.m * g.n * 2)) << g.label;
  EXPECT_EQ(written.rounded, static_cast<std::uint64_t>(g.count * g.m * g.n)) << g.label;
  if (tiling.k_splits > 1) {
    EXPECT_EQ(t.stored, 0u);
    EXPECT_EQ(written.sfu.alu,
              static_cast<std::uint64_t>(g.count * g.m * g.n * (tiling.k_splits - 1)));
  }
  // Both operands arrive at least once (A as its raw tensor for an implicit GEMM).
  const long double a_elements =
      g.a_window ? a_block_elements(*g.a_window, g.m, g.k) : static_cast<long double>(g.m) * g.k;
  EXPECT_GE(t.loaded, static_cast<std::uint64_t>(g.count * (a_elements + g.k * g.n))) << g.label;
  // Each task's operands fit in the scratchpad with room for double buffering.
  for (const auto& tasks : step.tasks_per_core)
    for (const auto& task : tasks) EXPECT_LE(2 * task.buffer_bytes, chip.core.scratchpad.size_bytes());
  const std::int64_t units = g.count * tiling.tiles_m * tiling.tiles_n * tiling.k_splits;
  EXPECT_EQ(t.busy_cores, static_cast<std::size_t>(std::min<std::int64_t>(units, chip.cores)));
}

TEST(Mapping, GemmTilesCoverTheWorkExactly) {
  auto rapid = config("rapid-4core");
  for (const GemmWork& g : {GemmWork{"conv", 32 * 56 * 56, 64, 576, 1, 1, Phase::kFwd},
                            GemmWork{"wgrad", 576, 64, 32 * 56 * 56, 1, 1, Phase::kWgrad},
                            GemmWork{"odd", 1001, 37, 333, 1, 1, Phase::kFwd},
                            GemmWork{"depthwise", 2 * 8 * 8, 1, 9, 32, 1, Phase::kFwd},
                            GemmWork{"tiny", 3, 2, 5, 1, 1, Phase::kFwd}})
    check_gemm_mapping(rapid.chip, g);
  auto tiny = config("tiny");
  for (const GemmWork& g : {GemmWork{"big-k", 64, 64, 100000, 1, 1, Phase::kWgrad},
                            GemmWork{"fc", 8, 10, 32, 1, 1, Phase::kFwd}})
    check_gemm_mapping(tiny.chip, g);
}

// Layer1's 3x3 convolution of ResNet-50 at batch 32 as an implicit GEMM: the
// raw input (64 x 56 x 56 per sample) and its halo instead of the 9x larger
// im2col matrix.
GemmWork layer1_conv2() {
  const std::int64_t pixels = 32 * 56 * 56, k = 64 * 9;
  return {"Y=X*W", pixels, 64, k, 1, 1, Phase::kFwd,
          ConvWindow{64, 56, 56, 56, 56, 3, 3, 1, 1, false, k, true}};
}

GemmWork layer1_conv2_weight_gradient() {
  GemmWork fwd = layer1_conv2();
  fwd.a_window->pixels_along_rows = false;
  return {"dW=X^T*dY", fwd.k, fwd.n, fwd.m, 1, 1, Phase::kWgrad, fwd.a_window};
}

TEST(Mapping, ImplicitGemmReadsTheTensorWithItsHaloNotTheColumns) {
  const auto rapid = config("rapid-4core");
  const GemmWork g = layer1_conv2();
  check_gemm_mapping(rapid.chip, g);
  const GemmFormats f = fp8_formats();
  const GemmTiling tiling = choose_gemm_tiling(rapid.chip, g, f);
  const Totals t = totals(map_gemm(rapid.chip, g, f, tiling, "conv"));
  const std::string chosen = std::to_string(tiling.tile_m) + "x" + std::to_string(tiling.tile_n) +
                             "x" + std::to_string(tiling.tile_k) + " " + to_string(tiling.order);
  const std::uint64_t tensor = 32 * 64 * 56 * 56, weights = 576 * 64, columns = 32 * 56 * 56 * 576;
  EXPECT_GE(t.loaded, tensor + weights) << chosen;
  EXPECT_LE(t.loaded, static_cast<std::uint64_t>(1.6 * static_cast<double>(tensor + weights))) << chosen;
  EXPECT_LT(t.loaded, columns / 4) << chosen;
}

TEST(Mapping, LargeReductionStreamsBothOperandsWhenPanelsDoNotFit) {
  const auto tiny = config("tiny");  // 64 KiB scratchpad
  const GemmWork g{"wgrad", 64, 64, 100000, 1, 1, Phase::kWgrad};
  const GemmTiling t = choose_gemm_tiling(tiny.chip, g, fp8_formats());
  EXPECT_EQ(t.order, LoopOrder::kStreamBoth);
  EXPECT_LT(t.tile_k, g.k);
}

TEST(Mapping, FewOutputTilesSplitTheReductionAcrossCores) {
  const auto rapid = config("rapid-4core");
  // A weight gradient with a small output and a huge reduction (conv1 of ResNet-50).
  const GemmWork g{"dW", 147, 64, 32 * 112 * 112, 1, 1, Phase::kWgrad};
  const GemmTiling t = choose_gemm_tiling(rapid.chip, g, fp8_formats());
  EXPECT_GT(t.k_splits, 1);
  EXPECT_EQ(t.tiles_m * t.tiles_n * t.k_splits, 4) << "every core gets a share";
  check_gemm_mapping(rapid.chip, g);
  // Partial sums travel core to core, not through DRAM.
  const auto reduction = map_gemm_reduction(rapid.chip, g, fp8_formats(), t, "reduce");
  for (const auto& tasks : reduction.tasks_per_core)
    for (const auto& task : tasks)
      for (const auto& load : task.loads) EXPECT_EQ(load.src.kind, core::Endpoint::Kind::kCore);
}

TEST(Mapping, ReductionOverManyCoresFetchesPartialsInScratchpadSizedTasks) {
  auto chip = config("rapid-4core").chip;
  chip.cores = 64;
  const GemmWork g{"dW", 147, 64, 32 * 112 * 112, 1, 1, Phase::kWgrad};
  const GemmTiling t = choose_gemm_tiling(chip, g, fp8_formats());
  ASSERT_GT(t.k_splits, 8);
  const auto reduction = map_gemm_reduction(chip, g, fp8_formats(), t, "reduce");
  std::uint64_t loaded = 0, stores = 0, partials = 0;
  for (const auto& tasks : reduction.tasks_per_core)
    for (const auto& task : tasks) {
      EXPECT_LE(task.buffer_bytes, chip.core.scratchpad.size_bytes());
      for (const auto& load : task.loads) loaded += load.bytes;
      partials += task.loads.size();
      stores += task.stores.size();
    }
  const std::uint64_t outputs = static_cast<std::uint64_t>(t.tiles_m * t.tiles_n);
  EXPECT_EQ(stores, outputs);
  EXPECT_EQ(partials, outputs * static_cast<std::uint64_t>(t.k_splits - 1));
  EXPECT_GT(loaded, 0u);
  core::validate_program(chip, core::Program{{reduction}, {}});
}

TEST(Mapping, NearTiesPreferFewerLargerTiles) {
  const auto rapid = config("rapid-4core");
  // Memory-bound: any tile height streams the same bytes, so the tile should be tall.
  const GemmWork g{"conv1", 32 * 112 * 112, 64, 147, 1, 1, Phase::kFwd};
  const GemmTiling t = choose_gemm_tiling(rapid.chip, g, fp8_formats());
  EXPECT_GE(t.tile_m, 1024);
}

TEST(Mapping, ElementwiseSplitsEvenlyAndKeepsTotals) {
  const auto rapid = config("rapid-4core");
  ElementwiseWork w;
  w.read_elements = 3'000'001;
  w.write_elements = 1'000'000;
  w.ops = {5'000'000, 1'000'000, 7};
  w.rounded_elements = 999;
  const core::Step step = map_elementwise(rapid.chip, w, 16, "eltwise");
  const Totals t = totals(step);
  EXPECT_EQ(t.loaded, 2u * 3'000'001);
  EXPECT_EQ(t.stored, 2u * 1'000'000);
  EXPECT_EQ(t.sfu.alu, 5'000'000u);
  EXPECT_EQ(t.sfu.exp, 1'000'000u);
  EXPECT_EQ(t.sfu.div_sqrt, 7u);
  EXPECT_EQ(t.rounded, 999u);
  EXPECT_EQ(t.busy_cores, 4u);
  // Chunked for overlap: several tasks per core.
  EXPECT_GE(step.tasks_per_core[0].size(), 4u);
}

// The index of the step of `layer`'s `phase` whose label ends with `what`.
std::size_t step_of(const MappedProgram& p, std::size_t layer, Phase phase, const std::string& what = "") {
  for (std::size_t s = 0; s < p.steps.size(); ++s)
    if (p.steps[s].layer == layer && p.steps[s].phase == phase && p.steps[s].what().find(what) == 0) return s;
  ADD_FAILURE() << "no step of layer " << layer << " " << to_string(phase) << " " << what;
  return 0;
}

TEST(Mapping, StepsDependOnTheStepsThatProduceTheirInputs) {
  ConvLayer c;
  c.in_channels = 8, c.in_h = 8, c.in_w = 8, c.out_channels = 8, c.kernel_h = c.kernel_w = 3;
  c.pad_h = c.pad_w = 1;
  const Trace trace{"n", "s", 2,
                    {{"conv1", "conv2d", c},
                     {"relu", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {8, 8, 8}}},
                     {"conv2", "conv2d", c}}};
  const MappedProgram p = map_training(expand_training(trace, {}), config("tiny"),
                                       requestable_phases());
  const auto deps = [&](std::size_t step) { return p.program.steps[step].depends_on; };
  using List = std::vector<std::size_t>;
  const std::size_t fwd1 = step_of(p, 0, Phase::kFwd), relu = step_of(p, 1, Phase::kFwd),
                    fwd2 = step_of(p, 2, Phase::kFwd);
  EXPECT_EQ(deps(fwd1), List{});
  EXPECT_EQ(deps(relu), List{fwd1});
  EXPECT_EQ(deps(fwd2), List{relu});
  // conv2's data and weight gradients both read the loss gradient, produced
  // after the forward pass; neither waits for the other.
  const std::size_t bwd2 = step_of(p, 2, Phase::kBwd), wgrad2 = step_of(p, 2, Phase::kWgrad);
  EXPECT_EQ(deps(bwd2), List{fwd2});
  EXPECT_EQ(deps(wgrad2), List{fwd2});
  // The ReLU's backward reads conv2's data gradient; conv1's gradients read the ReLU's.
  const std::size_t relu_bwd = step_of(p, 1, Phase::kBwd);
  EXPECT_EQ(deps(relu_bwd), List{bwd2});
  EXPECT_EQ(deps(step_of(p, 0, Phase::kWgrad)), List{relu_bwd});
  // Updates wait for their own layer's weight gradient only.
  EXPECT_EQ(deps(step_of(p, 2, Phase::kUpdate)), List{wgrad2});
  EXPECT_EQ(deps(step_of(p, 0, Phase::kUpdate)), List{step_of(p, 0, Phase::kWgrad)});
}

TEST(Mapping, FusedBackwardStoresTheGradientForTheWeightGradient) {
  ConvLayer c;
  c.in_channels = 8, c.in_h = 8, c.in_w = 8, c.out_channels = 8, c.kernel_h = c.kernel_w = 1;
  const Trace trace{"n", "s", 2,
                    {{"conv1", "conv2d", c},
                     {"conv2", "conv2d", c},
                     {"relu", "activation", ElementwiseLayer{ElementwiseOp::kRelu, {8, 8, 8}}}}};
  const MappedProgram p = map_training(expand_training(trace, {SgdMomentum{}, Fusion::kFull}),
                                       config("tiny"), requestable_phases());
  const std::size_t bwd2 = step_of(p, 1, Phase::kBwd), wgrad2 = step_of(p, 1, Phase::kWgrad);
  EXPECT_EQ(p.program.steps[wgrad2].depends_on, std::vector<std::size_t>{bwd2});
}

TEST(Mapping, TrainingOrderAndPhaseSelection) {
  const auto tiny = config("tiny");
  const Trace trace = load_trace((source_dir() / "traces/tiny-cnn.json").string());
  const auto layers = expand_training(trace, {});
  const std::set<Phase> all = requestable_phases();
  const MappedProgram mapped = map_training(layers, tiny, all);
  ASSERT_EQ(mapped.steps.size(), mapped.program.steps.size());

  // FWD in layer order, then BWD/WGRAD from the last layer down, then UPDATE.
  std::size_t i = 0;
  std::size_t last_layer = 0;
  for (; i < mapped.steps.size() && mapped.steps[i].phase == Phase::kFwd; ++i) {
    EXPECT_GE(mapped.steps[i].layer, last_layer);
    last_layer = mapped.steps[i].layer;
  }
  last_layer = layers.size();
  for (; i < mapped.steps.size() && mapped.steps[i].phase != Phase::kUpdate; ++i) {
    EXPECT_LE(mapped.steps[i].layer, last_layer);
    last_layer = mapped.steps[i].layer;
  }
  for (; i < mapped.steps.size(); ++i) EXPECT_EQ(mapped.steps[i].phase, Phase::kUpdate);

  for (const auto& s : mapped.steps)
    EXPECT_FALSE(s.layer == 0 && s.phase == Phase::kBwd) << "first layer has no backward-data";

  // First and last GEMM layers run at the DLFloat16 rate (2), the others at HFP8 (4).
  for (const auto& s : mapped.steps) {
    if (s.macs_per_pe_per_cycle() == 0) continue;
    const bool edge = layers[s.layer].name == "conv1" || layers[s.layer].name == "fc";
    EXPECT_EQ(s.macs_per_pe_per_cycle(), edge ? 2 : 4) << layers[s.layer].name;
  }

  const MappedProgram forward = map_training(layers, tiny, {Phase::kFwd});
  for (const auto& s : forward.steps) EXPECT_EQ(s.phase, Phase::kFwd);
  EXPECT_LT(forward.steps.size(), mapped.steps.size());
}


// ---- Merged tasks beyond the per-core task budget ----

constexpr std::int64_t kUnlimited = std::numeric_limits<std::int64_t>::max();

std::size_t most_tasks_on_a_core(const core::Step& step) {
  std::size_t most = 0;
  for (const auto& tasks : step.tasks_per_core) most = std::max(most, tasks.size());
  return most;
}

bool same_transfers(const std::vector<core::Transfer>& a, const std::vector<core::Transfer>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.src == y.src && x.dst == y.dst && x.bytes == y.bytes;
  });
}

bool same_task(const core::TileTask& a, const core::TileTask& b) {
  return same_transfers(a.loads, b.loads) && same_transfers(a.stores, b.stores) &&
         a.buffer_bytes == b.buffer_bytes && a.rounded_elements == b.rounded_elements &&
         a.mac.m == b.mac.m && a.mac.n == b.mac.n && a.mac.k == b.mac.k && a.mac.count == b.mac.count &&
         a.sfu.alu == b.sfu.alu && a.sfu.exp == b.sfu.exp && a.sfu.div_sqrt == b.sfu.div_sqrt;
}

GemmTiling forced_tiling(const GemmWork& g, std::int64_t tm, std::int64_t tn, std::int64_t tk,
                         LoopOrder order) {
  GemmTiling t;
  t.tile_m = tm, t.tile_n = tn, t.tile_k = order == LoopOrder::kStreamBoth ? tk : g.k;
  t.order = order;
  t.tiles_m = (g.m + tm - 1) / tm, t.tiles_n = (g.n + tn - 1) / tn;
  t.tiles_k = (g.k + t.tile_k - 1) / t.tile_k;
  return t;
}

// Per core: the merged mapping moves, computes and rounds exactly what the
// per-tile mapping does, within the task budget, and each task's buffer is
// one tile's (at most the per-tile mapping's largest).
void check_merged_against_per_tile(const core::ChipParams& chip, const GemmWork& g,
                                   const GemmTiling& t, const std::string& what) {
  const GemmFormats f = fp8_formats();
  const OperandOrigins sources{100, 200};
  const core::Step merged = map_gemm(chip, g, f, t, "merged", sources);
  const core::Step per_tile = map_gemm(chip, g, f, t, "per-tile", sources, kUnlimited);
  ASSERT_GT(most_tasks_on_a_core(per_tile), static_cast<std::size_t>(kMaxTasksPerCoreStep)) << what;
  EXPECT_LE(most_tasks_on_a_core(merged), static_cast<std::size_t>(kMaxTasksPerCoreStep)) << what;
  for (std::size_t c = 0; c < merged.tasks_per_core.size(); ++c) {
    core::Step merged_core, per_tile_core;
    merged_core.tasks_per_core = {merged.tasks_per_core[c]};
    per_tile_core.tasks_per_core = {per_tile.tasks_per_core[c]};
    const Totals a = totals(merged_core), b = totals(per_tile_core);
    EXPECT_EQ(a.macs, b.macs) << what << " core " << c;
    EXPECT_EQ(a.loaded, b.loaded) << what << " core " << c;
    EXPECT_EQ(a.stored, b.stored) << what << " core " << c;
    EXPECT_EQ(a.rounded, b.rounded) << what << " core " << c;
    // Each operand's loads carry its source, in both mappings alike.
    EXPECT_EQ(a.loaded_a, b.loaded_a) << what << " core " << c;
    EXPECT_EQ(a.loaded_b, b.loaded_b) << what << " core " << c;
    EXPECT_EQ(a.loaded_a + a.loaded_b, a.loaded) << what << " core " << c;
    EXPECT_EQ(a.stored_result, t.k_splits > 1 ? 0 : a.stored) << what << " core " << c;
    std::uint64_t largest_buffer = 0;
    for (const auto& task : per_tile.tasks_per_core[c]) largest_buffer = std::max(largest_buffer, task.buffer_bytes);
    for (const auto& task : merged.tasks_per_core[c]) EXPECT_LE(task.buffer_bytes, largest_buffer) << what;
  }
}

// Operand loads name the steps whose results they read; A and B are told apart
// in every loop order (resident orders stream one operand past the other's panel).
TEST(Mapping, OperandLoadsCarryTheirSourceAndOutputsAreResults) {
  const auto chip = config("tiny").chip;
  const GemmWork g{"g", 64, 48, 40, 1, 1, Phase::kFwd};
  const GemmFormats f = fp8_formats();
  for (const LoopOrder order : {LoopOrder::kResidentB, LoopOrder::kResidentA, LoopOrder::kStreamBoth}) {
    const GemmTiling t = forced_tiling(g, 16, 16, order == LoopOrder::kStreamBoth ? 8 : 40, order);
    const Totals totals_of = totals(map_gemm(chip, g, f, t, "g", {100, 200}));
    // A (64 x 40) is read once per column of output tiles, B (40 x 48) once per row,
    // except the resident panel, loaded once per core that walks it.
    if (order != LoopOrder::kResidentA) {
      EXPECT_EQ(totals_of.loaded_a, 3u * 64 * 40) << to_string(order);
    }
    if (order != LoopOrder::kResidentB) {
      EXPECT_EQ(totals_of.loaded_b, 4u * 40 * 48) << to_string(order);
    }
    EXPECT_EQ(totals_of.loaded_a + totals_of.loaded_b, totals_of.loaded) << to_string(order);
    EXPECT_EQ(totals_of.stored_result, 64u * 48 * 2) << to_string(order);
    EXPECT_EQ(map_gemm(chip, g, f, t, "g").working_set_bytes,
              static_cast<std::uint64_t>(tiling_footprint(chip, g, f, 16, 16, t.tile_k, order)));
  }
}

TEST(MappingMerged, ConservesWorkAndBytesOfThePerTileMapping) {
  // Extents with and without edge tiles along m, n and k, several instances.
  const std::vector<GemmWork> gemms = {{"edges", 1001, 333, 777, 1, 1, Phase::kFwd},
                                       {"even", 1024, 512, 2048, 1, 1, Phase::kFwd},
                                       {"instances", 250, 90, 300, 7, 1, Phase::kFwd},
                                       {"tall", 20000, 24, 100, 1, 1, Phase::kFwd},
                                       layer1_conv2()};
  for (const char* name : {"tiny", "rapid-4core"}) {
    auto chip = config(name).chip;
    for (const auto dataflow : {core::Dataflow::kOutputStationary, core::Dataflow::kWeightStationary,
                                core::Dataflow::kInputStationary}) {
      chip.core.mac_array.dataflow = dataflow;
      for (const GemmWork& g : gemms) {
        const std::string what = std::string(name) + " " + g.label + " dataflow " +
                                 std::to_string(static_cast<int>(dataflow));
        for (const LoopOrder order : {LoopOrder::kResidentB, LoopOrder::kResidentA, LoopOrder::kStreamBoth})
          check_merged_against_per_tile(chip, g, forced_tiling(g, 8, 16, 64, order),
                                        what + " " + to_string(order));
        const GemmTiling chosen = choose_gemm_tiling(chip, g, fp8_formats());
        if (chosen.tiles > static_cast<double>(kMaxTasksPerCoreStep * chip.cores))
          check_merged_against_per_tile(chip, g, chosen, what + " chosen");
      }
    }
  }
}

TEST(MappingMerged, ImplicitWeightGradientConservesBytes) {
  const auto rapid = config("rapid-4core");
  const GemmWork g = layer1_conv2_weight_gradient();
  check_merged_against_per_tile(rapid.chip, g, forced_tiling(g, 64, 64, 96, LoopOrder::kStreamBoth),
                                "stream-both");
}

TEST(MappingMerged, KSplitConservesWork) {
  const auto rapid = config("rapid-4core");
  const GemmWork g{"dW", 16, 16, 1000000, 1, 1, Phase::kWgrad};
  GemmTiling t = forced_tiling(g, 16, 16, 96, LoopOrder::kStreamBoth);
  t.k_splits = 4;
  check_merged_against_per_tile(rapid.chip, g, t, "k-split");
}

TEST(MappingMerged, BelowTheBudgetEveryTileIsItsOwnTask) {
  const auto rapid = config("rapid-4core");
  for (const GemmWork& g : {GemmWork{"conv", 32 * 56 * 56, 64, 576, 1, 1, Phase::kFwd},
                            GemmWork{"odd", 1001, 37, 333, 1, 1, Phase::kFwd},
                            GemmWork{"dW", 147, 64, 32 * 112 * 112, 1, 1, Phase::kWgrad}}) {
    const GemmTiling t = choose_gemm_tiling(rapid.chip, g, fp8_formats());
    const core::Step step = map_gemm(rapid.chip, g, fp8_formats(), t, "default");
    const core::Step per_tile = map_gemm(rapid.chip, g, fp8_formats(), t, "per-tile", {}, kUnlimited);
    ASSERT_LE(most_tasks_on_a_core(per_tile), static_cast<std::size_t>(kMaxTasksPerCoreStep)) << g.label;
    for (std::size_t c = 0; c < step.tasks_per_core.size(); ++c) {
      ASSERT_EQ(step.tasks_per_core[c].size(), per_tile.tasks_per_core[c].size()) << g.label;
      for (std::size_t i = 0; i < step.tasks_per_core[c].size(); ++i)
        EXPECT_TRUE(same_task(step.tasks_per_core[c][i], per_tile.tasks_per_core[c][i])) << g.label;
    }
  }
}

TEST(MappingMerged, Gemm65536CubedMapsInBoundedTimeAndTasks) {
  const GemmWork g{"fc", 65536, 65536, 65536, 1, 1, Phase::kFwd};
  for (const char* name : {"tiny", "rapid-4core"}) {
    const auto chip = config(name).chip;
    const auto start = std::chrono::steady_clock::now();
    const GemmTiling t = choose_gemm_tiling(chip, g, fp8_formats());
    const core::Step step = map_gemm(chip, g, fp8_formats(), t, "fc");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 1.0) << name;
    EXPECT_LE(most_tasks_on_a_core(step), static_cast<std::size_t>(kMaxTasksPerCoreStep)) << name;
    const Totals totals_of_step = totals(step);
    EXPECT_EQ(totals_of_step.macs, std::uint64_t{1} << 48) << name;
    EXPECT_EQ(totals_of_step.stored, std::uint64_t{2} << 32) << name;  // 16-bit outputs
    EXPECT_EQ(totals_of_step.rounded, std::uint64_t{1} << 32) << name;
    for (const auto& tasks : step.tasks_per_core)
      for (const auto& task : tasks) EXPECT_LE(2 * task.buffer_bytes, chip.core.scratchpad.size_bytes());
  }
}

TEST(MappingMerged, BatchesAndElementwiseStayWithinTheBudget) {
  const auto rapid = config("rapid-4core");
  // 2^20 samples x 12 attention heads of 64 x 64 x 64.
  const GemmWork heads{"heads", 64, 64, 64, 12 << 20, 1, Phase::kFwd};
  const GemmTiling t = choose_gemm_tiling(rapid.chip, heads, fp8_formats());
  const core::Step batched = map_gemm(rapid.chip, heads, fp8_formats(), t, "heads");
  EXPECT_LE(most_tasks_on_a_core(batched), static_cast<std::size_t>(kMaxTasksPerCoreStep));
  EXPECT_EQ(totals(batched).macs, static_cast<std::uint64_t>(heads.macs()));
  EXPECT_EQ(totals(batched).rounded, std::uint64_t{64 * 64} * (12 << 20));
  for (const auto& tasks : batched.tasks_per_core)
    for (const auto& task : tasks) EXPECT_LE(2 * task.buffer_bytes, rapid.chip.core.scratchpad.size_bytes());

  ElementwiseWork w;
  w.read_elements = std::int64_t{3} << 36;
  w.write_elements = std::int64_t{1} << 36;
  w.ops = {std::uint64_t{5} << 36, 7, 3};
  w.rounded_elements = 12345;
  const core::Step step = map_elementwise(rapid.chip, w, 16, "eltwise");
  EXPECT_LE(most_tasks_on_a_core(step), static_cast<std::size_t>(kMaxTasksPerCoreStep));
  const Totals e = totals(step);
  EXPECT_EQ(e.loaded, std::uint64_t{6} << 36);
  EXPECT_EQ(e.stored, std::uint64_t{2} << 36);
  EXPECT_EQ(e.sfu.alu, std::uint64_t{5} << 36);
  EXPECT_EQ(e.rounded, 12345u);
  for (const auto& tasks : step.tasks_per_core)
    for (const auto& task : tasks) EXPECT_LE(2 * task.buffer_bytes, rapid.chip.core.scratchpad.size_bytes());
}

TEST(MappingMerged, ProductsBeyond64BitsAreReportedNotWrapped) {
  const auto rapid = config("rapid-4core");
  constexpr std::int64_t kHuge = std::int64_t{1} << 31;
  // Fine to estimate, but its MACs (2^93) cannot be counted in 64 bits.
  const GemmWork cube{"cube", kHuge, kHuge, kHuge, 1, 1, Phase::kFwd};
  const GemmTiling t = choose_gemm_tiling(rapid.chip, cube, fp8_formats());
  EXPECT_THROW(map_gemm(rapid.chip, cube, fp8_formats(), t, "cube"), std::overflow_error);
  // 2^20 x 2^31 instances of it have more tiles than 64 bits number.
  const GemmWork many{"many", kHuge, kHuge, kHuge, std::int64_t{1} << 51, 1, Phase::kFwd};
  EXPECT_THROW(choose_gemm_tiling(rapid.chip, many, fp8_formats()), std::overflow_error);
}

}  // namespace
}  // namespace lpt

namespace lpt {
namespace {

TEST(MappingErrors, ATileThatCannotFitNamesTheLayerAndTheScratchpadSetting) {
  AcceleratorConfig config = load_config(test_support::source_dir() / "configs/tiny.json");
  config.chip.core.scratchpad.size_kib = 1;
  config.chip.core.mac_array.rows = config.chip.core.mac_array.cols = 64;
  LinearLayer l;
  l.in_features = l.out_features = l.tokens = 4096;
  Trace trace{"n", "s", 1, {{"big", "linear", l, "/layers/0"}}};
  const auto layers = expand_training(trace, {});
  try {
    map_training(layers, config, {Phase::kFwd});
    FAIL() << "mapped a GEMM whose tiles cannot fit";
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), "/layers/0");
    EXPECT_NE(e.message().find("layer \"big\""), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("chip-tiny.json: /core/scratchpad/size_kib"), std::string::npos)
        << e.what();
  }
}

TEST(MappingErrors, TooManyRecurrentStepsIsAnError) {
  const AcceleratorConfig config = load_config(test_support::source_dir() / "configs/tiny.json");
  LstmLayer l;
  l.input_size = l.hidden_size = 1;
  l.seq_len = std::int64_t{1} << 21;
  Trace trace{"n", "s", 1, {{"lstm", "lstm", l, "/layers/0"}}};
  try {
    map_training(expand_training(trace, {}), config, {Phase::kFwd});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(e.message().find("limited to 262144 steps"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lpt

namespace lpt {
namespace {

TEST(MappingErrors, ACountThatOverflowsIsTheLayersInputError) {
  const AcceleratorConfig config = load_config(test_support::source_dir() / "configs/tiny.json");
  LayerWork layer;
  layer.name = "cube";
  layer.where = "/layers/0";
  const std::int64_t side = std::int64_t{1} << 31;  // 2^93 MACs: past every input limit
  layer.phase(Phase::kFwd).gemms.push_back({"Y=X*W", side, side, side, 1, 1, Phase::kFwd});
  try {
    map_training({layer}, config, {Phase::kFwd});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), "/layers/0");
    EXPECT_NE(e.message().find("overflows 64-bit counts"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lpt
