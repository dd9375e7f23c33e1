#include "models/core/core.hpp"

namespace lpt::core {

Core::Core(sc_core::sc_module_name name, int index, const CoreParams& params,
           const Program& program, FlowNetwork& network, Ring& ring, Dram& dram,
           std::vector<Scratchpad*>& scratchpads, StepTracker& tracker, TimelineObserver* timeline)
    : sc_core::sc_module(name),
      scratchpad_("scratchpad", params.scratchpad, network),
      mac_array_("mac_array", params.mac_array, scratchpad_, network),
      sfu_("sfu", params.sfu),
      rounder_("rounder", params.rounder),
      dma_("dma", params.dma, network, ring, dram, scratchpads, index, timeline),
      controller_("controller", index, params.scratchpad.buffer_slots, program,
                  CoreUnits{scratchpad_, mac_array_, sfu_, rounder_, dma_}, tracker, timeline) {
  scratchpads.at(static_cast<std::size_t>(index)) = &scratchpad_;
}

}  // namespace lpt::core
