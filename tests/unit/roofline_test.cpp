#include "sim/roofline.hpp"

#include <gtest/gtest.h>

#include "sim/config.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

core::ChipParams rapid() {
  return load_config(test_support::source_dir() / "configs/rapid-4core.json").chip;
}

TEST(Roofline, EachResourceAtItsPeakRate) {
  const core::ChipParams chip = rapid();  // 4 cores of 8 x 16 PEs, 16 SFU and 32 rounder lanes
  core::Step step;
  step.tasks_per_core.resize(4);
  core::TileTask task;
  task.sfu.alu = 6400, task.sfu.exp = 160, task.sfu.div_sqrt = 0;
  task.rounded_elements = 12800;
  step.tasks_per_core[0].push_back(task);
  step.tasks_per_core[3].push_back(task);
  const std::uint64_t macs = 4 * 8 * 16 * 16 * 1000;  // 1000 cycles at 16 MACs per PE per cycle
  const Bound b = step_bound(chip, step, macs, 16, 1e6);
  EXPECT_DOUBLE_EQ(b.compute_cycles, 1000);
  EXPECT_DOUBLE_EQ(b.dram_bytes, 1e6);
  EXPECT_DOUBLE_EQ(b.dram_cycles, 1e6 / memory_bytes_per_cycle(chip));
  // 12800 ALU ops at 1 and 320 exp at 0.25 per lane per cycle, over 4 x 16 lanes.
  EXPECT_DOUBLE_EQ(b.sfu_cycles, (12800 + 320 / 0.25) / 64);
  EXPECT_DOUBLE_EQ(b.rounder_cycles, 25600.0 / (4 * 32));
  EXPECT_DOUBLE_EQ(b.cycles(), std::max({1000.0, b.dram_cycles, 220.0, 200.0}));
  EXPECT_STREQ(b.limited_by(), b.dram_cycles > 1000 ? "dram" : "compute");
}

TEST(Roofline, MemoryBandwidthIsTheNarrowestOfDramRingLinksAndRequests) {
  core::ChipParams chip = rapid();
  const double dram = chip.dram_bytes_per_cycle();
  chip.interconnect.link_bytes_per_cycle = 1;
  EXPECT_DOUBLE_EQ(memory_bytes_per_cycle(chip), chip.interconnect.bidirectional ? 2.0 : 1.0);
  chip.interconnect.link_bytes_per_cycle = 1 << 20;
  EXPECT_DOUBLE_EQ(memory_bytes_per_cycle(chip), dram);
  // Ten times the latency: 4 cores x 64 requests x 64 B per 1600 cycles.
  chip.dram.latency_ns *= 10;
  EXPECT_DOUBLE_EQ(memory_bytes_per_cycle(chip), 4 * 64 * 64 / 1600.0);
}

TEST(Roofline, NoWorkIsNoBound) {
  const Bound b;
  EXPECT_EQ(b.cycles(), 0);
  EXPECT_STREQ(b.limited_by(), "none");
}

}  // namespace
}  // namespace lpt
