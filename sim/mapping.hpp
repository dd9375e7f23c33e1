// Mapping: turns the expanded training work into the chip's Program. GEMMs are
// split across cores and tiled to fit the scratchpad (with double buffering);
// element-wise work is streamed through the SFUs in scratchpad-sized chunks.
// Plain C++: the tile choice uses the same systolic timing as the MAC array.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"
#include "sim/config.hpp"
#include "sim/gemm_datapath.hpp"
#include "sim/memory_footprint.hpp"
#include "sim/roofline.hpp"
#include "sim/workload.hpp"

namespace lpt {

// Element sizes and MAC rate of one GEMM: what tiling needs of its datapath.
struct GemmFormats {
  int a_bits = 8, b_bits = 8, accumulator_bits = 16, output_bits = 16;
  int macs_per_pe_per_cycle = 1;
  std::uint32_t datapath = 0;  // its index in Program::datapaths (MacTile::datapath)

  static GemmFormats of(const GemmDatapath& datapath, std::uint32_t index_in_program);
};

enum class LoopOrder {
  kResidentB,   // k fits: each B panel stays while A panels stream past it
  kResidentA,   // k fits: each A panel stays while B panels stream past it
  kStreamBoth,  // k split: both operands stream, the output tile accumulates
};
const char* to_string(LoopOrder order);

struct GemmTiling {
  std::int64_t tile_m = 0, tile_n = 0, tile_k = 0;
  LoopOrder order = LoopOrder::kResidentB;
  std::int64_t tiles_m = 0, tiles_n = 0, tiles_k = 0;
  // With fewer output tiles than cores, the reduction is split across cores
  // and the partial sums are added in a following reduction step.
  std::int64_t k_splits = 1;
  // Estimates, for choosing (doubles: GEMMs with 2^31-sized dimensions exceed
  // 64 bits): the tiles of the GEMM step (tasks before any merging) and the
  // mapper's own cycle estimate.
  double tiles = 0;
  double estimated_cycles = 0;
  double estimated_dram_bytes = 0;
};

// Picks the tile shape, loop order and k-split that minimise the estimated time
// of the GEMM on the chip's cores: the busiest core's compute, the DRAM
// traffic / bandwidth and its SFU work, overlapped imperfectly (a 4-norm, not
// their maximum), plus the first load, the last tile and any k-split
// reduction, among tiles that fit the
// scratchpad. Estimates within 2% of the best count as equal; among them the
// least DRAM traffic wins (it costs energy and the bandwidth other cores
// share), and within 2% of that, the fewest tasks (fewer DMA transactions and
// control steps, which the estimate does not price). Throws std::runtime_error if not even the
// smallest tile fits.
GemmTiling choose_gemm_tiling(const core::ChipParams& chip, const GemmWork& gemm,
                              const GemmFormats& formats);

// Most tasks one core runs in one step. A core with more tiles than this gets
// merged tasks, each standing for several tiles of one shape back to back, so
// mapping and simulation cost do not grow with the GEMM or the batch. The
// first merged task's loads and the last one's stores are not overlapped, as
// one tile's are: the pieces are ramped (1/16 of a middle one at each end) to
// keep that error near 1 / (16 * tasks per core). At 256, every step of
// ResNet-50, ResNet-18, MobileNet-v2, BERT-base and the LSTM on the RaPiD
// config (at most 181 tasks per core) stays exact.
inline constexpr std::int64_t kMaxTasksPerCoreStep = 256;

// On many cores the budget shrinks so that a step stays within about
// kMaxTasksPerStep tasks (down to kMinTasksPerCoreStep per core): every
// transfer of the step shares DRAM with every other core's, so the flow
// model's cost per event grows with the cores, and a step's cost with tasks
// times cores. Chips of up to 64 cores keep kMaxTasksPerCoreStep.
inline constexpr std::int64_t kMaxTasksPerStep = 64 * kMaxTasksPerCoreStep;
inline constexpr std::int64_t kMinTasksPerCoreStep = 16;
std::int64_t tasks_per_core_budget(int cores);

// Where a GEMM's operands come from, as their loads say: the earlier steps
// whose results they are (Transfer::result_of, so that sim/residency may serve
// them on chip; nullopt: not a step's result), and whether they are weights
// (Transfer::prefetchable).
struct OperandOrigins {
  std::optional<std::size_t> a, b;
  bool a_weights = false, b_weights = false;
};

// Scratchpad bytes one core needs at once for the tiling: the resident panel,
// `buffer_slots` streamed tiles and two output tiles of accumulators (one
// accumulating while the previous one drains). What choose_gemm_tiling checks
// against the capacity.
long double tiling_footprint(const core::ChipParams& chip, const GemmWork& gemm,
                             const GemmFormats& formats, std::int64_t tile_m, std::int64_t tile_n,
                             std::int64_t tile_k, LoopOrder order);

// One step of a GEMM (one of its `repeats`): per-core task lists. A core whose
// tiles fit its budget gets one task per tile, in loop order.
// Beyond it, the core's tiles are grouped by shape (full or edge along m, n
// and, streaming both operands, k: at most 8 groups, so tiles of different
// shapes are reordered) and each group is split into pieces in proportion to
// its tiles. A merged task carries its tiles' loads, MACs (MacTile.count),
// rounding and stores; resident panels are spread over the tasks by tiles;
// its buffer_bytes is one tile's, as its tiles stream through the buffers.
// Built in closed form: the cost is O(tasks), not O(tiles).
// `max_tasks_per_core`, by default tasks_per_core_budget(chip.cores), is set
// by tests comparing merged and per-tile mappings.
// Output stores carry Transfer::is_result (a k-split's partial sums do not),
// operand loads their `sources`; working_set_bytes is the tiling's footprint.
core::Step map_gemm(const core::ChipParams& chip, const GemmWork& gemm,
                    const GemmFormats& formats, const GemmTiling& tiling, std::string label,
                    const OperandOrigins& sources = {},
                    std::optional<std::int64_t> max_tasks_per_core = std::nullopt);

// The reduction after a k-split GEMM step: each output tile's owner fetches the
// other cores' partial sums over the ring, adds them on its SFU, rounds and
// stores the result. Requires tiling.k_splits > 1 and, as choose_gemm_tiling
// ensures, fewer output tiles than cores (std::invalid_argument otherwise), so
// it has O(cores) tasks.
core::Step map_gemm_reduction(const core::ChipParams& chip, const GemmWork& gemm,
                              const GemmFormats& formats, const GemmTiling& tiling,
                              std::string label);

// One step of streaming element-wise work, split evenly across the cores in
// chunks that fit the scratchpad twice over; beyond kMaxTasksPerCoreStep
// chunks per core, fewer and larger chunks stream through buffers of that size.
core::Step map_elementwise(const core::ChipParams& chip, const ElementwiseWork& work,
                           int element_bits, std::string label);

// Adds element-wise work fused into a GEMM (GemmWork::fused) to the GEMM
// step's tasks in proportion to their MACs: SFU operations, and the extra
// tensors read and written (`element_bits` each) as loads and stores beside
// the tile's own. The extra bytes pass through the tile's input and output
// buffers, so they do not add to a task's buffer_bytes.
void spread_fused_work(core::Step& step, const ElementwiseWork& work, int element_bits);

// "256x64x576 resident-B", with " k-split 4" when the reduction is split.
std::string to_string(const GemmTiling& tiling);

// The GEMM a step runs, carried from mapping to the report.
struct GemmStep {
  std::string label;  // GemmWork::label, e.g. "dW=X^T*dY"
  std::int64_t m = 0, n = 0, k = 0, count = 1;
  GemmTiling tiling;
  GemmDatapath datapath;
  bool k_reduction = false;  // the reduction of partial sums after a k-split GEMM
};

// A gradient all-reduce: one bucket of layers' weight gradients.
struct CollectiveStep {
  std::vector<std::pair<std::size_t, std::uint64_t>> layers;  // (layer, gradient elements), backward order
  std::uint64_t elements() const;
};

// What each step of the program is, for the report.
struct StepInfo {
  std::size_t layer = 0;  // a collective's: its bucket's first layer
  Phase phase = Phase::kFwd;
  std::optional<GemmStep> gemm;  // none: element-wise work or a collective
  std::int64_t macs = 0;
  Bound bound;                    // the step's roofline bound
  // The parts of bound.dram_bytes that residency can save: the earlier
  // steps' results it reads (once each) and its own result.
  double least_sourced_bytes = 0;
  double least_result_bytes = 0;
  // Set by sim/residency: loads of earlier results served from the
  // scratchpads, and result bytes kept on chip instead of written to DRAM.
  std::uint64_t on_chip_read_bytes = 0;
  std::uint64_t avoided_write_bytes = 0;
  std::optional<CollectiveStep> collective;

  // "Y=X*W", "Y=X*W k-reduction" or "elementwise", for messages and timelines.
  std::string what() const;
  // The GEMM's tiling (empty for element-wise steps and reductions).
  std::string tiling() const;
  // The MAC array's rate on the step (0 when it does not use the array).
  int macs_per_pe_per_cycle() const;
};

struct MappedProgram {
  core::Program program;
  std::vector<StepInfo> steps;
};

// Bounds the program's size (each step holds task lists for every core): a
// recurrence of millions of time steps is an error, not hours of mapping.
inline constexpr std::size_t kMaxProgramSteps = std::size_t{1} << 18;
// Bounds the program's memory (a task takes a few hundred bytes).
inline constexpr std::size_t kMaxTileTasks = std::size_t{1} << 21;

// Phase order of one training step, by each phase's placement (sim/phase):
// FWD over the layers; then BWD, WGRAD and the phases placed after them (K-FAC's
// factors) of each layer from the last to the first; then a second backward
// pass, if the optimizer has one; then, layer by layer, the optimizer's phases
// in table order, ending with the weight update. On a system of chips
// (config.system, more than one chip) with weight gradients, the program also
// has a collective step per bucket of gradients (config.data_parallel), placed
// before the optimizer's phases and depending on its layers' weight
// gradients; a layer's optimizer phases wait for its bucket. A GEMM that no
// tile of fits the scratchpad, or a program beyond kMaxProgramSteps or
// kMaxTileTasks, is an InputError at the layer's place in its trace
// (LayerWork::where; no file).
// With a SpillPlan (sim/memory_footprint), each layer it names gets a step
// moving its bytes in from host memory before its first optimizer phase, and
// one moving them back after its last (phase "spill").
MappedProgram map_training(const std::vector<LayerWork>& layers, const AcceleratorConfig& config,
                           const std::set<Phase>& phases, const SpillPlan& spill = {});

}  // namespace lpt
