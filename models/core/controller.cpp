#include "models/core/controller.hpp"

#include <algorithm>

#include "models/core/cycles.hpp"

namespace lpt::core {

namespace {

StallCause stall_cause(FlowLimiter limiter) {
  switch (limiter) {
    case FlowLimiter::kDram: return StallCause::kDram;
    case FlowLimiter::kScratchpad: return StallCause::kScratchpad;
    // DMA flows carry no rate cap: "cap" only means nothing held the last
    // transfer back, i.e. the wait was for its turn in the DMA queue.
    case FlowLimiter::kInterconnect:
    case FlowLimiter::kRateCap: return StallCause::kInterconnect;
  }
  return StallCause::kInterconnect;
}

}  // namespace

Controller::Controller(sc_core::sc_module_name name, int core, int buffer_slots,
                       const Program& program, CoreUnits units, StepTracker& tracker,
                       TimelineObserver* timeline)
    : sc_core::sc_module(name),
      core_(core),
      buffer_slots_(buffer_slots),
      program_(program),
      units_(units),
      tracker_(tracker),
      timeline_(timeline) {
  for (int i = 0; i < buffer_slots; ++i) load_batches_.push_back(std::make_unique<TransferBatch>());
  store_batch_.activity = TimelineActivity::kDmaStore;
  step_stats_.reserve(program.steps.size());
  for (std::size_t s = 0; s < program.steps.size(); ++s)
    if (program.steps[s].collective) collective_steps_.push_back(s);
  SC_THREAD(run);
}

void Controller::run() {
  for (std::size_t s = 0; s < program_.steps.size(); ++s) {
    const Step& step = program_.steps[s];
    if (step.collective) {  // the chip's collective engine runs it
      step_stats_.emplace_back();
      continue;
    }
    wait_for_steps(step.depends_on);
    CoreStepStats stats;
    const std::uint64_t start = now_cycles();
    if (prefetched_) stats.counters.add(prefetch_.counters, +1);  // issued during the step before
    add_unit_counters(stats.counters, -1);
    run_step(s, stats);
    add_unit_counters(stats.counters, +1);
    if (prefetched_) stats.counters.add(prefetch_.counters, -1);  // they belong to the next step
    stats.cycles = now_cycles() - start;
    step_stats_.push_back(stats);
    tracker_.finish(s);
  }
  wait_for_program();
}

const std::vector<TileTask>& Controller::tasks_of(std::size_t step) const {
  return program_.steps[step].tasks_per_core[static_cast<std::size_t>(core_)];
}

void Controller::prefetch(std::size_t step) {
  // Collective steps have no tasks: the weights to fetch are the next step's.
  while (step < program_.steps.size() && program_.steps[step].collective) ++step;
  if (prefetched_ || step >= program_.steps.size() || tasks_of(step).empty()) return;
  const TileTask& first = tasks_of(step).front();
  prefetch_.loads.clear();
  prefetch_.remaining_loads.clear();
  std::uint64_t bytes = 0;
  for (const Transfer& load : first.loads) {
    (load.prefetchable ? prefetch_.loads : prefetch_.remaining_loads).push_back(load);
    if (load.prefetchable) bytes += load.bytes;
  }
  // A merged task's loads may exceed its buffer (its tiles stream through it).
  const std::uint64_t held = std::min(bytes, first.buffer_bytes);
  if (prefetch_.loads.empty() || !units_.scratchpad.can_hold(held)) return;
  units_.scratchpad.hold(held);
  prefetch_.step = step;
  prefetch_.held_bytes = held;
  prefetch_.batch.last_end_cycle = 0;
  prefetch_.batch.limiter = FlowLimiter::kRateCap;
  prefetch_.batch.step = step;
  prefetch_.counters = {};
  add_unit_counters(prefetch_.counters, -1);
  units_.dma.issue(prefetch_.loads, prefetch_.batch);
  add_unit_counters(prefetch_.counters, +1);
  prefetched_ = true;
}

void Controller::wait_for_steps(const std::vector<std::size_t>& steps) {
  const std::uint64_t start = now_cycles();
  charge_wait(start, tracker_.wait_for(steps));
}

// Every core ends when the program does, so that each core's steps add up to
// the run's cycles.
void Controller::wait_for_program() {
  const std::uint64_t start = now_cycles();
  charge_wait(start, tracker_.wait_for_all());
}

void Controller::charge_wait(std::uint64_t start, std::optional<std::size_t> waited_for) {
  if (!waited_for || now_cycles() == start) return;
  const auto charge = [&](std::size_t step, StallCause cause, std::uint64_t begin, std::uint64_t end) {
    if (end <= begin) return;
    CoreStepStats& charged = step_stats_.at(step);
    charge_stall(step, charged, cause, begin, end);
    charged.cycles += end - begin;
  };
  const Step& step = program_.steps[*waited_for];
  if (!step.collective) {
    charge(*waited_for, StallCause::kDependency, start, now_cycles());
    return;
  }
  // A collective. The engine ran the collectives up to it one after another,
  // each from when the one before ended and its inputs were complete: the
  // part of the wait while one ran is that one's communication.
  // The gaps between them: waiting for other cores to finish what the
  // awaited collective needed.
  std::optional<std::size_t> last_needed;
  for (const std::size_t d : step.depends_on)
    if (!last_needed || tracker_.completion_cycle(d) > tracker_.completion_cycle(*last_needed)) last_needed = d;
  const auto charge_gap = [&](std::uint64_t begin, std::uint64_t end) {
    if (last_needed)
      charge(*last_needed, StallCause::kDependency, begin, end);
    else
      charge(*waited_for, StallCause::kCommunication, begin, end);
  };
  const std::uint64_t end = now_cycles();
  std::uint64_t cursor = start, engine_free = 0;
  for (const std::size_t c : collective_steps_) {
    if (c > *waited_for) break;
    std::uint64_t ran_from = engine_free;
    for (const std::size_t d : program_.steps[c].depends_on) ran_from = std::max(ran_from, tracker_.completion_cycle(d));
    engine_free = tracker_.completion_cycle(c);
    const std::uint64_t from = std::max(cursor, ran_from), to = std::min(end, engine_free);
    if (to <= from) continue;
    charge_gap(cursor, from);
    charge(c, StallCause::kCommunication, from, to);
    cursor = to;
  }
  charge_gap(cursor, end);
}

void Controller::run_step(std::size_t step, CoreStepStats& stats) {
  const std::vector<TileTask>& tasks = tasks_of(step);
  store_batch_.last_end_cycle = 0;
  store_batch_.limiter = FlowLimiter::kRateCap;
  store_batch_.step = step;
  std::size_t next_to_load = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const TileTask& task = tasks[i];
    issue_loads(step, next_to_load);
    wait_for(step, *load_batches_[i % static_cast<std::size_t>(buffer_slots_)], stats);
    if (i == 0 && prefetched_ && prefetch_.step == step) {
      wait_for(step, prefetch_.batch, stats);
      prefetched_ = false;
    }

    // The tile's stall-free cycles come first, then what the ports added.
    const TileRun tile = units_.mac_array.run_tile(task.mac);
    const std::uint64_t systolic_end = tile.start_cycle + tile.systolic_cycles;
    charge_busy(step, stats, tile.start_cycle, systolic_end);
    charge_stall(step, stats, StallCause::kScratchpad, systolic_end, tile.start_cycle + tile.cycles);
    units_.scratchpad.release(task.buffer_bytes);
    issue_loads(step, next_to_load);

    if (task.sfu.empty() && task.rounded_elements == 0) {
      units_.dma.issue(task.stores, store_batch_);
      continue;
    }
    // The SFU and rounders take one task's work at a time; the MAC array goes
    // on with the next tile while they work.
    wait_until(step, std::max(units_.sfu.free_at(), units_.rounder.free_at()), StallCause::kSfu, stats);
    const std::uint64_t now = now_cycles();
    const std::uint64_t sfu_start = std::max(now, units_.sfu.free_at());
    const std::uint64_t rounding_start = std::max(now, units_.rounder.free_at());
    const std::uint64_t sfu_done = units_.sfu.reserve(now, task.sfu);
    const std::uint64_t rounding_done = units_.rounder.reserve(now, task.rounded_elements);
    report(TimelineActivity::kSfu, StallCause::kCount, step, sfu_start, sfu_done);
    report(TimelineActivity::kRounding, StallCause::kCount, step, rounding_start, rounding_done);
    units_.dma.issue_at(std::max(sfu_done, rounding_done), task.stores, store_batch_);
  }
  // Also for a step without tasks on this core, and for a prefetch that did
  // not fit beside this step's buffers while they were held.
  prefetch(step + 1);
  wait_until(step, std::max(units_.sfu.free_at(), units_.rounder.free_at()), StallCause::kSfu, stats);
  wait_for(step, store_batch_, stats);
}

void Controller::issue_loads(std::size_t step, std::size_t& next_to_load) {
  const std::vector<TileTask>& tasks = tasks_of(step);
  for (; next_to_load < tasks.size(); ++next_to_load) {
    const TileTask& task = tasks[next_to_load];
    // The first task of a step whose weights were prefetched already holds a
    // slot and part of its buffer.
    const bool rest_only = next_to_load == 0 && prefetched_ && prefetch_.step == step;
    const std::uint64_t bytes = rest_only ? task.buffer_bytes - prefetch_.held_bytes : task.buffer_bytes;
    if (rest_only ? !units_.scratchpad.can_grow(bytes) : !units_.scratchpad.can_hold(bytes)) break;
    if (rest_only)
      units_.scratchpad.grow(bytes);
    else
      units_.scratchpad.hold(bytes);
    TransferBatch& batch = *load_batches_[next_to_load % static_cast<std::size_t>(buffer_slots_)];
    batch.last_end_cycle = 0;
    batch.limiter = FlowLimiter::kRateCap;
    batch.step = step;
    units_.dma.issue(rest_only ? std::span<const Transfer>(prefetch_.remaining_loads)
                               : std::span<const Transfer>(task.loads),
                     batch);
  }
  if (next_to_load == tasks.size()) prefetch(step + 1);
}

void Controller::wait_for(std::size_t step, TransferBatch& batch, CoreStepStats& stats) {
  const std::uint64_t start = now_cycles();
  while (batch.pending > 0) wait(batch.done);
  charge_stall(step, stats, stall_cause(batch.limiter), start, now_cycles());
}

void Controller::wait_until(std::size_t step, std::uint64_t cycle, StallCause cause, CoreStepStats& stats) {
  const std::uint64_t now = now_cycles();
  if (cycle <= now) return;
  wait(cycles_to_time(cycle - now));
  charge_stall(step, stats, cause, now, cycle);
}

void Controller::charge_busy(std::size_t step, CoreStepStats& stats, std::uint64_t begin, std::uint64_t end) {
  stats.counters[Counter::kBusyCycles] += end - begin;
  report(TimelineActivity::kCompute, StallCause::kCount, step, begin, end);
}

void Controller::charge_stall(std::size_t step, CoreStepStats& stats, StallCause cause, std::uint64_t begin,
                              std::uint64_t end) {
  stats.counters[stall_counter(cause)] += end - begin;
  report(TimelineActivity::kStall, cause, step, begin, end);
}

void Controller::report(TimelineActivity activity, StallCause cause, std::size_t step, std::uint64_t begin,
                        std::uint64_t end) const {
  if (timeline_ && end > begin) [[unlikely]]
    timeline_->on_interval({core_, activity, cause, step, begin, end});
}

// Unit counters are cumulative; a step's share is their difference, taken by
// subtracting them at the start of the step and adding them at its end.
void Controller::add_unit_counters(Counters& counters, int sign) const {
  Counters units;
  units[Counter::kMacs] = units_.mac_array.macs();
  units.macs_by_datapath = units_.mac_array.macs_by_datapath();
  units[Counter::kL0ReadBytes] = units_.mac_array.l0_read_bytes();
  units[Counter::kL0WriteBytes] = units_.mac_array.l0_write_bytes();
  units[Counter::kSfuBusyCycles] = units_.sfu.busy_cycles();
  units[Counter::kSfuAluOps] = units_.sfu.ops().alu;
  units[Counter::kSfuExpOps] = units_.sfu.ops().exp;
  units[Counter::kSfuDivSqrtOps] = units_.sfu.ops().div_sqrt;
  units[Counter::kRoundedElements] = units_.rounder.elements_rounded();
  units[Counter::kDramReadBytes] = units_.dma.dram_read_bytes();
  units[Counter::kDramWriteBytes] = units_.dma.dram_write_bytes();
  units[Counter::kHostReadBytes] = units_.dma.host_read_bytes();
  units[Counter::kHostWriteBytes] = units_.dma.host_write_bytes();
  units[Counter::kRingByteHops] = units_.dma.ring_byte_hops();
  units[Counter::kScratchpadWriteBytes] = units_.scratchpad.bytes_written();
  units[Counter::kScratchpadReadBytes] = units_.scratchpad.bytes_read();
  counters.add(units, sign);
}

}  // namespace lpt::core
