// The timeline the chip reports, on a small two-core program with every kind
// of stall: its intervals must add up to the counters of the same run, per
// core and step, and each unit's intervals must be disjoint and inside the run.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "models/core/chip.hpp"
#include "models/core/timeline.hpp"

namespace lpt::core {
namespace {

class Recorder final : public TimelineObserver {
 public:
  void on_interval(const TimelineInterval& interval) override { intervals.push_back(interval); }
  std::vector<TimelineInterval> intervals;
};

// 4x4 cores whose DRAM (16 B/cycle), scratchpad ports (8 B/cycle, just above a
// tile's operand rate) and SFU are narrow enough to stall them.
ChipParams narrow_chip() {
  ChipParams p;
  p.cores = 2;
  p.clock_ghz = 1.0;
  p.core.mac_array = {4, 4, 1, std::nullopt, Dataflow::kOutputStationary, false, {{"fp16", 1}}};
  p.core.accumulator = {{"fp32"}, 16};
  p.core.rounder = {4, 8};
  p.core.sfu = {4, {1.0, 0.25, 0.25}};
  p.core.scratchpad = {64, 4, 1, 8, 2};
  p.core.dma = {4, 64, 64};
  p.interconnect = {"ring", true, 64, 2};
  p.dram = {1, 16, 20};
  return p;
}

TileTask task(int core, std::uint64_t load_bytes, std::uint64_t k, std::uint64_t sfu_ops) {
  TileTask t;
  t.loads = {{Endpoint::dram(), Endpoint::core_at(core), load_bytes}};
  t.stores = {{Endpoint::core_at(core), Endpoint::dram(), 64}};
  t.buffer_bytes = load_bytes;
  t.mac.m = t.mac.n = 4;
  t.mac.k = k;
  t.mac.operand_bits_a = t.mac.operand_bits_b = 16;
  t.sfu.alu = sfu_ops;
  t.rounded_elements = 16;
  return t;
}

// Step 0 is imbalanced (a dependency stall on core 1), SFU-bound on core 0
// and DRAM-bound; step 1 depends on it and prefetches its weights; step 2 is
// element-wise work only.
Program program() {
  Program p;
  p.steps.push_back({"gemm", {{task(0, 2000, 90, 800), task(0, 2000, 90, 800), task(0, 2000, 90, 800)},
                              {task(1, 1000, 60, 0)}}});
  std::vector<std::vector<TileTask>> next(2);
  for (int core = 0; core < 2; ++core) {
    TileTask t = task(core, 500, 120, 100);
    t.loads.push_back({Endpoint::dram(), Endpoint::core_at(core), 1500, true});
    t.buffer_bytes = 2000;
    next[static_cast<std::size_t>(core)] = {t, task(core, 800, 30, 0)};
  }
  p.steps.push_back({"next", next, {0}});
  TileTask elementwise;
  elementwise.loads = {{Endpoint::dram(), Endpoint::core_at(1), 4096}};
  elementwise.stores = {{Endpoint::core_at(1), Endpoint::dram(), 4096}};
  elementwise.buffer_bytes = 4096;
  elementwise.sfu.exp = 300;
  elementwise.rounded_elements = 2048;
  p.steps.push_back({"elementwise", {{}, {elementwise}}});
  return p;
}

using Key = std::tuple<int, TimelineActivity, StallCause, std::size_t>;  // core, activity, stall, step

std::map<Key, std::uint64_t> sums(const std::vector<TimelineInterval>& intervals) {
  std::map<Key, std::uint64_t> sum;
  for (const TimelineInterval& i : intervals) sum[{i.core, i.activity, i.stall, i.step}] += i.end - i.begin;
  return sum;
}

TEST(Timeline, IntervalsAddUpToTheCountersOfTheSameRun) {
  const ChipParams params = narrow_chip();
  const Program prog = program();
  Recorder recorder;
  FlowNetwork observed_network("observed_network");
  Chip observed("observed", params, prog, observed_network, &recorder);
  FlowNetwork unobserved_network("unobserved_network");
  Chip unobserved("unobserved", params, prog, unobserved_network);
  sc_core::sc_start();
  const RunStats stats = observed.stats();
  auto sum = sums(recorder.intervals);

  std::map<TimelineActivity, std::uint64_t> seen;
  std::map<StallCause, std::uint64_t> stalls_seen;
  for (std::size_t s = 0; s < stats.steps.size(); ++s) {
    for (int c = 0; c < params.cores; ++c) {
      const Counters& counters = stats.steps[s].cores[static_cast<std::size_t>(c)].counters;
      const auto where = "step " + std::to_string(s) + " core " + std::to_string(c);
      EXPECT_EQ((sum[{c, TimelineActivity::kCompute, StallCause::kCount, s}]), counters[Counter::kBusyCycles]) << where;
      EXPECT_EQ((sum[{c, TimelineActivity::kSfu, StallCause::kCount, s}]), counters[Counter::kSfuBusyCycles]) << where;
      for (std::size_t k = 0; k < kStallCauses; ++k) {
        const auto cause = static_cast<StallCause>(k);
        EXPECT_EQ((sum[{c, TimelineActivity::kStall, cause, s}]), counters[stall_counter(cause)]) << where << " stall " << k;
        stalls_seen[cause] += counters[stall_counter(cause)];
      }
    }
  }
  for (const TimelineInterval& i : recorder.intervals) seen[i.activity] += i.end - i.begin;
  // The program exercises every activity and every stall cause.
  for (TimelineActivity a : {TimelineActivity::kCompute, TimelineActivity::kStall, TimelineActivity::kSfu,
                             TimelineActivity::kRounding, TimelineActivity::kDmaLoad, TimelineActivity::kDmaStore})
    EXPECT_GT(seen[a], 0u) << static_cast<int>(a);
  for (StallCause cause : {StallCause::kDram, StallCause::kScratchpad, StallCause::kSfu, StallCause::kDependency})
    EXPECT_GT(stalls_seen[cause], 0u) << "stall " << static_cast<int>(cause);

  // The timeline changes nothing: the unobserved twin counts the same.
  const RunStats twin = unobserved.stats();
  EXPECT_EQ(twin.total_cycles, stats.total_cycles);
  for (std::size_t s = 0; s < stats.steps.size(); ++s)
    for (std::size_t c = 0; c < stats.steps[s].cores.size(); ++c)
      EXPECT_EQ(twin.steps[s].cores[c].counters.values, stats.steps[s].cores[c].counters.values);
}

TEST(Timeline, EachUnitsIntervalsAreDisjointAndTheControllersCoverTheRun) {
  const ChipParams params = narrow_chip();
  const Program prog = program();
  Recorder recorder;
  FlowNetwork chip_network("chip_network");
  Chip chip("chip", params, prog, chip_network, &recorder);
  sc_core::sc_start();
  const std::uint64_t total = chip.stats().total_cycles;

  std::map<std::pair<int, TimelineActivity>, std::vector<TimelineInterval>> units;
  std::map<int, std::vector<TimelineInterval>> controller;  // compute and stalls, one after another
  for (const TimelineInterval& i : recorder.intervals) {
    EXPECT_LT(i.begin, i.end);
    EXPECT_LE(i.end, total);
    EXPECT_LT(i.step, prog.steps.size());
    units[{i.core, i.activity}].push_back(i);
    if (i.activity == TimelineActivity::kCompute || i.activity == TimelineActivity::kStall) controller[i.core].push_back(i);
  }
  const auto by_begin = [](const TimelineInterval& a, const TimelineInterval& b) { return a.begin < b.begin; };
  for (auto& [unit, intervals] : units) {
    std::sort(intervals.begin(), intervals.end(), by_begin);
    for (std::size_t k = 1; k < intervals.size(); ++k)
      EXPECT_LE(intervals[k - 1].end, intervals[k].begin)
          << "core " << unit.first << " activity " << static_cast<int>(unit.second) << " interval " << k;
  }
  // busy + stalls == cycles: the controller's intervals tile [0, total] exactly.
  ASSERT_EQ(controller.size(), 2u);
  for (auto& [core, intervals] : controller) {
    std::sort(intervals.begin(), intervals.end(), by_begin);
    std::uint64_t at = 0;
    for (const TimelineInterval& i : intervals) {
      EXPECT_EQ(i.begin, at) << "core " << core;
      at = i.end;
    }
    EXPECT_EQ(at, total) << "core " << core;
  }
}

}  // namespace
}  // namespace lpt::core
