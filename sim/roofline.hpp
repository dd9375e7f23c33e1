// Roofline bounds: the least time a step of the program could take on the
// chip, from the chip's own figures, against which the simulated time is
// judged (docs/architecture.md, "Roofline bound").
#pragma once

#include <cstdint>

#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"

namespace lpt {

// Bandwidth from DRAM into the cores: the DRAM pool, the ring links leaving
// the memory controller's stop, or all DMA engines' outstanding requests per
// DRAM latency, whichever is narrowest (bytes per cycle).
double memory_bytes_per_cycle(const core::ChipParams& chip);

// Each resource's least time for a piece of work, all cores working at once.
struct Bound {
  double compute_cycles = 0;  // the MACs at the arrays' peak for the GEMM's formats
  double dram_bytes = 0;      // every tensor moved once: raw inputs, weights, outputs, fused extras
  double dram_cycles = 0;     // dram_bytes at memory_bytes_per_cycle
  double sfu_cycles = 0;      // SFU operations at the lanes' rates
  double rounder_cycles = 0;  // elements through the stochastic rounders

  // The bound of one step: its slowest resource, as if the others overlapped it fully.
  double cycles() const;
  // Which resource that is: "compute" | "dram" | "sfu" | "rounder" ("none" without work).
  const char* limited_by() const;
  // Each resource's time summed (for a group of steps).
  Bound& operator+=(const Bound& other);
};

// Cycles one core's SFU lanes take for these operations at their peak rates
// (fractional: an estimate, where the SFU model rounds each batch up).
double sfu_cycles(const core::SfuParams& sfu, double alu, double exp, double div_sqrt);

// A step's bound: `macs` at `macs_per_pe_per_cycle` (0 for element-wise work),
// `min_dram_bytes` as the workload needs them, and the SFU and rounder work of
// its tasks.
Bound step_bound(const core::ChipParams& chip, const core::Step& step, std::uint64_t macs,
                 int macs_per_pe_per_cycle, double min_dram_bytes);

}  // namespace lpt
