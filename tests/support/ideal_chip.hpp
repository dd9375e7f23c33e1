// A chip for timing tests: 4x4 output-stationary cores, 1 MAC per PE per
// cycle, and a memory system so wide and fast that only the MAC array and the
// SFU take time.
#pragma once

#include <cstdint>
#include <optional>

#include "models/core/chip_params.hpp"

namespace lpt::core::testing {

inline constexpr double kUnbounded = 1e12;  // bytes per cycle: any transfer takes 0 cycles

inline ChipParams ideal_chip(int cores) {
  ChipParams p;
  p.cores = cores;
  p.clock_ghz = 1.0;
  p.core.mac_array = {4, 4, 1, std::nullopt, Dataflow::kOutputStationary, false, {{"fp16", 1}}};
  p.core.accumulator = {{"fp32"}, 16};
  p.core.rounder = {4, 8};
  p.core.sfu = {4, {1.0, 0.25, 0.25}};
  p.core.scratchpad = {64, 4, 1, static_cast<std::int64_t>(kUnbounded), 2};
  p.core.dma = {8, 64, 64};
  p.interconnect = {"ring", true, static_cast<std::int64_t>(kUnbounded), 0};
  p.dram = {1, kUnbounded, 0};
  return p;
}

}  // namespace lpt::core::testing
