// Which steps of the program every core has finished. A step waits for the
// steps whose results it reads (Step::depends_on), not for a barrier after
// every step; the tracker records when each step was completed by its last core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <systemc>

namespace lpt::core {

class StepTracker {
 public:
  StepTracker(int cores, std::size_t steps);

  // One core has finished `step` (its tasks, SFU work and stores).
  void finish(std::size_t step);
  // The chip's collective engine has finished collective step `step`: it is
  // complete for every core.
  void finish_collective(std::size_t step);
  // Blocks (call from an SC_THREAD) until every core has finished every step
  // in `steps`; returns the one completed last, or nothing if `steps` is empty.
  std::optional<std::size_t> wait_for(const std::vector<std::size_t>& steps);
  // Blocks until every step is complete; returns the one completed last.
  std::optional<std::size_t> wait_for_all();

  bool complete(std::size_t step) const { return finished_[step] == cores_; }
  std::uint64_t completion_cycle(std::size_t step) const { return completed_at_[step]; }
  // The steps before the first incomplete one.
  std::size_t steps_completed() const { return leading_complete_; }

 private:
  void complete_now(std::size_t step);

  int cores_;
  std::vector<int> finished_;              // per step: cores done with it
  std::vector<std::uint64_t> completed_at_;
  std::size_t leading_complete_ = 0;
  std::size_t completed_ = 0;
  sc_core::sc_event step_completed_;
};

}  // namespace lpt::core
