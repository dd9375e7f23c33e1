#include "models/system/system.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "models/core/cycles.hpp"
#include "models/system/collective.hpp"

namespace lpt::core {

namespace {

bool all_collectives_run_alike(const SystemParams& params, const Program& program) {
  return std::all_of(program.steps.begin(), program.steps.end(), [&](const Step& step) {
    return !step.collective || chips_run_alike(params, *step.collective);
  });
}

}  // namespace

System::System(sc_core::sc_module_name name, const SystemParams& params, const ChipParams& chip,
               const Program& program, TimelineObserver* timeline, bool mirror_alike_chips)
    : sc_core::sc_module(name),
      chips_in_system_(params.chips),
      mirrored_(mirror_alike_chips && params.chips > 1 && all_collectives_run_alike(params, program)),
      network_("network") {
  const int simulated = mirrored_ ? 1 : params.chips;
  for (int c = 0; c < simulated; ++c)
    chips_.push_back(std::make_unique<Chip>(("chip" + std::to_string(c)).c_str(), chip, program, network_,
                                            c == 0 ? timeline : nullptr));
  if (params.chips > 1) topology_ = std::make_unique<ChipTopology>("links", params, chip.clock_ghz, network_);
  engine_table_.resize(static_cast<std::size_t>(simulated), nullptr);
  for (int c = 0; c < simulated; ++c) {
    engines_.push_back(std::make_unique<CollectiveEngine>(("collectives" + std::to_string(c)).c_str(), c, params,
                                                          program, *chips_[static_cast<std::size_t>(c)],
                                                          topology_.get(), network_, engine_table_, mirrored_));
    engine_table_[static_cast<std::size_t>(c)] = engines_.back().get();
  }
}

RunStats System::stats() const {
  std::vector<RunStats> per_chip;
  for (std::size_t c = 0; c < chips_.size(); ++c) per_chip.push_back(chips_[c]->stats(engines_[c]->stats()));
  std::size_t last = 0;
  for (std::size_t c = 1; c < per_chip.size(); ++c)
    if (per_chip[c].total_cycles > per_chip[last].total_cycles) last = c;
  RunStats run = per_chip[last];
  run.reported_chip = static_cast<int>(last);
  for (const RunStats& chip : per_chip) run.chip_cycles.push_back(chip.total_cycles);
  if (mirrored_) run.chip_cycles.assign(static_cast<std::size_t>(chips_in_system_), run.total_cycles);
  run.chips_mirrored = mirrored_;
  // Every chip counted the network's events; count them once.
  run.simulation_events = network_.flows_completed();
  for (const RunStats& chip : per_chip) run.simulation_events += chip.simulation_events - network_.flows_completed();
  return run;
}

std::size_t System::steps_completed() const {
  std::size_t completed = chips_.front()->steps_completed();
  for (const auto& chip : chips_) completed = std::min(completed, chip->steps_completed());
  return completed;
}

RunStats run_system(const SystemParams& params, const ChipParams& chip, const Program& program,
                    TimelineObserver* timeline) {
  static bool simulated = false;
  validate_program(chip, program);  // bad input must not use up the one simulation
  if (simulated) throw std::logic_error("run_system: SystemC allows one simulation per process");
  simulated = true;
  System system("system", params, chip, program, timeline);
  sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  sc_core::sc_start();
  if (simulated_time_limit_reached) throw SimulatedTimeLimit(system.steps_completed());
  return system.stats();
}

}  // namespace lpt::core
