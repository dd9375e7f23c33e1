#include "sim/mapping.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>

#include "models/common/text.hpp"
#include "models/compute/systolic_timing.hpp"

namespace lpt {

namespace {

using core::Endpoint;
using core::packed_bytes;
using core::Step;
using core::TileTask;
using core::Transfer;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

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
  return t;
}

// Sum of the array cycles of every tile of the GEMM (one instance), grouped
// into the at most 8 distinct tile shapes (full or edge along m, n, k).
std::uint64_t total_tile_cycles(const core::MacArrayParams& array, const GemmWork& g,
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
  std::uint64_t total = 0;
  for (int em = 0; em < 2; ++em)
    for (int en = 0; en < 2; ++en)
      for (int ek = 0; ek < 2; ++ek) {
        const std::int64_t cm = em ? (sm.edge ? 1 : 0) : sm.full_count;
        const std::int64_t cn = en ? (sn.edge ? 1 : 0) : sn.full_count;
        const std::int64_t ck = ek ? (sk.edge ? 1 : 0) : sk.full_count;
        if (cm == 0 || cn == 0 || ck == 0) continue;
        const auto tile = mac_tile(em ? sm.edge : sm.full, en ? sn.edge : sn.full,
                                   ek ? sk.edge : sk.full, f);
        total += static_cast<std::uint64_t>(cm * cn * ck) *
                 core::systolic_tile_timing(array, tile).cycles;
      }
  return total;
}

// Number of times resident panels are loaded when `units` output tiles, ordered
// with the resident panel changing every `per_panel` units, are dealt to
// `cores` cores in contiguous ranges: each core loads each panel it touches.
std::int64_t resident_loads(std::int64_t units, std::int64_t per_panel, int cores) {
  std::int64_t loads = 0;
  for (int c = 0; c < cores; ++c) {
    const std::int64_t begin = units * c / cores, end = units * (c + 1) / cores;
    if (end > begin) loads += (end - 1) / per_panel - begin / per_panel + 1;
  }
  return loads;
}

// Bandwidth from DRAM into the cores: the DRAM pool or the ring links leaving
// the memory controller's stop, whichever is narrower.
double memory_bytes_per_cycle(const core::ChipParams& chip) {
  const double links = chip.interconnect.bidirectional ? 2.0 : 1.0;
  return std::min(chip.dram_bytes_per_cycle(),
                  links * static_cast<double>(chip.interconnect.link_bytes_per_cycle));
}

}  // namespace

const char* to_string(LoopOrder order) {
  switch (order) {
    case LoopOrder::kResidentB: return "resident-B";
    case LoopOrder::kResidentA: return "resident-A";
    case LoopOrder::kStreamBoth: return "stream-both";
  }
  return "?";
}

GemmTiling choose_gemm_tiling(const core::ChipParams& chip, const GemmWork& g,
                              const GemmFormats& f) {
  const auto& array = chip.core.mac_array;
  const std::uint64_t capacity = chip.core.scratchpad.size_bytes();
  const std::uint64_t slots = static_cast<std::uint64_t>(std::max(1, chip.core.scratchpad.buffer_slots));
  const int cores = chip.cores;
  const double bandwidth = memory_bytes_per_cycle(chip);
  const double link = static_cast<double>(chip.interconnect.link_bytes_per_cycle);
  const double sfu_alu = chip.core.sfu.lanes * chip.core.sfu.ops_per_cycle.alu;
  const Granules unit = granules(array, f.macs_per_pe_per_cycle);

  std::vector<GemmTiling> candidates;
  const auto evaluate = [&](std::int64_t tm, std::int64_t tn, std::int64_t tk, LoopOrder order,
                            std::int64_t k_splits) {
    GemmTiling t;
    t.tile_m = tm, t.tile_n = tn, t.tile_k = tk, t.order = order, t.k_splits = k_splits;
    t.tiles_m = ceil_div(g.m, tm), t.tiles_n = ceil_div(g.n, tn), t.tiles_k = ceil_div(g.k, tk);
    const std::int64_t outputs = g.count * t.tiles_m * t.tiles_n;
    const std::int64_t units = outputs * k_splits;
    const std::uint64_t a_panels = packed_bytes(g.m * g.k, f.a_bits);  // all of A, once
    const std::uint64_t b_panels = packed_bytes(g.k * g.n, f.b_bits);
    std::uint64_t traffic = static_cast<std::uint64_t>(g.count) * packed_bytes(g.m * g.n, f.output_bits);
    std::uint64_t first_load = 0;
    switch (order) {
      case LoopOrder::kResidentB:
        traffic += static_cast<std::uint64_t>(g.count * t.tiles_n) * a_panels +
                   static_cast<std::uint64_t>(resident_loads(units, t.tiles_m, cores)) *
                       packed_bytes(g.k * tn, f.b_bits);
        first_load = packed_bytes(tm * g.k, f.a_bits) + packed_bytes(g.k * tn, f.b_bits);
        break;
      case LoopOrder::kResidentA:
        traffic += static_cast<std::uint64_t>(g.count * t.tiles_m) * b_panels +
                   static_cast<std::uint64_t>(resident_loads(units, t.tiles_n, cores)) *
                       packed_bytes(tm * g.k, f.a_bits);
        first_load = packed_bytes(tm * g.k, f.a_bits) + packed_bytes(g.k * tn, f.b_bits);
        break;
      case LoopOrder::kStreamBoth:
        traffic += static_cast<std::uint64_t>(g.count) *
                   (static_cast<std::uint64_t>(t.tiles_n) * a_panels +
                    static_cast<std::uint64_t>(t.tiles_m) * b_panels);
        first_load = packed_bytes(tm * tk, f.a_bits) + packed_bytes(tk * tn, f.b_bits);
        break;
    }
    const std::uint64_t compute_total =
        static_cast<std::uint64_t>(g.count) * total_tile_cycles(array, g, f, tm, tn, tk);
    const std::int64_t busiest = ceil_div(units, cores);
    const auto compute_per_core = static_cast<std::uint64_t>(
        static_cast<double>(compute_total) * static_cast<double>(busiest) / static_cast<double>(units));
    const auto memory = static_cast<std::uint64_t>(static_cast<double>(traffic) / bandwidth);
    double reduction = 0;
    if (k_splits > 1) {
      const double partial_elements =
          static_cast<double>(outputs) * static_cast<double>(k_splits - 1) * static_cast<double>(tm * tn);
      reduction = partial_elements * f.accumulator_bits / 8.0 / link + partial_elements / sfu_alu;
    }
    t.tasks = static_cast<std::uint64_t>(outputs * t.tiles_k);
    t.estimated_cycles = std::max(compute_per_core, memory) +
                         static_cast<std::uint64_t>(static_cast<double>(first_load) / bandwidth + reduction);
    candidates.push_back(t);
  };

  const auto k_sizes = candidate_sizes(g.k, unit.k);
  for (std::int64_t tm : candidate_sizes(g.m, unit.m)) {
    for (std::int64_t tn : candidate_sizes(g.n, unit.n)) {
      // Two output tiles: one accumulating while the previous one drains.
      const std::uint64_t outputs = 2 * packed_bytes(tm * tn, f.accumulator_bits);
      if (outputs >= capacity) continue;
      const std::uint64_t a_panel = packed_bytes(tm * g.k, f.a_bits);
      const std::uint64_t b_panel = packed_bytes(g.k * tn, f.b_bits);
      if (b_panel + slots * a_panel + outputs <= capacity)
        evaluate(tm, tn, g.k, LoopOrder::kResidentB, 1);
      if (a_panel + slots * b_panel + outputs <= capacity)
        evaluate(tm, tn, g.k, LoopOrder::kResidentA, 1);
      // Streaming both operands: the deepest k slice that fits, and with too few
      // output tiles to occupy every core, the same split across cores in k.
      for (auto it = k_sizes.rbegin(); it != k_sizes.rend(); ++it) {
        const std::int64_t tk = *it;
        if (slots * (packed_bytes(tm * tk, f.a_bits) + packed_bytes(tk * tn, f.b_bits)) + outputs >
            capacity)
          continue;
        evaluate(tm, tn, tk, LoopOrder::kStreamBoth, 1);
        const std::int64_t output_tiles = g.count * ceil_div(g.m, tm) * ceil_div(g.n, tn);
        const std::int64_t splits = std::min(cores / output_tiles, ceil_div(g.k, tk));
        if (splits > 1) evaluate(tm, tn, tk, LoopOrder::kStreamBoth, splits);
        break;
      }
    }
  }
  if (candidates.empty())
    throw std::runtime_error("scratchpad of " + std::to_string(capacity) +
                             " bytes cannot hold even the smallest tile of GEMM " + g.label);
  std::uint64_t fastest = std::numeric_limits<std::uint64_t>::max();
  for (const auto& c : candidates) fastest = std::min(fastest, c.estimated_cycles);
  const auto near_tie = static_cast<std::uint64_t>(static_cast<double>(fastest) * 1.02);
  const GemmTiling* best = nullptr;
  for (const auto& c : candidates) {
    if (c.estimated_cycles > near_tie) continue;
    if (!best || c.tasks < best->tasks ||
        (c.tasks == best->tasks && c.estimated_cycles < best->estimated_cycles))
      best = &c;
  }
  return *best;
}

namespace {

// The core that runs work unit `unit` of `units` dealt in contiguous ranges.
int core_of_unit(std::int64_t unit, std::int64_t units, int cores) {
  for (int c = cores - 1; c > 0; --c)
    if (units * c / cores <= unit) return c;
  return 0;
}


// Many small GEMMs that each fit one tile (attention heads, depthwise channels):
// batches of them per task, as many as fit the scratchpad with double
// buffering while leaving a few tasks per core for overlap.
void map_instance_batches(const core::ChipParams& chip, const GemmWork& g, const GemmFormats& f,
                          Step& step) {
  const int cores = chip.cores;
  const std::uint64_t slots = static_cast<std::uint64_t>(std::max(1, chip.core.scratchpad.buffer_slots));
  const std::uint64_t a = packed_bytes(g.m * g.k, f.a_bits), b = packed_bytes(g.k * g.n, f.b_bits);
  const std::uint64_t out = packed_bytes(g.m * g.n, f.output_bits);
  const std::uint64_t accumulators = packed_bytes(g.m * g.n, f.accumulator_bits);
  const auto fitting = static_cast<std::int64_t>(
      chip.core.scratchpad.size_bytes() / (slots * (a + b) + 2 * accumulators));
  constexpr std::int64_t kMinTasksPerCore = 4;
  const std::int64_t batch = std::max<std::int64_t>(
      1, std::min(fitting, ceil_div(ceil_div(g.count, cores), kMinTasksPerCore)));
  for (int c = 0; c < cores; ++c) {
    const Endpoint dram = Endpoint::dram(), here = Endpoint::core_at(c);
    const std::int64_t end = g.count * (c + 1) / cores;
    for (std::int64_t first = g.count * c / cores; first < end; first += batch) {
      const auto n = static_cast<std::uint64_t>(std::min(batch, end - first));
      TileTask task;
      task.loads = {{dram, here, n * a}, {dram, here, n * b}};
      task.buffer_bytes = n * (a + b);
      task.mac = mac_tile(g.m, g.n, g.k, f);
      task.mac.count = n;
      task.rounded_elements = n * static_cast<std::uint64_t>(g.m * g.n);
      task.stores = {{here, dram, n * out}};
      step.tasks_per_core[static_cast<std::size_t>(c)].push_back(std::move(task));
    }
  }
}

}  // namespace

Step map_gemm(const core::ChipParams& chip, const GemmWork& g, const GemmFormats& f,
              const GemmTiling& t, std::string label) {
  const int cores = chip.cores;
  Step step;
  step.label = std::move(label);
  step.tasks_per_core.resize(static_cast<std::size_t>(cores));

  const std::int64_t per_instance = t.tiles_m * t.tiles_n;
  const std::int64_t units = g.count * per_instance * t.k_splits;
  const bool partial = t.k_splits > 1;  // outputs stay on chip for the reduction step
  if (per_instance == 1 && t.tiles_k == 1 && !partial && g.count > 1) {
    map_instance_batches(chip, g, f, step);
    return step;
  }
  for (int c = 0; c < cores; ++c) {
    auto& tasks = step.tasks_per_core[static_cast<std::size_t>(c)];
    const Endpoint dram = Endpoint::dram(), here = Endpoint::core_at(c);
    std::int64_t resident_panel = -1;
    for (std::int64_t u = units * c / cores; u < units * (c + 1) / cores; ++u) {
      const std::int64_t output = u / t.k_splits, part = u % t.k_splits;
      const std::int64_t instance = output / per_instance, within = output % per_instance;
      // Resident-A walks i in the outer loop, the others j.
      const bool a_outer = t.order == LoopOrder::kResidentA;
      const std::int64_t outer = within / (a_outer ? t.tiles_n : t.tiles_m);
      const std::int64_t inner = within % (a_outer ? t.tiles_n : t.tiles_m);
      const std::int64_t i = a_outer ? outer : inner, j = a_outer ? inner : outer;
      const std::int64_t tm = tile_extent(g.m, t.tile_m, i), tn = tile_extent(g.n, t.tile_n, j);
      const std::uint64_t out_bytes = packed_bytes(tm * tn, f.output_bits);

      if (t.order == LoopOrder::kStreamBoth) {
        const std::int64_t k_begin = t.tiles_k * part / t.k_splits;
        const std::int64_t k_end = t.tiles_k * (part + 1) / t.k_splits;
        for (std::int64_t kk = k_begin; kk < k_end; ++kk) {
          const std::int64_t tk = tile_extent(g.k, t.tile_k, kk);
          TileTask task;
          task.loads = {{dram, here, packed_bytes(tm * tk, f.a_bits)},
                        {dram, here, packed_bytes(tk * tn, f.b_bits)}};
          task.buffer_bytes = task.loads[0].bytes + task.loads[1].bytes;
          task.mac = mac_tile(tm, tn, tk, f);
          if (kk + 1 == k_end && !partial) {
            task.rounded_elements = static_cast<std::uint64_t>(tm * tn);
            task.stores = {{here, dram, out_bytes}};
          }
          tasks.push_back(std::move(task));
        }
        continue;
      }
      TileTask task;
      const std::int64_t panel = instance * (a_outer ? t.tiles_m : t.tiles_n) + outer;
      const std::uint64_t streamed = a_outer ? packed_bytes(g.k * tn, f.b_bits) : packed_bytes(tm * g.k, f.a_bits);
      task.loads.push_back({dram, here, streamed});
      if (panel != resident_panel) {
        resident_panel = panel;
        task.loads.push_back(
            {dram, here, a_outer ? packed_bytes(tm * g.k, f.a_bits) : packed_bytes(g.k * tn, f.b_bits)});
      }
      for (const auto& load : task.loads) task.buffer_bytes += load.bytes;
      task.mac = mac_tile(tm, tn, g.k, f);
      task.rounded_elements = static_cast<std::uint64_t>(tm * tn);
      task.stores = {{here, dram, out_bytes}};
      tasks.push_back(std::move(task));
    }
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
  const std::int64_t units = outputs * t.k_splits;
  for (std::int64_t o = 0; o < outputs; ++o) {
    const std::int64_t within = o % per_instance;
    const std::int64_t i = within % t.tiles_m, j = within / t.tiles_m;
    const std::int64_t elements = tile_extent(g.m, t.tile_m, i) * tile_extent(g.n, t.tile_n, j);
    const int owner = core_of_unit(o * t.k_splits, units, cores);
    TileTask task;
    for (std::int64_t p = 1; p < t.k_splits; ++p) {
      const int holder = core_of_unit(o * t.k_splits + p, units, cores);
      task.loads.push_back({Endpoint::core_at(holder), Endpoint::core_at(owner),
                            packed_bytes(elements, f.accumulator_bits)});
      task.buffer_bytes += task.loads.back().bytes;
    }
    task.sfu.alu = static_cast<std::uint64_t>((t.k_splits - 1) * elements);
    task.rounded_elements = static_cast<std::uint64_t>(elements);
    task.stores = {{Endpoint::core_at(owner), Endpoint::dram(), packed_bytes(elements, f.output_bits)}};
    step.tasks_per_core[static_cast<std::size_t>(owner)].push_back(std::move(task));
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
  // scratchpad, and at least a few per core so loads overlap the SFU.
  const std::uint64_t slots = static_cast<std::uint64_t>(std::max(1, chip.core.scratchpad.buffer_slots));
  const std::uint64_t chunk_budget = chip.core.scratchpad.size_bytes() / (2 * slots);
  const std::uint64_t per_core = (read_bytes + write_bytes + cores - 1) / cores;
  constexpr std::uint64_t kMinChunksForOverlap = 4;
  constexpr std::uint64_t kSmallBytes = 16 * 1024;  // not worth splitting further
  std::uint64_t chunks = std::max<std::uint64_t>(1, (per_core + chunk_budget - 1) / chunk_budget);
  if (per_core > kMinChunksForOverlap * kSmallBytes) chunks = std::max(chunks, kMinChunksForOverlap);
  const std::uint64_t parts = chunks * static_cast<std::uint64_t>(cores);

  const auto share = [&](std::uint64_t total, std::uint64_t part) {
    return total * (part + 1) / parts - total * part / parts;
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
      if (const auto bytes = share(write_bytes, part)) task.stores.push_back({here, dram, bytes});
      for (const auto& load : task.loads) task.buffer_bytes += load.bytes;
      if (task.loads.empty() && task.stores.empty() && task.sfu.empty() && task.rounded_elements == 0)
        continue;
      step.tasks_per_core[static_cast<std::size_t>(c)].push_back(std::move(task));
    }
  }
  return step;
}

namespace {

GemmFormats resolve_formats(const GemmPrecision& p, const core::MacArrayParams& array) {
  GemmFormats f;
  f.a_bits = p.a.total_bits();
  f.b_bits = p.b.total_bits();
  f.accumulator_bits = p.accumulator.total_bits();
  f.output_bits = p.output.total_bits();
  f.macs_per_pe_per_cycle = std::min(array.macs_per_pe_per_cycle.at(p.a.name),
                                     array.macs_per_pe_per_cycle.at(p.b.name));
  f.a_name = p.a.name;
  f.b_name = p.b.name;
  return f;
}

struct Mapper {
  const AcceleratorConfig& config;
  MappedProgram out;

  std::size_t tasks = 0;

  void add_step(const LayerWork& layer, Step step, StepInfo info) {
    if (out.program.steps.size() >= kMaxProgramSteps)
      fail(layer, "the program exceeds " + std::to_string(kMaxProgramSteps) + " steps");
    for (const auto& core_tasks : step.tasks_per_core) tasks += core_tasks.size();
    if (tasks > kMaxTileTasks)
      fail(layer, "the program exceeds " + std::to_string(kMaxTileTasks) + " tile tasks");
    out.program.steps.push_back(std::move(step));
    out.steps.push_back(std::move(info));
  }

  [[noreturn]] void fail(const LayerWork& layer, const std::string& message) const {
    throw InputError("", layer.where, "layer " + quoted_excerpt(layer.name) + ": " + message);
  }

  GemmTiling tiling_for(const LayerWork& layer, Phase phase, const GemmWork& g,
                        const GemmFormats& f) const {
    try {
      return choose_gemm_tiling(config.chip, g, f);
    } catch (const std::runtime_error& e) {
      fail(layer, std::string(to_string(phase)) + " GEMM " + g.label + " (" + std::to_string(g.m) +
                      "x" + std::to_string(g.n) + "x" + std::to_string(g.k) + "): " + e.what() +
                      "; the scratchpad's size is " + config.chip_location("/core/scratchpad/size_kib"));
    }
  }

  void map_phase(const LayerWork& layer, Phase phase, LayerPosition position) {
    const PhaseWork& work = layer.phase(phase);
    const std::string prefix = layer.name + "/" + to_string(phase) + "/";
    for (const GemmWork& g : work.gemms) {
      const GemmFormats f = resolve_formats(config.precision.for_gemm(g.formats_of, position),
                                            config.chip.core.mac_array);
      const GemmTiling t = tiling_for(layer, phase, g, f);
      const std::int64_t steps_per_repeat = t.k_splits > 1 ? 2 : 1;
      if (g.repeats > static_cast<std::int64_t>(kMaxProgramSteps - out.steps.size()) / steps_per_repeat)
        fail(layer, std::string(to_string(phase)) + " GEMM " + g.label + " repeats " +
                        std::to_string(g.repeats) + " times in sequence; a program is limited to " +
                        std::to_string(kMaxProgramSteps) + " steps");
      std::string tiling = std::to_string(t.tile_m) + "x" + std::to_string(t.tile_n) + "x" +
                           std::to_string(t.tile_k) + " " + to_string(t.order);
      if (t.k_splits > 1) tiling += " k-split " + std::to_string(t.k_splits);
      const Step step = map_gemm(config.chip, g, f, t, prefix + g.label);
      const std::optional<Step> reduction =
          t.k_splits > 1 ? std::optional(map_gemm_reduction(config.chip, g, f, t,
                                                            prefix + g.label + "/k-reduction"))
                         : std::nullopt;
      for (std::int64_t r = 0; r < g.repeats; ++r) {
        add_step(layer, step, {layer.layer_index, phase, g.label, g.macs() / g.repeats,
                        f.macs_per_pe_per_cycle, tiling});
        if (reduction)
          add_step(layer, *reduction, {layer.layer_index, phase, g.label + " k-reduction", 0, 0, ""});
      }
    }
    if (!work.elementwise.empty()) {
      const int bits = phase == Phase::kUpdate
                           ? config.precision.update.weights.total_bits()
                           : config.precision.for_gemm(phase, position).output.total_bits();
      add_step(layer, map_elementwise(config.chip, work.elementwise, bits, prefix + "elementwise"),
               {layer.layer_index, phase, "elementwise", 0, 0, ""});
    }
  }
};

}  // namespace

MappedProgram map_training(const std::vector<LayerWork>& layers, const AcceleratorConfig& config,
                           const std::set<Phase>& phases) {
  // First and last layers with GEMMs may have their own precision.
  std::vector<LayerPosition> position(layers.size(), LayerPosition::kMiddle);
  std::vector<std::size_t> gemm_layers;
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (!layers[i].phase(Phase::kFwd).gemms.empty()) gemm_layers.push_back(i);
  if (!gemm_layers.empty()) {
    position[gemm_layers.back()] = LayerPosition::kLast;
    position[gemm_layers.front()] = LayerPosition::kFirst;
  }

  Mapper mapper{config, {}};
  const auto run = [&](Phase phase, std::size_t i) {
    if (phases.count(phase) && !layers[i].phase(phase).empty())
      mapper.map_phase(layers[i], phase, position[i]);
  };
  for (std::size_t i = 0; i < layers.size(); ++i) run(Phase::kFwd, i);
  for (std::size_t i = layers.size(); i-- > 0;) {
    run(Phase::kBwd, i);
    run(Phase::kWgrad, i);
  }
  for (std::size_t i = 0; i < layers.size(); ++i) run(Phase::kUpdate, i);
  return std::move(mapper.out);
}

}  // namespace lpt
