// A system of identical chips, each running the same program on its share of
// the batch (data parallelism), joined by chip-to-chip links. All chips, their
// links and every transfer share one flow network, so collectives contend
// with each chip's own DRAM traffic; each chip's collective engine runs its
// part of the program's collective steps beside its cores.
//
// When every collective of the program lets the chips run alike
// (chips_run_alike: the same program, identical chips, each chip's messages a
// translate of chip 0's on links of their own), chip 0 alone is simulated,
// with its links, its collective engine mirrored: every chip would do, at
// the same time, exactly what it does. Otherwise every chip is simulated.
#pragma once

#include <memory>
#include <vector>

#include <systemc>

#include "models/core/chip.hpp"
#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"
#include "models/core/stats.hpp"
#include "models/core/timeline.hpp"
#include "models/interconnect/flow_network.hpp"
#include "models/system/chip_topology.hpp"
#include "models/system/collective_engine.hpp"
#include "models/system/system_params.hpp"

namespace lpt::core {

class System : public sc_core::sc_module {
 public:
  // Validates the program first. `program` must outlive the system, and
  // `timeline` (if any; it hears of chip 0's cores) the simulation. Without
  // `mirror_alike_chips` every chip is simulated (tests compare the two).
  System(sc_core::sc_module_name name, const SystemParams& params, const ChipParams& chip, const Program& program,
         TimelineObserver* timeline = nullptr, bool mirror_alike_chips = true);

  // After the simulation: the stats of the chip that finished last (all chips
  // run the same program; collectives may end at different times on each),
  // every chip's cycles, and every resource of the network.
  RunStats stats() const;
  // The steps before the first one that some chip has not finished.
  std::size_t steps_completed() const;
  // Whether chip 0 stands for all (see above).
  bool mirrored() const { return mirrored_; }

 private:
  int chips_in_system_;
  bool mirrored_;
  FlowNetwork network_;
  std::vector<std::unique_ptr<Chip>> chips_;  // chip 0 only when mirrored
  std::unique_ptr<ChipTopology> topology_;  // none for one chip
  std::vector<CollectiveEngine*> engine_table_;
  std::vector<std::unique_ptr<CollectiveEngine>> engines_;
};

// Elaborates and simulates the system, as run_program does a chip (one
// simulation per process; SimulatedTimeLimit past kMaxSimulatedCycles).
RunStats run_system(const SystemParams& params, const ChipParams& chip, const Program& program,
                    TimelineObserver* timeline = nullptr);

}  // namespace lpt::core
