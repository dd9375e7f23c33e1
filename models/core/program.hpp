// The work a chip executes, as produced by sim/mapping: a sequence of steps
// (one per layer, phase and GEMM); in each step every core runs its own list of
// tile tasks. Each core runs the steps in order; a step waits only for the
// steps it depends on (the data it reads). Plain data, no SystemC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lpt::core {

// Bytes that `elements` values of `bits` each occupy when packed (4-bit
// operands take half a byte each).
inline std::uint64_t packed_bytes(std::uint64_t elements, int bits) {
  return (elements * static_cast<std::uint64_t>(bits) + 7) / 8;
}

// Where a transfer starts or ends.
// kHost: the host's memory, over the chip's host link (ChipParams::host_link).
struct Endpoint {
  enum class Kind { kDram, kCore, kHost };
  Kind kind = Kind::kDram;
  int core = 0;  // for kCore

  static Endpoint dram() { return {Kind::kDram, 0}; }
  static Endpoint host() { return {Kind::kHost, 0}; }
  // DRAM and host memory sit behind the memory stop.
  bool off_chip() const { return kind != Kind::kCore; }
  static Endpoint core_at(int index) { return {Kind::kCore, index}; }
  bool operator==(const Endpoint&) const = default;
};

struct Transfer {
  Endpoint src;
  Endpoint dst;
  std::uint64_t bytes = 0;
  // What the transfer carries, for keeping tensors on chip between steps
  // (sim/residency): a store of its step's result, or a load of the result of
  // an earlier step. Weights, partial sums and the side tensors of fused work
  // carry neither. The chip model ignores both.
  bool is_result = false;                               // stores
  std::optional<std::size_t> result_of = std::nullopt;  // loads: the producing step
  // A load of data no step writes before it (weights: only their update
  // writes them, after every step that reads them), which a core may issue
  // before the step's dependencies have finished.
  bool prefetchable = false;
};

// GEMM tiles on the MAC array: `count` independent (m x k) . (k x n) products
// back to back (count > 1 for batches of small GEMMs such as attention heads),
// k being the reduction.
struct MacTile {
  std::uint64_t m = 0, n = 0, k = 0;
  std::uint64_t count = 1;
  std::uint32_t datapath = 0;        // index into Program::datapaths, for counting MACs by format
  int macs_per_pe_per_cycle = 1;     // for this GEMM's operand formats
  int operand_bits_a = 8;            // element sizes, for scratchpad read traffic
  int operand_bits_b = 8;
  bool empty() const { return m == 0 || n == 0 || k == 0 || count == 0; }
  std::uint64_t macs() const { return m * n * k * count; }
  bool operator==(const MacTile&) const = default;
};

// Element-wise work on the special-function unit, counted per op kind.
struct SfuWork {
  std::uint64_t alu = 0;       // add, mul, fma, max, compare, select
  std::uint64_t exp = 0;       // exp, log
  std::uint64_t div_sqrt = 0;  // div, sqrt, rsqrt
  bool empty() const { return alu == 0 && exp == 0 && div_sqrt == 0; }
};

// One tile's worth of work on one core, in order: loads land in the
// scratchpad, the MAC array computes, the SFU and rounders post-process, stores
// write back. Loads of the next task overlap this one's compute (double
// buffering) when both fit in the scratchpad.
// Beyond a task budget per core and step (sim/mapping), a task stands for r
// tiles of one shape merged: loads and stores carry r tiles' bytes, mac.count
// is r, rounding and SFU work are r tiles'. Its buffer_bytes stays one tile's
// (the tiles stream through the buffers), so the next task is still
// prefetched; the approximation is that the whole task's loads land before it
// computes, exposing one merged task's loads at the start of a step instead
// of one tile's (docs/architecture.md, "Not modelled").
struct TileTask {
  std::vector<Transfer> loads;
  MacTile mac;
  SfuWork sfu;
  std::uint64_t rounded_elements = 0;  // through the stochastic rounders
  std::vector<Transfer> stores;
  std::uint64_t buffer_bytes = 0;      // scratchpad space the loads occupy
};

// A collective across the chips of a system, run by each chip's collective
// engine (models/system) beside its cores: an all-reduce of one bucket of
// gradients, `elements` values of `element_bits` each on every chip, summed
// over the chips; each chip ends up with the sum. How it is scheduled (ring,
// tree, hierarchical) is the system's choice (models/system/collective).
enum class CollectiveAlgorithm {
  kRing,          // reduce-scatter then all-gather around a ring of all chips
  kTree,          // reduce up a binary tree, broadcast back down
  kHierarchical,  // reduce-scatter within groups, all-reduce across them, all-gather within
};
const char* to_string(CollectiveAlgorithm algorithm);  // "ring" | "tree" | "hierarchical"

// What a collective does: sum every chip's values on every chip, or gather
// each chip's part (elements / members) to every member of its gather group.
enum class CollectiveOp { kAllReduce, kAllGather };

struct Collective {
  std::uint64_t elements = 0;
  int element_bits = 16;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kRing;  // of an all-reduce
  // Hierarchical on a ring or switch: chips per group (consecutive chips); on
  // a torus the groups are its rows. 0 otherwise.
  int group_chips = 0;
  // ScaleCom's CLT-k compression (models/system/collective): only
  // sent_elements() of each chip's values are all-reduced. 0: dense.
  double compression_ratio = 0;
  CollectiveOp op = CollectiveOp::kAllReduce;
  // An all-gather's members, by position in the ring order (models/system/
  // collective): groups of `gather_group` consecutive chips (0: all chips),
  // or, `gather_across`, the chips at the same place in each such group.
  int gather_group = 0;
  bool gather_across = false;
  // k = ⌊elements / ratio⌋, at least 1 (all elements when dense).
  std::uint64_t sent_elements() const;
  std::uint64_t bytes() const { return packed_bytes(elements, element_bits); }
  bool operator==(const Collective&) const = default;
};

struct Step {
  std::string label;  // e.g. "conv1/fwd"; reports index steps by position
  std::vector<std::vector<TileTask>> tasks_per_core;  // size == number of cores
  // Earlier steps whose results this one reads. A core starts the step once it
  // has finished its own previous step and every core has finished these; a
  // step that depends on none may overlap earlier steps running on other cores.
  std::vector<std::size_t> depends_on = {};
  // Scratchpad bytes one core's tasks of this step occupy at once (double
  // buffers, a resident panel, accumulating output tiles); what is left may
  // hold tensors kept on chip between steps.
  std::uint64_t working_set_bytes = 0;
  // Set for a collective step: the cores have no tasks in it and do not wait
  // for its dependencies; it is complete on a chip when that chip's part of
  // the collective is. A step that depends on it waits for it like any other.
  std::optional<Collective> collective = std::nullopt;
};

// The formats a GEMM runs in: operands and accumulator (format names of
// models/numerics), for counting MACs by datapath.
struct Datapath {
  std::string a, b, accumulator;
  int a_bits = 0, b_bits = 0;  // operand element sizes
  int macs_per_pe_per_cycle = 1;  // the width of a PE's dot product in these formats
  bool operator==(const Datapath&) const = default;
};

struct Program {
  std::vector<Step> steps;
  std::vector<Datapath> datapaths;  // MacTile::datapath indexes it
};

}  // namespace lpt::core
