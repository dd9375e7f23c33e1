// Systems of chips on small programs whose timing is known by hand: a
// gradient all-reduce on an idle system against the closed forms (ASTRA-sim's
// analytical backend uses the ring's), overlap with compute, and one chip
// simulated for all against every chip simulated.
#include <gtest/gtest.h>

#include <cmath>

#include "models/core/cycles.hpp"
#include "models/system/system.hpp"
#include "tests/support/ideal_chip.hpp"

namespace lpt::core {
namespace {

// Two ideal cores with an SFU wide enough that only the links take time.
ChipParams ideal_chip() {
  ChipParams p = testing::ideal_chip(2);
  p.core.sfu.lanes = 1 << 20;
  return p;
}

// At 1 GHz: 10 bytes per cycle, 1000 cycles per hop.
SystemParams system_of(int chips, ChipTopologyKind topology, bool bidirectional = false) {
  SystemParams s;
  s.chips = chips;
  s.topology = topology;
  s.bidirectional = bidirectional;
  s.link = {10, 1000, 1};
  return s;
}
constexpr double kLinkBytesPerCycle = 10, kHopCycles = 1000;

Step collective_step(int cores, std::uint64_t elements, CollectiveAlgorithm algorithm, int group_chips = 0) {
  Step step;
  step.label = "allreduce";
  step.tasks_per_core.resize(static_cast<std::size_t>(cores));
  step.collective = Collective{elements, 16, algorithm, group_chips};
  return step;
}

// `count` back-to-back 4x4x4 tiles on every core: 14 cycles each (2r + c + T - 2).
constexpr std::uint64_t kTileCycles = 14;
Step compute_step(int cores, std::uint64_t tiles) {
  Step step;
  step.label = "compute";
  for (int c = 0; c < cores; ++c) {
    TileTask task;
    task.mac.m = task.mac.n = task.mac.k = 4;
    task.mac.count = tiles;
    task.mac.operand_bits_a = task.mac.operand_bits_b = 16;
    step.tasks_per_core.push_back({task});
  }
  return step;
}

std::uint64_t total_cycles(const SystemParams& system, const Program& program) {
  return run_system(system, ideal_chip(), program).total_cycles;
}

constexpr std::uint64_t kElements = 4 * 1024 * 1024;  // 8 MiB of fp16
constexpr double kBytes = 2.0 * kElements;

TEST(System, RingAllReduceOnAnIdleSystemTakesTheClosedForm) {
  for (const int chips : {4}) {
    Program program;
    program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kRing));
    const double expected = 2.0 * (chips - 1) / chips * kBytes / kLinkBytesPerCycle + 2.0 * (chips - 1) * kHopCycles;
    const auto cycles = static_cast<double>(total_cycles(system_of(chips, ChipTopologyKind::kRing), program));
    EXPECT_NEAR(cycles, expected, 0.02 * expected);
  }
}

TEST(System, BidirectionalRingSendsHalfEachWay) {
  constexpr int chips = 8;
  Program program;
  program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kRing));
  const double expected = 2.0 * (chips - 1) / chips * kBytes / (2 * kLinkBytesPerCycle) + 2.0 * (chips - 1) * kHopCycles;
  const auto cycles = static_cast<double>(total_cycles(system_of(chips, ChipTopologyKind::kRing, true), program));
  EXPECT_NEAR(cycles, expected, 0.02 * expected);
}

TEST(System, TreeAllReduceGoesUpAndDownTheTree) {
  // Four chips on a switch: 3 -> 1 (2 -> 0 meanwhile), then 1 -> 0; the root
  // sends to 1 and 2 through its one link to the switch (two transfers' time),
  // then 1 -> 3.
  Program program;
  program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kTree));
  const double one_transfer = kBytes / kLinkBytesPerCycle + 2 * kHopCycles;
  const double expected = 4 * one_transfer + kBytes / kLinkBytesPerCycle;
  const auto cycles = static_cast<double>(total_cycles(system_of(4, ChipTopologyKind::kSwitch), program));
  EXPECT_NEAR(cycles, expected, 0.02 * expected);
}

TEST(System, HierarchicalAllReduceOnATorusReducesRowsThenColumns) {
  // 3 x 3, one direction: rows reduce-scatter (2 rounds of S/3), columns
  // all-reduce S/3 (4 rounds of S/9), rows all-gather (2 rounds of S/3).
  SystemParams system = system_of(9, ChipTopologyKind::kTorus2d);
  system.torus_shape = {3, 3};
  Program program;
  program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kHierarchical));
  const double expected = (4 * kBytes / 3 + 4 * kBytes / 9) / kLinkBytesPerCycle + 8 * kHopCycles;
  const auto cycles = static_cast<double>(total_cycles(system, program));
  EXPECT_NEAR(cycles, expected, 0.02 * expected);
}

// A collective beside compute that does not need it; then a step that needs both.
Program overlapped(std::uint64_t compute_tiles) {
  Program program;
  program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kRing));
  program.steps.push_back(compute_step(2, compute_tiles));
  Step after = compute_step(2, 1);
  after.depends_on = {0, 1};
  program.steps.push_back(std::move(after));
  return program;
}

TEST(System, CommunicationHidesBehindLongComputeAndIsExposedBehindShort) {
  const SystemParams system = system_of(4, ChipTopologyKind::kRing);
  // The collective alone: about 1.26 M cycles.
  const RunStats long_compute = run_system(system, ideal_chip(), overlapped(200'000));
  const std::uint64_t collective = long_compute.steps[0].collective->end_cycle - long_compute.steps[0].collective->start_cycle;
  EXPECT_GT(2'000'000u, collective);
  // Hidden: the step is the compute, and no core waited for the collective.
  EXPECT_EQ(long_compute.steps[0].cycles, 0u);
  for (const CoreStepStats& core : long_compute.steps[0].cores) EXPECT_EQ(core.stall(StallCause::kCommunication), 0u);
  EXPECT_EQ(long_compute.total_cycles, (200'000u + 1) * kTileCycles);
}

TEST(System, ShortComputeLeavesTheCollectiveExposed) {
  const SystemParams system = system_of(4, ChipTopologyKind::kRing);
  const RunStats run = run_system(system, ideal_chip(), overlapped(1000));
  const CollectiveStats& c = *run.steps[0].collective;
  // The cores waited for the rest of the collective after their compute; the
  // wait is the collective step's, as communication.
  const std::uint64_t compute = 1000 * kTileCycles;
  EXPECT_EQ(run.steps[0].cycles, c.end_cycle - compute);
  for (const CoreStepStats& core : run.steps[0].cores) {
    EXPECT_EQ(core.stall(StallCause::kCommunication), c.end_cycle - compute);
    EXPECT_EQ(core.stall(StallCause::kDependency), 0u);
  }
  EXPECT_EQ(run.total_cycles, c.end_cycle + kTileCycles);
  // The chip's collective counters: each message over one link of the ring.
  std::uint64_t byte_hops = 0;
  for (const CoreStepStats& core : run.steps[0].cores) byte_hops += core.counters[Counter::kLinkByteHops];
  EXPECT_EQ(byte_hops, static_cast<std::uint64_t>(2.0 * 3 / 4 * kBytes));
  EXPECT_EQ(c.bytes_sent, byte_hops);
}

TEST(System, WaitingForOtherCoresBeforeTheCollectiveStartsIsADependency) {
  // Core 0 has ten times core 1's share of the gradient step; the collective
  // needs it, and the update needs the collective.
  Program program;
  Step gradients = compute_step(2, 1000);
  gradients.tasks_per_core[1].front().mac.count = 100;
  program.steps.push_back(std::move(gradients));
  Step collective = collective_step(2, kElements, CollectiveAlgorithm::kRing);
  collective.depends_on = {0};
  program.steps.push_back(std::move(collective));
  Step update = compute_step(2, 1);
  update.depends_on = {1};
  program.steps.push_back(std::move(update));
  const RunStats run = run_system(system_of(4, ChipTopologyKind::kRing), ideal_chip(), program);
  const CollectiveStats& c = *run.steps[1].collective;
  EXPECT_EQ(c.start_cycle, 1000 * kTileCycles);
  const CoreStepStats& idle_core = run.steps[0].cores[1];
  EXPECT_EQ(idle_core.stall(StallCause::kDependency), 900 * kTileCycles);
  EXPECT_EQ(run.steps[1].cores[1].stall(StallCause::kCommunication), c.end_cycle - c.start_cycle);
  EXPECT_EQ(run.steps[1].cores[0].stall(StallCause::kCommunication), c.end_cycle - c.start_cycle);
}

TEST(System, AWaitIsChargedToTheCollectiveRunningThen) {
  // Two buckets, one after another on the engine; the first update needs the
  // second bucket, which could start only after the first: the part of the
  // wait while the first ran is the first's.
  Program program;
  program.steps.push_back(compute_step(2, 100));  // gradients of the last layer
  Step first = collective_step(2, kElements, CollectiveAlgorithm::kRing);
  first.depends_on = {0};
  program.steps.push_back(std::move(first));
  program.steps.push_back(compute_step(2, 100));  // gradients of the first layer
  Step second = collective_step(2, kElements, CollectiveAlgorithm::kRing);
  second.depends_on = {2};
  program.steps.push_back(std::move(second));
  Step update = compute_step(2, 1);
  update.depends_on = {3};
  program.steps.push_back(std::move(update));
  const RunStats run = run_system(system_of(4, ChipTopologyKind::kRing), ideal_chip(), program);
  const CollectiveStats &a = *run.steps[1].collective, &b = *run.steps[3].collective;
  EXPECT_EQ(b.start_cycle, a.end_cycle);
  const std::uint64_t waiting_from = 200 * kTileCycles;
  for (int core = 0; core < 2; ++core) {
    EXPECT_EQ(run.steps[1].cores[core].stall(StallCause::kCommunication), a.end_cycle - waiting_from);
    EXPECT_EQ(run.steps[3].cores[core].stall(StallCause::kCommunication), b.end_cycle - b.start_cycle);
    EXPECT_EQ(run.steps[2].cores[core].stall(StallCause::kDependency), 0u);
  }
}

TEST(System, OneChipStandsForAllWhenTheyRunAlike) {
  // With DRAM contention between the collective and compute, so that timing
  // is not just the links.
  ChipParams chip = ideal_chip();
  chip.dram = {1, 20, 50};
  Program program;
  program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kRing));
  Step loads = compute_step(2, 5000);
  for (auto& tasks : loads.tasks_per_core) {
    tasks.front().loads = {{Endpoint::dram(), Endpoint::core_at(0), 4'000'000}};
    tasks.front().buffer_bytes = 0;
  }
  program.steps.push_back(std::move(loads));
  Step after = compute_step(2, 1);
  after.depends_on = {0, 1};
  program.steps.push_back(std::move(after));

  const SystemParams system = system_of(4, ChipTopologyKind::kRing, true);
  System every_chip("every_chip", system, chip, program, nullptr, false);
  System one_for_all("one_for_all", system, chip, program, nullptr, true);
  ASSERT_FALSE(every_chip.mirrored());
  ASSERT_TRUE(one_for_all.mirrored());
  sc_core::sc_start();
  const RunStats all = every_chip.stats(), one = one_for_all.stats();
  EXPECT_EQ(one.total_cycles, all.total_cycles);
  EXPECT_EQ(one.steps[0].collective->end_cycle, all.steps[0].collective->end_cycle);
  EXPECT_EQ(one.chip_cycles, all.chip_cycles);
  EXPECT_GT(all.steps[0].collective->end_cycle, 1'258'000u);  // slower than on an idle system
}

TEST(System, MessagesThroughASwitchCrossTwoLinks) {
  Program program;
  program.steps.push_back(collective_step(2, kElements, CollectiveAlgorithm::kRing));
  const RunStats run = run_system(system_of(4, ChipTopologyKind::kSwitch), ideal_chip(), program);
  std::uint64_t byte_hops = 0;
  for (const CoreStepStats& core : run.steps[0].cores) byte_hops += core.counters[Counter::kLinkByteHops];
  EXPECT_EQ(run.steps[0].collective->bytes_sent, static_cast<std::uint64_t>(2.0 * 3 / 4 * kBytes));
  EXPECT_EQ(byte_hops, 2 * run.steps[0].collective->bytes_sent);
}

Step compressed_step(int cores, std::uint64_t elements, double ratio) {
  Step step = collective_step(cores, elements, CollectiveAlgorithm::kRing);
  step.collective->compression_ratio = ratio;
  return step;
}

TEST(System, CompressedAllReduceSendsKValuesAndBroadcastsKIndices) {
  // Idle links-only system: the leader's indices go round the ring (3 hops
  // of 4k bytes), then the k values are ring-all-reduced.
  constexpr int chips = 4;
  constexpr double ratio = 64;
  const std::uint64_t k = kElements / 64;
  Program program;
  program.steps.push_back(compressed_step(2, kElements, ratio));
  const RunStats run = run_system(system_of(chips, ChipTopologyKind::kRing), ideal_chip(), program);
  const CollectiveStats& c = *run.steps[0].collective;
  const double values = 2.0 * k, indices = 4.0 * k;
  EXPECT_NEAR(static_cast<double>(c.bytes_sent), 2.0 * (chips - 1) / chips * values + indices, 16);
  const double expected = (chips - 1) * (indices / kLinkBytesPerCycle + kHopCycles) +
                          2.0 * (chips - 1) / chips * values / kLinkBytesPerCycle + 2.0 * (chips - 1) * kHopCycles;
  EXPECT_NEAR(static_cast<double>(c.end_cycle - c.start_cycle), expected, 0.02 * expected);
}

TEST(System, CompressionWithOneChipForAllMatchesEveryChip) {
  Program program;
  program.steps.push_back(compressed_step(2, kElements, 32));
  const SystemParams system = system_of(4, ChipTopologyKind::kRing, true);
  System every_chip("every_chip", system, ideal_chip(), program, nullptr, false);
  System one_for_all("one_for_all", system, ideal_chip(), program, nullptr, true);
  sc_core::sc_start();
  const double all = static_cast<double>(every_chip.stats().total_cycles);
  EXPECT_NEAR(static_cast<double>(one_for_all.stats().total_cycles), all, 0.01 * all);
}

TEST(System, ATreeIsSimulatedOnEveryChip) {
  Program program;
  program.steps.push_back(collective_step(2, 1024, CollectiveAlgorithm::kTree));
  System system("system", system_of(4, ChipTopologyKind::kSwitch), ideal_chip(), program);
  EXPECT_FALSE(system.mirrored());
}

}  // namespace
}  // namespace lpt::core
