// DRAM: one pool of bandwidth shared by all channels (they are address-
// interleaved at fine grain, so any large transfer spreads over all of them)
// plus a fixed access latency. The memory controller sits at its own ring
// stop, and so does the chip's link to host memory, if it has one.
#pragma once

#include <cstdint>
#include <optional>

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
  // The host link (one resource per direction); requires ChipParams::host_link.
  ResourceId host_resource(bool to_host) const;
  std::uint64_t host_latency_cycles() const { return host_latency_cycles_; }
  double bytes_per_cycle() const { return bytes_per_cycle_; }

 private:
  double bytes_per_cycle_;
  std::uint64_t latency_cycles_;
  ResourceId resource_;
  std::optional<ResourceId> from_host_, to_host_;
  std::uint64_t host_latency_cycles_ = 0;
};

}  // namespace lpt::core
