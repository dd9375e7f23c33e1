#include "sim/mapping.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include "models/common/checked_math.hpp"
#include "models/common/text.hpp"
#include "models/compute/systolic_timing.hpp"
#include "sim/roofline.hpp"

namespace lpt {

namespace {

using core::Endpoint;
using core::packed_bytes;
using core::Step;
using core::TileTask;
using core::Transfer;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Tasks that stream data through the SFU or the array without a tiling of
// their own (element-wise chunks, batches of small GEMMs): at most this many
// bytes each, so that the first task's loads and the last one's stores, which
// nothing overlaps, do not grow with the scratchpad; and when the work is
// large, at least this many per core, so loads overlap compute.
constexpr std::uint64_t kMaxStreamedTaskBytes = 256 * 1024;
constexpr std::uint64_t kMinTasksForOverlap = 8;

// packed_bytes for the mapper's estimates, whose totals may exceed 64 bits:
// exact below 2^64 (long double holds 64-bit integers), approximate above.
long double estimated_bytes(long double elements, int bits) {
  return std::floor((elements * bits + 7) / 8);
}

// Elements in DRAM of an m x k block of the GEMM's A operand: through the
// convolution's window for an implicit GEMM (the raw tensor with its halo),
// else the block itself.
long double a_elements(const GemmWork& g, long double rows, long double cols) {
  return g.a_window ? a_block_elements(*g.a_window, rows, cols) : rows * cols;
}
long double estimated_a_bytes(const GemmWork& g, const GemmFormats& f, long double rows,
                              long double cols) {
  return estimated_bytes(a_elements(g, rows, cols), f.a_bits);
}
std::uint64_t a_bytes(const GemmWork& g, const GemmFormats& f, std::int64_t rows, std::int64_t cols) {
  if (!g.a_window) return packed_bytes(checked_mul(rows, cols), f.a_bits);
  return packed_bytes(static_cast<std::uint64_t>(a_elements(g, rows, cols)), f.a_bits);
}

// Bytes of A read when it is streamed once in tm x tk tiles (all of A when
// tm = m and tk = k): with a window, each tile brings its own halo.
long double estimated_a_stream_bytes(const GemmWork& g, const GemmFormats& f, std::int64_t tm,
                                     std::int64_t tk) {
  if (!g.a_window) return estimated_bytes(static_cast<long double>(g.m) * g.k, f.a_bits);
  long double total = 0;
  for (const bool m_edge : {false, true})
    for (const bool k_edge : {false, true}) {
      const std::int64_t rows = m_edge ? g.m % tm : tm, cols = k_edge ? g.k % tk : tk;
      if (rows == 0 || cols == 0) continue;
      const long double count = static_cast<long double>(m_edge ? 1 : g.m / tm) *
                                static_cast<long double>(k_edge ? 1 : g.k / tk);
      total += count * estimated_a_bytes(g, f, rows, cols);
    }
  return total;
}

// Start of share `part` of `total` items dealt in `parts` contiguous ranges
// (balanced to one item): total * part / parts, computed without the product.
std::int64_t range_begin(std::int64_t total, std::int64_t part, std::int64_t parts) {
  return total / parts * part + total % parts * part / parts;
}

// Where each of `parts` consecutive parts of `total` items begins (and, last,
// `total`). The parts double in size from each end for a few steps: the loads
// of a step's first task and the stores of its last are not overlapped with
// compute, nor is the part of a task's loads that outlasts a shorter task
// before it, so merged tasks keep their ends short.
std::vector<std::int64_t> ramped_bounds(std::int64_t total, std::int64_t parts) {
  constexpr std::int64_t kDoublings = 4;
  std::vector<std::int64_t> weight_before{0};
  for (std::int64_t i = 0; i < parts; ++i)
    weight_before.push_back(weight_before.back() +
                            (std::int64_t{1} << std::min({i, parts - 1 - i, kDoublings})));
  std::vector<std::int64_t> bounds;
  for (const std::int64_t w : weight_before) bounds.push_back(range_begin(total, w, weight_before.back()));
  return bounds;
}

// How many x in [begin, end) have x mod `modulus` == `residue`.
std::int64_t count_residue(std::int64_t begin, std::int64_t end, std::int64_t modulus,
                           std::int64_t residue) {
  const auto below = [&](std::int64_t n) { return (n + modulus - 1 - residue) / modulus; };
  return below(end) - below(begin);
}

// How many x in [begin, end) have x mod `modulus` >= `threshold`.
std::int64_t count_residue_at_least(std::int64_t begin, std::int64_t end, std::int64_t modulus,
                                    std::int64_t threshold) {
  const auto below = [&](std::int64_t n) {
    return n / modulus * (modulus - threshold) + std::max<std::int64_t>(0, n % modulus - threshold);
  };
  return below(end) - below(begin);
}

// Size of tile `index` when `extent` is cut into tiles of `size`.
std::int64_t tile_extent(std::int64_t extent, std::int64_t size, std::int64_t index) {
  return std::min(size, extent - index * size);
}

// Tile sizes worth trying along one dimension: multiples of the array's
// granule doubling up to the whole extent.
std::vector<std::int64_t> candidate_sizes(std::int64_t extent, std::int64_t granule) {
  std::vector<std::int64_t> out;
  for (std::int64_t s = granule; s < extent; s *= 2) out.push_back(s);
  out.push_back(extent);
  return out;
}

struct Granules {
  std::int64_t m, n, k;
};

// Tile dimensions that map onto whole array folds for the dataflow.
Granules granules(const core::MacArrayParams& array, int macs_per_pe) {
  const std::int64_t r = array.rows, c = array.cols, v = macs_per_pe;
  switch (array.dataflow) {
    case core::Dataflow::kOutputStationary: return {r, c, v};
    case core::Dataflow::kWeightStationary: return {r, c, v * r};
    case core::Dataflow::kInputStationary: return {c, r, v * r};
  }
  return {r, c, v};
}

core::MacTile mac_tile(std::int64_t m, std::int64_t n, std::int64_t k, const GemmFormats& f) {
  core::MacTile t;
  t.m = static_cast<std::uint64_t>(m);
  t.n = static_cast<std::uint64_t>(n);
  t.k = static_cast<std::uint64_t>(k);
  t.macs_per_pe_per_cycle = f.macs_per_pe_per_cycle;
  t.operand_bits_a = f.a_bits;
  t.operand_bits_b = f.b_bits;
  t.datapath = f.datapath;
  return t;
}

// Sum of the array cycles of every tile of the GEMM (one instance), grouped
// into the at most 8 distinct tile shapes (full or edge along m, n, k). An
// estimate: long double, as 2^31-sized dimensions overflow 64 bits.
long double total_tile_cycles(const core::MacArrayParams& array, const GemmWork& g,
                                const GemmFormats& f, std::int64_t tm, std::int64_t tn,
                                std::int64_t tk) {
  struct Split {
    std::int64_t full_count, full, edge;  // edge == 0: no edge tile
  };
  const auto split = [](std::int64_t extent, std::int64_t size) {
    const std::int64_t full = extent / size, edge = extent % size;
    return Split{full, size, edge};
  };
  const Split sm = split(g.m, tm), sn = split(g.n, tn), sk = split(g.k, tk);
  long double total = 0;
  for (int em = 0; em < 2; ++em)
    for (int en = 0; en < 2; ++en)
      for (int ek = 0; ek < 2; ++ek) {
        const std::int64_t cm = em ? (sm.edge ? 1 : 0) : sm.full_count;
        const std::int64_t cn = en ? (sn.edge ? 1 : 0) : sn.full_count;
        const std::int64_t ck = ek ? (sk.edge ? 1 : 0) : sk.full_count;
        if (cm == 0 || cn == 0 || ck == 0) continue;
        const auto tile = mac_tile(em ? sm.edge : sm.full, en ? sn.edge : sn.full,
                                   ek ? sk.edge : sk.full, f);
        total += static_cast<long double>(cm) * static_cast<long double>(cn) *
                 static_cast<long double>(ck) *
                 static_cast<long double>(core::systolic_tile_timing(array, tile).cycles);
      }
  return total;
}

// The time of a core's tiles whose compute, DRAM and SFU work overlap, but
// not perfectly: loads come in bursts (every core starts its first panel at
// once) and each tile waits for its slowest input, so resources near balance
// take longer than the slower one alone. A 4-norm prices that: two equal
// times cost 19% more than one, one at half the other's adds 1.5%. The plain
// maximum chose weight-gradient tilings of ResNet-50 with 1.6x the DRAM
// traffic of a tiling the simulation ran as fast or faster.
double overlapped_cycles(double compute, double memory, double sfu) {
  constexpr double kNorm = 4;
  const double most = std::max({compute, memory, sfu});
  if (most <= 0) return 0;
  const auto term = [&](double x) { return std::pow(x / most, kNorm); };
  return most * std::pow(term(compute) + term(memory) + term(sfu), 1 / kNorm);
}

// Number of times resident panels are loaded when `units` output tiles, ordered
// with the resident panel changing every `per_panel` units, are dealt to
// `cores` cores in contiguous ranges: each core loads each panel it touches.
std::int64_t resident_loads(std::int64_t units, std::int64_t per_panel, int cores) {
  std::int64_t loads = 0;
  for (int c = 0; c < cores; ++c) {
    const std::int64_t begin = range_begin(units, c, cores), end = range_begin(units, c + 1, cores);
    if (end > begin) loads += (end - 1) / per_panel - begin / per_panel + 1;
  }
  return loads;
}

}  // namespace

GemmFormats GemmFormats::of(const GemmDatapath& datapath, std::uint32_t index_in_program) {
  return {datapath.a_bits(), datapath.b_bits(), datapath.accumulator_bits(), datapath.output_bits(),
          datapath.macs_per_pe_per_cycle, index_in_program};
}

const char* to_string(LoopOrder order) {
  switch (order) {
    case LoopOrder::kResidentB: return "resident-B";
    case LoopOrder::kResidentA: return "resident-A";
    case LoopOrder::kStreamBoth: return "stream-both";
  }
  return "?";
}

std::string to_string(const GemmTiling& t) {
  std::string text = std::to_string(t.tile_m) + "x" + std::to_string(t.tile_n) + "x" + std::to_string(t.tile_k) +
                     " " + to_string(t.order);
  if (t.k_splits > 1) text += " k-split " + std::to_string(t.k_splits);
  return text;
}

std::uint64_t CollectiveStep::elements() const {
  std::uint64_t total = 0;
  for (const auto& [layer, elements] : layers) total += elements;
  return total;
}

std::string StepInfo::what() const {
  if (collective) return "all-reduce";
  if (!gemm) return "elementwise";
  return gemm->k_reduction ? gemm->label + " k-reduction" : gemm->label;
}

std::string StepInfo::tiling() const { return gemm && !gemm->k_reduction ? to_string(gemm->tiling) : std::string(); }

int StepInfo::macs_per_pe_per_cycle() const {
  return gemm && !gemm->k_reduction ? gemm->datapath.macs_per_pe_per_cycle : 0;
}

long double tiling_footprint(const core::ChipParams& chip, const GemmWork& g, const GemmFormats& f,
                             std::int64_t tm, std::int64_t tn, std::int64_t tk, LoopOrder order) {
  const auto slots = static_cast<long double>(std::max(1, chip.core.scratchpad.buffer_slots));
  const long double outputs = 2 * estimated_bytes(static_cast<long double>(tm) * tn, f.accumulator_bits);
  const long double a = estimated_a_bytes(g, f, tm, tk);
  const long double b = estimated_bytes(static_cast<long double>(tk) * tn, f.b_bits);
  switch (order) {
    case LoopOrder::kResidentB: return b + slots * a + outputs;
    case LoopOrder::kResidentA: return a + slots * b + outputs;
    case LoopOrder::kStreamBoth: return slots * (a + b) + outputs;
  }
  return outputs;
}

GemmTiling choose_gemm_tiling(const core::ChipParams& chip, const GemmWork& g,
                              const GemmFormats& f) {
  constexpr int kStreamedDepths = 64;  // k slices tried per (tm, tn), from the deepest that fits
  const auto& array = chip.core.mac_array;
  const std::uint64_t capacity = chip.core.scratchpad.size_bytes();
  const int cores = chip.cores;
  const double bandwidth = memory_bytes_per_cycle(chip);
  const double link = static_cast<double>(chip.interconnect.link_bytes_per_cycle);
  const double sfu_alu = chip.core.sfu.lanes * chip.core.sfu.ops_per_cycle.alu;
  const Granules unit = granules(array, f.macs_per_pe_per_cycle);
  // The SFU and rounder time of the whole GEMM on one core (work fused into
  // it, and rounding its outputs), which runs beside the MAC array.
  const double sfu_on_one_core =
      std::max(sfu_cycles(chip.core.sfu, static_cast<double>(g.fused.ops.alu),
                          static_cast<double>(g.fused.ops.exp), static_cast<double>(g.fused.ops.div_sqrt)),
               static_cast<double>(g.count) * static_cast<double>(g.m) * static_cast<double>(g.n) /
                   chip.core.rounder.lanes);

  // Estimates are long double: traffic and cycles of GEMMs with 2^31-sized
  // dimensions exceed 64 bits. Below 2^64 they are exact integers, and they
  // are converted to double where the original integer arithmetic did, so the
  // choice for ordinary GEMMs does not depend on the wider type.
  using Estimate = long double;
  std::vector<GemmTiling> candidates;
  bool too_many_tiles = false;
  // Candidates within 2% of the fastest estimate are near ties, decided by traffic.
  const auto near_tie_of = [](double cycles) { return std::max(cycles, std::trunc(cycles * 1.02)); };
  double fastest = std::numeric_limits<double>::infinity();
  const auto evaluate = [&](std::int64_t tm, std::int64_t tn, std::int64_t tk, LoopOrder order,
                            std::int64_t k_splits) {
    GemmTiling t;
    t.tile_m = tm, t.tile_n = tn, t.tile_k = tk, t.order = order, t.k_splits = k_splits;
    t.tiles_m = ceil_div(g.m, tm), t.tiles_n = ceil_div(g.n, tn), t.tiles_k = ceil_div(g.k, tk);
    std::int64_t outputs = 0, units = 0;
    if (__builtin_mul_overflow(g.count, t.tiles_m * t.tiles_n, &outputs) ||
        __builtin_mul_overflow(outputs, k_splits, &units)) {
      too_many_tiles = true;  // more tiles than map_gemm can number
      return;
    }
    const Estimate a_panels = estimated_a_stream_bytes(g, f, tm, tk);  // all of A, once
    const Estimate b_panels = estimated_bytes(static_cast<Estimate>(g.k) * g.n, f.b_bits);
    const Estimate instances = static_cast<Estimate>(g.count);
    Estimate traffic = instances * estimated_bytes(static_cast<Estimate>(g.m) * g.n, f.output_bits);
    Estimate first_load = 0;
    switch (order) {
      case LoopOrder::kResidentB:
        traffic += instances * t.tiles_n * a_panels +
                   static_cast<Estimate>(resident_loads(units, t.tiles_m, cores)) *
                       estimated_bytes(static_cast<Estimate>(g.k) * tn, f.b_bits);
        first_load = estimated_a_bytes(g, f, tm, g.k) +
                     estimated_bytes(static_cast<Estimate>(g.k) * tn, f.b_bits);
        break;
      case LoopOrder::kResidentA:
        traffic += instances * t.tiles_m * b_panels +
                   static_cast<Estimate>(resident_loads(units, t.tiles_n, cores)) *
                       estimated_a_bytes(g, f, tm, g.k);
        first_load = estimated_a_bytes(g, f, tm, g.k) +
                     estimated_bytes(static_cast<Estimate>(g.k) * tn, f.b_bits);
        break;
      case LoopOrder::kStreamBoth:
        traffic += instances * (t.tiles_n * a_panels + t.tiles_m * b_panels);
        first_load = estimated_a_bytes(g, f, tm, tk) +
                     estimated_bytes(static_cast<Estimate>(tk) * tn, f.b_bits);
        break;
    }
    // The busiest core: the most units, and (dealt in contiguous ranges) full
    // ones, so that a small edge tile does not count as a core's share.
    const std::int64_t busiest = ceil_div(units, cores);
    const std::int64_t slices_per_unit = order == LoopOrder::kStreamBoth ? ceil_div(t.tiles_k, k_splits) : 1;
    const Estimate busiest_share =
        std::min<Estimate>(1, static_cast<Estimate>(busiest) * std::min(tm, g.m) * std::min(tn, g.n) *
                                  std::min(tk, g.k) * slices_per_unit /
                                  (static_cast<Estimate>(g.m) * g.n * g.k * g.count));
    const double memory = std::trunc(static_cast<double>(traffic) / bandwidth);
    // The SFU work follows the MACs (spread_fused_work): the busiest core's share.
    const double sfu_per_core = sfu_on_one_core * static_cast<double>(busiest_share);
    double reduction = 0;
    if (k_splits > 1) {
      const double partial_elements =
          static_cast<double>(outputs) * static_cast<double>(k_splits - 1) * static_cast<double>(tm * tn);
      reduction = partial_elements * f.accumulator_bits / 8.0 / link + partial_elements / sfu_alu;
    }
    t.tiles = static_cast<double>(static_cast<Estimate>(outputs) * t.tiles_k);
    t.estimated_dram_bytes = static_cast<double>(traffic);
    // Exposed at the ends of a core's tile sequence: the first tile's loads
    // (all cores load at once) and the last tile's SFU work and output
    // store, which nothing overlaps. They make a few huge tiles per core
    // lose to more, smaller ones that pipeline.
    const double tiles_per_core = std::max(1.0, static_cast<double>(busiest) *
                                                    (order == LoopOrder::kStreamBoth ? t.tiles_k / k_splits : 1));
    const double last_tile = sfu_per_core / tiles_per_core +
                             static_cast<double>(estimated_bytes(static_cast<Estimate>(tm) * tn, f.output_bits)) *
                                 cores / bandwidth;
    const double exposed = std::trunc(static_cast<double>(first_load) * cores / bandwidth + reduction) +
                           std::trunc(last_tile);
    // The overlap is never less than its largest part, so a tiling whose
    // memory or SFU time alone puts it past the near-tie margin of the
    // fastest so far can never be chosen: skip its costly compute estimate.
    if (std::trunc(std::max(memory, sfu_per_core)) + exposed > near_tie_of(fastest)) return;
    const Estimate compute_total = instances * total_tile_cycles(array, g, f, tm, tn, tk);
    const Estimate full_unit = static_cast<Estimate>(slices_per_unit) *
                               core::systolic_tile_timing(array, mac_tile(std::min(tm, g.m), std::min(tn, g.n),
                                                                          std::min(tk, g.k), f)).cycles;
    const double compute_per_core = std::trunc(static_cast<double>(
        std::max(compute_total * busiest / units, std::min(compute_total, full_unit * busiest))));
    t.estimated_cycles = std::trunc(overlapped_cycles(compute_per_core, memory, sfu_per_core)) + exposed;
    fastest = std::min(fastest, t.estimated_cycles);
    candidates.push_back(t);
  };

  const auto k_sizes = candidate_sizes(g.k, unit.k);
  const auto capacity_bytes = static_cast<Estimate>(capacity);
  for (std::int64_t tm : candidate_sizes(g.m, unit.m)) {
    for (std::int64_t tn : candidate_sizes(g.n, unit.n)) {
      // Two output tiles: one accumulating while the previous one drains.
      const Estimate outputs = 2 * estimated_bytes(static_cast<Estimate>(tm) * tn, f.accumulator_bits);
      if (outputs >= capacity_bytes) continue;
      for (const LoopOrder order : {LoopOrder::kResidentB, LoopOrder::kResidentA})
        if (tiling_footprint(chip, g, f, tm, tn, g.k, order) <= capacity_bytes) evaluate(tm, tn, g.k, order, 1);
      // Streaming both operands: the deepest k slices that fit (the deepest
      // moves the least, shallower ones pipeline better: a larger scratchpad
      // must not leave only slices too deep to overlap), and with too few
      // output tiles to occupy every core, the same split across cores in k.
      int depths = 0;
      for (auto it = k_sizes.rbegin(); it != k_sizes.rend() && depths < kStreamedDepths; ++it) {
        const std::int64_t tk = *it;
        if (tiling_footprint(chip, g, f, tm, tn, tk, LoopOrder::kStreamBoth) > capacity_bytes) continue;
        evaluate(tm, tn, tk, LoopOrder::kStreamBoth, 1);
        const Estimate output_tiles = static_cast<Estimate>(g.count) * ceil_div(g.m, tm) * ceil_div(g.n, tn);
        if (output_tiles < cores) {
          const std::int64_t splits =
              std::min(cores / static_cast<std::int64_t>(output_tiles), ceil_div(g.k, tk));
          if (splits > 1) evaluate(tm, tn, tk, LoopOrder::kStreamBoth, splits);
        }
        ++depths;
      }
    }
  }
  if (candidates.empty() && too_many_tiles) throw CountOverflow();
  if (candidates.empty())
    throw std::runtime_error("scratchpad of " + std::to_string(capacity) +
                             " bytes cannot hold even the smallest tile of GEMM " + g.label);
  const double near_tie = near_tie_of(fastest);
  double least_traffic = std::numeric_limits<double>::infinity();
  for (const auto& c : candidates)
    if (c.estimated_cycles <= near_tie) least_traffic = std::min(least_traffic, c.estimated_dram_bytes);
  const GemmTiling* best = nullptr;
  for (const auto& c : candidates) {
    if (c.estimated_cycles > near_tie || c.estimated_dram_bytes > least_traffic * 1.02) continue;
    if (!best || c.tiles < best->tiles ||
        (c.tiles == best->tiles && c.estimated_cycles < best->estimated_cycles))
      best = &c;
  }
  return *best;
}

namespace {

// The core that runs work unit `unit` of `units` dealt in contiguous ranges.
int core_of_unit(std::int64_t unit, std::int64_t units, int cores) {
  for (int c = cores - 1; c > 0; --c)
    if (range_begin(units, c, cores) <= unit) return c;
  return 0;
}

// Many small GEMMs that each fit one tile (attention heads, depthwise channels):
// batches of them per task, as many as fit the scratchpad with double
// buffering while leaving a few tasks per core for overlap. Beyond the task
// budget a task streams more instances through the same buffers.
void map_instance_batches(const core::ChipParams& chip, const GemmWork& g, const GemmFormats& f,
                          const OperandOrigins& sources, Step& step) {
  const int cores = chip.cores;
  const std::uint64_t slots = static_cast<std::uint64_t>(std::max(1, chip.core.scratchpad.buffer_slots));
  const std::uint64_t a = a_bytes(g, f, g.m, g.k), b = packed_bytes(g.k * g.n, f.b_bits);
  const std::uint64_t out = packed_bytes(g.m * g.n, f.output_bits);
  const std::uint64_t accumulators = packed_bytes(g.m * g.n, f.accumulator_bits);
  const auto fitting = static_cast<std::int64_t>(
      std::min(chip.core.scratchpad.size_bytes() / (slots * (a + b) + 2 * accumulators),
               kMaxStreamedTaskBytes / std::max<std::uint64_t>(1, a + b)));
  const std::int64_t per_core = ceil_div(g.count, cores);
  const std::int64_t batch = std::max({std::int64_t{1},
                                       std::min(fitting, ceil_div(per_core, static_cast<std::int64_t>(kMinTasksForOverlap))),
                                       ceil_div(per_core, tasks_per_core_budget(cores))});
  const auto resident = static_cast<std::uint64_t>(std::max<std::int64_t>(1, std::min(batch, fitting)));
  for (int c = 0; c < cores; ++c) {
    const Endpoint dram = Endpoint::dram(), here = Endpoint::core_at(c);
    const std::int64_t end = range_begin(g.count, c + 1, cores);
    for (std::int64_t first = range_begin(g.count, c, cores); first < end; first += batch) {
      const auto n = static_cast<std::uint64_t>(std::min(batch, end - first));
      TileTask task;
      task.loads = {{dram, here, checked_mul(n, a), false, sources.a, sources.a_weights},
                    {dram, here, checked_mul(n, b), false, sources.b, sources.b_weights}};
      task.buffer_bytes = std::min(n, resident) * (a + b);
      task.mac = mac_tile(g.m, g.n, g.k, f);
      task.mac.count = n;
      task.rounded_elements = checked_mul(n, static_cast<std::uint64_t>(g.m * g.n));
      task.stores = {{here, dram, checked_mul(n, out), true}};
      step.tasks_per_core[static_cast<std::size_t>(c)].push_back(std::move(task));
    }
  }
  step.working_set_bytes = slots * resident * (a + b) + 2 * accumulators;
}

// Sizes of the tiles along one dimension: all but the last are `full`.
struct TileSizes {
  std::int64_t full, last;
  bool uniform() const { return full == last; }
};

TileSizes tile_sizes(std::int64_t extent, std::int64_t size, std::int64_t tiles) {
  return {size, extent - (tiles - 1) * size};
}

// Tiles of one shape that merged tasks stand for, in a core's order.
struct ShapeRun {
  std::int64_t tm = 0, tn = 0, tk = 0;
  std::int64_t tiles = 0;
  // Every `tiles_per_output` tiles complete an output tile, which is then
  // rounded and stored; 0: no output completes in this run.
  std::int64_t tiles_per_output = 0;
  std::uint64_t a_bytes_per_tile = 0;  // the streamed operand (A, or B past a resident A panel)
  std::uint64_t b_bytes_per_tile = 0;  // B, when both stream
  std::uint64_t panel_buffer_bytes = 0;  // a panel each tile needs beside its operands
};

// Maps a GEMM's work units (output tiles, or k-parts of them) to one core's
// tasks: one per tile, or merged within the task budget.
class CoreTiles {
 public:
  CoreTiles(const GemmWork& g, const GemmFormats& f, const GemmTiling& t, const OperandOrigins& sources,
            int core, std::vector<TileTask>& tasks)
      : g_(g), f_(f), t_(t), sources_(sources), here_(Endpoint::core_at(core)), tasks_(tasks),
        a_outer_(t.order == LoopOrder::kResidentA),
        inner_tiles_(a_outer_ ? t.tiles_n : t.tiles_m),
        outer_tiles_(a_outer_ ? t.tiles_m : t.tiles_n),
        m_(tile_sizes(g.m, t.tile_m, t.tiles_m)),
        n_(tile_sizes(g.n, t.tile_n, t.tiles_n)),
        k_(tile_sizes(g.k, t.tile_k, t.tiles_k)) {}

  // Tiles the units [begin, end) consist of.
  std::int64_t tiles(std::int64_t begin, std::int64_t end) const {
    if (t_.order != LoopOrder::kStreamBoth) return end - begin;
    if (t_.k_splits == 1) return checked_mul(end - begin, t_.tiles_k);
    std::int64_t total = 0;
    for (std::int64_t u = begin; u < end; ++u) total += k_end(u % t_.k_splits) - k_begin(u % t_.k_splits);
    return total;
  }

  // One task per tile, in loop order.
  void map_each_tile(std::int64_t begin, std::int64_t end) {
    const std::int64_t per_instance = t_.tiles_m * t_.tiles_n;
    const bool partial = t_.k_splits > 1;
    std::int64_t resident_panel = -1;
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t output = u / t_.k_splits, part = u % t_.k_splits;
      const std::int64_t instance = output / per_instance, within = output % per_instance;
      const std::int64_t outer = within / inner_tiles_, inner = within % inner_tiles_;
      const std::int64_t i = a_outer_ ? outer : inner, j = a_outer_ ? inner : outer;
      const std::int64_t tm = tile_extent(g_.m, t_.tile_m, i), tn = tile_extent(g_.n, t_.tile_n, j);
      const std::uint64_t out_bytes = packed_bytes(tm * tn, f_.output_bits);

      if (t_.order == LoopOrder::kStreamBoth) {
        for (std::int64_t kk = k_begin(part); kk < k_end(part); ++kk) {
          const std::int64_t tk = tile_extent(g_.k, t_.tile_k, kk);
          TileTask task;
          task.loads = {load(Operand::kA, a_bytes(g_, f_, tm, tk)),
                        load(Operand::kB, packed_bytes(tk * tn, f_.b_bits))};
          task.buffer_bytes = task.loads[0].bytes + task.loads[1].bytes;
          task.mac = mac_tile(tm, tn, tk, f_);
          if (kk + 1 == k_end(part) && !partial) {
            task.rounded_elements = static_cast<std::uint64_t>(tm * tn);
            task.stores = {result_store(out_bytes)};
          }
          tasks_.push_back(std::move(task));
        }
        continue;
      }
      TileTask task;
      const std::int64_t panel = instance * outer_tiles_ + outer;
      task.loads.push_back(load(streamed_operand(), streamed_bytes(tm, tn)));
      if (panel != resident_panel) {
        resident_panel = panel;
        task.loads.push_back(load(panel_operand(), panel_bytes(tm, tn)));
      }
      for (const auto& transfer : task.loads) task.buffer_bytes += transfer.bytes;
      task.mac = mac_tile(tm, tn, g_.k, f_);
      task.rounded_elements = static_cast<std::uint64_t>(tm * tn);
      task.stores = {result_store(out_bytes)};
      tasks_.push_back(std::move(task));
    }
  }

  // At most `budget` tasks: the core's tiles grouped by shape (at
  // most 8 groups: full or edge along m, n and, streaming both, k), each group
  // split into pieces in proportion to its tiles. Grouping reorders tiles of
  // different shapes; it keeps a small group (the edge tiles) from sitting
  // between large pieces, whose loads a small task cannot hide.
  void map_merged(std::int64_t begin, std::int64_t end, std::int64_t budget) {
    if (t_.order != LoopOrder::kStreamBoth) {
      emit(resident_runs(begin, end), budget, resident_panel_bytes(begin, end));
      return;
    }
    // A k-split has at most one unit per core (choose_gemm_tiling); units of
    // different parts cover different k ranges.
    if (t_.k_splits > 1) {
      for (std::int64_t u = begin; u < end; ++u)
        emit(stream_both_runs(u, u + 1), budget / (end - begin), 0);
      return;
    }
    emit(stream_both_runs(begin, end), budget, 0);
  }

 private:
  enum class Operand { kA, kB };

  // Resident orders stream one operand past a panel of the other; streaming
  // both, the "streamed" operand is A and B streams beside it.
  Operand streamed_operand() const { return a_outer_ ? Operand::kB : Operand::kA; }
  Operand panel_operand() const { return a_outer_ ? Operand::kA : Operand::kB; }

  core::Transfer load(Operand operand, std::uint64_t bytes) const {
    const bool a = operand == Operand::kA;
    return {Endpoint::dram(), here_, bytes, false, a ? sources_.a : sources_.b,
            a ? sources_.a_weights : sources_.b_weights};
  }
  core::Transfer result_store(std::uint64_t bytes) const { return {here_, Endpoint::dram(), bytes, true}; }

  std::int64_t k_begin(std::int64_t part) const { return t_.tiles_k * part / t_.k_splits; }
  std::int64_t k_end(std::int64_t part) const { return t_.tiles_k * (part + 1) / t_.k_splits; }

  // Resident orders: the operand streamed past the panel, and the panel.
  std::uint64_t streamed_bytes(std::int64_t tm, std::int64_t tn) const {
    return a_outer_ ? packed_bytes(g_.k * tn, f_.b_bits) : a_bytes(g_, f_, tm, g_.k);
  }
  std::uint64_t panel_bytes(std::int64_t tm, std::int64_t tn) const {
    return a_outer_ ? a_bytes(g_, f_, tm, g_.k) : packed_bytes(g_.k * tn, f_.b_bits);
  }

  struct OutputShape {
    std::int64_t tm, tn, outputs;
  };

  // The output tiles [first, last) by shape: which are last along the inner
  // and the outer loop is a residue of their index, so this is closed form.
  std::vector<OutputShape> output_shapes(std::int64_t first, std::int64_t last) const {
    const std::int64_t per_instance = t_.tiles_m * t_.tiles_n;
    const std::int64_t both = count_residue(first, last, per_instance, per_instance - 1);
    const std::int64_t inner_last = count_residue(first, last, inner_tiles_, inner_tiles_ - 1);
    const std::int64_t outer_last =
        count_residue_at_least(first, last, per_instance, (outer_tiles_ - 1) * inner_tiles_);
    const std::int64_t counts[2][2] = {{last - first - inner_last - outer_last + both, outer_last - both},
                                       {inner_last - both, both}};  // [inner last][outer last]
    const TileSizes& inner = a_outer_ ? n_ : m_;
    const TileSizes& outer = a_outer_ ? m_ : n_;
    std::vector<OutputShape> shapes;
    for (int outer_is_last = 0; outer_is_last < 2; ++outer_is_last)
      for (int inner_is_last = 0; inner_is_last < 2; ++inner_is_last) {
        const std::int64_t outputs = counts[inner_is_last][outer_is_last];
        if (outputs == 0) continue;
        const std::int64_t inner_size = inner_is_last ? inner.last : inner.full;
        const std::int64_t outer_size = outer_is_last ? outer.last : outer.full;
        const std::int64_t tm = a_outer_ ? outer_size : inner_size;
        const std::int64_t tn = a_outer_ ? inner_size : outer_size;
        const auto same = std::find_if(shapes.begin(), shapes.end(),
                                       [&](const OutputShape& s) { return s.tm == tm && s.tn == tn; });
        if (same != shapes.end())
          same->outputs += outputs;
        else
          shapes.push_back({tm, tn, outputs});
      }
    return shapes;
  }

  // Resident orders: one tile per output tile.
  std::vector<ShapeRun> resident_runs(std::int64_t first, std::int64_t last) const {
    std::vector<ShapeRun> runs;
    for (const OutputShape& s : output_shapes(first, last))
      runs.push_back({s.tm, s.tn, g_.k, s.outputs, 1, streamed_bytes(s.tm, s.tn), 0,
                      inner_tiles_ == 1 ? panel_bytes(s.tm, s.tn) : 0});
    return runs;
  }

  // Bytes of the panels the core walks through (panel p holds units
  // [p, p + 1) * inner): spread over its merged tasks in proportion to tiles.
  // A panel stays resident across tasks (the tiling's capacity check counts it
  // once, beside `buffer_slots` streamed tiles), so it is in no task's buffer,
  // unless every tile has a panel of its own (resident_runs): then it streams
  // with its tile, as per-tile tasks buffer it.
  std::uint64_t resident_panel_bytes(std::int64_t first, std::int64_t last) const {
    const std::int64_t first_panel = first / inner_tiles_, last_panel = (last - 1) / inner_tiles_;
    const std::int64_t panels = last_panel - first_panel + 1;
    const std::int64_t last_panels = count_residue(first_panel, last_panel + 1, outer_tiles_, outer_tiles_ - 1);
    const TileSizes& outer = a_outer_ ? m_ : n_;
    const auto panel_of = [&](std::int64_t size) {
      return a_outer_ ? panel_bytes(size, 0) : panel_bytes(0, size);
    };
    return checked_mul(static_cast<std::uint64_t>(panels - last_panels), panel_of(outer.full)) +
           checked_mul(static_cast<std::uint64_t>(last_panels), panel_of(outer.last));
  }

  // Streaming both operands: each output's k slices; the last slice, if its
  // depth differs, is a shape of its own and completes the output.
  std::vector<ShapeRun> stream_both_runs(std::int64_t first, std::int64_t last) const {
    const std::int64_t part = first % t_.k_splits;  // k-split runs are of single units
    const std::int64_t k_first = k_begin(part), k_last = k_end(part);
    const bool completes = t_.k_splits == 1;  // a k-split's outputs are completed by the reduction
    const bool reaches_last = k_last == t_.tiles_k;
    const std::int64_t slices = k_last - k_first;
    const std::int64_t full_slices = reaches_last && !k_.uniform() ? slices - 1 : slices;
    std::vector<ShapeRun> full, edge;
    for (const OutputShape& s : output_shapes(first / t_.k_splits, (last - 1) / t_.k_splits + 1)) {
      const auto a = [&](std::int64_t tk) { return a_bytes(g_, f_, s.tm, tk); };
      const auto b = [&](std::int64_t tk) { return packed_bytes(tk * s.tn, f_.b_bits); };
      if (full_slices > 0)
        full.push_back({s.tm, s.tn, k_.full, checked_mul(s.outputs, full_slices),
                        completes && full_slices == slices && reaches_last ? slices : 0, a(k_.full),
                        b(k_.full)});
      if (full_slices < slices)
        edge.push_back({s.tm, s.tn, k_.last, s.outputs, completes ? 1 : 0, a(k_.last), b(k_.last)});
    }
    full.insert(full.end(), edge.begin(), edge.end());
    return full;
  }

  // The runs as at most `budget` tasks: each run gets pieces in proportion to
  // its tiles (at least one), sized by ramped_bounds. A task's buffer is that
  // of one tile: its tiles stream through the buffers, so the next task's
  // loads still overlap its compute.
  void emit(const std::vector<ShapeRun>& runs, std::int64_t budget, std::uint64_t panel_bytes) {
    std::int64_t total_tiles = 0;
    for (const ShapeRun& run : runs) total_tiles += run.tiles;
    const std::int64_t spare = std::max<std::int64_t>(1, budget - static_cast<std::int64_t>(runs.size()));
    const std::int64_t tiles_per_piece = ceil_div(total_tiles, spare);
    // Panel bytes loaded before tile `tile` of the core's total.
    const auto panel_bytes_before = [&](std::int64_t tile) -> std::uint64_t {
      if (tile == total_tiles) return panel_bytes;
      return static_cast<std::uint64_t>(static_cast<long double>(panel_bytes) * tile / total_tiles);
    };
    std::int64_t tiles_before = 0;
    for (const ShapeRun& run : runs) {
      const std::uint64_t out_bytes = packed_bytes(run.tm * run.tn, f_.output_bits);
      const std::vector<std::int64_t> bounds = ramped_bounds(run.tiles, 1 + run.tiles / tiles_per_piece);
      for (std::size_t p = 0; p + 1 < bounds.size(); ++p) {
        const std::int64_t begin = bounds[p], end = bounds[p + 1];
        if (begin == end) continue;
        const auto count = static_cast<std::uint64_t>(end - begin);
        TileTask task;
        if (run.a_bytes_per_tile > 0)
          task.loads.push_back(load(streamed_operand(), checked_mul(count, run.a_bytes_per_tile)));
        if (run.b_bytes_per_tile > 0) task.loads.push_back(load(Operand::kB, checked_mul(count, run.b_bytes_per_tile)));
        task.buffer_bytes = run.a_bytes_per_tile + run.b_bytes_per_tile + run.panel_buffer_bytes;
        const std::uint64_t panel_share =
            panel_bytes_before(tiles_before + end) - panel_bytes_before(tiles_before + begin);
        if (panel_share > 0) task.loads.push_back(load(panel_operand(), panel_share));
        task.mac = mac_tile(run.tm, run.tn, run.tk, f_);
        task.mac.count = count;
        checked_mul(static_cast<std::uint64_t>(run.tm * run.tn * run.tk), count);  // macs() must not wrap
        if (run.tiles_per_output > 0) {
          const std::int64_t outputs = end / run.tiles_per_output - begin / run.tiles_per_output;
          if (outputs > 0) {
            task.rounded_elements = checked_mul(static_cast<std::uint64_t>(outputs),
                                                static_cast<std::uint64_t>(run.tm * run.tn));
            task.stores = {result_store(checked_mul(static_cast<std::uint64_t>(outputs), out_bytes))};
          }
        }
        tasks_.push_back(std::move(task));
      }
      tiles_before += run.tiles;
    }
  }

  const GemmWork& g_;
  const GemmFormats& f_;
  const GemmTiling& t_;
  const OperandOrigins& sources_;
  Endpoint here_;
  std::vector<TileTask>& tasks_;
  bool a_outer_;  // resident-A walks i in the outer loop, the others j
  std::int64_t inner_tiles_, outer_tiles_;
  TileSizes m_, n_, k_;
};

}  // namespace

std::int64_t tasks_per_core_budget(int cores) {
  return std::clamp(kMaxTasksPerStep / std::max(1, cores), kMinTasksPerCoreStep, kMaxTasksPerCoreStep);
}

Step map_gemm(const core::ChipParams& chip, const GemmWork& g, const GemmFormats& f,
              const GemmTiling& t, std::string label, const OperandOrigins& sources,
              std::optional<std::int64_t> task_budget) {
  const int cores = chip.cores;
  const std::int64_t max_tasks_per_core = task_budget.value_or(tasks_per_core_budget(cores));
  Step step;
  step.label = std::move(label);
  step.tasks_per_core.resize(static_cast<std::size_t>(cores));

  const std::int64_t per_instance = checked_mul(t.tiles_m, t.tiles_n);
  const std::int64_t units =
      checked_mul(checked_mul(g.count, per_instance), t.k_splits);
  const bool partial = t.k_splits > 1;  // outputs stay on chip for the reduction step
  if (per_instance == 1 && t.tiles_k == 1 && !partial && g.count > 1) {
    map_instance_batches(chip, g, f, sources, step);
    return step;
  }
  step.working_set_bytes = static_cast<std::uint64_t>(
      tiling_footprint(chip, g, f, t.tile_m, t.tile_n, t.tile_k, t.order));
  for (int c = 0; c < cores; ++c) {
    CoreTiles core_tiles(g, f, t, sources, c, step.tasks_per_core[static_cast<std::size_t>(c)]);
    const std::int64_t begin = range_begin(units, c, cores), end = range_begin(units, c + 1, cores);
    if (end - begin <= max_tasks_per_core && core_tiles.tiles(begin, end) <= max_tasks_per_core)
      core_tiles.map_each_tile(begin, end);
    else
      core_tiles.map_merged(begin, end, max_tasks_per_core);
  }
  return step;
}

Step map_gemm_reduction(const core::ChipParams& chip, const GemmWork& g, const GemmFormats& f,
                        const GemmTiling& t, std::string label) {
  if (t.k_splits < 2) throw std::logic_error("map_gemm_reduction without a k-split");
  const int cores = chip.cores;
  Step step;
  step.label = std::move(label);
  step.tasks_per_core.resize(static_cast<std::size_t>(cores));
  const std::int64_t per_instance = t.tiles_m * t.tiles_n;
  const std::int64_t outputs = g.count * per_instance;
  // choose_gemm_tiling splits k only for fewer output tiles than cores: this
  // loop is O(cores), within the task budget.
  if (outputs >= cores)
    throw std::invalid_argument("map_gemm_reduction: a k-split needs fewer output tiles (" +
                                std::to_string(outputs) + ") than cores");
  const std::int64_t units = outputs * t.k_splits;
  for (std::int64_t o = 0; o < outputs; ++o) {
    const std::int64_t within = o % per_instance;
    const std::int64_t i = within % t.tiles_m, j = within / t.tiles_m;
    const std::int64_t elements = tile_extent(g.m, t.tile_m, i) * tile_extent(g.n, t.tile_n, j);
    const int owner = core_of_unit(o * t.k_splits, units, cores);
    auto& tasks = step.tasks_per_core[static_cast<std::size_t>(owner)];
    // The partial sums of one output are fetched in as many tasks as the
    // scratchpad needs: on many cores they outgrow it together.
    const std::uint64_t partial_bytes = packed_bytes(elements, f.accumulator_bits);
    const auto partials_per_task = static_cast<std::int64_t>(
        std::max<std::uint64_t>(1, chip.core.scratchpad.size_bytes() / partial_bytes));
    for (std::int64_t first = 1; first < t.k_splits; first += partials_per_task) {
      const std::int64_t last = std::min(t.k_splits, first + partials_per_task);
      TileTask task;
      for (std::int64_t p = first; p < last; ++p) {
        const int holder = core_of_unit(o * t.k_splits + p, units, cores);
        task.loads.push_back({Endpoint::core_at(holder), Endpoint::core_at(owner), partial_bytes});
        task.buffer_bytes += partial_bytes;
      }
      task.sfu.alu = static_cast<std::uint64_t>((last - first) * elements);
      if (last == t.k_splits) {
        task.rounded_elements = static_cast<std::uint64_t>(elements);
        task.stores = {{Endpoint::core_at(owner), Endpoint::dram(), packed_bytes(elements, f.output_bits), true}};
      }
      step.working_set_bytes = std::max(step.working_set_bytes, task.buffer_bytes + partial_bytes);
      tasks.push_back(std::move(task));
    }
  }
  return step;
}

Step map_elementwise(const core::ChipParams& chip, const ElementwiseWork& w, int element_bits,
                     std::string label) {
  const int cores = chip.cores;
  Step step;
  step.label = std::move(label);
  step.tasks_per_core.resize(static_cast<std::size_t>(cores));

  const std::uint64_t read_bytes = packed_bytes(w.read_elements, element_bits);
  const std::uint64_t write_bytes = packed_bytes(w.write_elements, element_bits);
  // Chunks small enough that `slots` of them (in and out) fit in the
  // scratchpad, at most kMaxStreamedTaskBytes, and at least a few per core so
  // loads overlap the SFU. Beyond the task budget, bigger chunks stream
  // through buffers of that size.
  const std::uint64_t slots = static_cast<std::uint64_t>(std::max(1, chip.core.scratchpad.buffer_slots));
  const std::uint64_t chunk_budget =
      std::min(kMaxStreamedTaskBytes, chip.core.scratchpad.size_bytes() / (2 * slots));
  const std::uint64_t per_core = (read_bytes + write_bytes + cores - 1) / cores;
  constexpr std::uint64_t kSmallBytes = 16 * 1024;  // not worth splitting further
  std::uint64_t chunks = std::max<std::uint64_t>(1, (per_core + chunk_budget - 1) / chunk_budget);
  if (per_core > kMinTasksForOverlap * kSmallBytes) chunks = std::max(chunks, kMinTasksForOverlap);
  const auto budget = static_cast<std::uint64_t>(tasks_per_core_budget(cores));
  const bool streamed = chunks > budget;
  if (streamed) chunks = budget;
  const std::uint64_t parts = chunks * static_cast<std::uint64_t>(cores);

  const auto share = [&](std::uint64_t total, std::uint64_t part) {
    const auto begin = [&](std::uint64_t p) { return total / parts * p + total % parts * p / parts; };
    return begin(part + 1) - begin(part);
  };
  for (int c = 0; c < cores; ++c) {
    const Endpoint dram = Endpoint::dram(), here = Endpoint::core_at(c);
    for (std::uint64_t q = 0; q < chunks; ++q) {
      const std::uint64_t part = static_cast<std::uint64_t>(c) * chunks + q;
      TileTask task;
      if (const auto bytes = share(read_bytes, part)) task.loads.push_back({dram, here, bytes});
      task.sfu.alu = share(w.ops.alu, part);
      task.sfu.exp = share(w.ops.exp, part);
      task.sfu.div_sqrt = share(w.ops.div_sqrt, part);
      task.rounded_elements = share(static_cast<std::uint64_t>(w.rounded_elements), part);
      if (const auto bytes = share(write_bytes, part)) task.stores.push_back({here, dram, bytes, true});
      for (const auto& load : task.loads) task.buffer_bytes += load.bytes;
      if (streamed) task.buffer_bytes = std::min(task.buffer_bytes, chunk_budget);
      // A chunk in and its result out, in each of the slots.
      const std::uint64_t out = task.stores.empty() ? 0 : task.stores.front().bytes;
      step.working_set_bytes = std::max(step.working_set_bytes,
                                        slots * (task.buffer_bytes + (streamed ? std::min(out, chunk_budget) : out)));
      if (task.loads.empty() && task.stores.empty() && task.sfu.empty() && task.rounded_elements == 0)
        continue;
      step.tasks_per_core[static_cast<std::size_t>(c)].push_back(std::move(task));
    }
  }
  return step;
}

void spread_fused_work(Step& step, const ElementwiseWork& w, int element_bits) {
  if (w.empty()) return;
  long double total_macs = 0;
  for (const auto& tasks : step.tasks_per_core)
    for (const auto& task : tasks) total_macs += static_cast<long double>(task.mac.macs());
  if (total_macs == 0) return;
  const std::uint64_t read_bytes = packed_bytes(static_cast<std::uint64_t>(w.read_elements), element_bits);
  const std::uint64_t write_bytes = packed_bytes(static_cast<std::uint64_t>(w.write_elements), element_bits);
  // Shares by cumulative MACs, so that the parts add up to the totals exactly.
  long double macs_before = 0;
  const auto upto = [&](std::uint64_t total, long double macs) {
    return static_cast<std::uint64_t>(static_cast<long double>(total) * macs / total_macs);
  };
  const Endpoint dram = Endpoint::dram();
  for (std::size_t c = 0; c < step.tasks_per_core.size(); ++c) {
    for (TileTask& task : step.tasks_per_core[c]) {
      const long double macs_after = macs_before + static_cast<long double>(task.mac.macs());
      const auto share = [&](std::uint64_t total) { return upto(total, macs_after) - upto(total, macs_before); };
      task.sfu.alu += share(w.ops.alu);
      task.sfu.exp += share(w.ops.exp);
      task.sfu.div_sqrt += share(w.ops.div_sqrt);
      if (const auto bytes = share(read_bytes)) task.loads.push_back({dram, Endpoint::core_at(static_cast<int>(c)), bytes});
      if (const auto bytes = share(write_bytes)) task.stores.push_back({Endpoint::core_at(static_cast<int>(c)), dram, bytes});
      macs_before = macs_after;
    }
  }
}

namespace {

// The index of the GEMM's datapath in the program's list, added if new.
std::uint32_t datapath_index(core::Program& program, const GemmDatapath& datapath) {
  const core::Datapath d = program_datapath(datapath);
  const auto at = std::find(program.datapaths.begin(), program.datapaths.end(), d);
  if (at != program.datapaths.end()) return static_cast<std::uint32_t>(at - program.datapaths.begin());
  program.datapaths.push_back(d);
  return static_cast<std::uint32_t>(program.datapaths.size() - 1);
}

// Repeat r's part of work fused into a GEMM that runs `repeats` times in
// sequence (a recurrence): the parts add up to the whole.
ElementwiseWork repeat_share(const ElementwiseWork& w, std::int64_t r, std::int64_t repeats) {
  const auto part = [&](auto total) {
    using T = decltype(total);
    const auto n = static_cast<T>(repeats), i = static_cast<T>(r);
    return static_cast<T>(total / n + (i < total % n ? 1 : 0));
  };
  ElementwiseWork share;
  share.read_elements = part(w.read_elements);
  share.write_elements = part(w.write_elements);
  share.ops.alu = part(w.ops.alu);
  share.ops.exp = part(w.ops.exp);
  share.ops.div_sqrt = part(w.ops.div_sqrt);
  share.rounded_elements = part(w.rounded_elements);
  return share;
}

// The least DRAM traffic of one repeat of a GEMM, by tensor: the raw A
// operand, B and the output once each, and the tensors its fused work reads
// and writes.
struct LeastGemmBytes {
  double a = 0, b = 0, output = 0, fused = 0;
  double inputs() const { return a + b + fused; }
};
LeastGemmBytes least_dram_bytes(const GemmWork& g, const GemmFormats& f, const ElementwiseWork& fused_work) {
  const auto count = static_cast<long double>(g.count);
  return {static_cast<double>(count * estimated_a_bytes(g, f, g.m, g.k)),
          static_cast<double>(count * estimated_bytes(static_cast<long double>(g.k) * g.n, f.b_bits)),
          static_cast<double>(count * estimated_bytes(static_cast<long double>(g.m) * g.n, f.output_bits)),
          static_cast<double>(estimated_bytes(fused_work.read_elements, f.output_bits) +
                              estimated_bytes(fused_work.write_elements, f.output_bits))};
}

// What choose_gemm_tiling reads of a GEMM and its formats: GEMMs alike in
// these get the same tiling (ResNet-50 repeats its blocks' shapes).
struct TilingQuery {
  std::int64_t m, n, k, count;
  std::optional<ConvWindow> a_window;
  std::uint64_t fused_alu, fused_exp, fused_div_sqrt;
  int a_bits, b_bits, accumulator_bits, output_bits, macs_per_pe_per_cycle;

  TilingQuery(const GemmWork& g, const GemmFormats& f)
      : m(g.m), n(g.n), k(g.k), count(g.count), a_window(g.a_window), fused_alu(g.fused.ops.alu),
        fused_exp(g.fused.ops.exp), fused_div_sqrt(g.fused.ops.div_sqrt), a_bits(f.a_bits), b_bits(f.b_bits),
        accumulator_bits(f.accumulator_bits), output_bits(f.output_bits),
        macs_per_pe_per_cycle(f.macs_per_pe_per_cycle) {}
  auto operator<=>(const TilingQuery&) const = default;
};

struct Mapper {
  explicit Mapper(const AcceleratorConfig& accelerator) : config(accelerator) {}

  const AcceleratorConfig& config;
  MappedProgram out;
  mutable std::map<TilingQuery, GemmTiling> tilings;  // a cache: tiling_for stays a query

  std::size_t tasks = 0;
  // What the next step depends on: the steps that produced its layer phase's
  // inputs for the first step of a layer phase, then the step before it.
  std::vector<std::size_t> next_depends_on;
  // The steps whose results are the layer's input and the gradient at its
  // output (nullopt: none, or not a step's result), for GemmWork's operand sources.
  std::optional<std::size_t> layer_input_step, output_gradient_step;

  std::optional<std::size_t> step_of(OperandSource source) const {
    switch (source) {
      case OperandSource::kLayerInput: return layer_input_step;
      case OperandSource::kOutputGradient: return output_gradient_step;
      case OperandSource::kWeights:
      case OperandSource::kElsewhere: break;
    }
    return std::nullopt;
  }

  // Adds the step; the ones after it in the same layer phase depend on it.
  void add_step(const LayerWork& layer, Step step, StepInfo info) {
    if (out.program.steps.size() >= kMaxProgramSteps)
      fail(layer, "the program exceeds " + std::to_string(kMaxProgramSteps) + " steps");
    for (const auto& core_tasks : step.tasks_per_core) tasks += core_tasks.size();
    if (tasks > kMaxTileTasks)
      fail(layer, "the program exceeds " + std::to_string(kMaxTileTasks) + " tile tasks");
    step.depends_on = next_depends_on;
    next_depends_on = {out.program.steps.size()};
    out.program.steps.push_back(std::move(step));
    out.steps.push_back(std::move(info));
  }

  [[noreturn]] void fail(const LayerWork& layer, const std::string& message) const {
    throw InputError("", layer.where, "layer " + quoted_excerpt(layer.name) + ": " + message);
  }

  GemmTiling tiling_for(const LayerWork& layer, Phase phase, const GemmWork& g,
                        const GemmFormats& f) const {
    try {
      const TilingQuery query(g, f);
      if (const auto known = tilings.find(query); known != tilings.end()) return known->second;
      return tilings.emplace(query, choose_gemm_tiling(config.chip, g, f)).first->second;
    } catch (const CountOverflow&) {
      throw;  // reported by map_phase
    } catch (const std::runtime_error& e) {
      fail(layer, std::string(to_string(phase)) + " GEMM " + g.label + " (" + std::to_string(g.m) +
                      "x" + std::to_string(g.n) + "x" + std::to_string(g.k) + "): " + e.what() +
                      "; the scratchpad's size is " + config.chip_location("/core/scratchpad/size_kib"));
    }
  }

  void map_phase_work(const LayerWork& layer, Phase phase, LayerPosition position) {
    const PhaseWork& work = layer.phase(phase);
    const std::string prefix = layer.name + "/" + to_string(phase) + "/";
    for (const GemmWork& g : work.gemms) {
      const GemmDatapath datapath = resolve_gemm_datapath(config, g, position);
      const GemmFormats f = GemmFormats::of(datapath, datapath_index(out.program, datapath));
      const GemmTiling t = tiling_for(layer, phase, g, f);
      const std::int64_t steps_per_repeat = t.k_splits > 1 ? 2 : 1;
      if (g.repeats > static_cast<std::int64_t>(kMaxProgramSteps - out.steps.size()) / steps_per_repeat)
        fail(layer, std::string(to_string(phase)) + " GEMM " + g.label + " repeats " +
                        std::to_string(g.repeats) + " times in sequence; a program is limited to " +
                        std::to_string(kMaxProgramSteps) + " steps");
      const GemmStep gemm_step{g.label, g.m, g.n, g.k, g.count, t, datapath};
      const OperandOrigins sources{step_of(g.a_from), step_of(g.b_from), g.a_from == OperandSource::kWeights,
                                   g.b_from == OperandSource::kWeights};
      const Step plain = map_gemm(config.chip, g, f, t, prefix + g.label, sources);
      const auto macs = static_cast<std::uint64_t>(g.macs() / g.repeats);
      const std::optional<Step> reduction =
          t.k_splits > 1 ? std::optional(map_gemm_reduction(config.chip, g, f, t,
                                                            prefix + g.label + "/k-reduction"))
                         : std::nullopt;
      for (std::int64_t r = 0; r < g.repeats; ++r) {
        Step step = plain;
        const ElementwiseWork fused = repeat_share(g.fused, r, g.repeats);
        spread_fused_work(step, fused, f.output_bits);
        const LeastGemmBytes least = least_dram_bytes(g, f, fused);
        // A k-split's result is written by its reduction step.
        const double output_here = reduction ? 0 : least.output;
        StepInfo info{layer.layer_index, phase, gemm_step, g.macs() / g.repeats,
                      step_bound(config.chip, step, macs, f.macs_per_pe_per_cycle, least.inputs() + output_here)};
        info.least_sourced_bytes = (sources.a ? least.a : 0) + (sources.b ? least.b : 0);
        info.least_result_bytes = output_here;
        add_step(layer, std::move(step), std::move(info));
        if (reduction) {
          GemmStep reduction_step = gemm_step;
          reduction_step.k_reduction = true;
          StepInfo reduction_info{layer.layer_index, phase, std::move(reduction_step), 0,
                                  step_bound(config.chip, *reduction, 0, 0, least.output)};
          reduction_info.least_result_bytes = least.output;
          add_step(layer, *reduction, std::move(reduction_info));
        }
      }
    }
    if (!work.elementwise.empty()) {
      // The weights' format for the update, the phase's output format otherwise.
      const int bits = phase == Phase::kUpdate
                           ? config.precision.update.weights.total_bits()
                           : config.precision.for_gemm(phase, position).output.total_bits();
      Step step = map_elementwise(config.chip, work.elementwise, bits, prefix + "elementwise");
      const auto& e = work.elementwise;
      const auto written = static_cast<double>(packed_bytes(static_cast<std::uint64_t>(e.write_elements), bits));
      StepInfo info{layer.layer_index, phase, std::nullopt, 0,
                    step_bound(config.chip, step, 0, 0,
                               static_cast<double>(packed_bytes(static_cast<std::uint64_t>(e.read_elements), bits)) +
                                   written)};
      info.least_result_bytes = written;
      add_step(layer, std::move(step), std::move(info));
    }
  }

  // Input limits keep real runs far from 64 bits; a count that still
  // overflows (say a 2^31-cube GEMM) is the layer's error, not a crash.
  void map_phase(const LayerWork& layer, Phase phase, LayerPosition position) {
    try {
      map_phase_work(layer, phase, position);
    } catch (const CountOverflow&) {
      fail(layer, std::string("mapping its ") + to_string(phase) + " phase overflows 64-bit counts");
    }
  }
};

// Appends a collective step of `collective` over `layers` (its label names the
// first), waiting for `depends_on`; returns its index.
std::size_t add_collective_step(const AcceleratorConfig& config, const std::vector<LayerWork>& layers,
                                const std::string& what, core::Collective collective, Phase phase,
                                CollectiveStep over, std::vector<std::size_t> depends_on, MappedProgram& out) {
  core::Step step;
  step.label = layers[over.layers.front().first].name + "/" + what;
  step.tasks_per_core.resize(static_cast<std::size_t>(config.chip.cores));
  step.depends_on = std::move(depends_on);
  collective.elements = over.elements();
  step.collective = collective;
  StepInfo info{over.layers.front().first, phase, std::nullopt, 0, Bound{}};
  info.collective = std::move(over);
  out.program.steps.push_back(std::move(step));
  out.steps.push_back(std::move(info));
  return out.program.steps.size() - 1;
}

// On a system of chips: a collective step per bucket of weight gradients,
// filled in the order the backward pass produced them (a layer fused into a
// GEMM layer with it), each depending on the steps that made its layers'
// values (`ready`: the weight gradients, or AdaHessian's second pass, whose
// Hessian diagonal goes with the gradient: `values_per_weight` 2);
// `update_after` then names each layer's bucket for its update to wait for.
void add_all_reduce_steps(const std::vector<LayerWork>& layers, const AcceleratorConfig& config,
                          const std::vector<std::optional<std::size_t>>& ready, int values_per_weight,
                          const std::vector<std::vector<std::size_t>>& fused_with_weights, MappedProgram& out,
                          std::vector<std::optional<std::size_t>>& update_after) {
  const auto& compression = config.data_parallel.compression;
  const core::Collective collective{0, config.gradient_format().total_bits(), config.data_parallel.algorithm,
                                    config.data_parallel.group_chips, compression ? compression->ratio : 0};
  const double bucket_bytes = config.data_parallel.bucket_mib * 1024 * 1024;
  CollectiveStep bucket;
  std::vector<std::size_t> bucket_depends_on;
  const auto close_bucket = [&] {
    if (bucket.layers.empty()) return;
    for (const auto& [layer, elements] : bucket.layers) update_after[layer] = out.program.steps.size();
    add_collective_step(config, layers, "allreduce", collective, Phase::kAllReduce, std::move(bucket),
                        std::move(bucket_depends_on), out);
    bucket = {};
    bucket_depends_on.clear();
  };
  for (std::size_t i = layers.size(); i-- > 0;) {
    if (!ready[i]) continue;
    const std::size_t before = bucket.layers.size();
    const auto values = [&](std::size_t layer) {
      return static_cast<std::uint64_t>(layers[layer].parameters) * static_cast<std::uint64_t>(values_per_weight);
    };
    if (layers[i].parameters > 0) bucket.layers.emplace_back(i, values(i));
    for (const std::size_t fused : fused_with_weights[i]) bucket.layers.emplace_back(fused, values(fused));
    if (bucket.layers.size() == before) continue;
    bucket_depends_on.push_back(*ready[i]);
    if (static_cast<double>(core::packed_bytes(bucket.elements(), collective.element_bits)) >= bucket_bytes)
      close_bucket();
  }
  close_bucket();
}

}  // namespace

MappedProgram map_training(const std::vector<LayerWork>& layers, const AcceleratorConfig& config,
                           const std::set<Phase>& phases, const SpillPlan& spill) {
  // First and last layers with GEMMs may have their own precision.
  const std::vector<LayerPosition> position = layer_positions(layers);
  // K-FAC on a system of chips runs in KAISA's form (sim/optimizer).
  const Kfac* kfac = std::get_if<Kfac>(&config.precision.update.optimizer);
  const bool kaisa = kfac && config.chips() > 1;
  const KaisaShare share = kaisa ? kaisa_share(layers, *kfac, config.chips()) : KaisaShare{};

  // Dependencies: a layer phase's first step waits for the steps that
  // produced its inputs (docs/architecture.md, "Step order and dependencies").
  Mapper mapper(config);
  const auto last_step = [&]() -> std::optional<std::size_t> {
    if (mapper.out.program.steps.empty()) return std::nullopt;
    return mapper.out.program.steps.size() - 1;
  };
  const auto as_list = [](std::initializer_list<std::optional<std::size_t>> steps) {
    std::vector<std::size_t> out;
    for (const auto& step : steps)
      if (step && std::find(out.begin(), out.end(), *step) == out.end()) out.push_back(*step);
    return out;
  };
  // The step whose result is each layer's input (the forward output before it).
  std::vector<std::optional<std::size_t>> layer_input(layers.size());
  // Runs the layer phase after `inputs`, its GEMMs reading the gradient at the
  // layer's output from `output_gradient`; returns its last step, if it has any.
  const auto run = [&](Phase phase, std::size_t i, std::vector<std::size_t> inputs,
                       std::optional<std::size_t> output_gradient = std::nullopt) {
    if (!phases.count(phase) || layers[i].phase(phase).empty()) return std::optional<std::size_t>{};
    const std::size_t before = mapper.out.program.steps.size();
    mapper.next_depends_on = std::move(inputs);
    mapper.layer_input_step = layer_input[i];
    mapper.output_gradient_step = output_gradient;
    mapper.map_phase(layers[i], phase, position[i]);
    return mapper.out.program.steps.size() > before ? last_step() : std::nullopt;
  };
  // Forward: each layer reads the previous one's output.
  std::optional<std::size_t> forward_output;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    layer_input[i] = forward_output;
    if (const auto last = run(Phase::kFwd, i, as_list({forward_output}))) forward_output = last;
  }
  // Backward: the data gradient and the weight gradient of a layer both read
  // the gradient at its output, so neither waits for the other, unless fusion
  // made the data-gradient GEMM store that gradient (after its input stage
  // applied the fused layers' backward) for the weight gradient. K-FAC's
  // factors read the layer's input and that gradient too.
  std::optional<std::size_t> gradient = forward_output;  // the loss needs the whole forward pass
  // The step whose result the gradient is: none for the loss's gradient,
  // which no step computes.
  std::optional<std::size_t> gradient_result;
  std::vector<std::optional<std::size_t>> weight_gradient(layers.size()), after_backward(layers.size());
  for (std::size_t i = layers.size(); i-- > 0;) {
    const std::optional<std::size_t> output_gradient = gradient, output_gradient_result = gradient_result;
    const std::optional<std::size_t> data_gradient =
        run(Phase::kBwd, i, as_list({output_gradient}), output_gradient_result);
    const auto& bwd = layers[i].phase(Phase::kBwd).gemms;
    const bool stores_gradient_for_wgrad = data_gradient && !bwd.empty() && !bwd.front().fused.empty();
    // That stored gradient is a side tensor of the data-gradient GEMM, not its result.
    // K-FAC's factors read the same gradient as the weight gradient.
    const auto after_gradient = [&](Phase phase) {
      return stores_gradient_for_wgrad ? run(phase, i, as_list({data_gradient}))
                                       : run(phase, i, as_list({output_gradient}), output_gradient_result);
    };
    weight_gradient[i] = after_gradient(Phase::kWgrad);
    after_backward[i] = after_gradient(Phase::kCurvature);
    if (data_gradient) gradient = gradient_result = data_gradient;
  }
  // A second backward pass (AdaHessian's Hessian-vector product) starts from
  // the loss once the first has ended, each layer after the one behind it.
  // Its steps are sourced from no earlier result: the vector they propagate is
  // not the gradient the first pass stored.
  // A layer fused into a GEMM layer (a batch-norm) gets its Hessian-vector
  // product from that layer's pass, so its own work follows it.
  std::vector<std::optional<std::size_t>> second_backward(layers.size());
  std::vector<std::vector<std::size_t>> fused_into(layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].fused_into) fused_into[*layers[i].fused_into].push_back(i);
  std::optional<std::size_t> second = last_step();
  for (std::size_t i = layers.size(); i-- > 0;) {
    if (layers[i].fused_into) continue;
    if (const auto last = second_backward[i] = run(Phase::kHessian, i, as_list({second}))) second = last;
    for (const std::size_t fused : fused_into[i])
      second_backward[fused] = run(Phase::kHessian, fused, as_list({second_backward[i]}));
  }
  // Each update needs its layer's weight gradient, or, on a system of chips,
  // the all-reduce of its bucket. A layer fused into a GEMM layer (a
  // batch-norm's scale and shift) gets its parameters' gradients in that
  // layer's backward pass.
  std::vector<std::optional<std::size_t>> update_after = weight_gradient;
  std::vector<std::vector<std::size_t>> fused_with_weights(layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (const auto into = layers[i].fused_into; into && layers[i].parameters > 0) {
      fused_with_weights[*into].push_back(i);
      update_after[i] = weight_gradient[*into];
    }
  if (config.chips() > 1) {
    // AdaHessian averages its Hessian diagonal over the chips with the gradient (Yao et al., AAAI 2021).
    const bool hessian = std::any_of(second_backward.begin(), second_backward.end(),
                                     [](const std::optional<std::size_t>& s) { return s.has_value(); });
    std::vector<std::optional<std::size_t>> ready = weight_gradient;
    if (hessian)
      for (std::size_t i = 0; i < layers.size(); ++i)
        if (second_backward[i] && weight_gradient[i]) ready[i] = second_backward[i];
    add_all_reduce_steps(layers, config, ready, hessian ? 2 : 1, fused_with_weights, mapper.out, update_after);
  }
  // KAISA averages each layer's factors over the chips. A chip's collective
  // engine runs collectives in program order: after the gradient buckets,
  // which the updates of every step wait for, not before them.
  if (kaisa)
    for (std::size_t i = layers.size(); i-- > 0;)
      if (after_backward[i]) {
        const core::Collective factors{0,
                                       config.precision.for_gemm(Phase::kCurvature, position[i]).output.total_bits(),
                                       config.data_parallel.algorithm, config.data_parallel.group_chips};
        const CollectiveStep over{{{i, static_cast<std::uint64_t>(layers[i].phase(Phase::kCurvature).output_elements())}}};
        after_backward[i] = add_collective_step(config, layers, "factors", factors, Phase::kExchange, over,
                                                {*after_backward[i]}, mapper.out);
      }
  // The optimizer's phases, in table order, each over the layers (K-FAC's
  // inverses, its preconditioning, then the updates): a layer's waits for its
  // gradients, its work after the backward passes and its phase before.
  // KAISA on a system: a chip inverts its own layers and preconditions its
  // group's; the group's inverses are all-gathered before the
  // preconditioning, and the preconditioned gradients all-gathered across
  // the groups before the updates.
  std::vector<std::optional<std::size_t>> previous(layers.size());
  // Host traffic of a spilled layer: its bytes in from host memory (loads
  // from the host, stores to DRAM) or back out (loads from DRAM, stores to
  // the host), streamed through the cores as element-wise work is.
  std::vector<bool> spilled_in(layers.size(), false);
  const auto add_spill_step = [&](std::size_t i, bool in, std::vector<std::size_t> depends_on) {
    const std::uint64_t bytes = spill.bytes_per_layer[i];
    ElementwiseWork moved;
    moved.read_elements = moved.write_elements = static_cast<std::int64_t>(bytes);
    Step step = map_elementwise(config.chip, moved, 8, layers[i].name + (in ? "/spill-in" : "/spill-out"));
    for (auto& tasks : step.tasks_per_core)
      for (TileTask& task : tasks) {
        if (in)
          for (Transfer& load : task.loads) load.src = Endpoint::host();
        else
          for (Transfer& store : task.stores) store.dst = Endpoint::host();
      }
    Bound bound;
    bound.dram_bytes = static_cast<double>(bytes);
    bound.dram_cycles = std::max(static_cast<double>(bytes) / config.chip.dram_bytes_per_cycle(),
                                 static_cast<double>(bytes) / config.chip.host_bytes_per_cycle());
    mapper.next_depends_on = std::move(depends_on);
    mapper.add_step(layers[i], std::move(step), StepInfo{layers[i].layer_index, Phase::kSpill, std::nullopt, 0, bound});
    return last_step();
  };
  for (const PhaseInfo& row : kPhaseTable) {
    if (row.placement != PhasePlacement::kOptimizer) continue;
    std::vector<std::size_t> phase_steps;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (kaisa && ((row.phase == Phase::kInverse && !share.inverts[i]) ||
                    (row.phase == Phase::kPrecondition && !share.preconditions[i])))
        continue;
      if (!spill.bytes_per_layer.empty() && spill.bytes_per_layer[i] > 0 && !spilled_in[i] &&
          phases.count(row.phase) && !layers[i].phase(row.phase).empty()) {
        previous[i] = add_spill_step(i, true, {});
        spilled_in[i] = true;
      }
      const auto last = row.reads_gradients
                            ? run(row.phase, i, as_list({update_after[i], second_backward[i], previous[i]}))
                            : run(row.phase, i, as_list({after_backward[i], previous[i]}));
      if (last) previous[i] = last, phase_steps.push_back(*last);
      // The update is a layer's last optimizer phase: its share goes back to host memory.
      if (row.phase == Phase::kUpdate && spilled_in[i]) add_spill_step(i, false, as_list({previous[i]}));
    }
    if (phase_steps.empty()) continue;
    // KAISA's KL clipping scales every preconditioned gradient by one factor,
    // a sum over all layers: no update before the last preconditioning.
    if (row.phase == Phase::kPrecondition)
      for (std::size_t i = 0; i < layers.size(); ++i)
        if (!layers[i].phase(Phase::kPrecondition).empty()) previous[i] = phase_steps.back();
    if (!kaisa) continue;
    CollectiveStep over;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const bool inverse_gather = row.phase == Phase::kInverse;
      if (inverse_gather ? share.preconditions[i] : !layers[i].phase(Phase::kPrecondition).empty())
        over.layers.emplace_back(i, inverse_gather ? static_cast<std::uint64_t>(layers[i].phase(Phase::kInverse).output_elements())
                                                   : static_cast<std::uint64_t>(layers[i].parameters));
    }
    core::Collective gather{0, 0};
    gather.op = core::CollectiveOp::kAllGather;
    gather.gather_group = share.gradient_workers;
    if (row.phase == Phase::kInverse && share.gradient_workers > 1) {
      gather.element_bits = config.precision.for_gemm(Phase::kInverse, LayerPosition::kMiddle).output.total_bits();
      const std::size_t step = add_collective_step(config, layers, "inverses", gather, Phase::kExchange,
                                                   std::move(over), phase_steps, mapper.out);
      for (std::size_t i = 0; i < layers.size(); ++i)
        if (share.preconditions[i]) previous[i] = step;
    } else if (row.phase == Phase::kPrecondition && share.gradient_workers < config.chips()) {
      gather.element_bits =
          config.precision.for_gemm(Phase::kPrecondition, LayerPosition::kMiddle).output.total_bits();
      gather.gather_across = true;
      const std::size_t step = add_collective_step(config, layers, "preconditioned", gather, Phase::kExchange,
                                                   std::move(over), phase_steps, mapper.out);
      for (std::size_t i = 0; i < layers.size(); ++i)
        if (!layers[i].phase(Phase::kPrecondition).empty()) previous[i] = step;
    }
  }
  return std::move(mapper.out);
}

}  // namespace lpt
