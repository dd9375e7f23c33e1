#include "models/compute/sfu.hpp"

#include <algorithm>
#include <cmath>

namespace lpt::core {

namespace {

std::uint64_t kind_cycles(std::uint64_t ops, int lanes, double ops_per_lane_cycle) {
  if (ops == 0) return 0;
  // The small slack keeps exact multiples (e.g. 0.25 ops per cycle) exact.
  return static_cast<std::uint64_t>(
      std::ceil(static_cast<double>(ops) / (lanes * ops_per_lane_cycle) - 1e-9));
}

}  // namespace

Sfu::Sfu(sc_core::sc_module_name name, const SfuParams& params)
    : sc_core::sc_module(name), params_(params) {}

std::uint64_t Sfu::cycles_for(const SfuWork& work) const {
  return kind_cycles(work.alu, params_.lanes, params_.ops_per_cycle.alu) +
         kind_cycles(work.exp, params_.lanes, params_.ops_per_cycle.exp) +
         kind_cycles(work.div_sqrt, params_.lanes, params_.ops_per_cycle.div_sqrt);
}

std::uint64_t Sfu::reserve_uncounted(std::uint64_t cycle, const SfuWork& work) {
  free_at_ = std::max(cycle, free_at_) + cycles_for(work);
  return free_at_;
}

std::uint64_t Sfu::reserve(std::uint64_t cycle, const SfuWork& work) {
  const std::uint64_t cycles = cycles_for(work);
  free_at_ = std::max(cycle, free_at_) + cycles;
  ops_.alu += work.alu;
  ops_.exp += work.exp;
  ops_.div_sqrt += work.div_sqrt;
  busy_cycles_ += cycles;
  return free_at_;
}

}  // namespace lpt::core
