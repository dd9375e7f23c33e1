#include "sim/timeline.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "sim/report.hpp"

namespace lpt {

namespace {

using core::StallCause;
using core::TimelineActivity;
using core::TimelineInterval;

constexpr std::size_t kActivities = static_cast<std::size_t>(TimelineActivity::kDmaStore) + 1;

// Threads of a core's process, in display order.
const char* thread_name(TimelineActivity activity) {
  switch (activity) {
    case TimelineActivity::kCompute: return "MAC array";
    case TimelineActivity::kStall: return "stalls";
    case TimelineActivity::kSfu: return "SFU";
    case TimelineActivity::kRounding: return "rounders";
    case TimelineActivity::kDmaLoad: return "DMA loads";
    case TimelineActivity::kDmaStore: return "DMA stores";
  }
  return "";
}

const char* category(TimelineActivity activity) {
  switch (activity) {
    case TimelineActivity::kCompute: return "compute";
    case TimelineActivity::kStall: return "stall";
    case TimelineActivity::kSfu: return "sfu";
    case TimelineActivity::kRounding: return "rounding";
    case TimelineActivity::kDmaLoad:
    case TimelineActivity::kDmaStore: return "dma";
  }
  return "";
}

nlohmann::json metadata(const char* what, int pid, int tid, nlohmann::json args) {
  return {{"ph", "M"}, {"name", what}, {"pid", pid}, {"tid", tid}, {"args", std::move(args)}};
}

}  // namespace

std::optional<CycleWindow> parse_cycle_window(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return value;
  };
  const auto first = number(text.substr(0, colon)), last = number(text.substr(colon + 1));
  if (!first || !last || *first >= *last) return std::nullopt;
  return CycleWindow{*first, *last};
}

void TimelineRecorder::on_interval(const TimelineInterval& reported) {
  TimelineInterval interval = reported;
  interval.begin = std::max(interval.begin, window_.first);
  interval.end = std::min(interval.end, window_.last);
  if (interval.begin >= interval.end) return;
  const std::size_t track = static_cast<std::size_t>(interval.core) * kActivities +
                            static_cast<std::size_t>(interval.activity);
  if (track >= tracks_.size()) tracks_.resize(track + 1);
  std::vector<TimelineInterval>& intervals = tracks_[track];
  if (!intervals.empty()) {
    TimelineInterval& last = intervals.back();
    if (last.end == interval.begin && last.step == interval.step && last.stall == interval.stall) {
      last.end = interval.end;
      return;
    }
  }
  intervals.push_back(interval);
}

std::vector<TimelineInterval> TimelineRecorder::intervals() const {
  std::vector<TimelineInterval> all;
  for (const auto& track : tracks_) all.insert(all.end(), track.begin(), track.end());
  return all;
}

void write_timeline(std::ostream& out, const TimelineRun& run, const std::vector<TimelineInterval>& intervals) {
  const double cycles_per_us = run.clock_ghz * 1000;
  out << "{\"displayTimeUnit\": \"ns\",\n\"otherData\": "
      << nlohmann::json{{"clock_ghz", run.clock_ghz}, {"total_cycles", run.total_cycles}}.dump()
      << ",\n\"traceEvents\": [\n";
  bool first = true;
  const auto emit = [&](const nlohmann::json& event) {
    out << (first ? "" : ",\n") << event.dump();
    first = false;
  };
  for (int core = 0; core < run.cores; ++core) {
    emit(metadata("process_name", core, 0, {{"name", "core " + std::to_string(core)}}));
    emit(metadata("process_sort_index", core, 0, {{"sort_index", core}}));
    for (std::size_t a = 0; a < kActivities; ++a) {
      const int tid = static_cast<int>(a);
      emit(metadata("thread_name", core, tid, {{"name", thread_name(static_cast<TimelineActivity>(a))}}));
      emit(metadata("thread_sort_index", core, tid, {{"sort_index", tid}}));
    }
  }
  // The complete events are written by hand, each step's name and args
  // rendered once: a ResNet-50 timeline has ~180k events of ~300 steps, and
  // a JSON object per event took most of the time.
  std::vector<std::string> names, args;
  for (std::size_t s = 0; s < run.steps.size(); ++s) {
    const TimelineStep& step = run.steps[s];
    names.push_back(nlohmann::json(step.layer + " " + to_string(step.phase)).dump());
    args.push_back(nlohmann::json{{"step", s}, {"layer", step.layer}, {"phase", to_string(step.phase)},
                                  {"what", step.what}}
                       .dump());
    args.back().pop_back();  // the closing brace: the cycles follow
  }
  std::array<std::string, core::kStallCauses> stall_names;
  for (std::size_t c = 0; c < core::kStallCauses; ++c)
    stall_names[c] = nlohmann::json(std::string("stall: ") + to_string(static_cast<StallCause>(c))).dump();
  std::string event;
  char number[32];
  const auto append_us = [&](std::uint64_t cycles) {
    const auto end = std::to_chars(number, number + sizeof number, static_cast<double>(cycles) / cycles_per_us).ptr;
    event.append(number, end);
  };
  for (const TimelineInterval& interval : intervals) {
    const std::size_t step = interval.step;
    if (step >= run.steps.size()) throw std::logic_error("write_timeline: an interval of an unknown step");
    event = first ? "" : ",\n";
    first = false;
    event += "{\"ph\":\"X\",\"name\":";
    event += interval.activity == TimelineActivity::kStall ? stall_names.at(static_cast<std::size_t>(interval.stall))
                                                           : names[step];
    event += ",\"cat\":\"";
    event += category(interval.activity);
    event += "\",\"pid\":" + std::to_string(interval.core);
    event += ",\"tid\":" + std::to_string(static_cast<int>(interval.activity));
    event += ",\"ts\":";
    append_us(interval.begin);
    event += ",\"dur\":";
    append_us(interval.end - interval.begin);
    event += ",\"args\":" + args[step];
    event += ",\"begin_cycle\":" + std::to_string(interval.begin);
    event += ",\"cycles\":" + std::to_string(interval.end - interval.begin) + "}}";
    out << event;
  }
  out << "\n]}\n";
}

}  // namespace lpt
