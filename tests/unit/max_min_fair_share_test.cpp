// Max-min fair rates kept up to date as flows come and go, checked against a
// plain progressive filling recomputed from scratch over all flows, on random
// scenarios: flows on disjoint and on overlapping paths, rate caps (some equal
// to fair shares), resources of equal capacity filling at the same level.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "models/interconnect/max_min_fair_share.hpp"

namespace lpt::core {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr double kTolerance = MaxMinFairShare::kTolerance;

struct ResourceSpec {
  ResourceClass resource_class;
  double capacity;
};
struct FlowSpec {
  std::vector<ResourceId> path;
  double rate_cap = kInfinity;
};
struct Allocation {
  double rate;
  FlowLimiter limiter;
};

// Progressive filling in its plainest form: every level scans every resource
// and every unfrozen flow's whole path.
std::map<int, Allocation> full_progressive_filling(const std::vector<ResourceSpec>& resources,
                                                   const std::map<int, FlowSpec>& flows) {
  std::vector<double> unallocated;
  std::vector<int> unfrozen_on(resources.size(), 0);
  for (const ResourceSpec& r : resources) unallocated.push_back(r.capacity);
  for (const auto& [id, flow] : flows)
    for (ResourceId r : flow.path) ++unfrozen_on[static_cast<std::size_t>(r)];
  std::map<int, Allocation> result;
  double level = 0;
  while (result.size() < flows.size()) {
    double step = kInfinity;
    for (std::size_t r = 0; r < resources.size(); ++r)
      if (unfrozen_on[r] > 0) step = std::min(step, unallocated[r] / unfrozen_on[r]);
    for (const auto& [id, flow] : flows)
      if (!result.contains(id)) step = std::min(step, flow.rate_cap - level);
    level += step;
    for (std::size_t r = 0; r < resources.size(); ++r) unallocated[r] -= step * unfrozen_on[r];
    std::vector<int> frozen_now;
    for (const auto& [id, flow] : flows) {
      if (result.contains(id)) continue;
      if (std::isfinite(flow.rate_cap) && flow.rate_cap - level <= kTolerance * flow.rate_cap) {
        result[id] = {level, FlowLimiter::kRateCap};
        frozen_now.push_back(id);
        continue;
      }
      for (ResourceId r : flow.path) {
        const auto i = static_cast<std::size_t>(r);
        if (unallocated[i] <= kTolerance * resources[i].capacity) {
          result[id] = {level, limiter_of(resources[i].resource_class)};
          frozen_now.push_back(id);
          break;
        }
      }
    }
    for (int id : frozen_now)
      for (ResourceId r : flows.at(id).path) --unfrozen_on[static_cast<std::size_t>(r)];
  }
  return result;
}

// Two separate "chips" (a DRAM, a ring of links, scratchpad ports each) plus
// a link joining them, so that paths are disjoint, overlapping, or both.
class Scenario {
 public:
  explicit Scenario(unsigned seed) : random_(seed) {
    for (int chip = 0; chip < 2; ++chip) {
      Chip c;
      c.dram = add(ResourceClass::kDram, pick({16.0, 64.0}));
      for (int i = 0; i < kStops; ++i) c.links.push_back(add(ResourceClass::kInterconnect, pick({16.0, 128.0})));
      for (int i = 0; i < kStops; ++i) c.ports.push_back(add(ResourceClass::kScratchpad, pick({32.0, 100.0})));
      chips_.push_back(c);
    }
    bridge_ = add(ResourceClass::kInterconnect, 16.0);
  }

  const std::vector<ResourceSpec>& resources() const { return resources_; }

  FlowSpec random_flow() {
    FlowSpec flow;
    const Chip& chip = chips_[uniform(0, 1)];
    const int kind = uniform(0, 9);
    if (kind <= 2) {
      // An operand read: one port, capped at the array's pace.
      flow.path = {chip.ports[static_cast<std::size_t>(uniform(0, kStops - 1))]};
      flow.rate_cap = pick({3.0, 8.0, 12.5, 32.0, 50.0});
      return flow;
    }
    // A DMA transfer: DRAM or a port, a run of links, a port (or DRAM); now
    // and then it crosses to the other chip, or into a port twice (a copy
    // within one scratchpad).
    const int from = uniform(0, kStops - 1), hops = uniform(0, kStops - 1);
    flow.path.push_back(kind <= 5 ? chip.dram : chip.ports[static_cast<std::size_t>(from)]);
    for (int h = 0; h < hops; ++h) flow.path.push_back(chip.links[static_cast<std::size_t>((from + h) % kStops)]);
    if (kind == 9) {
      flow.path.push_back(bridge_);
      flow.path.push_back(chips_[0].dram == chip.dram ? chips_[1].dram : chips_[0].dram);
    } else if (hops == 0 && kind > 5) {
      flow.path.push_back(flow.path.front());
    } else {
      flow.path.push_back(chip.ports[static_cast<std::size_t>((from + hops) % kStops)]);
    }
    if (uniform(0, 4) == 0) flow.rate_cap = pick({4.0, 8.0, 16.0});
    return flow;
  }

  int uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }

 private:
  static constexpr int kStops = 6;
  struct Chip {
    ResourceId dram;
    std::vector<ResourceId> links, ports;
  };
  ResourceId add(ResourceClass resource_class, double capacity) {
    resources_.push_back({resource_class, capacity});
    return static_cast<ResourceId>(resources_.size() - 1);
  }
  double pick(std::initializer_list<double> values) {
    return *(values.begin() + uniform(0, static_cast<int>(values.size()) - 1));
  }

  std::mt19937 random_;
  std::vector<ResourceSpec> resources_;
  std::vector<Chip> chips_;
  ResourceId bridge_;
};

MaxMinFairShare share_over(const std::vector<ResourceSpec>& resources) {
  MaxMinFairShare share;
  for (const ResourceSpec& r : resources) share.add_resource(r.resource_class, r.capacity);
  return share;
}

void expect_same_rates(const MaxMinFairShare& share, const std::map<int, Allocation>& expected) {
  for (const auto& [id, allocation] : expected) {
    EXPECT_EQ(share.rate(id), allocation.rate) << "flow " << id;
    EXPECT_EQ(share.limiter(id), allocation.limiter) << "flow " << id;
  }
}

// Max-min fairness itself, independent of how the rates were computed: no
// resource is overcommitted, and every flow is at its cap or crosses a full
// resource on which no flow gets more than it does.
void expect_max_min_fair(const std::vector<ResourceSpec>& resources,
                         const std::map<int, FlowSpec>& flows, const MaxMinFairShare& share) {
  std::vector<double> load(resources.size(), 0), largest(resources.size(), 0);
  for (const auto& [id, flow] : flows)
    for (ResourceId r : flow.path) {
      load[static_cast<std::size_t>(r)] += share.rate(id);
      largest[static_cast<std::size_t>(r)] = std::max(largest[static_cast<std::size_t>(r)], share.rate(id));
    }
  for (std::size_t r = 0; r < resources.size(); ++r)
    EXPECT_LE(load[r], resources[r].capacity * (1 + 1e-6)) << "resource " << r;
  for (const auto& [id, flow] : flows) {
    const double rate = share.rate(id);
    const bool at_cap = std::abs(rate - flow.rate_cap) <= 1e-6 * flow.rate_cap;
    const bool bottlenecked = std::any_of(flow.path.begin(), flow.path.end(), [&](ResourceId r) {
      const auto i = static_cast<std::size_t>(r);
      return load[i] >= resources[i].capacity * (1 - 1e-6) && rate >= largest[i] * (1 - 1e-6);
    });
    EXPECT_TRUE(at_cap || bottlenecked) << "flow " << id << " at " << rate;
  }
}

TEST(MaxMinFairShare, KeptUpToDateItMatchesAFullRecomputation) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Scenario scenario(seed);
    MaxMinFairShare share = share_over(scenario.resources());
    std::map<int, FlowSpec> flows;
    int next_id = 0;
    std::vector<int> free_ids;
    for (int round = 0; round < 60; ++round) {
      // Some flows end and some start between allocations, as in a delta cycle.
      for (int n = scenario.uniform(0, 4); n > 0 && !flows.empty(); --n) {
        auto it = std::next(flows.begin(), scenario.uniform(0, static_cast<int>(flows.size()) - 1));
        share.remove_flow(it->first);
        free_ids.push_back(it->first);
        flows.erase(it);
      }
      for (int n = scenario.uniform(1, 8); n > 0; --n) {
        int id = next_id;
        if (!free_ids.empty()) {
          id = free_ids.back();
          free_ids.pop_back();
        } else {
          ++next_id;
        }
        flows[id] = scenario.random_flow();
        share.add_flow(id, flows[id].path, flows[id].rate_cap);
      }
      share.allocate();
      expect_same_rates(share, full_progressive_filling(scenario.resources(), flows));
      expect_max_min_fair(scenario.resources(), flows, share);

      // The same flows added afresh, in another order, get the same rates.
      MaxMinFairShare fresh = share_over(scenario.resources());
      for (auto it = flows.rbegin(); it != flows.rend(); ++it)
        fresh.add_flow(it->first, it->second.path, it->second.rate_cap);
      fresh.allocate();
      for (const auto& [id, flow] : flows) {
        EXPECT_EQ(fresh.rate(id), share.rate(id));
        EXPECT_EQ(fresh.limiter(id), share.limiter(id));
      }
      if (HasFailure()) return;
    }
  }
}

TEST(MaxMinFairShare, ShortcutsAgreeWithARecomputation) {
  // A capped flow admitted at its cap without an allocation, and a flow
  // removed without one, leave rates that a recomputation confirms.
  for (unsigned seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Scenario scenario(seed);
    MaxMinFairShare share = share_over(scenario.resources());
    std::map<int, FlowSpec> flows;
    for (int id = 0; id < 40; ++id) {
      flows[id] = scenario.random_flow();
      share.add_flow(id, flows[id].path, flows[id].rate_cap);
    }
    share.allocate();
    int checked = 0;
    for (int id = 40; id < 200; ++id) {
      if (scenario.uniform(0, 1) == 0) {
        const FlowSpec flow = scenario.random_flow();
        share.add_flow(id, flow.path, flow.rate_cap);
        flows[id] = flow;
        if (!share.run_at_cap_if_it_fits(id)) {
          share.allocate();
          continue;
        }
      } else {
        const auto victim = std::next(flows.begin(), scenario.uniform(0, static_cast<int>(flows.size()) - 1));
        const int victim_id = victim->first;
        flows.erase(victim);
        if (share.remove_flow(victim_id)) {
          share.allocate();
          continue;
        }
      }
      ++checked;
      for (const auto& [flow_id, allocation] : full_progressive_filling(scenario.resources(), flows))
        EXPECT_NEAR(share.rate(flow_id), allocation.rate, 1e-9 * allocation.rate) << "flow " << flow_id;
      if (HasFailure()) return;
    }
    EXPECT_GT(checked, 0);
  }
}

}  // namespace
}  // namespace lpt::core
