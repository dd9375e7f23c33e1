// What the chip model measured, per step and core. Plain data, no SystemC.
// All times are integer cycles of the chip clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/core/counters.hpp"

namespace lpt::core {

// Why a core's controller was not issuing MAC work.
enum class StallCause { kDram, kInterconnect, kScratchpad, kSfu, kDependency, kCommunication, kCount };
inline constexpr std::size_t kStallCauses = static_cast<std::size_t>(StallCause::kCount);

// The counter of a stall cause's cycles.
constexpr Counter stall_counter(StallCause cause) {
  return static_cast<Counter>(static_cast<int>(Counter::kStallDram) + static_cast<int>(cause));
}

static_assert(stall_counter(StallCause::kDependency) == Counter::kStallDependency &&
                  stall_counter(StallCause::kCommunication) == Counter::kStallCommunication,
              "stall counters follow StallCause");

struct CoreStepStats {
  // The core's time in the step: running it, and waiting for other cores to
  // finish it where a later step depended on it (controller.hpp); busy and
  // stall counters add up to it. Byte counters are the core's transfers (as
  // issued by its DMA) and its own units' traffic.
  std::uint64_t cycles = 0;
  Counters counters;

  std::uint64_t stall(StallCause c) const { return counters[stall_counter(c)]; }
};

// A chip's part in a collective step (a gradient all-reduce), from the start
// of its first round to the end of its last.
// Its counters (DRAM and link bytes, SFU work) are the chip's; the chip's
// stats spread them evenly over the cores' entries of the step.
struct CollectiveStats {
  std::uint64_t start_cycle = 0;
  std::uint64_t end_cycle = 0;
  std::uint64_t rounds = 0;
  std::uint64_t bytes_sent = 0;  // to other chips
  Counters counters;
};

struct StepStats {
  // The step's share of the run: the mean over cores of their time in it,
  // rounded so that the steps add up to the run's cycles exactly. With each
  // step depending on the one before (a barrier per step), the time between
  // the completions of the previous step and this one.
  std::uint64_t cycles = 0;
  std::uint64_t completion_cycle = 0;  // when its last core finished it
  std::optional<CollectiveStats> collective;  // a collective step's, on this chip
  std::vector<CoreStepStats> cores;
};

// Traffic through one shared resource over the whole run, for utilisation
// (bytes / (bytes_per_cycle x total_cycles)).
struct ResourceStats {
  std::string name;  // hierarchical, e.g. "chip.dram", "chip.ring.cw0-1", "chip.core0.scratchpad"
  std::string kind;  // "dram" | "interconnect" | "scratchpad"
  double bytes_per_cycle = 0;
  std::uint64_t bytes = 0;  // scratchpad: DMA fills and drains plus MAC operand reads
};

struct RunStats {
  std::vector<StepStats> steps;
  std::vector<ResourceStats> resources;
  std::uint64_t total_cycles = 0;
  std::uint64_t simulation_events = 0;  // flow/tile events processed, for the speed report
  // A system of chips (models/system): the steps are those of the chip that
  // finished last, `reported_chip`; every chip's cycles are in `chip_cycles`
  // (empty for one chip simulated alone).
  int reported_chip = 0;
  std::vector<std::uint64_t> chip_cycles;
  bool chips_mirrored = false;  // one chip simulated for all (models/system/system.hpp)
};

}  // namespace lpt::core
