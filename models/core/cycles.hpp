// Simulated time in whole chip cycles. One cycle is one SystemC nanosecond;
// the chip clock only converts cycles to seconds in the reports, so stats stay
// integers (no 3.0000000000000004 ns).
#pragma once

#include <cstdint>

#include <systemc>

namespace lpt::core {

inline sc_core::sc_time cycles_to_time(std::uint64_t cycles) {
  static const std::uint64_t ticks_per_cycle = sc_core::sc_time(1, sc_core::SC_NS).value();
  return sc_core::sc_time::from_value(cycles * ticks_per_cycle);
}

inline std::uint64_t now_cycles() {
  static const std::uint64_t ticks_per_cycle = sc_core::sc_time(1, sc_core::SC_NS).value();
  return sc_core::sc_time_stamp().value() / ticks_per_cycle;
}

}  // namespace lpt::core
