// Ring routing: shortest direction, ties clockwise, unidirectional rings.
#include <gtest/gtest.h>

#include "models/interconnect/ring.hpp"

namespace lpt::core {
namespace {

RingParams ring_params(bool bidirectional) {
  return {"ring", bidirectional, 64, 2};
}

TEST(Ring, TakesTheShorterDirection) {
  FlowNetwork network("network");
  Ring ring("ring", ring_params(true), 5, network);
  std::vector<ResourceId> path;
  EXPECT_EQ(ring.route(0, 2, path), 2);
  EXPECT_EQ(path, (std::vector<ResourceId>{ring.clockwise_link(0), ring.clockwise_link(1)}));
  path.clear();
  EXPECT_EQ(ring.route(0, 3, path), 2);
  EXPECT_EQ(path, (std::vector<ResourceId>{ring.counter_clockwise_link(0),
                                           ring.counter_clockwise_link(4)}));
  path.clear();
  EXPECT_EQ(ring.route(3, 3, path), 0);
  EXPECT_TRUE(path.empty());
  EXPECT_EQ(network.resource_count(), 10u);  // 5 links per direction
  EXPECT_EQ(ring.hop_latency_cycles(), 2u);
}

TEST(Ring, TiesGoClockwise) {
  FlowNetwork network("network");
  Ring ring("ring", ring_params(true), 4, network);
  std::vector<ResourceId> path;
  EXPECT_EQ(ring.route(1, 3, path), 2);
  EXPECT_EQ(path, (std::vector<ResourceId>{ring.clockwise_link(1), ring.clockwise_link(2)}));
}

TEST(Ring, UnidirectionalGoesTheLongWayRound) {
  FlowNetwork network("network");
  Ring ring("ring", ring_params(false), 4, network);
  std::vector<ResourceId> path;
  EXPECT_EQ(ring.route(0, 3, path), 3);
  EXPECT_EQ(network.resource_count(), 4u);
  EXPECT_THROW(ring.counter_clockwise_link(0), std::out_of_range);
  EXPECT_THROW(ring.route(0, 4, path), std::out_of_range);
}

TEST(Ring, NeedsTwoStops) {
  FlowNetwork network("network");
  EXPECT_THROW(Ring("ring", ring_params(true), 1, network), std::invalid_argument);
}

}  // namespace
}  // namespace lpt::core
