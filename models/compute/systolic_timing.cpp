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
// where tile i-1 would have started its next fold.
std::uint64_t pipelined_cycles(const SystolicMapping& m, std::uint64_t rows, std::uint64_t cols,
                               std::uint64_t count) {
  const std::uint64_t t = m.streamed;
  const std::uint64_t full_cols = cols;
  const std::uint64_t last_cols = fold_size(m.cols_dim, cols, m.col_folds - 1, m.col_folds);
  std::uint64_t row_block_start = 0;
  std::uint64_t end = 0;
  for (std::uint64_t i = 0; i < m.row_folds; ++i) {
    const std::uint64_t r = fold_size(m.rows_dim, rows, i, m.row_folds);
    const std::uint64_t interval = std::max(t, r);
    // Within a row block all column folds but the last are full, so the latest
    // end is that of the last full fold or of the last fold.
    const std::uint64_t last_start = row_block_start + (m.col_folds - 1) * interval;
    end = std::max(end, last_start + fold_cycles(r, last_cols, t));
    if (m.col_folds >= 2)
      end = std::max(end, last_start - interval + fold_cycles(r, full_cols, t));
    row_block_start += m.col_folds * interval;
  }
  return (count - 1) * row_block_start + end;
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

SystolicTileTiming systolic_tile_timing(const MacArrayParams& array, const MacTile& tile) {
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

}  // namespace lpt::core
