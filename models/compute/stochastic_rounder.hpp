// Stochastic rounders: `lanes` elements per cycle. Like the SFU, a pipeline
// beside the MAC array that the controller reserves per task. (The random
// bits per element matter to the numerics and the energy, not to timing.)
#pragma once

#include <cstdint>

#include <systemc>

#include "models/core/chip_params.hpp"

namespace lpt::core {

class StochasticRounder : public sc_core::sc_module {
 public:
  StochasticRounder(sc_core::sc_module_name name, const RounderParams& params);

  std::uint64_t cycles_for(std::uint64_t elements) const;  // ceil(elements / lanes)
  // Rounds `elements` from max(cycle, free_at()); returns the cycle it finishes.
  std::uint64_t reserve(std::uint64_t cycle, std::uint64_t elements);
  std::uint64_t free_at() const { return free_at_; }

  std::uint64_t elements_rounded() const { return elements_; }

 private:
  int lanes_;
  std::uint64_t free_at_ = 0;
  std::uint64_t elements_ = 0;
};

}  // namespace lpt::core
