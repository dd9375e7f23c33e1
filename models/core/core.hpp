// One core: scratchpad, MAC array (with its chunk accumulators), SFU,
// stochastic rounders, DMA engine and the controller that drives them.
#pragma once

#include <vector>

#include <systemc>

#include "models/compute/mac_array.hpp"
#include "models/compute/sfu.hpp"
#include "models/compute/stochastic_rounder.hpp"
#include "models/core/chip_params.hpp"
#include "models/core/controller.hpp"
#include "models/core/program.hpp"
#include "models/core/step_tracker.hpp"
#include "models/core/timeline.hpp"
#include "models/interconnect/dma.hpp"
#include "models/interconnect/flow_network.hpp"
#include "models/interconnect/ring.hpp"
#include "models/memory/dram.hpp"
#include "models/memory/scratchpad.hpp"

namespace lpt::core {

class Core : public sc_core::sc_module {
 public:
  // Registers its scratchpad in `scratchpads[index]` (the chip's table that
  // every DMA engine routes through). `timeline` may be null (no timeline).
  Core(sc_core::sc_module_name name, int index, const CoreParams& params, const Program& program,
       FlowNetwork& network, Ring& ring, Dram& dram, std::vector<Scratchpad*>& scratchpads,
       StepTracker& tracker, TimelineObserver* timeline);

  const MacArray& mac_array() const { return mac_array_; }
  Sfu& sfu() { return sfu_; }
  const Controller& controller() const { return controller_; }

 private:
  Scratchpad scratchpad_;
  MacArray mac_array_;
  Sfu sfu_;
  StochasticRounder rounder_;
  Dma dma_;
  Controller controller_;
};

}  // namespace lpt::core
