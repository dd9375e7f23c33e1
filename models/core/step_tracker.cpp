#include "models/core/step_tracker.hpp"

#include "models/core/cycles.hpp"

namespace lpt::core {

StepTracker::StepTracker(int cores, std::size_t steps)
    : cores_(cores), finished_(steps, 0), completed_at_(steps, 0) {}

void StepTracker::finish(std::size_t step) {
  if (++finished_[step] < cores_) return;
  complete_now(step);
}

void StepTracker::finish_collective(std::size_t step) {
  finished_[step] = cores_;
  complete_now(step);
}

void StepTracker::complete_now(std::size_t step) {
  completed_at_[step] = now_cycles();
  ++completed_;
  while (leading_complete_ < finished_.size() && complete(leading_complete_)) ++leading_complete_;
  step_completed_.notify(sc_core::SC_ZERO_TIME);
}

std::optional<std::size_t> StepTracker::wait_for(const std::vector<std::size_t>& steps) {
  const auto pending = [&] {
    for (const std::size_t s : steps)
      if (!complete(s)) return true;
    return false;
  };
  while (pending()) sc_core::wait(step_completed_);
  std::optional<std::size_t> last;
  for (const std::size_t s : steps)
    if (!last || completed_at_[s] > completed_at_[*last] ||
        (completed_at_[s] == completed_at_[*last] && s > *last))
      last = s;
  return last;
}

std::optional<std::size_t> StepTracker::wait_for_all() {
  while (completed_ < finished_.size()) sc_core::wait(step_completed_);
  std::optional<std::size_t> last;
  for (std::size_t s = 0; s < finished_.size(); ++s)
    if (!last || completed_at_[s] >= completed_at_[*last]) last = s;
  return last;
}

}  // namespace lpt::core
