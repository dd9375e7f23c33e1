// Ring interconnect: `stops` stations (one per core plus the memory
// controller), a directed link from each stop to the next clockwise and, when
// bidirectional, one counter-clockwise. Each directed link is a flow resource.
// Routing takes the shorter direction; a tie goes clockwise, so routes are
// deterministic.
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "models/core/chip_params.hpp"
#include "models/interconnect/flow_network.hpp"

namespace lpt::core {

class Ring : public sc_core::sc_module {
 public:
  // Throws std::invalid_argument for fewer than 2 stops.
  Ring(sc_core::sc_module_name name, const RingParams& params, int stops, FlowNetwork& network);
  // The same from plain figures (chip-to-chip rings, whose bandwidth need not
  // be a whole number of bytes per cycle).
  Ring(sc_core::sc_module_name name, bool bidirectional, double link_bytes_per_cycle,
       std::uint64_t hop_latency_cycles, int stops, FlowNetwork& network,
       ResourceClass link_class = ResourceClass::kInterconnect);

  int stops() const { return stops_; }
  std::uint64_t hop_latency_cycles() const { return hop_latency_cycles_; }

  // Appends the links from stop `from` to stop `to` to `path`; returns the hops.
  int route(int from, int to, std::vector<ResourceId>& path) const;

  ResourceId clockwise_link(int from) const { return clockwise_.at(from); }
  // Throws std::out_of_range on a unidirectional ring.
  ResourceId counter_clockwise_link(int from) const { return counter_clockwise_.at(from); }

 private:
  int stops_;
  bool bidirectional_;
  std::uint64_t hop_latency_cycles_;
  std::vector<ResourceId> clockwise_;          // [i]: stop i -> i+1
  std::vector<ResourceId> counter_clockwise_;  // [i]: stop i -> i-1
};

}  // namespace lpt::core
