#include "models/core/step_barrier.hpp"

#include "models/core/cycles.hpp"

namespace lpt::core {

void StepBarrier::arrive_and_wait() {
  if (++arrived_ == parties_) {
    arrived_ = 0;
    ++generation_;
    release_cycles_.push_back(now_cycles());
    released_.notify(sc_core::SC_ZERO_TIME);
    return;
  }
  const std::uint64_t generation = generation_;
  while (generation_ == generation) sc_core::wait(released_);
}

}  // namespace lpt::core
