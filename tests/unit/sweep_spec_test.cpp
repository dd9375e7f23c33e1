// Sweep specs: parsing with path-aware errors, and the expansion of axes into
// points (cartesian products, zipped groups, ranges) and constraints.
#include "sim/sweep_spec.hpp"

#include <gtest/gtest.h>

namespace lpt {
namespace {

SweepSpec parse(const nlohmann::json& json) { return parse_sweep_spec(JsonReader(json, ""), "specs/spec.json"); }

std::string error_of(const nlohmann::json& json) {
  try {
    parse(json);
  } catch (const InputError& e) {
    return e.json_path() + ": " + e.message();
  }
  return "accepted";
}

nlohmann::json minimal() { return {{"config", "c.json"}, {"traces", {"t.json"}}}; }

TEST(SweepSpec, PathsAreRelativeToTheSpecAndMetricsDefault) {
  const SweepSpec spec = parse(minimal());
  EXPECT_EQ(spec.config, std::filesystem::path("specs/c.json"));
  EXPECT_EQ(spec.traces, std::vector<std::filesystem::path>{"specs/t.json"});
  EXPECT_EQ(spec.metrics, default_metrics());
  EXPECT_EQ(expand_points(spec).size(), 1u);  // no axes: the base config once
}

TEST(SweepSpec, AxesExpandToTheirCartesianProductLastFastest) {
  auto json = minimal();
  json["axes"] = {{{"set", "/chip/cores"}, {"values", {1, 2}}},
                  {{"set", "/chip/core/scratchpad/size_kib"}, {"range", {{"from", 512}, {"to", 1536}, {"step", 512}}}}};
  const auto points = expand_points(parse(json));
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0][0].value, 1);
  EXPECT_EQ(points[0][1].value, 512);
  EXPECT_EQ(points[1][1].value, 1024);
  EXPECT_EQ(points[3][0].value, 2);
  EXPECT_EQ(points[5][1].value, 1536);
  EXPECT_TRUE(points[5][1].value.is_number_integer());
  EXPECT_EQ(override_text(points[5][1]), "/chip/core/scratchpad/size_kib=1536");
}

TEST(SweepSpec, ZippedMembersAdvanceTogetherAndLogRangesAreGeometric) {
  auto json = minimal();
  json["axes"] = {{{"zip", {{{"set", "/a"}, {"values", {8, 16}}}, {{"set", "/b"}, {"values", {"x", "y"}}}}}},
                  {{"set", "/c"}, {"log_range", {{"from", 12.5}, {"to", 100}, {"points", 4}}}}};
  const auto points = expand_points(parse(json));
  ASSERT_EQ(points.size(), 8u);
  EXPECT_EQ(points[0][0].value, 8);
  EXPECT_EQ(points[0][1].value, "x");
  EXPECT_EQ(points[4][0].value, 16);
  EXPECT_EQ(points[4][1].value, "y");
  EXPECT_DOUBLE_EQ(points[0][2].value.get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(points[1][2].value.get<double>(), 25);
  EXPECT_DOUBLE_EQ(points[3][2].value.get<double>(), 100);
}

TEST(SweepSpec, ConstraintsCompareValuesOfThePointsConfig) {
  auto json = minimal();
  json["constraints"] = {{{"left", "/rows"}, {"op", "<="}, {"right", "/cols"}},
                         {{"left", "/cores"}, {"op", "!="}, {"right", 3}}};
  const SweepSpec spec = parse(json);
  EXPECT_TRUE(satisfies(spec.constraints, {{"rows", 8}, {"cols", 16}, {"cores", 4}}));
  EXPECT_FALSE(satisfies(spec.constraints, {{"rows", 32}, {"cols", 16}, {"cores", 4}}));
  EXPECT_FALSE(satisfies(spec.constraints, {{"rows", 8}, {"cols", 16}, {"cores", 3}}));
  EXPECT_FALSE(satisfies(spec.constraints, {{"cols", 16}, {"cores", 4}}));  // a missing value fails
}

TEST(SweepSpec, MistakesNameTheirPath) {
  auto json = minimal();
  json["axes"] = {{{"set", "/a"}, {"values", {1}}, {"range", {{"from", 1}, {"to", 2}, {"step", 1}}}}};
  EXPECT_NE(error_of(json).find("/axes/0: an axis gives exactly one of"), std::string::npos) << error_of(json);
  json["axes"] = {{{"zip", {{{"set", "/a"}, {"values", {1, 2}}}, {{"set", "/b"}, {"values", {1}}}}}}};
  EXPECT_NE(error_of(json).find("/axes/0/zip/1: a zipped axis has as many values"), std::string::npos);
  json["axes"] = {{{"set", "/a"}, {"zip", {{{"set", "/b"}, {"values", {1}}}}}}};
  EXPECT_NE(error_of(json).find("/axes/0: a zipped axis gives \"set\" and its values in each member"),
            std::string::npos)
      << error_of(json);
  json["axes"] = {{{"values", {1}}}};
  EXPECT_NE(error_of(json).find("/axes/0/set: missing required key"), std::string::npos) << error_of(json);
  json["axes"] = {{{"set", "cores"}, {"values", {1}}}};
  EXPECT_NE(error_of(json).find("/axes/0/set: expected a JSON pointer"), std::string::npos);
  json["axes"] = {{{"set", "/a"}, {"range", {{"from", 4}, {"to", 2}, {"step", 1}}}}};
  EXPECT_NE(error_of(json).find("/axes/0/range/to"), std::string::npos);
  json = minimal();
  json["constraints"] = {{{"left", "/a"}, {"op", "=~"}, {"right", 1}}};
  EXPECT_NE(error_of(json).find("/constraints/0/op"), std::string::npos);
  json = minimal();
  json["run"] = {{"phases", {"fwd", "backward"}}};
  EXPECT_NE(error_of(json).find("/run/phases/1"), std::string::npos);
  json = minimal();
  json["axis"] = nlohmann::json::array();
  EXPECT_NE(error_of(json).find("/axis: unknown key; expected one of"), std::string::npos);
  json = minimal();
  json["axes"] = nlohmann::json::array();
  for (int i = 0; i < 3; ++i)
    json["axes"].push_back({{"set", "/x" + std::to_string(i)}, {"range", {{"from", 1}, {"to", 1000}, {"step", 1}}}});
  EXPECT_NE(error_of(json).find("points; split the sweep"), std::string::npos);
}

}  // namespace
}  // namespace lpt
