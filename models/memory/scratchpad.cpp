#include "models/memory/scratchpad.hpp"

#include <stdexcept>

namespace lpt::core {

Scratchpad::Scratchpad(sc_core::sc_module_name name, const ScratchpadParams& params,
                       FlowNetwork& network)
    : sc_core::sc_module(name),
      capacity_bytes_(params.size_bytes()),
      buffer_slots_(params.buffer_slots),
      port_resource_(network.add_resource(std::string(this->name()), ResourceClass::kScratchpad,
                                          params.bytes_per_cycle())) {}

bool Scratchpad::can_hold(std::uint64_t bytes) const {
  return resident_tasks_ < buffer_slots_ && resident_bytes_ + bytes <= capacity_bytes_;
}

void Scratchpad::hold(std::uint64_t bytes) {
  if (!can_hold(bytes)) throw std::logic_error(std::string(name()) + ": buffer does not fit");
  resident_bytes_ += bytes;
  ++resident_tasks_;
}

bool Scratchpad::can_grow(std::uint64_t bytes) const { return resident_bytes_ + bytes <= capacity_bytes_; }

void Scratchpad::grow(std::uint64_t bytes) {
  if (resident_tasks_ == 0 || !can_grow(bytes)) throw std::logic_error(std::string(name()) + ": grow does not fit");
  resident_bytes_ += bytes;
}

void Scratchpad::release(std::uint64_t bytes) {
  if (resident_tasks_ == 0 || bytes > resident_bytes_)
    throw std::logic_error(std::string(name()) + ": release without hold");
  resident_bytes_ -= bytes;
  --resident_tasks_;
}

}  // namespace lpt::core
