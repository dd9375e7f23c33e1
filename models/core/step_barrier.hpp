// The barrier that ends every step: each core's controller arrives when its
// tasks and stores are done and waits until all cores have arrived. It records
// the release cycles, which delimit the steps.
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

namespace lpt::core {

class StepBarrier {
 public:
  explicit StepBarrier(int parties) : parties_(parties) {}

  // Blocking: call from an SC_THREAD.
  void arrive_and_wait();
  // Cycle at which the barrier ending step i released everybody.
  const std::vector<std::uint64_t>& release_cycles() const { return release_cycles_; }

 private:
  int parties_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
  std::vector<std::uint64_t> release_cycles_;
  sc_core::sc_event released_;
};

}  // namespace lpt::core
