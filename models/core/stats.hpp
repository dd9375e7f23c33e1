// What the chip model measured, per step and core. Plain data, no SystemC.
// All times are integer cycles of the chip clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lpt::core {

// Why a core's controller was not issuing MAC work.
enum class StallCause { kDram, kInterconnect, kScratchpad, kSfu, kDependency, kCount };

struct CoreStepStats {
  // The core's time in the step: running it, and waiting for other cores to
  // finish it where a later step depended on it (controller.hpp).
  std::uint64_t cycles = 0;
  std::uint64_t busy_cycles = 0;  // MAC array computing
  std::uint64_t stall_cycles[static_cast<int>(StallCause::kCount)] = {};
  std::uint64_t macs = 0;
  std::uint64_t sfu_busy_cycles = 0;
  std::uint64_t sfu_ops = 0;
  std::uint64_t rounded_elements = 0;
  std::uint64_t dram_read_bytes = 0;    // transfers from DRAM into this core
  std::uint64_t dram_write_bytes = 0;   // transfers from this core to DRAM
  std::uint64_t ring_bytes = 0;         // bytes x hops this core's transfers put on ring links
  std::uint64_t scratchpad_write_bytes = 0;  // DMA fills
  std::uint64_t scratchpad_read_bytes = 0;   // MAC array operand reads + DMA drains

  std::uint64_t stall(StallCause c) const { return stall_cycles[static_cast<int>(c)]; }
};

struct StepStats {
  // The step's share of the run: the mean over cores of their time in it,
  // rounded so that the steps add up to the run's cycles exactly. With each
  // step depending on the one before (a barrier per step), the time between
  // the completions of the previous step and this one.
  std::uint64_t cycles = 0;
  std::uint64_t completion_cycle = 0;  // when its last core finished it
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
};

}  // namespace lpt::core
