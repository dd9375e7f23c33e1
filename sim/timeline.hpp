// The timeline of one run (lptsim run --timeline FILE): every core's compute,
// stall, SFU, rounder and DMA intervals as Chrome trace-event JSON, which
// Perfetto and chrome://tracing open. A process per core, a thread per unit,
// a complete ("X") event per interval, in microseconds of the chip clock and
// named after its step's layer and phase.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "models/core/timeline.hpp"
#include "sim/workload.hpp"

namespace lpt {

// What names a program step in the timeline.
struct TimelineStep {
  std::string layer;
  Phase phase = Phase::kFwd;
  std::string what;  // the GEMM label or "elementwise"
};

// Cycles [first, last) of a run: a timeline of a long run limited to a part
// of it (a ResNet-50 step on four cores is ~180k events, ~40 MB).
struct CycleWindow {
  std::uint64_t first = 0;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
};
// "FIRST:LAST" (decimal cycles, FIRST < LAST), or nothing if malformed.
std::optional<CycleWindow> parse_cycle_window(std::string_view text);

// Keeps the intervals the chip reports, cut to its window. An interval that starts where the one
// before it of the same core and activity ended, with the same step (and stall
// cause), extends it: back-to-back tiles of a step make one event, and every
// sum per step, core and activity stays exact.
class TimelineRecorder final : public core::TimelineObserver {
 public:
  explicit TimelineRecorder(CycleWindow window = {}) : window_(window) {}
  void on_interval(const core::TimelineInterval& interval) override;
  // Every interval, merged, grouped by core and activity, each group in time order.
  std::vector<core::TimelineInterval> intervals() const;

 private:
  CycleWindow window_;
  // Per core and activity, in reporting order; the last one may still grow.
  std::vector<std::vector<core::TimelineInterval>> tracks_;
};

struct TimelineRun {
  int cores = 0;
  double clock_ghz = 1;
  std::uint64_t total_cycles = 0;
  std::vector<TimelineStep> steps;  // by program step
};

// A run's timeline, as simulate() records it.
struct Timeline {
  TimelineRun run;
  TimelineRecorder recorder;
};

// Writes the trace-event JSON. Each event's args hold its step, layer, phase
// and exact cycles (begin_cycle, cycles), which ts and dur round.
void write_timeline(std::ostream& out, const TimelineRun& run,
                    const std::vector<core::TimelineInterval>& intervals);

}  // namespace lpt
