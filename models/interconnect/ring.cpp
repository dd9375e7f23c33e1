#include "models/interconnect/ring.hpp"

#include <stdexcept>
#include <string>

namespace lpt::core {

Ring::Ring(sc_core::sc_module_name name, const RingParams& params, int stops, FlowNetwork& network)
    : Ring(name, params.bidirectional, static_cast<double>(params.link_bytes_per_cycle),
           static_cast<std::uint64_t>(params.hop_latency_cycles), stops, network) {}

Ring::Ring(sc_core::sc_module_name name, bool bidirectional, double bandwidth, std::uint64_t hop_latency_cycles,
           int stops, FlowNetwork& network, ResourceClass link_class)
    : sc_core::sc_module(name),
      stops_(stops),
      bidirectional_(bidirectional),
      hop_latency_cycles_(hop_latency_cycles) {
  if (stops < 2) throw std::invalid_argument("a ring needs at least 2 stops");
  const std::string base = this->name();
  for (int i = 0; i < stops; ++i)
    clockwise_.push_back(network.add_resource(
        base + ".cw" + std::to_string(i) + "-" + std::to_string((i + 1) % stops),
        link_class, bandwidth));
  if (bidirectional_)
    for (int i = 0; i < stops; ++i)
      counter_clockwise_.push_back(network.add_resource(
          base + ".ccw" + std::to_string(i) + "-" + std::to_string((i + stops - 1) % stops),
          link_class, bandwidth));
}

int Ring::route(int from, int to, std::vector<ResourceId>& path) const {
  if (from < 0 || from >= stops_ || to < 0 || to >= stops_)
    throw std::out_of_range("ring stop out of range");
  const int clockwise_hops = (to - from + stops_) % stops_;
  const int counter_hops = (stops_ - clockwise_hops) % stops_;
  if (bidirectional_ && counter_hops < clockwise_hops) {
    for (int hop = 0, stop = from; hop < counter_hops; ++hop, stop = (stop + stops_ - 1) % stops_)
      path.push_back(counter_clockwise_[stop]);
    return counter_hops;
  }
  for (int hop = 0, stop = from; hop < clockwise_hops; ++hop, stop = (stop + 1) % stops_)
    path.push_back(clockwise_[stop]);
  return clockwise_hops;
}

}  // namespace lpt::core
