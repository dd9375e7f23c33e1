#include "models/system/chip_topology.hpp"

#include <stdexcept>
#include <string>

namespace lpt::core {

ChipTopology::ChipTopology(sc_core::sc_module_name name, const SystemParams& params, double clock_ghz,
                           FlowNetwork& network)
    : sc_core::sc_module(name), params_(params), hop_latency_cycles_(params.link_latency_cycles(clock_ghz)) {
  if (params.chips < 2) throw std::invalid_argument("chip-to-chip links need at least 2 chips");
  const double bandwidth = params.link_bytes_per_cycle(clock_ghz);
  const auto ring = [&](const std::string& ring_name, int stops) {
    return std::make_unique<Ring>(ring_name.c_str(), params.bidirectional, bandwidth, hop_latency_cycles_, stops,
                                  network, ResourceClass::kChipLink);
  };
  switch (params.topology) {
    case ChipTopologyKind::kRing: rows_.push_back(ring("ring", params.chips)); break;
    case ChipTopologyKind::kTorus2d:
      for (int r = 0; r < params.torus_rows(); ++r) rows_.push_back(ring("row" + std::to_string(r), params.torus_columns()));
      for (int c = 0; c < params.torus_columns(); ++c)
        columns_.push_back(ring("column" + std::to_string(c), params.torus_rows()));
      break;
    case ChipTopologyKind::kSwitch:
      for (int c = 0; c < params.chips; ++c) {
        const std::string base = std::string(this->name()) + ".chip" + std::to_string(c);
        to_switch_.push_back(network.add_resource(base + "-switch", ResourceClass::kChipLink, bandwidth));
        from_switch_.push_back(network.add_resource(base + "+switch", ResourceClass::kChipLink, bandwidth));
      }
      break;
  }
}

int ChipTopology::route_on(const Ring& ring, int from, int to, int direction, std::vector<ResourceId>& path) const {
  // Between the two stops of a ring of two, each direction has its own link.
  if (ring.stops() == 2 && from != to && direction < 0 && params_.bidirectional) {
    path.push_back(ring.counter_clockwise_link(from));
    return 1;
  }
  return ring.route(from, to, path);
}

int ChipTopology::route(int from, int to, int direction, std::vector<ResourceId>& path) const {
  if (from < 0 || from >= params_.chips || to < 0 || to >= params_.chips)
    throw std::out_of_range("chip out of range");
  if (from == to) return 0;
  switch (params_.topology) {
    case ChipTopologyKind::kRing: return route_on(*rows_.front(), from, to, direction, path);
    case ChipTopologyKind::kTorus2d: {
      const int columns = params_.torus_columns();
      const int from_row = from / columns, from_column = from % columns;
      const int to_row = to / columns, to_column = to % columns;
      // Along the row to the destination's column, then along that column.
      const int along_row =
          route_on(*rows_[static_cast<std::size_t>(from_row)], from_column, to_column, direction, path);
      return along_row + route_on(*columns_[static_cast<std::size_t>(to_column)], from_row, to_row, direction, path);
    }
    case ChipTopologyKind::kSwitch:
      path.push_back(to_switch_[static_cast<std::size_t>(from)]);
      path.push_back(from_switch_[static_cast<std::size_t>(to)]);
      return 2;
  }
  return 0;
}

}  // namespace lpt::core
