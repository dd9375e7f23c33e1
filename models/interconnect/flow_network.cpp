#include "models/interconnect/flow_network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/core/cycles.hpp"

namespace lpt::core {

namespace {

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
    case ResourceClass::kChipLink: return "link";
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
  resources_.push_back({std::move(name), resource_class, bytes_per_cycle});
  return rates_.add_resource(resource_class, bytes_per_cycle);
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
  flow.bytes = spec.bytes;
  flow.remaining = static_cast<double>(spec.bytes);
  flow.latency_cycles = spec.latency_cycles;
  flow.latency_class = spec.latency_class;
  flow.listener = spec.listener;
  flow.tag = spec.tag;
  flow.start_cycle = now;
  flow.limited_cycles.fill(0);
  for (ResourceId id : spec.path) resources_[id].bytes_carried += spec.bytes;

  if (spec.bytes == 0) {
    in_latency_.emplace(now + spec.latency_cycles, slot);
  } else {
    active_.push_back(slot);
    rates_.add_flow(slot, spec.path, spec.rate_cap);
    // A capped flow that fits in what every resource on its path has spare
    // changes nobody else's max-min share: it simply runs at its cap.
    if (rates_stale_ || !rates_.run_at_cap_if_it_fits(slot)) {
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
    flow.remaining -= rates_.rate(slot) * elapsed;
    flow.limited_cycles[static_cast<int>(rates_.limiter(slot))] += elapsed;
  }
  last_update_cycle_ = cycle;
}

FlowNetwork::Retired FlowNetwork::retire_drained_flows(std::uint64_t cycle) {
  Retired retired;
  for (std::size_t i = 0; i < active_.size();) {
    const int slot = active_[i];
    const std::uint64_t drain_cycles = cycles_to_drain(flows_[slot].remaining, rates_.rate(slot));
    if (drain_cycles == 0) {
      if (rates_.remove_flow(slot)) rates_stale_ = true;
      in_latency_.emplace(cycle + flows_[slot].latency_cycles, slot);
      active_[i] = active_.back();
      active_.pop_back();
      retired.any = true;
    } else {
      retired.next_drain_cycles = std::min(retired.next_drain_cycles, drain_cycles);
      ++i;
    }
  }
  return retired;
}

void FlowNetwork::schedule_wake(std::uint64_t cycle, std::uint64_t next_drain_cycles) {
  std::uint64_t next = next_drain_cycles;
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
  std::uint64_t next_drain_cycles;
  for (;;) {
    if (rates_stale_) {
      rates_.allocate();
      rates_stale_ = false;
    }
    const Retired retired = retire_drained_flows(now);
    next_drain_cycles = retired.next_drain_cycles;
    const bool completions_due = !in_latency_.empty() && in_latency_.top().first <= now;
    if (!retired.any && !completions_due) break;
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
  schedule_wake(now, next_drain_cycles);
}

}  // namespace lpt::core
