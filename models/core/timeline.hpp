// What each core's units did and when, for a timeline of a run. The
// controller reports its compute and stall intervals where it adds them to the
// busy and stall counters (so the two agree by construction), and the SFU and
// rounder work it reserves; the DMA engine reports when loads and stores are
// in flight. Each module holds the observer as a pointer that is null when no
// timeline is asked for: a run without one pays a branch per report site.
// Plain data, no SystemC.
#pragma once

#include <cstddef>
#include <cstdint>

#include "models/core/stats.hpp"

namespace lpt::core {

enum class TimelineActivity : std::uint8_t {
  kCompute,   // the MAC array computing (its busy cycles)
  kStall,     // the controller waiting, for TimelineInterval::stall
  kSfu,       // the SFU working (its busy cycles)
  kRounding,  // the stochastic rounders working
  kDmaLoad,   // at least one load of the core's DMA engine in flight
  kDmaStore,  // at least one store in flight
};

struct TimelineInterval {
  int core = 0;
  TimelineActivity activity = TimelineActivity::kCompute;
  StallCause stall = StallCause::kCount;  // for kStall only
  // The program step it belongs to; a stall's is the step whose counter it is
  // charged to (a dependency wait: the step waited for), a DMA interval's that
  // of the transfer started last.
  std::size_t step = 0;
  std::uint64_t begin = 0;  // cycles, begin < end
  std::uint64_t end = 0;
};

class TimelineObserver {
 public:
  // Called once per interval, when it ends (SFU and rounder work: when it is
  // reserved); per core and activity in time order.
  virtual void on_interval(const TimelineInterval& interval) = 0;

 protected:
  ~TimelineObserver() = default;
};

}  // namespace lpt::core
