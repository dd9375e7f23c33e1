#include "models/compute/systolic_timing.hpp"

#include <algorithm>
#include <stdexcept>

namespace lpt::core {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Size of fold `index` of `folds` folds over `extent` with fold size `size`.
std::uint64_t fold_size(std::uint64_t extent, std::uint64_t size, std::uint64_t index,
                        std::uint64_t folds) {
  return index + 1 < folds ? size : extent - (folds - 1) * size;
}

std::uint64_t fold_cycles(std::uint64_t r, std::uint64_t c, std::uint64_t t) {
  return 2 * r + c + t - 2;
}

std::uint64_t sequential_cycles(const SystolicMapping& m) {
  // Sum over folds of (2r + c + T - 2): every row fold meets every column fold,
  // so the r's sum to rows_dim once per column fold and the c's likewise.
  // (Subtracting last keeps the unsigned arithmetic from wrapping when T = 1.)
  return 2 * m.rows_dim * m.col_folds + m.cols_dim * m.row_folds + m.folds() * m.streamed -
         2 * m.folds();
}

// `count` identical tiles back to back keep the pipeline going: tile i starts
// where tile i-1 would have started its next fold. Within a row block all
// column folds but the last are full, so a block ends with its last full fold
// or its last fold; all row blocks but the last are alike and start later and
// later, so the latest end is that of the last full block or of the last block
// (closed form: the mapper evaluates this for every candidate tile).
std::uint64_t pipelined_cycles(const SystolicMapping& m, std::uint64_t rows, std::uint64_t cols,
                               std::uint64_t count) {
  const std::uint64_t t = m.streamed;
  const std::uint64_t last_cols = fold_size(m.cols_dim, cols, m.col_folds - 1, m.col_folds);
  const auto block_end = [&](std::uint64_t start, std::uint64_t r) {
    const std::uint64_t interval = std::max(t, r);
    const std::uint64_t last_start = start + (m.col_folds - 1) * interval;
    std::uint64_t end = last_start + fold_cycles(r, last_cols, t);
    if (m.col_folds >= 2) end = std::max(end, last_start - interval + fold_cycles(r, cols, t));
    return end;
  };
  const std::uint64_t full_blocks = m.row_folds - 1;
  const std::uint64_t full_block_length = m.col_folds * std::max(t, rows);
  const std::uint64_t last_rows = fold_size(m.rows_dim, rows, m.row_folds - 1, m.row_folds);
  const std::uint64_t last_start = full_blocks * full_block_length;
  std::uint64_t end = block_end(last_start, last_rows);
  if (full_blocks > 0) end = std::max(end, block_end(last_start - full_block_length, rows));
  const std::uint64_t row_blocks_length = last_start + m.col_folds * std::max(t, last_rows);
  return (count - 1) * row_blocks_length + end;
}

}  // namespace

SystolicMapping map_to_array(const MacArrayParams& array, const MacTile& tile) {
  if (tile.macs_per_pe_per_cycle < 1)
    throw std::invalid_argument("MacTile.macs_per_pe_per_cycle must be >= 1");
  SystolicMapping m;
  if (tile.empty()) return m;
  const std::uint64_t reduction = ceil_div(tile.k, static_cast<std::uint64_t>(tile.macs_per_pe_per_cycle));
  switch (array.dataflow) {
    case Dataflow::kOutputStationary:
      m.rows_dim = tile.m, m.cols_dim = tile.n, m.streamed = reduction;
      break;
    case Dataflow::kWeightStationary:
      m.rows_dim = reduction, m.cols_dim = tile.n, m.streamed = tile.m;
      break;
    case Dataflow::kInputStationary:
      m.rows_dim = reduction, m.cols_dim = tile.m, m.streamed = tile.n;
      break;
  }
  m.row_folds = ceil_div(m.rows_dim, static_cast<std::uint64_t>(array.rows));
  m.col_folds = ceil_div(m.cols_dim, static_cast<std::uint64_t>(array.cols));
  return m;
}

namespace {

// One tile on one array (one corelet), reading its operands from the scratchpad.
SystolicTileTiming one_array_timing(const MacArrayParams& array, const MacTile& tile) {
  SystolicTileTiming timing;
  timing.mapping = map_to_array(array, tile);
  if (tile.empty()) return timing;
  const SystolicMapping& m = timing.mapping;
  const auto rows = static_cast<std::uint64_t>(array.rows);
  const auto cols = static_cast<std::uint64_t>(array.cols);
  timing.cycles = array.pipelined_folds ? pipelined_cycles(m, rows, cols, tile.count)
                                        : sequential_cycles(m) * tile.count;

  const std::uint64_t a_bytes = packed_bytes(tile.count * tile.m * tile.k, tile.operand_bits_a);
  const std::uint64_t b_bytes = packed_bytes(tile.count * tile.k * tile.n, tile.operand_bits_b);
  switch (array.dataflow) {
    case Dataflow::kOutputStationary:  // A rows re-read per column fold, B per row fold
      timing.scratchpad_read_bytes_a = a_bytes * m.col_folds;
      timing.scratchpad_read_bytes_b = b_bytes * m.row_folds;
      break;
    case Dataflow::kWeightStationary:  // B loaded once; A re-streamed per column fold
      timing.scratchpad_read_bytes_a = a_bytes * m.col_folds;
      timing.scratchpad_read_bytes_b = b_bytes;
      break;
    case Dataflow::kInputStationary:  // A loaded once; B re-streamed per column fold
      timing.scratchpad_read_bytes_a = a_bytes;
      timing.scratchpad_read_bytes_b = b_bytes * m.col_folds;
      break;
  }
  return timing;
}

// With an L0 buffer the array's re-reads across folds come from it. Folds run
// row-fold-major, so the block of the streamed operand that one row of folds
// shares (OS: A's rows x k; WS and IS: the operand re-streamed per column
// fold, for one row fold's depth) stays in the L0 while that row of folds
// runs, with a block of the other operand beside it double-buffered; then the
// re-streamed operand comes from the scratchpad once. The other operand's
// blocks are re-read once per row fold (OS: B), unless all of it fits beside
// the first block. Either way the array runs no faster than the L0 feeds it.
SystolicTileTiming with_l0(const L0Params& l0, const MacArrayParams& array, const MacTile& tile,
                           SystolicTileTiming timing) {
  const std::uint64_t array_reads = timing.scratchpad_read_bytes();
  const std::uint64_t capacity = l0.size_bytes();
  const auto rows = static_cast<std::uint64_t>(array.rows), cols = static_cast<std::uint64_t>(array.cols);
  const auto v = static_cast<std::uint64_t>(tile.macs_per_pe_per_cycle);
  const std::uint64_t a_once = packed_bytes(tile.count * tile.m * tile.k, tile.operand_bits_a);
  const std::uint64_t b_once = packed_bytes(tile.count * tile.k * tile.n, tile.operand_bits_b);
  switch (array.dataflow) {
    case Dataflow::kOutputStationary: {
      const std::uint64_t a_block = packed_bytes(std::min(rows, tile.m) * tile.k, tile.operand_bits_a);
      const std::uint64_t b_block = packed_bytes(tile.k * std::min(cols, tile.n), tile.operand_bits_b);
      if (a_block + 2 * b_block <= capacity) {
        timing.scratchpad_read_bytes_a = a_once;
        if (a_block + packed_bytes(tile.k * tile.n, tile.operand_bits_b) <= capacity)
          timing.scratchpad_read_bytes_b = b_once;
      }
      break;
    }
    case Dataflow::kWeightStationary: {  // A re-streamed per column fold
      const std::uint64_t a_block = packed_bytes(tile.m * std::min(rows * v, tile.k), tile.operand_bits_a);
      if (2 * a_block <= capacity) timing.scratchpad_read_bytes_a = a_once;
      break;
    }
    case Dataflow::kInputStationary: {  // B re-streamed per column fold
      const std::uint64_t b_block = packed_bytes(std::min(rows * v, tile.k) * tile.n, tile.operand_bits_b);
      if (2 * b_block <= capacity) timing.scratchpad_read_bytes_b = b_once;
      break;
    }
  }
  const auto fed = static_cast<std::uint64_t>(l0.bytes_per_cycle);
  timing.cycles = std::max(timing.cycles, (array_reads + fed - 1) / fed);
  timing.l0_read_bytes = array_reads;
  return timing;
}

SystolicTileTiming corelet_timing(const MacArrayParams& array, const MacTile& tile) {
  const SystolicTileTiming timing = one_array_timing(array, tile);
  return array.l0 ? with_l0(*array.l0, array, tile, timing) : timing;
}

// `tile` split into `parts` along one output dimension (or its instances):
// the parts run side by side, the largest sets the time, the reads add up.
SystolicTileTiming split_timing(const MacArrayParams& array, const MacTile& tile,
                                std::uint64_t MacTile::*extent, std::uint64_t parts) {
  const std::uint64_t total = tile.*extent, small = total / parts, large_parts = total % parts;
  SystolicTileTiming timing;
  for (const auto& [size, count] : {std::pair{small + 1, large_parts}, std::pair{small, parts - large_parts}}) {
    if (size == 0 || count == 0) continue;
    MacTile part = tile;
    part.*extent = size;
    const SystolicTileTiming t = corelet_timing(array, part);
    if (t.cycles > timing.cycles) timing.mapping = t.mapping, timing.cycles = t.cycles;
    timing.scratchpad_read_bytes_a += t.scratchpad_read_bytes_a * count;
    timing.scratchpad_read_bytes_b += t.scratchpad_read_bytes_b * count;
    timing.l0_read_bytes += t.l0_read_bytes * count;
  }
  return timing;
}

}  // namespace

SystolicTileTiming systolic_tile_timing(const MacArrayParams& array, const MacTile& tile) {
  if (array.corelets <= 1 || tile.empty()) return corelet_timing(array, tile);
  // Corelets split a tile's independent instances, or its rows or columns of
  // output, whichever finishes first (never k, which would need their partial
  // sums added).
  const auto corelets = static_cast<std::uint64_t>(array.corelets);
  SystolicTileTiming best = split_timing(array, tile, &MacTile::n, corelets);
  for (std::uint64_t MacTile::*extent : {&MacTile::m, &MacTile::count}) {
    const SystolicTileTiming t = split_timing(array, tile, extent, corelets);
    if (t.cycles < best.cycles) best = t;
  }
  return best;
}

}  // namespace lpt::core
