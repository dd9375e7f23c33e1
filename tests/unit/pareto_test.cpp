// Pareto fronts (sim/pareto) on hand-made points: dominance in every direction,
// ties in one objective, duplicates, missing values; objective parsing.
#include "sim/pareto.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace lpt {
namespace {

using Values = std::vector<std::vector<std::optional<double>>>;

const std::vector<Objective> kFastAndSmall = {{"/samples_per_second", true}, {"/area_mm2", false}};

TEST(ParetoFront, KeepsTheUnbeatenTiesAndDuplicates) {
  const Values points = {
      {10.0, 5.0},  // on: nothing is as fast and as small
      {8.0, 3.0},   // on: the smallest
      {6.0, 6.0},   // beaten by the first on both
      {10.0, 5.0},  // a duplicate of the first: equal points do not beat each other
      {12.0, 9.0},  // on: the fastest
      {8.0, 4.0},   // as fast as the second but larger: beaten through the tie
      {7.0, 3.0},   // as small as the second but slower: beaten through the tie
  };
  EXPECT_EQ(pareto_front(points, kFastAndSmall),
            (std::vector<bool>{true, true, false, true, true, false, false}));
}

TEST(ParetoFront, DirectionsDecide) {
  const Values points = {{10.0, 5.0}, {8.0, 3.0}, {6.0, 6.0}};
  EXPECT_EQ(pareto_front(points, {{"/a", false}, {"/b", false}}), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(pareto_front(points, {{"/a", false}, {"/b", true}}), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(pareto_front(points, {{"/a", true}, {"/b", true}}), (std::vector<bool>{true, false, true}));
}

TEST(ParetoFront, AMissingValueKeepsAPointOffAndBeatsNothing) {
  const Values points = {
      {100.0, std::nullopt},  // would beat everything on speed, but its area is unknown
      {10.0, 5.0},
      {std::nan(""), 1.0},
      {9.0, INFINITY},
  };
  EXPECT_EQ(pareto_front(points, kFastAndSmall), (std::vector<bool>{false, true, false, false}));
}

TEST(ParetoFront, OneObjectiveKeepsEveryBest) {
  EXPECT_EQ(pareto_front({{3.0}, {5.0}, {5.0}, {1.0}}, {{"/x", true}}),
            (std::vector<bool>{false, true, true, false}));
  EXPECT_TRUE(pareto_front({}, kFastAndSmall).empty());
}

TEST(ParetoFront, ValuesMustMatchTheObjectives) {
  EXPECT_THROW(pareto_front({{1.0}}, kFastAndSmall), std::invalid_argument);
}

TEST(Objective, ParsesPointerAndDirection) {
  const Objective max = parse_objective("/totals/samples_per_second:max");
  EXPECT_EQ(max.pointer, "/totals/samples_per_second");
  EXPECT_TRUE(max.maximise);
  EXPECT_FALSE(parse_objective("/a:b:min").maximise);
  EXPECT_EQ(parse_objective("/a:b:min").pointer, "/a:b");
  EXPECT_EQ(to_string(parse_objective("/x:min")), "/x:min");
  for (const char* bad : {"/x", "/x:up", "x:max", ":max", "/x:MAX", ""})
    EXPECT_THROW(parse_objective(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace lpt
