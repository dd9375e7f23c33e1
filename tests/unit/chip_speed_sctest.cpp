// Simulation speed on a synthetic program of 200 steps x 4 cores x 100 tile
// tasks on the RaPiD-like chip. Prints events per second of wall time; it
// asserts only that the run completed and its accounting is consistent (a
// timed assertion would fail on a loaded machine, not on a slow model).
#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <numeric>

#include "models/core/chip.hpp"
#include "sim/config.hpp"

namespace lpt::core {
namespace {

using lpt::test_support::source_dir;

// Tiles of a 64x64x64 HFP8 GEMM block with mildly varied shapes, so the
// cores drift apart and contend for DRAM and the ring at changing moments.
Program synthetic_program(int steps, int cores, int tasks) {
  Program program;
  for (int s = 0; s < steps; ++s) {
    Step step{"step" + std::to_string(s), {}};
    for (int c = 0; c < cores; ++c) {
      std::vector<TileTask> list;
      for (int t = 0; t < tasks; ++t) {
        const std::uint64_t m = 64 + 16 * static_cast<std::uint64_t>((s + c + t) % 4);
        TileTask task;
        task.mac.m = m, task.mac.n = 64, task.mac.k = 64;
        task.mac.macs_per_pe_per_cycle = 16;
        task.loads = {{Endpoint::dram(), Endpoint::core_at(c), m * 64},
                      {Endpoint::dram(), Endpoint::core_at(c), 64 * 64}};
        task.sfu.alu = m * 64;
        task.stores = {{Endpoint::core_at(c), Endpoint::dram(), m * 64 * 2}};
        task.buffer_bytes = m * 64 + 64 * 64;
        list.push_back(std::move(task));
      }
      step.tasks_per_core.push_back(std::move(list));
    }
    program.steps.push_back(std::move(step));
  }
  return program;
}

TEST(ChipSpeed, SyntheticTrainingStep) {
  const ChipParams params = lpt::load_chip(source_dir() / "configs/chip-rapid-4core.json");
  const int steps = 200, tasks = 100;
  const Program program = synthetic_program(steps, params.cores, tasks);

  const auto start = std::chrono::steady_clock::now();
  const RunStats stats = run_program(params, program);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  ASSERT_EQ(stats.steps.size(), static_cast<std::size_t>(steps));
  std::uint64_t busy = 0;
  for (const StepStats& step : stats.steps)
    for (const CoreStepStats& core : step.cores) {
      busy += core.counters[Counter::kBusyCycles];
      std::uint64_t accounted = core.counters[Counter::kBusyCycles];
      for (std::size_t c = 0; c < kStallCauses; ++c) accounted += core.stall(static_cast<StallCause>(c));
      EXPECT_EQ(accounted, core.cycles);
    }
  const std::uint64_t tiles = static_cast<std::uint64_t>(steps) * params.cores * tasks;
  // Every task: two loads, one operand read, one store, one tile.
  EXPECT_EQ(stats.simulation_events, tiles * 5);
  std::cout << "simulated " << tiles << " tiles, " << stats.simulation_events << " events, "
            << stats.total_cycles << " cycles (MAC utilisation "
            << static_cast<double>(busy) / (static_cast<double>(stats.total_cycles) * params.cores)
            << ") in " << seconds << " s wall: " << stats.simulation_events / seconds
            << " events/s\n";
}

}  // namespace
}  // namespace lpt::core
