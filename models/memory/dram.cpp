#include "models/memory/dram.hpp"

namespace lpt::core {

Dram::Dram(sc_core::sc_module_name name, const ChipParams& chip, FlowNetwork& network)
    : sc_core::sc_module(name),
      bytes_per_cycle_(chip.dram_bytes_per_cycle()),
      latency_cycles_(chip.dram_latency_cycles()),
      resource_(network.add_resource(std::string(this->name()), ResourceClass::kDram,
                                     bytes_per_cycle_)) {}

}  // namespace lpt::core
