#include "models/interconnect/flow_network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/core/cycles.hpp"

namespace lpt::core {

namespace {

// Relative slack for "this resource is full" / "this flow is at its cap": the
// progressive filling subtracts shares and would otherwise miss exact zeros.
constexpr double kTolerance = 1e-9;

FlowLimiter limiter_of(ResourceClass resource_class) {
  switch (resource_class) {
    case ResourceClass::kDram: return FlowLimiter::kDram;
    case ResourceClass::kInterconnect: return FlowLimiter::kInterconnect;
    case ResourceClass::kScratchpad: return FlowLimiter::kScratchpad;
  }
  return FlowLimiter::kRateCap;
}

// Whole cycles until a flow drains, rounded to nearest (see the header).
std::uint64_t cycles_to_drain(double remaining, double rate) {
  const double cycles = remaining / rate;
  if (cycles < 0.5) return 0;
  return static_cast<std::uint64_t>(std::min(cycles, 1e18) + 0.5);
}

}  // namespace

const char* to_string(ResourceClass resource_class) {
  switch (resource_class) {
    case ResourceClass::kDram: return "dram";
    case ResourceClass::kInterconnect: return "interconnect";
    case ResourceClass::kScratchpad: return "scratchpad";
  }
  return "?";
}

FlowNetwork::FlowNetwork(sc_core::sc_module_name name) : sc_core::sc_module(name) {
  SC_METHOD(wake);
  sensitive << wake_event_;
  dont_initialize();
}

ResourceId FlowNetwork::add_resource(std::string name, ResourceClass resource_class,
                                     double bytes_per_cycle) {
  if (!(bytes_per_cycle > 0) || !std::isfinite(bytes_per_cycle))
    throw std::invalid_argument("flow resource " + name + ": bandwidth must be positive");
  Resource resource{std::move(name), resource_class, bytes_per_cycle};
  resource.spare = bytes_per_cycle;
  resources_.push_back(std::move(resource));
  return static_cast<ResourceId>(resources_.size() - 1);
}

void FlowNetwork::start(const FlowSpec& spec) {
  if (spec.listener == nullptr) throw std::invalid_argument("flow without a listener");
  if (!(spec.rate_cap > 0)) throw std::invalid_argument("flow rate cap must be positive");
  if (spec.path.empty() && std::isinf(spec.rate_cap))
    throw std::invalid_argument("flow with neither a resource nor a rate cap");
  for (ResourceId id : spec.path)
    if (id < 0 || static_cast<std::size_t>(id) >= resources_.size())
      throw std::invalid_argument("flow over unknown resource " + std::to_string(id));

  const std::uint64_t now = now_cycles();
  advance_to(now);

  int slot;
  if (free_slots_.empty()) {
    slot = static_cast<int>(flows_.size());
    flows_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  Flow& flow = flows_[slot];
  flow.path.assign(spec.path.begin(), spec.path.end());
  flow.bytes = spec.bytes;
  flow.remaining = static_cast<double>(spec.bytes);
  flow.rate = 0;
  flow.rate_cap = spec.rate_cap;
  flow.latency_cycles = spec.latency_cycles;
  flow.latency_class = spec.latency_class;
  flow.listener = spec.listener;
  flow.tag = spec.tag;
  flow.start_cycle = now;
  flow.limited_cycles.fill(0);
  for (ResourceId id : flow.path) resources_[id].bytes_carried += spec.bytes;

  if (spec.bytes == 0) {
    in_latency_.emplace(now + spec.latency_cycles, slot);
  } else {
    active_.push_back(slot);
    if (fits_in_spare_bandwidth(flow)) {
      // A capped flow that fits in what every resource on its path has spare
      // changes nobody else's max-min share: it simply runs at its cap.
      flow.rate = flow.rate_cap;
      flow.limiter = FlowLimiter::kRateCap;
      for (ResourceId id : flow.path) resources_[id].spare -= flow.rate;
    } else {
      // Rates are shared out once per delta cycle, in wake(), so that the
      // many flows a controller or DMA starts at one instant cost one
      // allocation.
      rates_stale_ = true;
    }
  }
  wake_event_.cancel();
  wake_event_.notify(sc_core::SC_ZERO_TIME);
}

void FlowNetwork::advance_to(std::uint64_t cycle) {
  if (cycle <= last_update_cycle_) return;
  const double elapsed = static_cast<double>(cycle - last_update_cycle_);
  for (int slot : active_) {
    Flow& flow = flows_[slot];
    flow.remaining -= flow.rate * elapsed;
    flow.limited_cycles[static_cast<int>(flow.limiter)] += elapsed;
  }
  last_update_cycle_ = cycle;
}

bool FlowNetwork::fits_in_spare_bandwidth(const Flow& flow) const {
  if (rates_stale_ || std::isinf(flow.rate_cap)) return false;
  for (ResourceId id : flow.path)
    if (resources_[id].spare < flow.rate_cap) return false;
  return true;
}

bool FlowNetwork::retire_drained_flows(std::uint64_t cycle) {
  bool retired = false;
  for (std::size_t i = 0; i < active_.size();) {
    const Flow& flow = flows_[active_[i]];
    if (cycles_to_drain(flow.remaining, flow.rate) == 0) {
      // A flow held only by its own cap, on resources none of which is full,
      // limited nobody: the others keep their rates without a reallocation.
      bool others_unaffected = flow.limiter == FlowLimiter::kRateCap;
      for (ResourceId id : flow.path) {
        Resource& r = resources_[id];
        if (r.spare <= kTolerance * r.capacity) others_unaffected = false;
        r.spare += flow.rate;
      }
      if (!others_unaffected) rates_stale_ = true;
      in_latency_.emplace(cycle + flow.latency_cycles, active_[i]);
      active_[i] = active_.back();
      active_.pop_back();
      retired = true;
    } else {
      ++i;
    }
  }
  return retired;
}

// Max-min fair rates by progressive filling: raise all unfrozen flows' rate
// together until a resource saturates or a flow reaches its cap; freeze those
// flows at that level and continue with the rest.
void FlowNetwork::allocate_rates() {
  rates_stale_ = false;
  touched_.clear();
  for (int slot : active_) {
    Flow& flow = flows_[slot];
    flow.frozen = false;
    flow.rate = 0;
    for (ResourceId id : flow.path) {
      Resource& r = resources_[id];
      if (!r.touched) {
        r.touched = true;
        r.unallocated = r.capacity;
        r.unfrozen_flows = 0;
        touched_.push_back(id);
      }
      ++r.unfrozen_flows;
    }
  }
  std::size_t unfrozen = active_.size();
  double level = 0;
  while (unfrozen > 0) {
    double step = std::numeric_limits<double>::infinity();
    for (ResourceId id : touched_) {
      const Resource& r = resources_[id];
      if (r.unfrozen_flows > 0) step = std::min(step, r.unallocated / r.unfrozen_flows);
    }
    for (int slot : active_) {
      const Flow& flow = flows_[slot];
      if (!flow.frozen) step = std::min(step, flow.rate_cap - level);
    }
    level += step;
    for (ResourceId id : touched_) {
      Resource& r = resources_[id];
      r.unallocated -= step * r.unfrozen_flows;
    }
    for (int slot : active_) {
      Flow& flow = flows_[slot];
      if (flow.frozen) continue;
      bool freeze = false;
      if (std::isfinite(flow.rate_cap) && flow.rate_cap - level <= kTolerance * flow.rate_cap) {
        freeze = true;
        flow.limiter = FlowLimiter::kRateCap;
      } else {
        for (ResourceId id : flow.path) {
          const Resource& r = resources_[id];
          if (r.unallocated <= kTolerance * r.capacity) {
            freeze = true;
            flow.limiter = limiter_of(r.resource_class);
            break;
          }
        }
      }
      if (!freeze) continue;
      flow.frozen = true;
      flow.rate = level;
      for (ResourceId id : flow.path) --resources_[id].unfrozen_flows;
      --unfrozen;
    }
  }
  for (ResourceId id : touched_) {
    Resource& r = resources_[id];
    r.touched = false;
    r.spare = std::max(0.0, r.unallocated);
  }
}

void FlowNetwork::schedule_wake(std::uint64_t cycle) {
  std::uint64_t next = std::numeric_limits<std::uint64_t>::max();
  for (int slot : active_) {
    const Flow& flow = flows_[slot];
    next = std::min(next, cycles_to_drain(flow.remaining, flow.rate));
  }
  if (!in_latency_.empty()) next = std::min(next, in_latency_.top().first - cycle);
  wake_event_.cancel();
  if (next == std::numeric_limits<std::uint64_t>::max()) return;
  if (next == 0)
    wake_event_.notify(sc_core::SC_ZERO_TIME);
  else
    wake_event_.notify(cycles_to_time(next));
}

FlowLimiter FlowNetwork::dominant_limiter(const Flow& flow) const {
  std::array<double, kFlowLimiterCount> held = flow.limited_cycles;
  held[static_cast<int>(limiter_of(flow.latency_class))] += static_cast<double>(flow.latency_cycles);
  const auto most = std::max_element(held.begin(), held.end());
  if (*most <= 0) return FlowLimiter::kRateCap;
  return static_cast<FlowLimiter>(most - held.begin());
}

void FlowNetwork::wake() {
  const std::uint64_t now = now_cycles();
  advance_to(now);
  // Retiring flows and the flows their listeners start at once (a DMA's next
  // queued transfer) share one rate allocation per round.
  for (;;) {
    if (rates_stale_) allocate_rates();
    const bool retired = retire_drained_flows(now);
    const bool completions_due = !in_latency_.empty() && in_latency_.top().first <= now;
    if (!retired && !completions_due) break;
    finished_.clear();
    while (!in_latency_.empty() && in_latency_.top().first <= now) {
      finished_.push_back(in_latency_.top().second);
      in_latency_.pop();
    }
    for (int slot : finished_) {
      const Flow& flow = flows_[slot];
      const FlowResult result{flow.start_cycle, now, dominant_limiter(flow)};
      FlowListener* listener = flow.listener;
      const std::uint64_t tag = flow.tag;
      // Free the slot first: the listener may start the next flow in it.
      free_slots_.push_back(slot);
      ++flows_completed_;
      listener->on_flow_done(tag, result);
    }
  }
  schedule_wake(now);
}

}  // namespace lpt::core
