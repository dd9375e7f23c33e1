#include "models/core/chip.hpp"

#include <stdexcept>
#include <string>

#include "models/core/cycles.hpp"

namespace lpt::core {

namespace {

bool endpoint_exists(const Endpoint& endpoint, const ChipParams& chip) {
  switch (endpoint.kind) {
    case Endpoint::Kind::kDram: return true;
    case Endpoint::Kind::kHost: return chip.host_link.has_value();
    case Endpoint::Kind::kCore: return endpoint.core >= 0 && endpoint.core < chip.cores;
  }
  return false;
}

// Empty if every transfer is valid, else what is wrong with the first bad one.
std::string transfer_problem(const std::vector<Transfer>& transfers, const ChipParams& chip) {
  for (const Transfer& t : transfers) {
    if (!endpoint_exists(t.src, chip) || !endpoint_exists(t.dst, chip))
      return "transfer to or from a core the chip does not have (it has " + std::to_string(chip.cores) +
             "), or to or from host memory without a host link";
    if (t.src.off_chip() && t.dst.off_chip()) return "transfer between off-chip memories";
  }
  return {};
}

// A collective's counters are the chip's: each core's entry gets an equal
// share, so that sums over cores are the collective's own.
void spread_over_cores(const Counters& chip_counters, std::vector<CoreStepStats>& cores) {
  const auto n = static_cast<std::uint64_t>(cores.size());
  for (const Counter counter : all_counters()) {
    const std::uint64_t total = chip_counters[counter];
    for (std::uint64_t c = 0; c < n; ++c) cores[c].counters[counter] += total / n + (c < total % n ? 1 : 0);
  }
}

}  // namespace

SimulatedTimeLimit::SimulatedTimeLimit(std::size_t step)
    : std::runtime_error("the simulation passed the limit of " + std::to_string(kMaxSimulatedCycles) +
                         " (2^52) simulated cycles"),
      step_(step) {}

void validate_program(const ChipParams& chip, const Program& program) {
  const std::uint64_t capacity = chip.core.scratchpad.size_bytes();
  for (std::size_t s = 0; s < program.steps.size(); ++s) {
    const Step& step = program.steps[s];
    // Messages are built only on failure: programs have ~10^5 tasks.
    const auto fail = [&](const std::string& where, const std::string& problem) {
      throw std::invalid_argument("step " + std::to_string(s) + " (" + step.label + ")" + where +
                                  ": " + problem);
    };
    for (const std::size_t d : step.depends_on)
      if (d >= s) fail("", "depends on step " + std::to_string(d) + ", which is not an earlier step");
    if (step.collective) {
      for (const auto& tasks : step.tasks_per_core)
        if (!tasks.empty()) fail("", "a collective step has no tile tasks");
      if (step.collective->elements == 0 || step.collective->element_bits < 1)
        fail("", "a collective needs elements of at least one bit");
    }
    if (step.tasks_per_core.size() != static_cast<std::size_t>(chip.cores))
      fail("", "task lists for " + std::to_string(step.tasks_per_core.size()) +
                   " cores, chip has " + std::to_string(chip.cores));
    for (std::size_t c = 0; c < step.tasks_per_core.size(); ++c) {
      const auto& tasks = step.tasks_per_core[c];
      for (std::size_t t = 0; t < tasks.size(); ++t) {
        const TileTask& task = tasks[t];
        const auto where = [&] { return ", core " + std::to_string(c) + ", task " + std::to_string(t); };
        if (task.buffer_bytes > capacity)
          fail(where(), "buffer of " + std::to_string(task.buffer_bytes) +
                            " bytes exceeds the scratchpad (" + std::to_string(capacity) + ")");
        if (task.mac.macs_per_pe_per_cycle < 1) fail(where(), "macs_per_pe_per_cycle must be >= 1");
        if (!task.mac.empty() && (task.mac.operand_bits_a < 1 || task.mac.operand_bits_b < 1))
          fail(where(), "operand sizes must be >= 1 bit");
        if (auto problem = transfer_problem(task.loads, chip); !problem.empty())
          fail(where() + " loads", problem);
        if (auto problem = transfer_problem(task.stores, chip); !problem.empty())
          fail(where() + " stores", problem);
      }
    }
  }
}

Chip::Chip(sc_core::sc_module_name name, const ChipParams& params, const Program& program, FlowNetwork& network,
           TimelineObserver* timeline)
    : sc_core::sc_module(name),
      program_((validate_program(params, program), program)),
      network_(network),
      dram_("dram", params, network_),
      ring_("ring", params.interconnect, params.cores + 1, network_),
      tracker_(params.cores, program.steps.size()),
      scratchpads_(static_cast<std::size_t>(params.cores), nullptr) {
  for (int i = 0; i < params.cores; ++i)
    cores_.push_back(std::make_unique<Core>(("core" + std::to_string(i)).c_str(), i, params.core,
                                            program, network_, ring_, dram_, scratchpads_,
                                            tracker_, timeline));
}

RunStats Chip::stats(const std::vector<std::optional<CollectiveStats>>& collectives) const {
  if (tracker_.steps_completed() != program_.steps.size())
    throw std::logic_error("simulation ended after " + std::to_string(tracker_.steps_completed()) +
                           " of " + std::to_string(program_.steps.size()) + " steps");
  RunStats run;
  run.steps.resize(program_.steps.size());
  // Cumulative means, rounded at each step, so that the steps' cycles telescope
  // to the run's (every core's steps add up to the run's cycles).
  std::uint64_t core_cycles_before = 0, rounded_before = 0;
  const auto cores = static_cast<std::uint64_t>(cores_.size());
  for (std::size_t s = 0; s < run.steps.size(); ++s) {
    StepStats& step = run.steps[s];
    step.completion_cycle = tracker_.completion_cycle(s);
    if (s < collectives.size()) step.collective = collectives[s];
    for (const auto& core : cores_) {
      step.cores.push_back(core->controller().step_stats().at(s));
      core_cycles_before += step.cores.back().cycles;
    }
    if (step.collective) spread_over_cores(step.collective->counters, step.cores);
    const std::uint64_t rounded = (core_cycles_before + cores / 2) / cores;
    step.cycles = rounded - rounded_before;
    rounded_before = rounded;
    run.total_cycles = std::max(run.total_cycles, step.completion_cycle);
  }
  for (ResourceId id = 0; static_cast<std::size_t>(id) < network_.resource_count(); ++id)
    run.resources.push_back({network_.resource_name(id), to_string(network_.resource_class(id)),
                             network_.resource_bandwidth(id), network_.resource_bytes(id)});
  run.simulation_events = network_.flows_completed();
  for (const auto& core : cores_) run.simulation_events += core->mac_array().tiles();
  return run;
}

RunStats run_program(const ChipParams& params, const Program& program, TimelineObserver* timeline) {
  static bool simulated = false;
  validate_program(params, program);  // bad input must not use up the one simulation
  if (simulated)
    throw std::logic_error("run_program: SystemC allows one simulation per process");
  simulated = true;
  FlowNetwork network("network");
  Chip chip("chip", params, program, network, timeline);
  // The kernel's note on sc_stop() (the simulated-time limit) would go to stdout.
  sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  sc_core::sc_start();
  if (simulated_time_limit_reached) throw SimulatedTimeLimit(chip.steps_completed());
  return chip.stats();
}

}  // namespace lpt::core
