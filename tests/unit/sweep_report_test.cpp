// `lptsim report`'s tables (sim/sweep_report): reading results.jsonl (cut lines
// skipped, corrupt ones named by file and line), the CSV tables, the fronts per
// trace and a run's time breakdown.
#include "sim/sweep_report.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "models/common/json_reader.hpp"

namespace lpt {
namespace {

std::string line(const nlohmann::json& record) { return record.dump() + "\n"; }

nlohmann::json ok_point(const std::string& key, const std::string& trace, int cores, double speed, double area) {
  return {{"key", key},
          {"trace", trace},
          {"settings", {{"/chip/cores", cores}}},
          {"status", "ok"},
          {"metrics", {{"/totals/samples_per_second", speed}, {"/totals/area/total_mm2", area}}}};
}

std::string error_of(const std::string& text) {
  try {
    parse_sweep_results(text, "out/results.jsonl");
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(SweepResults, ReadsPointsAxesAndMetricsInOrderOfAppearance) {
  const std::string text =
      line(ok_point("a", "t1.json", 1, 10, 2)) +
      line({{"key", "b"}, {"trace", "t2.json"}, {"settings", {{"/chip/cores", 0}, {"/fusion", "none"}}},
            {"status", "error"}, {"error", "config.json: /cores: expected >= 1"}}) +
      "\n" + line({{"key", "c"}, {"trace", "t1.json"}, {"settings", {{"/chip/cores", 2}}}, {"status", "ok"},
                   {"metrics", {{"/totals/samples_per_second", 12}, {"/totals/cycles", nullptr}}}});
  const SweepResults r = parse_sweep_results(text, "results.jsonl");
  ASSERT_EQ(r.points.size(), 3u);
  EXPECT_EQ(r.traces, (std::vector<std::string>{"t1.json", "t2.json"}));
  EXPECT_EQ(r.axes, (std::vector<std::string>{"/chip/cores", "/fusion"}));
  EXPECT_EQ(r.metrics,
            (std::vector<std::string>{"/totals/area/total_mm2", "/totals/samples_per_second", "/totals/cycles"}));
  EXPECT_EQ(r.points[1].error, "config.json: /cores: expected >= 1");
  EXPECT_EQ(r.points[2].line, 4u);  // the blank line counts
  EXPECT_EQ(point_value(r.points[2], "/totals/samples_per_second"), 12.0);
  EXPECT_EQ(point_value(r.points[2], "/chip/cores"), 2.0);      // an axis serves too
  EXPECT_EQ(point_value(r.points[2], "/totals/cycles"), std::nullopt);  // null
  EXPECT_EQ(point_value(r.points[1], "/chip/cores"), std::nullopt);     // a failed point has no values
  EXPECT_EQ(r.cut_lines, 0u);
}

TEST(SweepResults, SkipsLinesCutShortAndNamesCorruptOnes) {
  const std::string good = line(ok_point("a", "t.json", 1, 10, 2));
  // Killed mid-line, then resumed: the cut line stays in the middle, ended by the resume.
  const SweepResults r = parse_sweep_results(good + "{\"key\": \"cut sh\n" + good + "{\"key\": \"b\", \"tr", "r");
  EXPECT_EQ(r.points.size(), 2u);
  EXPECT_EQ(r.cut_lines, 2u);

  EXPECT_EQ(error_of(good + "{\"key\": x}\n" + good).rfind("out/results.jsonl:2: not a JSON object", 0), 0u);
  EXPECT_EQ(error_of(good + "[1, 2]}\n").rfind("out/results.jsonl:2: not a JSON object", 0), 0u);
  nlohmann::json bad = ok_point("a", "t.json", 1, 10, 2);
  bad["status"] = "fine";
  EXPECT_EQ(error_of(good + good + line(bad)).rfind("out/results.jsonl:3: /status: ", 0), 0u);
  bad = ok_point("a", "t.json", 1, 10, 2);
  bad.erase("key");
  EXPECT_EQ(error_of(line(bad)).rfind("out/results.jsonl:1: /key: ", 0), 0u);
  bad = ok_point("a", "t.json", 1, 10, 2);
  bad["metrics"] = 3;
  EXPECT_EQ(error_of(line(bad)).rfind("out/results.jsonl:1: /metrics: ", 0), 0u);
}

TEST(SweepResults, DefaultObjectivesAreThoseTheResultsHold) {
  SweepResults r;
  r.metrics = {"/totals/cycles", "/totals/area/total_mm2", "/totals/energy/total_pj", "/totals/samples_per_second"};
  auto names = [](const std::vector<Objective>& objectives) {
    std::vector<std::string> out;
    for (const Objective& o : objectives) out.push_back(to_string(o));
    return out;
  };
  EXPECT_EQ(names(default_objectives(r)),
            (std::vector<std::string>{"/totals/samples_per_second:max", "/totals/energy/total_pj:min",
                                      "/totals/area/total_mm2:min"}));
  r.metrics.push_back("/totals/energy/samples_per_joule");
  EXPECT_EQ(names(default_objectives(r))[1], "/totals/energy/samples_per_joule:max");
  r.metrics = {"/totals/cycles"};
  EXPECT_TRUE(default_objectives(r).empty());
}

TEST(SweepReport, TablesAndFrontsPerTrace) {
  nlohmann::json fast_big = ok_point("k3", "b.json", 4, 30, 9);
  const std::string text =
      line(ok_point("k1", "a.json", 1, 10, 2)) + line(ok_point("k2", "a.json", 2, 9, 4)) + line(fast_big) +
      line({{"key", "k4"}, {"trace", "a.json"}, {"settings", {{"/chip/cores", 0}}}, {"status", "crashed"},
            {"error", "the worker was killed by signal 9, \"SIGKILL\""}}) +
      line(ok_point("k5", "b.json", 1, 10, 2));
  const SweepResults r = parse_sweep_results(text, "results.jsonl");
  const std::vector<Objective> objectives = {{"/totals/samples_per_second", true}, {"/totals/area/total_mm2", false}};
  // k3 is far better than a.json's points, but on another trace: each trace has its own front.
  const std::vector<bool> front = fronts_per_trace(r, objectives);
  EXPECT_EQ(front, (std::vector<bool>{true, false, true, false, true}));

  std::ostringstream table;
  write_results_csv(r, table);
  EXPECT_EQ(table.str(),
            "key,trace,/chip/cores,status,error,/totals/area/total_mm2,/totals/samples_per_second\n"
            "k1,a.json,1,ok,,2.0,10.0\n"
            "k2,a.json,2,ok,,4.0,9.0\n"
            "k3,b.json,4,ok,,9.0,30.0\n"
            "k4,a.json,0,crashed,\"the worker was killed by signal 9, \"\"SIGKILL\"\"\",,\n"
            "k5,b.json,1,ok,,2.0,10.0\n");
  std::ostringstream pareto;
  write_pareto_csv(r, objectives, front, pareto);
  EXPECT_EQ(pareto.str(),
            "key,trace,/chip/cores,status,/totals/samples_per_second:max,/totals/area/total_mm2:min,on_front\n"
            "k1,a.json,1,ok,10.0,2.0,yes\n"
            "k2,a.json,2,ok,9.0,4.0,no\n"
            "k3,b.json,4,ok,30.0,9.0,yes\n"
            "k4,a.json,0,crashed,,,no\n"
            "k5,b.json,1,ok,10.0,2.0,yes\n");
}

nlohmann::json activity(double cycles, double busy, double dram) {
  return {{"cycles", cycles}, {"busy_cycles", busy}, {"stall_cycles", {{"dram", dram}, {"sfu", cycles - busy - dram}}}};
}

TEST(TimeBreakdown, PerPhaseLayerTypeAndStepKind) {
  nlohmann::json report = {{"totals", activity(100, 60, 30)},
                           {"workload", {{"phases", {"fwd", "bwd"}}}},
                           {"phases", {{"fwd", activity(40, 30, 10)}, {"bwd", activity(60, 30, 20)}}},
                           {"step_kinds", {{"gemm", activity(100, 60, 30)}}},
                           {"layers", nlohmann::json::array()}};
  for (const auto& [type, cycles] : {std::pair{"conv2d", 50.0}, {"relu", 20.0}, {"conv2d", 30.0}}) {
    nlohmann::json layer = activity(cycles, cycles / 2, cycles / 4);
    layer["type"] = type;
    report["layers"].push_back(layer);
  }
  std::ostringstream out;
  write_time_breakdown_csv(report, "run/report.json", out);
  EXPECT_EQ(out.str(),
            "by,name,cycles,share,busy_cycles,stall_dram,stall_sfu\n"
            "phase,fwd,40.0,0.400000,30.0,10.0,0.0\n"
            "phase,bwd,60.0,0.600000,30.0,20.0,10.0\n"
            "layer_type,conv2d,80.0,0.800000,40.0,20.0,20.0\n"
            "layer_type,relu,20.0,0.200000,10.0,5.0,5.0\n"
            "step_kind,gemm,100.0,1.000000,60.0,30.0,10.0\n");
  report["layers"][1].erase("busy_cycles");
  try {
    std::ostringstream ignored;
    write_time_breakdown_csv(report, "run/report.json", ignored);
    FAIL() << "accepted a layer without busy_cycles";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "run/report.json");
    EXPECT_EQ(e.json_path(), "/layers/1/busy_cycles");
  }
}

}  // namespace
}  // namespace lpt
