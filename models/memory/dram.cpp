#include "models/memory/dram.hpp"

#include <stdexcept>

namespace lpt::core {

Dram::Dram(sc_core::sc_module_name name, const ChipParams& chip, FlowNetwork& network)
    : sc_core::sc_module(name),
      bytes_per_cycle_(chip.dram_bytes_per_cycle()),
      latency_cycles_(chip.dram_latency_cycles()),
      resource_(network.add_resource(std::string(this->name()), ResourceClass::kDram,
                                     bytes_per_cycle_)) {
  if (!chip.host_link) return;
  // Host memory is memory: a transfer it limits is a memory (DRAM) wait.
  from_host_ = network.add_resource(std::string(this->name()) + ".from_host", ResourceClass::kDram,
                                    chip.host_bytes_per_cycle());
  to_host_ = network.add_resource(std::string(this->name()) + ".to_host", ResourceClass::kDram,
                                  chip.host_bytes_per_cycle());
  host_latency_cycles_ = chip.host_latency_cycles();
}

ResourceId Dram::host_resource(bool to_host) const {
  const std::optional<ResourceId>& link = to_host ? to_host_ : from_host_;
  if (!link) throw std::logic_error("a transfer to or from host memory on a chip without a host link");
  return *link;
}

}  // namespace lpt::core
