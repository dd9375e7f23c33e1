// Simulated time in whole chip cycles. One cycle is one SystemC nanosecond;
// the chip clock only converts cycles to seconds in the reports, so stats stay
// integers (no 3.0000000000000004 ns).
//
// SystemC counts time in 64-bit ticks of its resolution (1 ps by default), so
// about 1.8e16 cycles would wrap silently. Simulated time is therefore bounded
// by kMaxSimulatedCycles, far inside that range: a wait that would pass it
// stops the simulation and marks the run as over the limit instead.
#pragma once

#include <algorithm>
#include <cstdint>

#include <systemc>

namespace lpt::core {

// 2^52 cycles: 52 days at 1 GHz, far beyond any one training step.
inline constexpr std::uint64_t kMaxSimulatedCycles = std::uint64_t{1} << 52;

// Set when a wait would have passed kMaxSimulatedCycles (the simulation was
// stopped then); run_program turns it into an error.
inline bool simulated_time_limit_reached = false;

inline std::uint64_t ticks_per_cycle() {
  static const std::uint64_t ticks = sc_core::sc_time(1, sc_core::SC_NS).value();
  return ticks;
}

inline std::uint64_t now_cycles() { return sc_core::sc_time_stamp().value() / ticks_per_cycle(); }

// The delay of `cycles` from now, or, if that would pass the limit, a stop of
// the simulation (and a zero delay: nothing waits past the stop).
inline sc_core::sc_time cycles_to_time(std::uint64_t cycles) {
  if (cycles > kMaxSimulatedCycles - std::min(now_cycles(), kMaxSimulatedCycles)) {
    simulated_time_limit_reached = true;
    sc_core::sc_stop();
    return sc_core::SC_ZERO_TIME;
  }
  return sc_core::sc_time::from_value(cycles * ticks_per_cycle());
}

}  // namespace lpt::core
