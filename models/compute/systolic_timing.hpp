// Cycles and scratchpad traffic of one GEMM tile on an R x C systolic array.
// Plain C++ (no SystemC) so the mapping can call it while choosing tiles.
//
// Each PE does v = macs_per_pe_per_cycle MACs per cycle as a v-wide dot
// product along the reduction k, so the array sees k' = ceil(k / v).
// Mapping of the GEMM (m x k) . (k x n) per dataflow (as in SCALE-Sim):
//   OS: array rows <- m,  cols <- n, streamed T = k'
//   WS: array rows <- k', cols <- n, streamed T = m
//   IS: array rows <- k', cols <- m, streamed T = n
// Folds = ceil(rows_dim / R) * ceil(cols_dim / C). A fold that uses r <= R rows
// and c <= C columns takes 2r + c + T - 2 cycles: the form of the SCALE-Sim
// paper (Samajdar et al., ISPASS 2020), i.e. skewed fill (r + c - 2), T
// streamed cycles and an r-cycle drain. We use the paper's form rather than the
// code's T + R + C - 2 because the drain of the stationary/accumulated values
// through the r rows is real time when folds are not overlapped; r and c are the
// *used* part of a partial fold, since an idle PE row adds no skew.
//
// Folds run in row-fold-major order (all column folds of the first row block,
// then the next). Two timing modes:
//  * sequential folds: total = sum over folds of (2r + c + T - 2);
//  * pipelined folds (double-buffered PE registers): fold f may start once the
//    previous fold has streamed its T inputs and its r-row drain/preload has
//    left the shared registers, i.e. start(f+1) = start(f) + max(T, r_f); the
//    tile ends when its last-finishing fold ends:
//      total = max over f of (start(f) + 2 r_f + c_f + T - 2).
//    For equal folds this is sum over folds of max(T, r) plus the fill and
//    drain of one fold (2r + c - 2).
// A MacTile with count > 1 is that many tiles back to back: sequential folds
// take count times one tile; pipelined folds carry on across tiles, exposing
// one fill and drain in all.
#pragma once

#include <cstdint>

#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"

namespace lpt::core {

struct SystolicMapping {
  std::uint64_t rows_dim = 0;  // GEMM extent mapped onto the array rows
  std::uint64_t cols_dim = 0;  // ... onto the array columns
  std::uint64_t streamed = 0;  // T: vectors streamed through per fold
  std::uint64_t row_folds = 0;
  std::uint64_t col_folds = 0;
  std::uint64_t folds() const { return row_folds * col_folds; }
};

struct SystolicTileTiming {
  SystolicMapping mapping;
  std::uint64_t cycles = 0;  // 0 for an empty tile
  // Operand bytes the array reads from the scratchpad for this tile: the
  // streamed operand once per fold across it, the stationary one once.
  std::uint64_t scratchpad_read_bytes_a = 0;
  std::uint64_t scratchpad_read_bytes_b = 0;
  std::uint64_t scratchpad_read_bytes() const {
    return scratchpad_read_bytes_a + scratchpad_read_bytes_b;
  }
  // With L0 buffers: what the arrays read from them (the scratchpad reads
  // above are then the L0 fills). Zero without L0.
  std::uint64_t l0_read_bytes = 0;
};

SystolicMapping map_to_array(const MacArrayParams& array, const MacTile& tile);

// With several corelets the tile is split across them along n, m or its
// instances, whichever is fastest (the largest part sets the time; `mapping`
// is that part's); their scratchpad reads add up. With an L0 buffer per
// corelet, a part whose operands (one instance) fit in it reads each operand
// once from the scratchpad, and its array is fed at most l0.bytes_per_cycle.
// Throws std::invalid_argument if tile.macs_per_pe_per_cycle < 1.
SystolicTileTiming systolic_tile_timing(const MacArrayParams& array, const MacTile& tile);

}  // namespace lpt::core
