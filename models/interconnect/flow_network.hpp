// Shared bandwidth as a flow-level model.
//
// Contended resources (the DRAM channel pool, each directed ring link, each
// core's scratchpad ports) have a bandwidth in bytes per cycle. A transfer is a
// flow over a path of resources; all active flows share bandwidth by max-min
// fairness (progressive filling, in MaxMinFairShare), recomputed only when
// flows start or end (at most once per delta cycle, and not at all for a
// capped flow that fits in the spare bandwidth of its path). One SC_METHOD
// wakes at the next completion, so the event count grows with transfers, not
// cycles or bytes. A flow may carry a rate cap (e.g. the MAC array cannot
// consume operands faster than its systolic schedule), and its completion
// adds the fixed latency of its path after its last byte drains.
//
// Times are whole cycles: a flow finishes at the cycle nearest to its exact
// drain time, so a flow much shorter than a cycle takes none (an "unbounded"
// memory really is free) and equal shares divide exactly.
//
// At completion a flow reports which resource class limited it most: the one
// whose saturation held its rate for most of its lifetime (its path latency
// counts for the class named with it), or its own rate cap.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <queue>
#include <span>
#include <string>
#include <vector>

#include <systemc>

#include "models/interconnect/max_min_fair_share.hpp"

namespace lpt::core {

const char* to_string(ResourceClass resource_class);  // "dram" | "interconnect" | "scratchpad" | "link"

struct FlowResult {
  std::uint64_t start_cycle = 0;
  std::uint64_t end_cycle = 0;  // last byte drained plus path latency
  FlowLimiter limiter = FlowLimiter::kRateCap;
};

class FlowListener {
 public:
  // Runs inside the network's process: it may start flows and notify events,
  // never wait.
  virtual void on_flow_done(std::uint64_t tag, const FlowResult& result) = 0;

 protected:
  ~FlowListener() = default;
};

struct FlowSpec {
  std::span<const ResourceId> path;  // copied by start()
  std::uint64_t bytes = 0;
  double rate_cap = std::numeric_limits<double>::infinity();  // bytes per cycle
  std::uint64_t latency_cycles = 0;
  ResourceClass latency_class = ResourceClass::kInterconnect;
  FlowListener* listener = nullptr;
  std::uint64_t tag = 0;  // handed back to the listener
};

class FlowNetwork : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(FlowNetwork);
  explicit FlowNetwork(sc_core::sc_module_name name);

  // During elaboration. Throws std::invalid_argument on a non-positive bandwidth.
  ResourceId add_resource(std::string name, ResourceClass resource_class, double bytes_per_cycle);

  // Starts a flow now. Throws std::invalid_argument for an unknown resource, a
  // missing listener, or a flow that nothing bounds (no resource, no cap).
  void start(const FlowSpec& spec);

  std::size_t resource_count() const { return resources_.size(); }
  const std::string& resource_name(ResourceId id) const { return resources_.at(id).name; }
  ResourceClass resource_class(ResourceId id) const { return resources_.at(id).resource_class; }
  double resource_bandwidth(ResourceId id) const { return resources_.at(id).capacity; }
  std::uint64_t resource_bytes(ResourceId id) const { return resources_.at(id).bytes_carried; }
  std::uint64_t flows_completed() const { return flows_completed_; }

 private:
  struct Resource {
    std::string name;
    ResourceClass resource_class;
    double capacity;
    std::uint64_t bytes_carried = 0;
  };
  // Rate and limiter live in rates_, under the same slot.
  struct Flow {
    std::uint64_t bytes = 0;
    double remaining = 0;
    std::uint64_t latency_cycles = 0;
    ResourceClass latency_class = ResourceClass::kInterconnect;
    FlowListener* listener = nullptr;
    std::uint64_t tag = 0;
    std::uint64_t start_cycle = 0;
    std::array<double, kFlowLimiterCount> limited_cycles{};
  };
  using Completion = std::pair<std::uint64_t, int>;  // (cycle, flow slot)

  void wake();
  void advance_to(std::uint64_t cycle);
  struct Retired {
    bool any = false;
    // Of the flows still draining; the scan for drained flows finds it too.
    std::uint64_t next_drain_cycles = std::numeric_limits<std::uint64_t>::max();
  };
  Retired retire_drained_flows(std::uint64_t cycle);
  void schedule_wake(std::uint64_t cycle, std::uint64_t next_drain_cycles);
  FlowLimiter dominant_limiter(const Flow& flow) const;

  std::vector<Resource> resources_;
  MaxMinFairShare rates_;
  std::vector<Flow> flows_;  // slots, reused through free_slots_
  std::vector<int> free_slots_;
  std::vector<int> active_;  // slots still draining bytes
  std::priority_queue<Completion, std::vector<Completion>, std::greater<>> in_latency_;
  std::vector<int> finished_;
  std::uint64_t last_update_cycle_ = 0;
  bool rates_stale_ = false;  // flows started since the last allocation
  std::uint64_t flows_completed_ = 0;
  sc_core::sc_event wake_event_;
};

}  // namespace lpt::core
