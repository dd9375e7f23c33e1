// DRAM: one pool of bandwidth shared by all channels (they are address-
// interleaved at fine grain, so any large transfer spreads over all of them)
// plus a fixed access latency. The memory controller sits at its own ring stop.
#pragma once

#include <cstdint>

#include <systemc>

#include "models/core/chip_params.hpp"
#include "models/interconnect/flow_network.hpp"

namespace lpt::core {

class Dram : public sc_core::sc_module {
 public:
  // Bandwidth and latency need the chip clock to become per-cycle figures.
  Dram(sc_core::sc_module_name name, const ChipParams& chip, FlowNetwork& network);

  ResourceId resource() const { return resource_; }
  std::uint64_t latency_cycles() const { return latency_cycles_; }
  double bytes_per_cycle() const { return bytes_per_cycle_; }

 private:
  double bytes_per_cycle_;
  std::uint64_t latency_cycles_;
  ResourceId resource_;
};

}  // namespace lpt::core
