// Whole-chip runs on small programs whose timing is known by hand. SystemC
// allows one simulation per process, so tests that compare two designs build
// two independent chips side by side and simulate them together.
#include <gtest/gtest.h>

#include <numeric>

#include "models/compute/systolic_timing.hpp"
#include "models/core/chip.hpp"
#include "tests/support/ideal_chip.hpp"

namespace lpt::core {
namespace {

using testing::ideal_chip;
using testing::kUnbounded;

MacTile mac_tile(std::uint64_t m, std::uint64_t n, std::uint64_t k) {
  MacTile t;
  t.m = m, t.n = n, t.k = k;
  t.operand_bits_a = t.operand_bits_b = 16;
  return t;
}

Transfer dram_to(int core, std::uint64_t bytes) {
  return {Endpoint::dram(), Endpoint::core_at(core), bytes};
}
Transfer to_dram(int core, std::uint64_t bytes) {
  return {Endpoint::core_at(core), Endpoint::dram(), bytes};
}

TileTask gemm_task(int core, std::uint64_t load_bytes, const MacTile& tile,
                   std::uint64_t store_bytes = 0) {
  TileTask task;
  task.loads = {dram_to(core, load_bytes)};
  task.mac = tile;
  if (store_bytes > 0) task.stores = {to_dram(core, store_bytes)};
  task.buffer_bytes = load_bytes;
  return task;
}

Program one_step(std::vector<std::vector<TileTask>> tasks_per_core) {
  Program program;
  program.steps.push_back({"step", std::move(tasks_per_core)});
  return program;
}

std::uint64_t accounted(const CoreStepStats& core) {
  std::uint64_t total = core.counters[Counter::kBusyCycles];
  for (std::size_t c = 0; c < kStallCauses; ++c) total += core.stall(static_cast<StallCause>(c));
  return total;
}

// busy + stalls == cycles for every core and step; every core's steps and
// the steps' shares add up to the run.
void expect_accounting_adds_up(const RunStats& stats) {
  std::uint64_t steps_total = 0;
  std::vector<std::uint64_t> core_total;
  for (std::size_t s = 0; s < stats.steps.size(); ++s) {
    const StepStats& step = stats.steps[s];
    steps_total += step.cycles;
    core_total.resize(step.cores.size());
    for (std::size_t c = 0; c < step.cores.size(); ++c) {
      EXPECT_EQ(accounted(step.cores[c]), step.cores[c].cycles) << "step " << s << " core " << c;
      core_total[c] += step.cores[c].cycles;
    }
  }
  EXPECT_EQ(steps_total, stats.total_cycles);
  for (std::size_t c = 0; c < core_total.size(); ++c) EXPECT_EQ(core_total[c], stats.total_cycles) << "core " << c;
}

TEST(Chip, ComputeBoundTileTakesExactlyItsSystolicCycles) {
  const ChipParams params = ideal_chip(1);
  const MacTile tile = mac_tile(8, 6, 20);
  const Program program = one_step({{gemm_task(0, 4096, tile, 96)}});
  const RunStats stats = run_program(params, program);
  const std::uint64_t systolic = systolic_tile_timing(params.core.mac_array, tile).cycles;
  ASSERT_EQ(stats.steps.size(), 1u);
  EXPECT_EQ(stats.total_cycles, systolic);
  const CoreStepStats& core = stats.steps[0].cores[0];
  EXPECT_EQ(core.counters[Counter::kBusyCycles], systolic);
  EXPECT_EQ(core.counters[Counter::kMacs], 8u * 6 * 20);
  EXPECT_EQ(core.counters[Counter::kDramReadBytes], 4096u);
  EXPECT_EQ(core.counters[Counter::kDramWriteBytes], 96u);
  EXPECT_EQ(core.counters[Counter::kRingByteHops], (4096u + 96u) * 1);  // one hop each way on a 2-stop ring
  EXPECT_EQ(core.counters[Counter::kScratchpadWriteBytes], 4096u);
  EXPECT_EQ(core.counters[Counter::kScratchpadReadBytes],
            systolic_tile_timing(params.core.mac_array, tile).scratchpad_read_bytes() + 96u);
  expect_accounting_adds_up(stats);
  // A load, a MAC operand read and a store flow, and one tile.
  EXPECT_EQ(stats.simulation_events, 4u);
  // DRAM, two ring links each way between core 0 and the memory stop, the scratchpad.
  ASSERT_EQ(stats.resources.size(), 6u);
  EXPECT_EQ(stats.resources[0].name, "chip.dram");
  EXPECT_EQ(stats.resources[0].kind, "dram");
  EXPECT_EQ(stats.resources[0].bytes, 4096u + 96u);
  EXPECT_EQ(stats.resources[5].name, "chip.core0.scratchpad");
  EXPECT_EQ(stats.resources[5].bytes, core.counters[Counter::kScratchpadWriteBytes] + core.counters[Counter::kScratchpadReadBytes]);
  EXPECT_THROW(run_program(params, program), std::logic_error);
}

TEST(Chip, CountersSplitMacsByDatapathAndCountL0Traffic) {
  // Two tiles of different datapaths on a core whose corelet has an L0: each
  // datapath gets its tile's M x N x K MACs; the arrays read their operands'
  // fold re-reads from the L0, which the scratchpad fills once.
  ChipParams chip = ideal_chip(1);
  chip.core.mac_array.l0 = L0Params{1, 1 << 20};
  chip.core.mac_array.macs_per_pe_per_cycle["fp8_e4m3"] = 2;
  MacTile fp16 = mac_tile(8, 12, 20);
  MacTile fp8 = mac_tile(4, 8, 32);
  fp8.datapath = 1, fp8.macs_per_pe_per_cycle = 2, fp8.operand_bits_a = fp8.operand_bits_b = 8;
  Program program = one_step({{gemm_task(0, 64, fp16), gemm_task(0, 64, fp8)}});
  program.datapaths = {{"fp16", "fp16", "fp32"}, {"fp8_e4m3", "fp8_e4m3", "fp32"}};
  const RunStats stats = run_program(chip, program);
  const CoreStepStats& core = stats.steps[0].cores[0];
  ASSERT_EQ(core.counters.macs_by_datapath.size(), 2u);
  EXPECT_EQ(core.counters.macs_by_datapath[0], 8u * 12 * 20);
  EXPECT_EQ(core.counters.macs_by_datapath[1], 4u * 8 * 32);
  EXPECT_EQ(core.counters[Counter::kMacs], 8u * 12 * 20 + 4u * 8 * 32);
  const auto a = systolic_tile_timing(chip.core.mac_array, fp16), b = systolic_tile_timing(chip.core.mac_array, fp8);
  // 8 x 12 over a 4 x 4 array: A's rows re-stream per column fold, from the L0.
  EXPECT_EQ(core.counters[Counter::kL0ReadBytes], a.l0_read_bytes + b.l0_read_bytes);
  EXPECT_GT(a.l0_read_bytes, a.scratchpad_read_bytes());
  EXPECT_EQ(core.counters[Counter::kL0WriteBytes], a.scratchpad_read_bytes() + b.scratchpad_read_bytes());
  EXPECT_EQ(core.counters[Counter::kScratchpadReadBytes], a.scratchpad_read_bytes() + b.scratchpad_read_bytes());
}

TEST(Chip, MemoryBoundTaskDoublesWhenDramBandwidthHalves) {
  ChipParams fast = ideal_chip(1);
  fast.dram.gb_per_s_per_channel = 16;  // 16 B/cycle at 1 GHz
  ChipParams slow = fast;
  slow.dram.gb_per_s_per_channel = 8;
  const Program program = one_step({{gemm_task(0, 32768, mac_tile(4, 4, 4))}});
  FlowNetwork fast_chip_network("fast_network");
  Chip fast_chip("fast", fast, program, fast_chip_network);
  FlowNetwork slow_chip_network("slow_network");
  Chip slow_chip("slow", slow, program, slow_chip_network);
  sc_core::sc_start();
  const RunStats f = fast_chip.stats(), s = slow_chip.stats();
  // 32 KiB at 16 B/cycle = 2048 cycles, then a 14-cycle tile.
  EXPECT_EQ(f.total_cycles, 2048u + 14);
  EXPECT_EQ(s.total_cycles, 4096u + 14);
  EXPECT_EQ(f.steps[0].cores[0].stall(StallCause::kDram), 2048u);
  EXPECT_EQ(s.steps[0].cores[0].stall(StallCause::kDram), 4096u);
  expect_accounting_adds_up(f);
  expect_accounting_adds_up(s);
}

TEST(Chip, TwoCoresHalveAComputeBoundParallelStep) {
  const MacTile tile = mac_tile(16, 16, 64);
  std::vector<TileTask> eight;
  for (int i = 0; i < 8; ++i) eight.push_back(gemm_task(0, 1024, tile, 512));
  std::vector<TileTask> four_on_0(eight.begin(), eight.begin() + 4);
  std::vector<TileTask> four_on_1;
  for (int i = 0; i < 4; ++i) four_on_1.push_back(gemm_task(1, 1024, tile, 512));
  const Program on_one = one_step({eight});
  const Program on_two = one_step({four_on_0, four_on_1});
  FlowNetwork one_network("one_network");
  Chip one("one", ideal_chip(1), on_one, one_network);
  FlowNetwork two_network("two_network");
  Chip two("two", ideal_chip(2), on_two, two_network);
  sc_core::sc_start();
  const RunStats a = one.stats(), b = two.stats();
  const std::uint64_t systolic = systolic_tile_timing(ideal_chip(1).core.mac_array, tile).cycles;
  EXPECT_EQ(a.total_cycles, 8 * systolic);
  EXPECT_EQ(b.total_cycles * 2, a.total_cycles);
  expect_accounting_adds_up(a);
  expect_accounting_adds_up(b);
}

TEST(Chip, DoubleBufferingOverlapsLoadsWithCompute) {
  // Each task: a 1600-byte load at 16 B/cycle (100 cycles) and a 100-cycle
  // tile (2*4 + 4 + 90 - 2). One DMA transfer at a time, so loads go in order.
  ChipParams single = ideal_chip(1);
  single.dram.gb_per_s_per_channel = 16;
  single.core.dma.max_outstanding = 1;
  single.core.scratchpad.buffer_slots = 1;
  ChipParams twin = single;
  twin.core.scratchpad.buffer_slots = 2;
  std::vector<TileTask> tasks;
  for (int i = 0; i < 8; ++i) tasks.push_back(gemm_task(0, 1600, mac_tile(4, 4, 90)));
  const Program program = one_step({tasks});
  FlowNetwork one_slot_network("one_slot_network");
  Chip one_slot("one_slot", single, program, one_slot_network);
  FlowNetwork two_slots_network("two_slots_network");
  Chip two_slots("two_slots", twin, program, two_slots_network);
  sc_core::sc_start();
  const RunStats a = one_slot.stats(), b = two_slots.stats();
  EXPECT_EQ(a.total_cycles, 8u * (100 + 100));  // N * (load + compute)
  EXPECT_EQ(b.total_cycles, 100u + 8 * 100);    // first load + N * max(load, compute)
  EXPECT_EQ(b.steps[0].cores[0].counters[Counter::kBusyCycles], 800u);
  EXPECT_EQ(b.steps[0].cores[0].stall(StallCause::kDram), 100u);
  expect_accounting_adds_up(a);
  expect_accounting_adds_up(b);
}

TEST(Chip, WeightsOfTheNextStepLoadDuringTheStepBefore) {
  // Step 0: a 100-cycle load, then a 100-cycle tile. Step 1 depends on it and
  // loads 160 bytes of its result and 1600 bytes of weights (16 B/cycle, one
  // transfer at a time). Prefetched, the weights load while step 0 computes.
  ChipParams chip = ideal_chip(1);
  chip.dram.gb_per_s_per_channel = 16;
  chip.core.dma.max_outstanding = 1;
  const auto program = [](bool prefetchable) {
    Program p = one_step({{gemm_task(0, 1600, mac_tile(4, 4, 90))}});
    TileTask next = gemm_task(0, 160, mac_tile(4, 4, 90));
    next.loads.push_back(dram_to(0, 1600));
    next.loads.back().prefetchable = prefetchable;
    next.buffer_bytes = 1760;
    p.steps.push_back({"next", {{next}}, {0}});
    return p;
  };
  const Program plain_program = program(false), prefetch_program = program(true);
  FlowNetwork plain_network("plain_network");
  Chip plain("plain", chip, plain_program, plain_network);
  FlowNetwork ahead_network("ahead_network");
  Chip ahead("ahead", chip, prefetch_program, ahead_network);
  sc_core::sc_start();
  const RunStats a = plain.stats(), b = ahead.stats();
  EXPECT_EQ(a.total_cycles, 200u + 110 + 100);
  EXPECT_EQ(b.total_cycles, 200u + 10 + 100);
  // The weights' bytes belong to the step that reads them.
  for (const RunStats* run : {&a, &b}) {
    EXPECT_EQ(run->steps[0].cores[0].counters[Counter::kDramReadBytes], 1600u);
    EXPECT_EQ(run->steps[1].cores[0].counters[Counter::kDramReadBytes], 1760u);
    EXPECT_EQ(run->steps[1].cores[0].counters[Counter::kScratchpadWriteBytes], 1760u);
    expect_accounting_adds_up(*run);
  }
}

TEST(Chip, BarrierWaitIsADependencyStall) {
  const MacTile tile = mac_tile(8, 8, 32);
  const std::uint64_t systolic = systolic_tile_timing(ideal_chip(2).core.mac_array, tile).cycles;
  Program program = one_step({{gemm_task(0, 64, tile), gemm_task(0, 64, tile)},
                              {gemm_task(1, 64, tile)}});
  program.steps.push_back({"second", {{gemm_task(0, 64, tile)}, {}}, {0}});
  const RunStats stats = run_program(ideal_chip(2), program);
  ASSERT_EQ(stats.steps.size(), 2u);
  EXPECT_EQ(stats.steps[0].cycles, 2 * systolic);
  EXPECT_EQ(stats.steps[0].cores[1].stall(StallCause::kDependency), systolic);
  EXPECT_EQ(stats.steps[0].cores[0].stall(StallCause::kDependency), 0u);
  // A core with nothing to do waits the whole step.
  EXPECT_EQ(stats.steps[1].cores[1].stall(StallCause::kDependency), systolic);
  EXPECT_EQ(stats.total_cycles, 3 * systolic);
  expect_accounting_adds_up(stats);
}

TEST(Chip, IndependentStepsOverlapAcrossCores) {
  // Core 0 has two tiles in step 0, core 1 one; step 1 (one tile on core 1)
  // does not depend on step 0, so core 1 runs it while core 0 finishes step 0.
  const MacTile tile = mac_tile(8, 8, 32);
  const std::uint64_t systolic = systolic_tile_timing(ideal_chip(2).core.mac_array, tile).cycles;
  Program program = one_step({{gemm_task(0, 64, tile), gemm_task(0, 64, tile)},
                              {gemm_task(1, 64, tile)}});
  program.steps.push_back({"independent", {{}, {gemm_task(1, 64, tile)}}});
  const RunStats stats = run_program(ideal_chip(2), program);
  EXPECT_EQ(stats.total_cycles, 2 * systolic);
  EXPECT_EQ(stats.steps[0].cores[1].stall(StallCause::kDependency), 0u);
  EXPECT_EQ(stats.steps[1].cores[1].counters[Counter::kBusyCycles], systolic);
  expect_accounting_adds_up(stats);
}

TEST(Chip, AWaitIsChargedToTheStepWaitedFor) {
  // Step 2 depends on step 0 only: core 1 finishes steps 0 and 1 early and
  // waits for core 0 to finish step 0; the wait is step 0's imbalance.
  const MacTile tile = mac_tile(8, 8, 32);
  const std::uint64_t systolic = systolic_tile_timing(ideal_chip(2).core.mac_array, tile).cycles;
  Program program = one_step({{gemm_task(0, 64, tile), gemm_task(0, 64, tile), gemm_task(0, 64, tile)},
                              {gemm_task(1, 64, tile)}});
  program.steps.push_back({"short", {{}, {gemm_task(1, 64, tile)}}});
  program.steps.push_back({"after step 0", {{}, {gemm_task(1, 64, tile)}}, {0}});
  const RunStats stats = run_program(ideal_chip(2), program);
  EXPECT_EQ(stats.total_cycles, 4 * systolic);
  EXPECT_EQ(stats.steps[0].cores[1].stall(StallCause::kDependency), systolic);
  EXPECT_EQ(stats.steps[1].cores[1].stall(StallCause::kDependency), 0u);
  expect_accounting_adds_up(stats);
}

TEST(Chip, ADependencyOnALaterStepIsRejected) {
  Program program = one_step({{}, {}});
  program.steps.push_back({"bad", {{}, {}}, {1}});
  EXPECT_THROW(validate_program(ideal_chip(2), program), std::invalid_argument);
}

TEST(Chip, SfuWorkOverlapsTheNextTileAndStallsWhenItIsTheBottleneck) {
  // 4 lanes x 1 ALU op: 400 ops take 100 cycles; the tile takes 100 cycles.
  // Tile i+1 overlaps SFU work i, so 4 tasks take 4 x 100 + the last SFU 100.
  // With 800 ops (200 cycles) the SFU is the bottleneck: 100 + 4 x 200.
  auto tasks_with_ops = [](std::uint64_t ops) {
    std::vector<TileTask> tasks;
    for (int i = 0; i < 4; ++i) {
      TileTask task = gemm_task(0, 256, mac_tile(4, 4, 90), 64);
      task.sfu.alu = ops;
      tasks.push_back(task);
    }
    return tasks;
  };
  const Program balanced = one_step({tasks_with_ops(400)});
  const Program sfu_bound = one_step({tasks_with_ops(800)});
  FlowNetwork a_network("balanced_network");
  Chip a("balanced", ideal_chip(1), balanced, a_network);
  FlowNetwork b_network("sfu_bound_network");
  Chip b("sfu_bound", ideal_chip(1), sfu_bound, b_network);
  sc_core::sc_start();
  const RunStats sa = a.stats(), sb = b.stats();
  EXPECT_EQ(sa.total_cycles, 4u * 100 + 100);
  EXPECT_EQ(sa.steps[0].cores[0].stall(StallCause::kSfu), 100u);
  EXPECT_EQ(sa.steps[0].cores[0].counters[Counter::kSfuBusyCycles], 400u);
  EXPECT_EQ(sa.steps[0].cores[0].counters[Counter::kSfuAluOps], 1600u);
  EXPECT_EQ(sa.steps[0].cores[0].counters[Counter::kSfuExpOps], 0u);
  EXPECT_EQ(sb.total_cycles, 100u + 4 * 200);
  EXPECT_EQ(sb.steps[0].cores[0].stall(StallCause::kSfu), 100u + 4 * 200 - 400);
  expect_accounting_adds_up(sa);
  expect_accounting_adds_up(sb);
}

TEST(Chip, RoundersArePipelinedLikeTheSfu) {
  ChipParams params = ideal_chip(1);
  TileTask update;  // a weight update: no MAC work, 4096 elements rounded
  update.loads = {dram_to(0, 1024)};
  update.rounded_elements = 4096;
  update.stores = {to_dram(0, 1024)};
  update.buffer_bytes = 1024;
  const RunStats stats = run_program(params, one_step({{update}}));
  EXPECT_EQ(stats.total_cycles, 4096u / 4);
  EXPECT_EQ(stats.steps[0].cores[0].counters[Counter::kRoundedElements], 4096u);
  EXPECT_EQ(stats.steps[0].cores[0].stall(StallCause::kSfu), 1024u);
  expect_accounting_adds_up(stats);
}

TEST(Chip, NarrowScratchpadPortsSlowTheTile) {
  // Tile reads (A 4x90 + B 90x4) x 2 bytes = 1440 B in 100 systolic cycles;
  // 7.2 B/cycle are needed but the ports give 4: it takes 360 cycles.
  ChipParams params = ideal_chip(1);
  params.core.scratchpad.bytes_per_cycle_per_port = 4;
  TileTask task;
  task.mac = mac_tile(4, 4, 90);
  const RunStats stats = run_program(params, one_step({{task}}));
  EXPECT_EQ(stats.total_cycles, 360u);
  EXPECT_EQ(stats.steps[0].cores[0].counters[Counter::kBusyCycles], 100u);
  EXPECT_EQ(stats.steps[0].cores[0].stall(StallCause::kScratchpad), 260u);
  expect_accounting_adds_up(stats);
}

TEST(Chip, CoresContendForDramAndTheRing) {
  // Two cores load 8000 B each from a 16 B/cycle DRAM: shared, both take 1000
  // cycles; the ring's hop latency and DRAM latency come on top.
  ChipParams params = ideal_chip(2);
  params.dram.gb_per_s_per_channel = 16;
  params.dram.latency_ns = 50;
  params.interconnect.hop_latency_cycles = 3;
  const Program program =
      one_step({{gemm_task(0, 8000, mac_tile(1, 1, 1))}, {gemm_task(1, 8000, mac_tile(1, 1, 1))}});
  const RunStats stats = run_program(params, program);
  // Memory stop 2: core 0 is one hop clockwise (2 -> 0), core 1 one hop counter-clockwise.
  const std::uint64_t tile = systolic_tile_timing(params.core.mac_array, mac_tile(1, 1, 1)).cycles;
  EXPECT_EQ(stats.total_cycles, 1000u + 50 + 3 + tile);
  EXPECT_EQ(stats.steps[0].cores[0].stall(StallCause::kDram), 1000u + 50 + 3);
  EXPECT_EQ(stats.steps[0].cores[1].counters[Counter::kRingByteHops], 8000u);
  expect_accounting_adds_up(stats);
}

TEST(Chip, DmaOutstandingLimitSerialisesLatency) {
  // Four 160-byte loads at 16 B/cycle (10 cycles each alone) behind 100 cycles
  // of DRAM latency. One outstanding transfer: 4 x (10 + 100). Four: they
  // share the bandwidth (40 cycles) and overlap their latency (100).
  ChipParams one = ideal_chip(1);
  one.dram.gb_per_s_per_channel = 16;
  one.dram.latency_ns = 100;
  one.core.dma.max_outstanding = 1;
  ChipParams four = one;
  four.core.dma.max_outstanding = 4;
  TileTask task;
  task.loads.assign(4, dram_to(0, 160));
  task.buffer_bytes = 640;
  const Program program = one_step({{task}});
  FlowNetwork serial_network("serial_network");
  Chip serial("serial", one, program, serial_network);
  FlowNetwork parallel_network("parallel_network");
  Chip parallel("parallel", four, program, parallel_network);
  sc_core::sc_start();
  EXPECT_EQ(serial.stats().total_cycles, 4u * 110);
  EXPECT_EQ(parallel.stats().total_cycles, 140u);
  EXPECT_EQ(parallel.stats().steps[0].cores[0].stall(StallCause::kDram), 140u);
  expect_accounting_adds_up(serial.stats());
  expect_accounting_adds_up(parallel.stats());
}

TEST(Chip, OutstandingRequestsBoundADmaEnginesDramBandwidth) {
  // 4 requests of 64 B in flight over 1000 cycles of latency: 0.256 B/cycle,
  // however wide DRAM is. A 2560-byte load takes 10000 cycles plus the latency.
  ChipParams p = ideal_chip(1);
  p.dram.latency_ns = 1000;
  p.core.dma.request_bytes = 64;
  p.core.dma.outstanding_requests = 4;
  TileTask task;
  task.loads = {dram_to(0, 2560)};
  task.buffer_bytes = 2560;
  const RunStats stats = run_program(p, one_step({{task}}));
  EXPECT_EQ(stats.total_cycles, 10000u + 1000u);
  EXPECT_EQ(stats.steps[0].cores[0].stall(StallCause::kDram), 11000u);
  expect_accounting_adds_up(stats);
}

TEST(Chip, ProgramsThatDoNotFitAreRejected) {
  const ChipParams params = ideal_chip(2);
  EXPECT_THROW(validate_program(params, one_step({{}})), std::invalid_argument);
  TileTask too_big;
  too_big.buffer_bytes = params.core.scratchpad.size_bytes() + 1;
  EXPECT_THROW(validate_program(params, one_step({{too_big}, {}})), std::invalid_argument);
  TileTask elsewhere;
  elsewhere.loads = {dram_to(5, 64)};
  EXPECT_THROW(validate_program(params, one_step({{elsewhere}, {}})), std::invalid_argument);
  TileTask dram_copy;
  dram_copy.loads = {{Endpoint::dram(), Endpoint::dram(), 64}};
  EXPECT_THROW(validate_program(params, one_step({{dram_copy}, {}})), std::invalid_argument);
  EXPECT_NO_THROW(validate_program(params, one_step({{gemm_task(0, 64, mac_tile(4, 4, 4))}, {}})));
}

}  // namespace
}  // namespace lpt::core
