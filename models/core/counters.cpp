#include "models/core/counters.hpp"

#include <algorithm>

namespace lpt::core {

namespace {

constexpr auto kMean = Aggregate::kMeanOverCores;
constexpr auto kSum = Aggregate::kSum;

constexpr std::array<CounterInfo, kCounters> kInfo = {{
    {"busy_cycles", "busy_cycles", "cycles, mean over cores", kMean,
     "the MAC array computing, stall-free (systolic) cycles"},
    {"stall_cycles.dram", "stall_dram", "cycles, mean over cores", kMean,
     "waiting for loads or end-of-step stores limited by DRAM (bandwidth, latency, requests in flight)"},
    {"stall_cycles.interconnect", "stall_interconnect", "cycles, mean over cores", kMean,
     "waiting for transfers limited by a ring link, or for a DMA queue slot"},
    {"stall_cycles.scratchpad", "stall_scratchpad", "cycles, mean over cores", kMean,
     "waiting for scratchpad ports (fills, drains, operand reads beyond the array's own pace)"},
    {"stall_cycles.sfu", "stall_sfu", "cycles, mean over cores", kMean,
     "waiting for the special-function unit or the stochastic rounders"},
    {"stall_cycles.dependency", "stall_dependency", "cycles, mean over cores", kMean,
     "waiting for other cores to finish this group's steps, which a later step needed (load "
     "imbalance; charged to the step waited for)"},
    {"stall_cycles.communication", "stall_communication", "cycles, mean over cores", kMean,
     "waiting for a chip-to-chip collective (a gradient all-reduce) that a later step needed: the "
     "communication not hidden behind compute, charged to the collective"},
    {"macs", "macs", "MACs", kSum, "multiply-accumulates done (by datapath in macs_by_datapath)"},
    {"sfu_busy_cycles", "sfu_busy_cycles", "cycles, mean over cores", kMean,
     "the SFU computing (it overlaps MAC work; not a stall)"},
    {"sfu_ops.alu", "sfu_alu_ops", "ops", kSum, "SFU add, multiply, fma, max, compare and select operations"},
    {"sfu_ops.exp", "sfu_exp_ops", "ops", kSum, "SFU exp and log operations"},
    {"sfu_ops.div_sqrt", "sfu_div_sqrt_ops", "ops", kSum, "SFU divide, square-root and reciprocal square-root operations"},
    {"rounded_elements", "rounded_elements", "elements", kSum,
     "values converted by the stochastic rounders (GEMM outputs, weight updates), each with "
     "the rounder's random bits"},
    {"bytes.dram_read", "dram_read_bytes", "bytes", kSum, "read from DRAM"},
    {"bytes.dram_write", "dram_write_bytes", "bytes", kSum, "written to DRAM"},
    {"bytes.ring_byte_hops", "ring_byte_hops", "bytes × hops", kSum, "load on the ring links"},
    {"bytes.link_byte_hops", "link_byte_hops", "bytes × links", kSum,
     "load on the chip-to-chip links: bytes sent to other chips (collectives) times the links each crosses"},
    {"bytes.scratchpad_read", "scratchpad_read_bytes", "bytes", kSum,
     "read from the scratchpads (operands to the arrays or their L0s, DMA drains)"},
    {"bytes.scratchpad_write", "scratchpad_write_bytes", "bytes", kSum, "written to the scratchpads (DMA fills)"},
    {"bytes.l0_read", "l0_read_bytes", "bytes", kSum, "operands the arrays read from their L0 buffers"},
    {"bytes.l0_write", "l0_write_bytes", "bytes", kSum, "operands written into the L0 buffers from the scratchpad"},
    {"bytes.on_chip_read", "on_chip_read_bytes", "bytes", kSum,
     "loads of earlier steps' results served from the scratchpads (a core's own share in place, "
     "other cores' over the ring) instead of DRAM (residency: liveness)"},
    {"bytes.dram_write_avoided", "dram_write_avoided_bytes", "bytes", kSum,
     "results kept on chip until their last reader, never written to DRAM"},
    {"bytes.host_read", "host_read_bytes", "bytes", kSum,
     "read from the host's memory over the host link (what does not fit the DRAM, with `spill_to_host`)"},
    {"bytes.host_write", "host_write_bytes", "bytes", kSum, "written to the host's memory over the host link"},
}};

constexpr std::array<Counter, kCounters> make_all() {
  std::array<Counter, kCounters> all{};
  for (std::size_t i = 0; i < kCounters; ++i) all[i] = static_cast<Counter>(i);
  return all;
}
constexpr std::array<Counter, kCounters> kAll = make_all();

}  // namespace

const CounterInfo& info(Counter counter) { return kInfo.at(static_cast<std::size_t>(counter)); }

const std::array<Counter, kCounters>& all_counters() { return kAll; }

void Counters::add(const Counters& other, int sign) {
  const auto apply = [sign](std::uint64_t& into, std::uint64_t value) {
    into = sign > 0 ? into + value : into - value;
  };
  for (std::size_t i = 0; i < kCounters; ++i) apply(values[i], other.values[i]);
  if (macs_by_datapath.size() < other.macs_by_datapath.size())
    macs_by_datapath.resize(other.macs_by_datapath.size(), 0);
  for (std::size_t i = 0; i < other.macs_by_datapath.size(); ++i) apply(macs_by_datapath[i], other.macs_by_datapath[i]);
}

}  // namespace lpt::core
