// A core's scratchpad (L1): its ports are one flow resource shared by DMA
// fills/drains and the MAC array's operand reads; its capacity and buffer
// slots bound how many tasks' operands may be resident at once (two slots =
// double buffering). Bank conflicts are not modelled.
#pragma once

#include <cstdint>

#include <systemc>

#include "models/core/chip_params.hpp"
#include "models/interconnect/flow_network.hpp"

namespace lpt::core {

class Scratchpad : public sc_core::sc_module {
 public:
  Scratchpad(sc_core::sc_module_name name, const ScratchpadParams& params, FlowNetwork& network);

  ResourceId port_resource() const { return port_resource_; }
  std::uint64_t capacity_bytes() const { return capacity_bytes_; }

  // Whether one more task holding `bytes` fits next to those resident now.
  bool can_hold(std::uint64_t bytes) const;
  void hold(std::uint64_t bytes);     // throws std::logic_error if it does not fit
  void release(std::uint64_t bytes);  // throws std::logic_error if nothing is held
  // The rest of a task's buffer, part of which it already holds (loads issued
  // ahead): more bytes, no further slot.
  bool can_grow(std::uint64_t bytes) const;
  void grow(std::uint64_t bytes);  // throws std::logic_error if it does not fit or nothing is held

  void count_read(std::uint64_t bytes) { bytes_read_ += bytes; }
  void count_write(std::uint64_t bytes) { bytes_written_ += bytes; }
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  std::uint64_t capacity_bytes_;
  int buffer_slots_;
  ResourceId port_resource_;
  std::uint64_t resident_bytes_ = 0;
  int resident_tasks_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;
};

}  // namespace lpt::core
