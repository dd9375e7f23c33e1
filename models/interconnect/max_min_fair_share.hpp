// Max-min fair rates of flows over shared resources, by progressive filling:
// raise the rate of every unfrozen flow together until a resource saturates
// or a flow reaches its rate cap, freeze those flows at that level, go on
// with the rest.
//
// Each resource keeps the list of flows crossing it, updated as flows come
// and go, so that an allocation costs about (resources in use + flows) per
// filling level instead of (flows x path length) per level: on a large ring
// paths run over hundreds of links. The arithmetic (the sequence of levels
// and of each resource's unallocated bandwidth) is that of a plain
// progressive filling over all flows, so the rates are bit-for-bit the same.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace lpt::core {

// kChipLink: a link between chips (models/system); it limits like the on-chip
// interconnect.
enum class ResourceClass { kDram, kInterconnect, kScratchpad, kChipLink };
// What held a flow back: a resource class or the flow's own rate cap.
enum class FlowLimiter { kDram, kInterconnect, kScratchpad, kRateCap };
inline constexpr int kFlowLimiterCount = 4;

// The limiter that a full resource of this class is.
constexpr FlowLimiter limiter_of(ResourceClass resource_class) {
  switch (resource_class) {
    case ResourceClass::kDram: return FlowLimiter::kDram;
    case ResourceClass::kInterconnect:
    case ResourceClass::kChipLink: return FlowLimiter::kInterconnect;
    case ResourceClass::kScratchpad: return FlowLimiter::kScratchpad;
  }
  return FlowLimiter::kRateCap;
}

using ResourceId = int;

class MaxMinFairShare {
 public:
  // Relative slack for "this resource is full" / "this flow is at its cap": the
  // progressive filling subtracts shares and would otherwise miss exact zeros.
  static constexpr double kTolerance = 1e-9;

  ResourceId add_resource(ResourceClass resource_class, double capacity);
  std::size_t resource_count() const { return resources_.size(); }

  // Adds flow `id` (ids are the caller's, reusable after remove_flow) with rate
  // 0 until the next allocation. The path's resources must exist.
  void add_flow(int id, std::span<const ResourceId> path, double rate_cap);
  // Runs a just added flow at its cap if that fits in the spare bandwidth of
  // every resource on its path (then nobody else's max-min share changes);
  // the spare bandwidth is exact only while no flow awaits an allocation.
  bool run_at_cap_if_it_fits(int id);
  // Returns whether the rates of the remaining flows may have changed: not if
  // the flow was held only by its cap and no resource on its path was full.
  bool remove_flow(int id);

  // Max-min fair rates for all flows.
  void allocate();

  double rate(int id) const { return flows_[static_cast<std::size_t>(id)].rate; }
  FlowLimiter limiter(int id) const { return flows_[static_cast<std::size_t>(id)].limiter; }

 private:
  struct FlowCrossing {
    int id;
    int path_index;  // which entry of the flow's path
  };
  struct Resource {
    ResourceClass resource_class;
    double capacity;
    // Capacity minus the rates of the flows on it; exact whenever the rates
    // are (flows without a rate yet add nothing).
    double spare;
    std::vector<FlowCrossing> flows;  // in no order; a flow crossing twice is in it twice
    int in_use_index = -1;   // position in in_use_, -1 when no flow crosses it
    // Scratch state of an allocation.
    double unallocated = 0;
    int unfrozen_flows = 0;
  };
  struct Flow {
    std::vector<ResourceId> path;
    std::vector<int> index_in_resource;  // [i]: position in resources_[path[i]].flows
    double rate_cap = std::numeric_limits<double>::infinity();
    double rate = 0;
    FlowLimiter limiter = FlowLimiter::kRateCap;
    int active_index = -1;  // position in active_, -1 when not added
    bool frozen = false;
  };
  struct CappedFlow {
    double cap;
    int id;
  };

  bool full(const Resource& resource) const;
  bool saturated(const Resource& resource) const;
  void freeze(int id, double level, FlowLimiter limiter);
  FlowLimiter first_saturated_on_path(const Flow& flow) const;
  void recount_unfrozen_flows(std::size_t cost_to_recount_all);

  std::vector<Resource> resources_;
  std::vector<Flow> flows_;             // by id
  std::vector<int> active_;             // ids of the added flows
  std::vector<ResourceId> in_use_;      // resources with at least one flow
  std::vector<ResourceId> sorted_path_;  // scratch of run_at_cap_if_it_fits
  std::size_t total_path_length_ = 0;   // over active_
  // Scratch state of an allocation.
  std::vector<ResourceId> live_;        // resources with unfrozen flows
  std::vector<CappedFlow> capped_;      // min-heap by cap of the unfrozen capped flows
  std::vector<ResourceId> saturated_;   // resources that filled at this level
  std::vector<int> frozen_now_;         // flows frozen at this level
  std::size_t unfrozen_count_ = 0;
  std::size_t unfrozen_path_length_ = 0;
};

}  // namespace lpt::core
