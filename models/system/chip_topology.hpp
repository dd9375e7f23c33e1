// The links between the chips of a system, as resources of the flow network,
// and the routes over them: a ring (core::Ring, the same model as a chip's
// on-chip ring), a 2-D torus (a ring per row and per column, routed along the
// row first, then the column) or a switch (a link to and one from the switch
// per chip). Each chip's port to them sits at its memory controller's ring
// stop, so a message between chips crosses no on-chip ring link.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <systemc>

#include "models/interconnect/flow_network.hpp"
#include "models/interconnect/ring.hpp"
#include "models/system/system_params.hpp"

namespace lpt::core {

class ChipTopology : public sc_core::sc_module {
 public:
  // Needs at least 2 chips (std::invalid_argument otherwise).
  ChipTopology(sc_core::sc_module_name name, const SystemParams& params, double clock_ghz, FlowNetwork& network);

  // Appends the links from chip `from` to chip `to` to `path`; returns the
  // links crossed. `direction` (+1 or −1) picks the way round a ring between
  // two chips that are neighbours both ways; 0 lets the shorter way win.
  int route(int from, int to, int direction, std::vector<ResourceId>& path) const;
  std::uint64_t hop_latency_cycles() const { return hop_latency_cycles_; }

 private:
  int route_on(const Ring& ring, int from, int to, int direction, std::vector<ResourceId>& path) const;

  SystemParams params_;
  std::uint64_t hop_latency_cycles_;
  std::vector<std::unique_ptr<Ring>> rows_, columns_;  // a ring topology is one row
  std::vector<ResourceId> to_switch_, from_switch_;
};

}  // namespace lpt::core
