#include "sim/roofline.hpp"

#include <algorithm>

namespace lpt {

double memory_bytes_per_cycle(const core::ChipParams& chip) {
  const double links = chip.interconnect.bidirectional ? 2.0 : 1.0;
  const double requests = chip.cores * chip.core.dma.dram_bytes_per_cycle(chip.dram_latency_cycles());
  return std::min({chip.dram_bytes_per_cycle(),
                   links * static_cast<double>(chip.interconnect.link_bytes_per_cycle), requests});
}

Bound& Bound::operator+=(const Bound& other) {
  compute_cycles += other.compute_cycles;
  dram_bytes += other.dram_bytes;
  dram_cycles += other.dram_cycles;
  sfu_cycles += other.sfu_cycles;
  rounder_cycles += other.rounder_cycles;
  return *this;
}

double sfu_cycles(const core::SfuParams& sfu, double alu, double exp, double div_sqrt) {
  return (alu / sfu.ops_per_cycle.alu + exp / sfu.ops_per_cycle.exp +
          div_sqrt / sfu.ops_per_cycle.div_sqrt) /
         sfu.lanes;
}

double Bound::cycles() const { return std::max({compute_cycles, dram_cycles, sfu_cycles, rounder_cycles}); }

const char* Bound::limited_by() const {
  const double most = cycles();
  if (most <= 0) return "none";
  if (most == compute_cycles) return "compute";
  if (most == dram_cycles) return "dram";
  if (most == sfu_cycles) return "sfu";
  return "rounder";
}

Bound step_bound(const core::ChipParams& chip, const core::Step& step, std::uint64_t macs,
                 int macs_per_pe_per_cycle, double min_dram_bytes) {
  const double cores = chip.cores;
  const auto& array = chip.core.mac_array;
  Bound b;
  if (macs_per_pe_per_cycle > 0)
    b.compute_cycles = static_cast<double>(macs) /
                       (cores * static_cast<double>(array.pes()) * static_cast<double>(macs_per_pe_per_cycle));
  b.dram_bytes = min_dram_bytes;
  b.dram_cycles = min_dram_bytes / memory_bytes_per_cycle(chip);
  double alu = 0, exp = 0, div_sqrt = 0, rounded = 0;
  for (const auto& tasks : step.tasks_per_core)
    for (const auto& task : tasks) {
      alu += static_cast<double>(task.sfu.alu);
      exp += static_cast<double>(task.sfu.exp);
      div_sqrt += static_cast<double>(task.sfu.div_sqrt);
      rounded += static_cast<double>(task.rounded_elements);
    }
  b.sfu_cycles = sfu_cycles(chip.core.sfu, alu, exp, div_sqrt) / cores;
  b.rounder_cycles = rounded / (cores * chip.core.rounder.lanes);
  return b;
}

}  // namespace lpt
