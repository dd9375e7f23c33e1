// Every activity counter of a run, declared once (as gem5's stats and
// DRAMSys's stat providers declare theirs): its name, which is also its path
// in report.json, its CSV column, unit, how a group of cores aggregates it,
// and what it counts. The chip's units fill a Counters record; per-step
// differences, sums over steps and cores, the report's JSON and CSV columns and
// the table in docs/report-schema.md all iterate this one list. Energy is
// activity times energy per action, so the list splits what energy needs.
// Plain data, no SystemC.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace lpt::core {

enum class Counter : std::uint8_t {
  kBusyCycles,
  kStallDram,
  kStallInterconnect,
  kStallScratchpad,
  kStallSfu,
  kStallDependency,
  kStallCommunication,
  kMacs,
  kSfuBusyCycles,
  kSfuAluOps,
  kSfuExpOps,
  kSfuDivSqrtOps,
  kRoundedElements,
  kDramReadBytes,
  kDramWriteBytes,
  kRingByteHops,
  kLinkByteHops,
  kScratchpadReadBytes,
  kScratchpadWriteBytes,
  kL0ReadBytes,
  kL0WriteBytes,
  kOnChipReadBytes,
  kDramWriteAvoidedBytes,
  kHostReadBytes,
  kHostWriteBytes,
  kCount
};
inline constexpr std::size_t kCounters = static_cast<std::size_t>(Counter::kCount);

// Cycle counters of a group of cores are their mean (each core's time adds up
// to the group's cycles); every other counter is a sum.
enum class Aggregate { kSum, kMeanOverCores };

struct CounterInfo {
  std::string_view name;  // path in report.json, '.'-separated
  std::string_view csv;   // column of layers.csv and phases.csv
  std::string_view unit;
  Aggregate aggregate;
  std::string_view description;
};

const CounterInfo& info(Counter counter);
// All counters, in declaration order.
const std::array<Counter, kCounters>& all_counters();

// One reading of every counter, and the MACs of each datapath (operand and
// accumulator formats) of the program, indexed as Program::datapaths.
struct Counters {
  std::array<std::uint64_t, kCounters> values{};
  std::vector<std::uint64_t> macs_by_datapath;

  std::uint64_t& operator[](Counter c) { return values[static_cast<std::size_t>(c)]; }
  std::uint64_t operator[](Counter c) const { return values[static_cast<std::size_t>(c)]; }
  // Adds (sign > 0) or subtracts `other`, wrapping as differences of
  // cumulative counters do.
  void add(const Counters& other, int sign = +1);
};

}  // namespace lpt::core
