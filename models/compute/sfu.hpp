// Special-function unit: a pipeline of `lanes` lanes, each doing ops_per_cycle
// operations of a kind per cycle (fractions for multi-cycle ops such as exp).
// It works beside the MAC array: the controller reserves it for a task's
// element-wise work and only waits if the previous work is still running.
#pragma once

#include <cstdint>

#include <systemc>

#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"

namespace lpt::core {

class Sfu : public sc_core::sc_module {
 public:
  Sfu(sc_core::sc_module_name name, const SfuParams& params);

  // Sum over op kinds of ceil(ops / (lanes * ops_per_cycle[kind])).
  std::uint64_t cycles_for(const SfuWork& work) const;
  // Runs `work` from max(cycle, free_at()); returns the cycle it finishes.
  std::uint64_t reserve(std::uint64_t cycle, const SfuWork& work);
  // The same for work its owner counts itself (a chip's collective engine
  // borrowing the lanes): the lanes are taken, ops() and busy_cycles() unchanged.
  std::uint64_t reserve_uncounted(std::uint64_t cycle, const SfuWork& work);
  std::uint64_t free_at() const { return free_at_; }

  // Operations done so far, by kind.
  const SfuWork& ops() const { return ops_; }
  std::uint64_t busy_cycles() const { return busy_cycles_; }

 private:
  SfuParams params_;
  std::uint64_t free_at_ = 0;
  SfuWork ops_;
  std::uint64_t busy_cycles_ = 0;
};

}  // namespace lpt::core
