#include "models/interconnect/max_min_fair_share.hpp"

#include <algorithm>
#include <cmath>

namespace lpt::core {

ResourceId MaxMinFairShare::add_resource(ResourceClass resource_class, double capacity) {
  resources_.push_back(Resource{resource_class, capacity, capacity, {}});
  return static_cast<ResourceId>(resources_.size() - 1);
}

void MaxMinFairShare::add_flow(int id, std::span<const ResourceId> path, double rate_cap) {
  if (static_cast<std::size_t>(id) >= flows_.size()) flows_.resize(static_cast<std::size_t>(id) + 1);
  Flow& flow = flows_[static_cast<std::size_t>(id)];
  flow.path.assign(path.begin(), path.end());
  flow.index_in_resource.resize(path.size());
  flow.rate_cap = rate_cap;
  flow.rate = 0;
  flow.active_index = static_cast<int>(active_.size());
  active_.push_back(id);
  total_path_length_ += path.size();
  for (std::size_t i = 0; i < path.size(); ++i) {
    Resource& resource = resources_[static_cast<std::size_t>(path[i])];
    if (resource.flows.empty()) {
      resource.in_use_index = static_cast<int>(in_use_.size());
      in_use_.push_back(path[i]);
    }
    flow.index_in_resource[i] = static_cast<int>(resource.flows.size());
    resource.flows.push_back({id, static_cast<int>(i)});
  }
}

bool MaxMinFairShare::run_at_cap_if_it_fits(int id) {
  Flow& flow = flows_[static_cast<std::size_t>(id)];
  if (std::isinf(flow.rate_cap)) return false;
  // A path crossing a resource twice (a copy within one scratchpad) needs the
  // cap there twice.
  sorted_path_.assign(flow.path.begin(), flow.path.end());
  std::sort(sorted_path_.begin(), sorted_path_.end());
  for (auto run = sorted_path_.begin(); run != sorted_path_.end();) {
    const auto run_end = std::find_if(run, sorted_path_.end(), [&](ResourceId r) { return r != *run; });
    if (resources_[static_cast<std::size_t>(*run)].spare < flow.rate_cap * static_cast<double>(run_end - run))
      return false;
    run = run_end;
  }
  flow.rate = flow.rate_cap;
  flow.limiter = FlowLimiter::kRateCap;
  for (ResourceId r : flow.path) resources_[static_cast<std::size_t>(r)].spare -= flow.rate;
  return true;
}

bool MaxMinFairShare::remove_flow(int id) {
  Flow& flow = flows_[static_cast<std::size_t>(id)];
  bool others_affected = flow.limiter != FlowLimiter::kRateCap;
  for (std::size_t i = 0; i < flow.path.size(); ++i) {
    const ResourceId r = flow.path[i];
    Resource& resource = resources_[static_cast<std::size_t>(r)];
    if (full(resource)) others_affected = true;
    resource.spare += flow.rate;
    // Swap-remove this crossing; the moved one (perhaps this flow's own other
    // crossing) learns its new position.
    const int position = flow.index_in_resource[i];
    const FlowCrossing moved = resource.flows.back();
    resource.flows[static_cast<std::size_t>(position)] = moved;
    flows_[static_cast<std::size_t>(moved.id)].index_in_resource[static_cast<std::size_t>(moved.path_index)] =
        position;
    resource.flows.pop_back();
    if (resource.flows.empty()) {
      const ResourceId last = in_use_.back();
      in_use_[static_cast<std::size_t>(resource.in_use_index)] = last;
      resources_[static_cast<std::size_t>(last)].in_use_index = resource.in_use_index;
      in_use_.pop_back();
      resource.in_use_index = -1;
    }
  }
  const int last = active_.back();
  active_[static_cast<std::size_t>(flow.active_index)] = last;
  flows_[static_cast<std::size_t>(last)].active_index = flow.active_index;
  active_.pop_back();
  flow.active_index = -1;
  total_path_length_ -= flow.path.size();
  return others_affected;
}

bool MaxMinFairShare::full(const Resource& resource) const {
  return resource.spare <= kTolerance * resource.capacity;
}

bool MaxMinFairShare::saturated(const Resource& resource) const {
  return resource.unallocated <= kTolerance * resource.capacity;
}

void MaxMinFairShare::freeze(int id, double level, FlowLimiter limiter) {
  Flow& flow = flows_[static_cast<std::size_t>(id)];
  flow.frozen = true;
  flow.rate = level;
  flow.limiter = limiter;
  --unfrozen_count_;
  unfrozen_path_length_ -= flow.path.size();
  frozen_now_.push_back(id);
}

// The first resource on the path to fill, as a plain filling that checks each
// unfrozen flow's path in order would name it.
FlowLimiter MaxMinFairShare::first_saturated_on_path(const Flow& flow) const {
  for (ResourceId r : flow.path)
    if (const Resource& resource = resources_[static_cast<std::size_t>(r)]; saturated(resource))
      return limiter_of(resource.resource_class);
  return FlowLimiter::kRateCap;  // unreachable: the flow crosses a saturated resource
}

// Brings the live resources' unfrozen-flow counts up to date after a level's
// freezes: by walking the paths of the flows just frozen, or, when the flows
// still unfrozen have shorter paths in all (typically: long DRAM transfers
// froze, short operand reads remain), by counting those afresh.
void MaxMinFairShare::recount_unfrozen_flows(std::size_t cost_to_recount_all) {
  std::size_t frozen_path_length = 0;
  for (int id : frozen_now_) frozen_path_length += flows_[static_cast<std::size_t>(id)].path.size();
  if (frozen_path_length <= cost_to_recount_all) {
    for (int id : frozen_now_)
      for (ResourceId r : flows_[static_cast<std::size_t>(id)].path)
        --resources_[static_cast<std::size_t>(r)].unfrozen_flows;
  } else {
    for (ResourceId r : live_) resources_[static_cast<std::size_t>(r)].unfrozen_flows = 0;
    for (int id : active_) {
      const Flow& flow = flows_[static_cast<std::size_t>(id)];
      if (flow.frozen) continue;
      for (ResourceId r : flow.path) ++resources_[static_cast<std::size_t>(r)].unfrozen_flows;
    }
  }
  std::erase_if(live_, [this](ResourceId r) {
    return resources_[static_cast<std::size_t>(r)].unfrozen_flows == 0;
  });
}

void MaxMinFairShare::allocate() {
  live_.clear();
  for (ResourceId r : in_use_) {
    Resource& resource = resources_[static_cast<std::size_t>(r)];
    resource.unallocated = resource.capacity;
    resource.unfrozen_flows = static_cast<int>(resource.flows.size());
    live_.push_back(r);
  }
  capped_.clear();
  for (int id : active_) {
    Flow& flow = flows_[static_cast<std::size_t>(id)];
    flow.frozen = false;
    flow.rate = 0;
    if (std::isfinite(flow.rate_cap)) capped_.push_back({flow.rate_cap, id});
  }
  // A min-heap: the smallest cap first.
  const auto larger_cap = [](const CappedFlow& a, const CappedFlow& b) { return a.cap > b.cap; };
  std::make_heap(capped_.begin(), capped_.end(), larger_cap);
  const auto drop_frozen_from_capped = [&] {
    while (!capped_.empty() && flows_[static_cast<std::size_t>(capped_.front().id)].frozen) {
      std::pop_heap(capped_.begin(), capped_.end(), larger_cap);
      capped_.pop_back();
    }
  };
  unfrozen_count_ = active_.size();
  unfrozen_path_length_ = total_path_length_;

  double level = 0;
  while (unfrozen_count_ > 0) {
    double step = std::numeric_limits<double>::infinity();
    for (ResourceId r : live_) {
      const Resource& resource = resources_[static_cast<std::size_t>(r)];
      step = std::min(step, resource.unallocated / resource.unfrozen_flows);
    }
    drop_frozen_from_capped();
    // The smallest cap gives the smallest (cap - level): rounding is monotonic.
    if (!capped_.empty()) step = std::min(step, capped_.front().cap - level);
    level += step;

    saturated_.clear();
    for (ResourceId r : live_) {
      Resource& resource = resources_[static_cast<std::size_t>(r)];
      resource.unallocated -= step * resource.unfrozen_flows;
      if (saturated(resource)) saturated_.push_back(r);
    }

    // A flow at its cap counts as held by the cap even if a resource on its
    // path fills at the same level. Caps reached form a prefix of the heap.
    frozen_now_.clear();
    for (drop_frozen_from_capped();
         !capped_.empty() &&
         capped_.front().cap - level <= kTolerance * capped_.front().cap;
         drop_frozen_from_capped())
      freeze(capped_.front().id, level, FlowLimiter::kRateCap);

    const bool one_class_filled =
        std::all_of(saturated_.begin(), saturated_.end(), [&](ResourceId r) {
          return resources_[static_cast<std::size_t>(r)].resource_class ==
                 resources_[static_cast<std::size_t>(saturated_.front())].resource_class;
        });
    for (ResourceId r : saturated_) {
      const Resource& resource = resources_[static_cast<std::size_t>(r)];
      for (const FlowCrossing& crossing : resource.flows) {
        const Flow& flow = flows_[static_cast<std::size_t>(crossing.id)];
        if (flow.frozen) continue;
        freeze(crossing.id, level,
               one_class_filled ? limiter_of(resource.resource_class) : first_saturated_on_path(flow));
      }
    }
    if (unfrozen_count_ == 0) break;
    recount_unfrozen_flows(active_.size() + unfrozen_path_length_);
  }
  for (ResourceId r : in_use_) {
    Resource& resource = resources_[static_cast<std::size_t>(r)];
    resource.spare = std::max(0.0, resource.unallocated);
  }
}

}  // namespace lpt::core
