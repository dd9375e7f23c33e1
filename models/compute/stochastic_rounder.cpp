#include "models/compute/stochastic_rounder.hpp"

#include <algorithm>

namespace lpt::core {

StochasticRounder::StochasticRounder(sc_core::sc_module_name name, const RounderParams& params)
    : sc_core::sc_module(name), lanes_(params.lanes) {}

std::uint64_t StochasticRounder::cycles_for(std::uint64_t elements) const {
  const auto lanes = static_cast<std::uint64_t>(lanes_);
  return (elements + lanes - 1) / lanes;
}

std::uint64_t StochasticRounder::reserve(std::uint64_t cycle, std::uint64_t elements) {
  const std::uint64_t cycles = cycles_for(elements);
  free_at_ = std::max(cycle, free_at_) + cycles;
  elements_ += elements;
  return free_at_;
}

}  // namespace lpt::core
