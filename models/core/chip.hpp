// The chip: cores on a ring with a DRAM controller at its own stop, all
// transfers sharing bandwidth through one flow network (the chip's own, or a
// system's shared by its chips and their links). It executes a Program (steps
// of per-core tile tasks, each waiting for the steps it depends on) and
// reports RunStats in whole cycles.
//
// Modelled: systolic fill/stream/drain per tile and dataflow; operand reads
// contending with DMA on the scratchpad ports; DRAM and ring bandwidth shared
// max-min fairly by all transfers in flight; DRAM and per-hop latency; DMA
// outstanding-transfer limit; double buffering bounded by buffer slots and
// scratchpad capacity; SFU and stochastic rounders as pipelines beside the MAC
// array; per-step barriers. Not modelled: bank conflicts, DRAM row/bank
// timing and read/write turnaround, per-channel address mapping, packetisation
// and flow control on the ring, controller/instruction overheads, output
// buffer space (a task's slot is freed when its tile finishes).
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include <systemc>

#include "models/core/chip_params.hpp"
#include "models/core/core.hpp"
#include "models/core/program.hpp"
#include "models/core/stats.hpp"
#include "models/core/step_tracker.hpp"
#include "models/core/timeline.hpp"
#include "models/interconnect/flow_network.hpp"
#include "models/interconnect/ring.hpp"
#include "models/memory/dram.hpp"

namespace lpt::core {

// Checks that `program` fits `chip`: one task list per core in every step,
// buffers within the scratchpad, endpoints that exist, sane MAC tiles.
// Throws std::invalid_argument naming the step, core and task.
void validate_program(const ChipParams& chip, const Program& program);

class Chip : public sc_core::sc_module {
 public:
  // Validates the program first. `program` and `network` must outlive the
  // chip, and `timeline` (if any) the simulation.
  Chip(sc_core::sc_module_name name, const ChipParams& params, const Program& program, FlowNetwork& network,
       TimelineObserver* timeline = nullptr);

  // After the simulation: per step and core, in cycles, and every resource of
  // the network. Throws std::logic_error if the simulation stopped before every
  // core finished every step. `collectives` (from this chip's collective
  // engine) fill the collective steps' stats.
  RunStats stats(const std::vector<std::optional<CollectiveStats>>& collectives = {}) const;
  // Steps before the first one that not every core has finished.
  std::size_t steps_completed() const { return tracker_.steps_completed(); }

  // For the chip's collective engine (models/system): the memory its
  // collectives read and write, the step tracker it completes collective steps
  // in, and the cores whose SFUs add what arrives.
  Dram& dram() { return dram_; }
  StepTracker& tracker() { return tracker_; }
  int cores() const { return static_cast<int>(cores_.size()); }
  Core& core(int index) { return *cores_.at(static_cast<std::size_t>(index)); }

 private:
  const Program& program_;
  FlowNetwork& network_;
  Dram dram_;
  Ring ring_;
  StepTracker tracker_;
  std::vector<Scratchpad*> scratchpads_;
  std::vector<std::unique_ptr<Core>> cores_;
};

// The program needs more simulated time than kMaxSimulatedCycles (cycles.hpp).
class SimulatedTimeLimit : public std::runtime_error {
 public:
  explicit SimulatedTimeLimit(std::size_t step);
  std::size_t step() const { return step_; }  // the program step that ran past it

 private:
  std::size_t step_;
};

// Elaborates a chip, simulates the whole program in one sc_start and returns
// its stats. SystemC allows one elaboration per process, so this may be called
// once per process; a second call throws std::logic_error. Throws
// SimulatedTimeLimit if the program runs past kMaxSimulatedCycles. `timeline`,
// if not null, hears of every core's intervals.
RunStats run_program(const ChipParams& params, const Program& program,
                     TimelineObserver* timeline = nullptr);

}  // namespace lpt::core
