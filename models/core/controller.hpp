// A core's controller: one SC_THREAD that walks the core's task list of each
// step and accounts for every cycle of it.
//
// Per task: issue the loads of upcoming tasks while buffer slots and capacity
// allow (prefetch = double buffering with two slots), wait for this task's
// loads, run its MAC tile, free its slot, hand its element-wise and rounding
// work to the SFU and rounders (which run beside the next tiles) and let the
// DMA issue its stores once that work is done. At the end of a step it waits
// for the SFU/rounders and the stores and reports the step finished; a step
// starts once every core has finished the steps it depends on.
// Once a step's loads are all issued, the prefetchable loads of the next
// step's first task (its weights) are issued too, if the scratchpad holds
// them beside this step's buffers: they arrive while this step ends and the
// core waits for the next one's dependencies. Their bytes count in the step
// they belong to.
//
// Accounting: every wait is attributed, so per step busy + stalls == cycles:
//  busy          MAC array computing (stall-free systolic cycles);
//  dram/interconnect/scratchpad  waiting for loads or end-of-step stores, by
//                the resource that limited the last transfer to complete;
//                scratchpad also when operand reads slowed a tile;
//  sfu           waiting for the SFU/rounders to take or finish work;
//  dependency    waiting for other cores to finish a step that a later step
//                of this core depends on. The wait is charged to that step
//                (the one completed last), where its imbalance arose, so that
//                with a dependency on the previous step only it is the
//                end-of-step barrier. The step's cycles on this core grow by
//                the same amount, so busy + stalls == cycles per core and step.
//  communication waiting for a collective step (a gradient all-reduce, run
//                by the chip's collective engine; the cores skip it). The
//                engine runs collectives one after another: each part of the
//                wait is charged to the collective running then, the rest to
//                the step the awaited collective needed that completed last
//                (a dependency wait).
// A timeline, if observed, hears of each busy and stall interval where it is
// added to its counter, and of the SFU and rounder work reserved.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <systemc>

#include "models/compute/mac_array.hpp"
#include "models/compute/sfu.hpp"
#include "models/compute/stochastic_rounder.hpp"
#include "models/core/program.hpp"
#include "models/core/stats.hpp"
#include "models/core/step_tracker.hpp"
#include "models/core/timeline.hpp"
#include "models/interconnect/dma.hpp"
#include "models/memory/scratchpad.hpp"

namespace lpt::core {

struct CoreUnits {
  Scratchpad& scratchpad;
  MacArray& mac_array;
  Sfu& sfu;
  StochasticRounder& rounder;
  Dma& dma;
};

class Controller : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Controller);
  // `timeline` may be null (no timeline).
  Controller(sc_core::sc_module_name name, int core, int buffer_slots, const Program& program,
             CoreUnits units, StepTracker& tracker, TimelineObserver* timeline);

  // One entry per finished step.
  const std::vector<CoreStepStats>& step_stats() const { return step_stats_; }

 private:
  void run();  // SC_THREAD
  void run_step(std::size_t step, CoreStepStats& stats);
  void issue_loads(std::size_t step, std::size_t& next_to_load);
  // Issues the prefetchable loads of `step`'s first task on this core, if any and if they fit.
  void prefetch(std::size_t step);
  const std::vector<TileTask>& tasks_of(std::size_t step) const;
  void wait_for(std::size_t step, TransferBatch& batch, CoreStepStats& stats);
  void wait_until(std::size_t step, std::uint64_t cycle, StallCause cause, CoreStepStats& stats);
  // Adds [begin, end) to the busy or a stall counter of `stats`, those of
  // `step`, and reports it to the timeline.
  void charge_busy(std::size_t step, CoreStepStats& stats, std::uint64_t begin, std::uint64_t end);
  void charge_stall(std::size_t step, CoreStepStats& stats, StallCause cause, std::uint64_t begin,
                    std::uint64_t end);
  void report(TimelineActivity activity, StallCause cause, std::size_t step, std::uint64_t begin,
              std::uint64_t end) const;
  // Waits for other cores to finish `steps`; charges the wait to the one completed last.
  void wait_for_steps(const std::vector<std::size_t>& steps);
  void wait_for_program();
  // A dependency wait since `start`, charged to the step waited for.
  void charge_wait(std::uint64_t start, std::optional<std::size_t> waited_for);
  // Adds (sign > 0) or subtracts the units' cumulative counters: a step's
  // share is their difference over it.
  void add_unit_counters(Counters& counters, int sign) const;

  int core_;
  int buffer_slots_;
  const Program& program_;
  CoreUnits units_;
  StepTracker& tracker_;
  TimelineObserver* timeline_;
  std::vector<std::unique_ptr<TransferBatch>> load_batches_;  // one per buffer slot
  TransferBatch store_batch_;
  std::vector<CoreStepStats> step_stats_;
  std::vector<std::size_t> collective_steps_;  // in program order, as the chip's engine runs them
  // Loads issued ahead of their step (prefetch), and the rest of that task's
  // loads; the DMA keeps pointers to them until they complete.
  struct Prefetch {
    std::size_t step = 0;
    std::uint64_t held_bytes = 0;  // of the task's buffer_bytes
    Counters counters;             // what issuing them added to the unit counters
    std::vector<Transfer> loads, remaining_loads;
    TransferBatch batch;
  };
  Prefetch prefetch_;
  bool prefetched_ = false;  // prefetch_ holds loads of a step not yet run
};

}  // namespace lpt::core
