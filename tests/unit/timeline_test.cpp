// The timeline recorder's merging and the trace-event JSON it is written as.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "sim/timeline.hpp"

namespace lpt {
namespace {

using core::TimelineActivity;
using core::StallCause;
using core::TimelineInterval;

TimelineInterval interval(int core, TimelineActivity activity, std::size_t step, std::uint64_t begin, std::uint64_t end,
                          StallCause stall = StallCause::kCount) {
  return {core, activity, stall, step, begin, end};
}

TEST(TimelineRecorder, MergesTouchingIntervalsOfOneUnitAndStepOnly) {
  TimelineRecorder recorder;
  recorder.on_interval(interval(0, TimelineActivity::kCompute, 0, 0, 10));
  recorder.on_interval(interval(0, TimelineActivity::kCompute, 0, 10, 25));   // touches: merged
  recorder.on_interval(interval(0, TimelineActivity::kCompute, 0, 30, 40));   // a gap: kept apart
  recorder.on_interval(interval(0, TimelineActivity::kCompute, 1, 40, 50));   // another step
  recorder.on_interval(interval(1, TimelineActivity::kCompute, 0, 25, 30));   // another core
  recorder.on_interval(interval(0, TimelineActivity::kStall, 0, 25, 30, StallCause::kDram));
  recorder.on_interval(interval(0, TimelineActivity::kStall, 0, 30, 35, StallCause::kSfu));  // another cause
  recorder.on_interval(interval(0, TimelineActivity::kSfu, 0, 10, 30));  // another unit, overlapping
  const std::vector<TimelineInterval> all = recorder.intervals();
  const auto has = [&](const TimelineInterval& want) {
    for (const TimelineInterval& i : all)
      if (i.core == want.core && i.activity == want.activity && i.stall == want.stall && i.step == want.step &&
          i.begin == want.begin && i.end == want.end)
        return true;
    return false;
  };
  EXPECT_EQ(all.size(), 7u);
  EXPECT_TRUE(has(interval(0, TimelineActivity::kCompute, 0, 0, 25)));
  EXPECT_TRUE(has(interval(0, TimelineActivity::kCompute, 0, 30, 40)));
  EXPECT_TRUE(has(interval(0, TimelineActivity::kCompute, 1, 40, 50)));
  EXPECT_TRUE(has(interval(1, TimelineActivity::kCompute, 0, 25, 30)));
  EXPECT_TRUE(has(interval(0, TimelineActivity::kStall, 0, 25, 30, StallCause::kDram)));
  EXPECT_TRUE(has(interval(0, TimelineActivity::kStall, 0, 30, 35, StallCause::kSfu)));
  EXPECT_TRUE(has(interval(0, TimelineActivity::kSfu, 0, 10, 30)));
}

TEST(TimelineRecorder, CutsIntervalsToItsWindow) {
  TimelineRecorder recorder(CycleWindow{100, 200});
  recorder.on_interval(interval(0, TimelineActivity::kCompute, 0, 50, 150));
  recorder.on_interval(interval(0, TimelineActivity::kCompute, 0, 150, 160));  // merged after the cut
  recorder.on_interval(interval(0, TimelineActivity::kSfu, 0, 20, 100));        // ends where it starts
  recorder.on_interval(interval(0, TimelineActivity::kStall, 0, 190, 400, StallCause::kDram));
  recorder.on_interval(interval(1, TimelineActivity::kCompute, 0, 200, 300));   // after it
  const std::vector<TimelineInterval> all = recorder.intervals();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].begin, 100u);
  EXPECT_EQ(all[0].end, 160u);
  EXPECT_EQ(all[1].activity, TimelineActivity::kStall);
  EXPECT_EQ(all[1].begin, 190u);
  EXPECT_EQ(all[1].end, 200u);
}

TEST(Timeline, ParsesACycleWindow) {
  const auto window = parse_cycle_window("1000:250000");
  ASSERT_TRUE(window);
  EXPECT_EQ(window->first, 1000u);
  EXPECT_EQ(window->last, 250000u);
  for (const char* bad : {"", ":", "5", "5:", ":5", "5:5", "6:5", "-1:5", "1:5x", "1:2:3", " 1:5", "1:99999999999999999999"})
    EXPECT_FALSE(parse_cycle_window(bad)) << bad;
}

TEST(Timeline, WritesCompleteEventsPerCoreAndUnitInMicroseconds) {
  TimelineRun run;
  run.cores = 2;
  run.clock_ghz = 2.0;  // 2000 cycles per microsecond
  run.total_cycles = 8000;
  run.steps = {{"conv1", Phase::kFwd, "Y=X*W"}, {"fc \"last\"", Phase::kWgrad, "dW=X'*dY"}};
  const std::vector<TimelineInterval> intervals = {
      interval(1, TimelineActivity::kCompute, 1, 1000, 5000),
      interval(0, TimelineActivity::kStall, 0, 0, 3, StallCause::kDependency),
      interval(0, TimelineActivity::kDmaStore, 0, 4000, 8000),
  };
  std::ostringstream out;
  write_timeline(out, run, intervals);
  const nlohmann::json json = nlohmann::json::parse(out.str());
  EXPECT_EQ(json["otherData"]["total_cycles"], 8000);
  std::vector<nlohmann::json> complete, threads;
  for (const auto& event : json["traceEvents"]) {
    if (event["ph"] == "X") complete.push_back(event);
    if (event["name"] == "thread_name") threads.push_back(event);
  }
  ASSERT_EQ(complete.size(), 3u);
  const nlohmann::json& compute = complete[0];
  EXPECT_EQ(compute["name"], "fc \"last\" wgrad");
  EXPECT_EQ(compute["cat"], "compute");
  EXPECT_EQ(compute["pid"], 1);
  EXPECT_EQ(compute["tid"], static_cast<int>(TimelineActivity::kCompute));
  EXPECT_DOUBLE_EQ(compute["ts"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(compute["dur"].get<double>(), 2.0);
  EXPECT_EQ(compute["args"]["layer"], "fc \"last\"");
  EXPECT_EQ(compute["args"]["phase"], "wgrad");
  EXPECT_EQ(compute["args"]["what"], "dW=X'*dY");
  EXPECT_EQ(compute["args"]["step"], 1);
  EXPECT_EQ(compute["args"]["begin_cycle"], 1000);
  EXPECT_EQ(compute["args"]["cycles"], 4000);
  EXPECT_EQ(complete[1]["name"], "stall: dependency");
  EXPECT_EQ(complete[1]["cat"], "stall");
  EXPECT_EQ(complete[2]["cat"], "dma");
  EXPECT_EQ(complete[2]["tid"], static_cast<int>(TimelineActivity::kDmaStore));
  // Six named units on each core.
  EXPECT_EQ(threads.size(), 12u);
  EXPECT_EQ(threads[4]["args"]["name"], "DMA loads");
}

}  // namespace
}  // namespace lpt
