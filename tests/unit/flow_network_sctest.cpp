// The flow-level bandwidth model: sharing, bottlenecks, fairness, caps and
// latency, checked against completion times worked out by hand.
// Each test elaborates and simulates once (each runs in its own process).
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "models/core/cycles.hpp"
#include "models/interconnect/flow_network.hpp"

namespace lpt::core {
namespace {

struct PlannedFlow {
  std::uint64_t start_cycle = 0;
  std::vector<ResourceId> path;
  std::uint64_t bytes = 0;
  double rate_cap = std::numeric_limits<double>::infinity();
  std::uint64_t latency = 0;
  ResourceClass latency_class = ResourceClass::kInterconnect;
};

// Starts the planned flows at their cycles and records each result by index.
class FlowScript : public sc_core::sc_module, public FlowListener {
 public:
  SC_HAS_PROCESS(FlowScript);
  FlowScript(sc_core::sc_module_name name, FlowNetwork& network, std::vector<PlannedFlow> plan)
      : sc_core::sc_module(name), network_(network), plan_(std::move(plan)) {
    SC_THREAD(run);
  }
  std::map<std::uint64_t, FlowResult> results;

  void on_flow_done(std::uint64_t tag, const FlowResult& result) override { results[tag] = result; }

 private:
  void run() {
    for (std::size_t i = 0; i < plan_.size(); ++i) {
      const PlannedFlow& p = plan_[i];
      if (p.start_cycle > now_cycles()) wait(cycles_to_time(p.start_cycle - now_cycles()));
      FlowSpec spec;
      spec.path = p.path;
      spec.bytes = p.bytes;
      spec.rate_cap = p.rate_cap;
      spec.latency_cycles = p.latency;
      spec.latency_class = p.latency_class;
      spec.listener = this;
      spec.tag = i;
      network_.start(spec);
    }
  }
  FlowNetwork& network_;
  std::vector<PlannedFlow> plan_;
};

struct Fixture {
  FlowNetwork network{"network"};
  std::unique_ptr<FlowScript> script;
  void run(std::vector<PlannedFlow> plan) {
    script = std::make_unique<FlowScript>("script", network, std::move(plan));
    sc_core::sc_start();
  }
  const FlowResult& result(std::uint64_t i) const { return script->results.at(i); }
};

TEST(FlowNetwork, OneTransferAloneTakesBytesOverBandwidth) {
  Fixture f;
  const ResourceId link = f.network.add_resource("link", ResourceClass::kInterconnect, 100);
  f.run({{0, {link}, 1000}});
  EXPECT_EQ(f.result(0).end_cycle, 10u);
  EXPECT_EQ(f.result(0).limiter, FlowLimiter::kInterconnect);
  EXPECT_EQ(f.network.resource_bytes(link), 1000u);
  EXPECT_EQ(f.network.flows_completed(), 1u);
}

TEST(FlowNetwork, TwoTransfersSharingALinkTakeTwiceAsLong) {
  Fixture f;
  const ResourceId link = f.network.add_resource("link", ResourceClass::kInterconnect, 100);
  f.run({{0, {link}, 1000}, {0, {link}, 1000}});
  EXPECT_EQ(f.result(0).end_cycle, 20u);
  EXPECT_EQ(f.result(1).end_cycle, 20u);
}

TEST(FlowNetwork, TheNarrowestResourceOnThePathLimits) {
  Fixture f;
  const ResourceId slow_dram = f.network.add_resource("dram", ResourceClass::kDram, 50);
  const ResourceId fast_dram = f.network.add_resource("dram2", ResourceClass::kDram, 400);
  const ResourceId link_a = f.network.add_resource("a", ResourceClass::kInterconnect, 100);
  const ResourceId link_b = f.network.add_resource("b", ResourceClass::kInterconnect, 100);
  f.run({{0, {slow_dram, link_a}, 1000}, {0, {fast_dram, link_b}, 1000}});
  EXPECT_EQ(f.result(0).end_cycle, 20u);
  EXPECT_EQ(f.result(0).limiter, FlowLimiter::kDram);
  EXPECT_EQ(f.result(1).end_cycle, 10u);
  EXPECT_EQ(f.result(1).limiter, FlowLimiter::kInterconnect);
}

TEST(FlowNetwork, MaxMinFairnessWithThreeFlows) {
  // A over L1 (100 B/c); B over L1 and L2 (40 B/c); C over L2.
  // L2 saturates first at 20 each for B and C; A takes the rest of L1: 80.
  // A: 800 B -> 10 cycles; B: 200 B -> 10; C: 200 B by cycle 10, then alone on
  // L2 at 40 B/c for its last 200 B -> 15.
  Fixture f;
  const ResourceId l1 = f.network.add_resource("l1", ResourceClass::kInterconnect, 100);
  const ResourceId l2 = f.network.add_resource("l2", ResourceClass::kDram, 40);
  f.run({{0, {l1}, 800}, {0, {l1, l2}, 200}, {0, {l2}, 400}});
  EXPECT_EQ(f.result(0).end_cycle, 10u);
  EXPECT_EQ(f.result(0).limiter, FlowLimiter::kInterconnect);
  EXPECT_EQ(f.result(1).end_cycle, 10u);
  EXPECT_EQ(f.result(1).limiter, FlowLimiter::kDram);
  EXPECT_EQ(f.result(2).end_cycle, 15u);
}

TEST(FlowNetwork, LateStarterSharesFromItsStart) {
  // A alone for 5 cycles (500 B done), then A and B share 50/50:
  // A's last 500 B and B's 500 B both take 10 more cycles.
  Fixture f;
  const ResourceId link = f.network.add_resource("link", ResourceClass::kInterconnect, 100);
  f.run({{0, {link}, 1000}, {5, {link}, 500}});
  EXPECT_EQ(f.result(0).end_cycle, 15u);
  EXPECT_EQ(f.result(1).start_cycle, 5u);
  EXPECT_EQ(f.result(1).end_cycle, 15u);
}

TEST(FlowNetwork, RateCapLeavesTheRestToOthers) {
  // The capped flow takes 10 B/c (100 cycles); the other gets 90 B/c.
  Fixture f;
  const ResourceId port = f.network.add_resource("port", ResourceClass::kScratchpad, 100);
  f.run({{0, {port}, 1000, 10.0}, {0, {port}, 900}});
  EXPECT_EQ(f.result(0).end_cycle, 100u);
  EXPECT_EQ(f.result(0).limiter, FlowLimiter::kRateCap);
  EXPECT_EQ(f.result(1).end_cycle, 10u);
  EXPECT_EQ(f.result(1).limiter, FlowLimiter::kScratchpad);
}

TEST(FlowNetwork, OthersSpeedUpWhenACappedFlowLeavesAFullResource) {
  // Capped flow A (30 B/c, 300 B) and uncapped B (1000 B) on a 100 B/c port:
  // A at 30, B at 70 until cycle 10; then B alone at 100 for its last 300 B.
  Fixture f;
  const ResourceId port = f.network.add_resource("port", ResourceClass::kScratchpad, 100);
  f.run({{0, {port}, 300, 30.0}, {0, {port}, 1000}});
  EXPECT_EQ(f.result(0).end_cycle, 10u);
  EXPECT_EQ(f.result(1).end_cycle, 13u);
}

TEST(FlowNetwork, CapAboveTheFairShareDoesNotBind) {
  // Cap 60 exceeds the fair share of 50: both run at 50. A (600 B) ends at
  // 12; B (1000 B) has 400 B left and finishes alone at 100 B/c by 16.
  Fixture f;
  const ResourceId port = f.network.add_resource("port", ResourceClass::kScratchpad, 100);
  f.run({{0, {port}, 600, 60.0}, {0, {port}, 1000}});
  EXPECT_EQ(f.result(0).end_cycle, 12u);
  EXPECT_EQ(f.result(0).limiter, FlowLimiter::kScratchpad);
  EXPECT_EQ(f.result(1).end_cycle, 16u);
}

TEST(FlowNetwork, LatencyIsAddedAfterTheLastByte) {
  Fixture f;
  const ResourceId link = f.network.add_resource("link", ResourceClass::kInterconnect, 100);
  f.run({{0, {link}, 1000, std::numeric_limits<double>::infinity(), 7},
         {0, {link}, 0, std::numeric_limits<double>::infinity(), 5, ResourceClass::kDram}});
  // The zero-byte flow takes no bandwidth, so the other drains alone.
  EXPECT_EQ(f.result(0).end_cycle, 17u);
  EXPECT_EQ(f.result(1).end_cycle, 5u);
  EXPECT_EQ(f.result(1).limiter, FlowLimiter::kDram);
}

TEST(FlowNetwork, LongLatencyDominatesTheLimiter) {
  // 10 cycles on the link, then 160 cycles of DRAM latency: DRAM limited it.
  Fixture f;
  const ResourceId link = f.network.add_resource("link", ResourceClass::kInterconnect, 100);
  f.run({{0, {link}, 1000, std::numeric_limits<double>::infinity(), 160, ResourceClass::kDram}});
  EXPECT_EQ(f.result(0).end_cycle, 170u);
  EXPECT_EQ(f.result(0).limiter, FlowLimiter::kDram);
}

TEST(FlowNetwork, FlowsFarBelowACycleTakeNone) {
  Fixture f;
  const ResourceId wide = f.network.add_resource("wide", ResourceClass::kDram, 1e12);
  f.run({{3, {wide}, 4096}});
  EXPECT_EQ(f.result(0).start_cycle, 3u);
  EXPECT_EQ(f.result(0).end_cycle, 3u);
}

TEST(FlowNetwork, RejectsMalformedFlows) {
  FlowNetwork network("network");
  EXPECT_THROW(network.add_resource("bad", ResourceClass::kDram, 0), std::invalid_argument);
  const ResourceId link = network.add_resource("link", ResourceClass::kInterconnect, 1);
  struct Sink : FlowListener {
    void on_flow_done(std::uint64_t, const FlowResult&) override {}
  } sink;
  FlowSpec unbounded;
  unbounded.bytes = 1;
  unbounded.listener = &sink;
  EXPECT_THROW(network.start(unbounded), std::invalid_argument);
  const std::vector<ResourceId> bad_path{link + 1};
  FlowSpec unknown = unbounded;
  unknown.path = bad_path;
  EXPECT_THROW(network.start(unknown), std::invalid_argument);
}

}  // namespace
}  // namespace lpt::core
