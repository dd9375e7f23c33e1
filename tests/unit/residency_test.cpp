#include "sim/residency.hpp"

#include <gtest/gtest.h>

#include "sim/config.hpp"
#include "sim/mapping.hpp"
#include "sim/roofline.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

using core::Endpoint;
using core::Transfer;

core::ChipParams two_cores() {
  core::ChipParams chip = load_config(test_support::source_dir() / "configs/rapid-4core.json").chip;
  chip.cores = 2;
  chip.core.scratchpad.size_kib = 64;
  return chip;
}

constexpr std::uint64_t kCapacity = 64 * 1024;

Transfer result_store(int core, std::uint64_t bytes) {
  return {Endpoint::core_at(core), Endpoint::dram(), bytes, true};
}
Transfer load_of(std::size_t producer, int core, std::uint64_t bytes) {
  return {Endpoint::dram(), Endpoint::core_at(core), bytes, false, producer};
}
Transfer weight_load(int core, std::uint64_t bytes) { return {Endpoint::dram(), Endpoint::core_at(core), bytes}; }

// Step 0 produces a result of 1000 bytes on core 0 and 3000 on core 1; the
// steps after it read 2000 bytes of it on each core (`readers`), beside
// 500 bytes of weights.
MappedProgram program(const std::vector<std::size_t>& readers, std::size_t steps) {
  MappedProgram mapped;
  for (std::size_t s = 0; s < steps; ++s) {
    core::Step step;
    step.label = "step" + std::to_string(s);
    step.tasks_per_core.resize(2);
    for (int c = 0; c < 2; ++c) {
      core::TileTask task;
      if (s == 0) task.stores = {result_store(c, c == 0 ? 1000 : 3000)};
      if (std::find(readers.begin(), readers.end(), s) != readers.end())
        task.loads = {load_of(0, c, 2000), weight_load(c, 500)};
      step.tasks_per_core[static_cast<std::size_t>(c)].push_back(task);
    }
    if (s > 0) step.depends_on = {s - 1};
    mapped.program.steps.push_back(step);
    mapped.steps.push_back({});
  }
  return mapped;
}

std::uint64_t bytes_from(const core::TileTask& task, Endpoint src) {
  std::uint64_t bytes = 0;
  for (const Transfer& t : task.loads)
    if (t.src == src) bytes += t.bytes;
  return bytes;
}

TEST(Residency, ModesByName) {
  for (const Residency r : {Residency::kNone, Residency::kLiveness})
    EXPECT_EQ(residency_from_string(to_string(r)), r);
  EXPECT_FALSE(residency_from_string("always"));
}

TEST(Residency, AResultThatFitsIsReadOnChipAndNeverWritten) {
  MappedProgram mapped = program({1}, 2);
  keep_results_on_chip(mapped, two_cores());
  const auto& producer = mapped.program.steps[0];
  for (const auto& tasks : producer.tasks_per_core) EXPECT_TRUE(tasks[0].stores.empty());
  EXPECT_EQ(mapped.steps[0].avoided_write_bytes, 4000u);
  // Core 0 holds 1/4 of the result: of its 2000 bytes, 500 are its own (read
  // in place) and 1500 come from core 1 over the ring; core 1 the converse.
  const auto& reader = mapped.program.steps[1];
  const auto& on0 = reader.tasks_per_core[0][0];
  const auto& on1 = reader.tasks_per_core[1][0];
  EXPECT_EQ(bytes_from(on0, Endpoint::core_at(1)), 1500u);
  EXPECT_EQ(bytes_from(on0, Endpoint::core_at(0)), 0u);
  EXPECT_EQ(bytes_from(on1, Endpoint::core_at(0)), 500u);
  EXPECT_EQ(bytes_from(on1, Endpoint::core_at(1)), 0u);
  // The weights still come from DRAM.
  EXPECT_EQ(bytes_from(on0, Endpoint::dram()), 500u);
  EXPECT_EQ(bytes_from(on1, Endpoint::dram()), 500u);
  EXPECT_EQ(mapped.steps[1].on_chip_read_bytes, 4000u);
}

TEST(Residency, AResultThatDoesNotFitBesideAWorkingSetGoesToDram) {
  MappedProgram mapped = program({2}, 3);
  // Core 1's share (3000 bytes) does not fit beside step 1's working set.
  mapped.program.steps[1].working_set_bytes = kCapacity - 2999;
  const MappedProgram before = mapped;
  keep_results_on_chip(mapped, two_cores());
  for (std::size_t s = 0; s < 3; ++s)
    for (std::size_t c = 0; c < 2; ++c) {
      EXPECT_EQ(mapped.program.steps[s].tasks_per_core[c][0].loads.size(),
                before.program.steps[s].tasks_per_core[c][0].loads.size());
      EXPECT_EQ(mapped.program.steps[s].tasks_per_core[c][0].stores.size(),
                before.program.steps[s].tasks_per_core[c][0].stores.size());
    }
  EXPECT_EQ(mapped.steps[0].avoided_write_bytes, 0u);
  EXPECT_EQ(mapped.steps[2].on_chip_read_bytes, 0u);

  // With one byte more room it stays.
  mapped = program({2}, 3);
  mapped.program.steps[1].working_set_bytes = kCapacity - 3000;
  keep_results_on_chip(mapped, two_cores());
  EXPECT_EQ(mapped.steps[0].avoided_write_bytes, 4000u);
  EXPECT_EQ(mapped.steps[2].on_chip_read_bytes, 4000u);
}

TEST(Residency, AResultReadAgainLaterIsStillWrittenWhenItCannotStayThatLong) {
  // Read by the next step and again after step 2, whose working set leaves no room:
  // an activation saved for the backward pass.
  MappedProgram mapped = program({1, 3}, 4);
  mapped.program.steps[2].working_set_bytes = kCapacity;
  keep_results_on_chip(mapped, two_cores());
  EXPECT_EQ(mapped.program.steps[0].tasks_per_core[1][0].stores.size(), 1u);
  EXPECT_EQ(mapped.steps[0].avoided_write_bytes, 0u);
  EXPECT_EQ(mapped.steps[1].on_chip_read_bytes, 4000u);
  EXPECT_EQ(mapped.steps[3].on_chip_read_bytes, 0u);
  EXPECT_EQ(bytes_from(mapped.program.steps[3].tasks_per_core[0][0], Endpoint::dram()), 2500u);
}

TEST(Residency, EarlierResultsAreKeptFirst) {
  // Steps 0 and 1 each produce a result of 40 KiB per core, read by step 2:
  // one fits a 64 KiB scratchpad, not both.
  MappedProgram mapped;
  for (std::size_t s = 0; s < 3; ++s) {
    core::Step step;
    step.tasks_per_core.resize(2);
    for (int c = 0; c < 2; ++c) {
      core::TileTask task;
      if (s < 2) task.stores = {result_store(c, 40 * 1024)};
      if (s == 2) task.loads = {load_of(0, c, 40 * 1024), load_of(1, c, 40 * 1024)};
      step.tasks_per_core[static_cast<std::size_t>(c)].push_back(task);
    }
    mapped.program.steps.push_back(step);
    mapped.steps.push_back({});
  }
  keep_results_on_chip(mapped, two_cores());
  EXPECT_EQ(mapped.steps[0].avoided_write_bytes, 80u * 1024);
  EXPECT_EQ(mapped.steps[1].avoided_write_bytes, 0u);
  EXPECT_EQ(mapped.steps[2].on_chip_read_bytes, 80u * 1024);
  EXPECT_EQ(mapped.program.steps[2].depends_on, std::vector<std::size_t>{0});
}

TEST(Residency, BoundsLoseTheBytesKeptOnChip) {
  const core::ChipParams chip = two_cores();
  MappedProgram mapped = program({1}, 2);
  mapped.steps[0].bound.dram_bytes = 5000;
  mapped.steps[0].least_result_bytes = 4000;
  mapped.steps[1].bound.dram_bytes = 3000;
  mapped.steps[1].least_sourced_bytes = 2000;  // in the reader's format: less than the 4000 stored
  keep_results_on_chip(mapped, chip);
  EXPECT_DOUBLE_EQ(mapped.steps[0].bound.dram_bytes, 1000);
  EXPECT_DOUBLE_EQ(mapped.steps[1].bound.dram_bytes, 1000);
  EXPECT_DOUBLE_EQ(mapped.steps[1].bound.dram_cycles, 1000 / memory_bytes_per_cycle(chip));
}

}  // namespace
}  // namespace lpt
