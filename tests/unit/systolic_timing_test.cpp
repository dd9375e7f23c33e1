// Tile cycles and scratchpad reads of the systolic array, against cases
// computed by hand from the per-fold cost 2r + c + T - 2 (see the header).
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "models/compute/systolic_timing.hpp"

namespace lpt::core {
namespace {

MacArrayParams array_4x4(Dataflow dataflow, bool pipelined) {
  MacArrayParams p;
  p.rows = 4;
  p.cols = 4;
  p.dataflow = dataflow;
  p.pipelined_folds = pipelined;
  return p;
}

MacTile tile(std::uint64_t m, std::uint64_t n, std::uint64_t k, int v = 1, int bytes_a = 1,
             int bytes_b = 1) {
  MacTile t;
  t.m = m, t.n = n, t.k = k;
  t.macs_per_pe_per_cycle = v;
  t.operand_bits_a = 8 * bytes_a;
  t.operand_bits_b = 8 * bytes_b;
  return t;
}

TEST(SystolicTiming, SingleFullFoldIsFillStreamDrain) {
  // OS 4x4 with k = 10: one fold, 2*4 + 4 + 10 - 2 = 20, pipelined or not.
  for (bool pipelined : {false, true}) {
    const auto t = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, pipelined),
                                        tile(4, 4, 10));
    EXPECT_EQ(t.mapping.folds(), 1u);
    EXPECT_EQ(t.cycles, 20u);
  }
}

TEST(SystolicTiming, BatchOfTilesRunsBackToBack) {
  // Three 4x4x10 OS tiles: sequential 3 x 20 = 60; pipelined, each tile starts
  // max(T, r) = 10 after the previous one: 2 x 10 + 20 = 40.
  MacTile three = tile(4, 4, 10, 1, 2, 1);
  three.count = 3;
  const auto sequential =
      systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false), three);
  EXPECT_EQ(sequential.cycles, 60u);
  EXPECT_EQ(sequential.scratchpad_read_bytes_a, 3u * 4 * 10 * 2);
  EXPECT_EQ(sequential.scratchpad_read_bytes_b, 3u * 10 * 4);
  EXPECT_EQ(three.macs(), 3u * 4 * 4 * 10);
  EXPECT_EQ(systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, true), three).cycles, 40u);
}

TEST(SystolicTiming, FourBitOperandsReadHalfABytePerElement) {
  MacTile int4 = tile(4, 4, 10);
  int4.operand_bits_a = int4.operand_bits_b = 4;
  const auto t = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false), int4);
  EXPECT_EQ(t.scratchpad_read_bytes_a, 4u * 10 / 2);
  EXPECT_EQ(t.scratchpad_read_bytes_b, 10u * 4 / 2);
}

TEST(SystolicTiming, VectorPesShortenTheReduction) {
  // 4 MACs per PE per cycle: k' = ceil(10 / 4) = 3, so 8 + 4 + 3 - 2 = 13.
  const auto t = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false),
                                      tile(4, 4, 10, 4));
  EXPECT_EQ(t.mapping.streamed, 3u);
  EXPECT_EQ(t.cycles, 13u);
}

TEST(SystolicTiming, OutputStationaryPartialFolds) {
  // rows <- m = 6 (folds of 4, 2), cols <- n = 5 (4, 1), T = k = 8.
  // Folds: (4,4) 18, (4,1) 15, (2,4) 14, (2,1) 11.
  const auto seq = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false),
                                        tile(6, 5, 8));
  EXPECT_EQ(seq.mapping.row_folds, 2u);
  EXPECT_EQ(seq.mapping.col_folds, 2u);
  EXPECT_EQ(seq.cycles, 18u + 15 + 14 + 11);
  // Pipelined: folds start every max(T, r) = 8 cycles: ends 18, 23, 30, 35.
  const auto pip = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, true),
                                        tile(6, 5, 8));
  EXPECT_EQ(pip.cycles, 35u);
  // A (6x8) re-read per column fold, B (8x5) per row fold.
  EXPECT_EQ(seq.scratchpad_read_bytes_a, 6u * 8 * 2);
  EXPECT_EQ(seq.scratchpad_read_bytes_b, 8u * 5 * 2);
}

TEST(SystolicTiming, WeightStationaryPartialFolds) {
  // rows <- k = 6 (4, 2), cols <- n = 6 (4, 2), T = m = 10.
  // Folds: (4,4) 20, (4,2) 18, (2,4) 16, (2,2) 14.
  const auto seq = systolic_tile_timing(array_4x4(Dataflow::kWeightStationary, false),
                                        tile(10, 6, 6));
  EXPECT_EQ(seq.mapping.rows_dim, 6u);
  EXPECT_EQ(seq.mapping.cols_dim, 6u);
  EXPECT_EQ(seq.mapping.streamed, 10u);
  EXPECT_EQ(seq.cycles, 20u + 18 + 16 + 14);
  // Pipelined: starts 0, 10, 20, 30; ends 20, 28, 36, 44.
  const auto pip = systolic_tile_timing(array_4x4(Dataflow::kWeightStationary, true),
                                        tile(10, 6, 6));
  EXPECT_EQ(pip.cycles, 44u);
  // Weights (6x6, 2 bytes) read once; inputs (10x6) streamed per column fold.
  const auto bytes = systolic_tile_timing(array_4x4(Dataflow::kWeightStationary, false),
                                          tile(10, 6, 6, 1, 1, 2));
  EXPECT_EQ(bytes.scratchpad_read_bytes_a, 10u * 6 * 2);
  EXPECT_EQ(bytes.scratchpad_read_bytes_b, 6u * 6 * 2);
}

TEST(SystolicTiming, InputStationaryPartialFolds) {
  // v = 2: rows <- k' = ceil(9/2) = 5 (4, 1), cols <- m = 5 (4, 1), T = n = 3.
  // Folds: (4,4) 13, (4,1) 10, (1,4) 7, (1,1) 4.
  const auto seq = systolic_tile_timing(array_4x4(Dataflow::kInputStationary, false),
                                        tile(5, 3, 9, 2));
  EXPECT_EQ(seq.cycles, 13u + 10 + 7 + 4);
  // Pipelined: row block 0 folds every max(3, 4) = 4 cycles (ends 13, 14);
  // row block 1 (r = 1) starts at 8, folds every 3 cycles (ends 15, 15).
  const auto pip = systolic_tile_timing(array_4x4(Dataflow::kInputStationary, true),
                                        tile(5, 3, 9, 2));
  EXPECT_EQ(pip.cycles, 15u);
  // Inputs (5x9, 2 bytes) read once; weights (9x3) streamed per column fold.
  const auto bytes = systolic_tile_timing(array_4x4(Dataflow::kInputStationary, false),
                                          tile(5, 3, 9, 2, 2, 1));
  EXPECT_EQ(bytes.scratchpad_read_bytes_a, 5u * 9 * 2);
  EXPECT_EQ(bytes.scratchpad_read_bytes_b, 9u * 3 * 2);
}

TEST(SystolicTiming, PipelinedEndsAtTheLatestFoldNotTheLast) {
  // OS, m = n = 5, k = 1 (T = 1). Folds (4,4) 11, (4,1) 8, (1,4) 5, (1,1) 2.
  // Starts 0, 4 (interval max(1, 4)), 8, 9 (interval 1): ends 11, 12, 13, 11.
  const auto pip = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, true),
                                        tile(5, 5, 1));
  EXPECT_EQ(pip.cycles, 13u);
  const auto seq = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false),
                                        tile(5, 5, 1));
  EXPECT_EQ(seq.cycles, 11u + 8 + 5 + 2);
}

// The schedule fold by fold: within a row block the folds start max(T, r)
// apart, blocks and tiles follow one another, the answer is the latest end.
std::uint64_t latest_fold_end(std::uint64_t m, std::uint64_t n, std::uint64_t t, std::uint64_t count) {
  std::uint64_t start = 0, end = 0;
  for (std::uint64_t instance = 0; instance < count; ++instance)
    for (std::uint64_t row = 0; row < m; row += 4) {
      const std::uint64_t r = std::min<std::uint64_t>(4, m - row);
      for (std::uint64_t col = 0; col < n; col += 4) {
        const std::uint64_t c = std::min<std::uint64_t>(4, n - col);
        end = std::max(end, start + 2 * r + c + t - 2);
        start += std::max(t, r);
      }
    }
  return end;
}

TEST(SystolicTiming, PipelinedClosedFormEqualsTheFoldByFoldSchedule) {
  for (std::uint64_t m : {1, 3, 4, 5, 8, 13, 40})
    for (std::uint64_t n : {1, 4, 6, 9, 17})
      for (std::uint64_t k : {1, 2, 3, 5, 11})
        for (std::uint64_t count : {1, 2, 5}) {
          MacTile shape = tile(m, n, k);
          shape.count = count;
          EXPECT_EQ(systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, true), shape).cycles,
                    latest_fold_end(m, n, k, count))
              << m << "x" << n << "x" << k << " x" << count;
        }
}

TEST(SystolicTiming, FullFoldsMatchScaleSimPaperForm) {
  // Full folds only: folds x (2R + C + T - 2) without pipelining.
  MacArrayParams p = array_4x4(Dataflow::kWeightStationary, false);
  p.rows = 8, p.cols = 16;
  const auto t = systolic_tile_timing(p, tile(100, 64, 32));
  EXPECT_EQ(t.mapping.folds(), 4u * 4);
  EXPECT_EQ(t.cycles, 16u * (2 * 8 + 16 + 100 - 2));
  // Pipelined with T >> R: every fold adds T, plus one fill and drain.
  p.pipelined_folds = true;
  EXPECT_EQ(systolic_tile_timing(p, tile(100, 64, 32)).cycles, 16u * 100 + 2 * 8 + 16 - 2);
}

TEST(SystolicTiming, EmptyTileTakesNoTime) {
  const auto t = systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false), tile(0, 4, 4));
  EXPECT_EQ(t.cycles, 0u);
  EXPECT_EQ(t.scratchpad_read_bytes(), 0u);
}

TEST(SystolicTiming, RejectsZeroMacsPerPe) {
  EXPECT_THROW(systolic_tile_timing(array_4x4(Dataflow::kOutputStationary, false),
                                    tile(4, 4, 4, 0)),
               std::invalid_argument);
}

}  // namespace
}  // namespace lpt::core

namespace lpt::core {
namespace {

MacArrayParams two_corelets_8x8() {
  MacArrayParams p;
  p.rows = 8, p.cols = 8, p.corelets = 2;
  p.dataflow = Dataflow::kOutputStationary;
  return p;
}

TEST(SystolicTimingCorelets, AnN8GemmSplitsItsRowsAcrossTheCorelets) {
  // m = 16, n = 8, k = 32 on two 8x8 corelets: split along m, each corelet
  // runs one 8x8 fold, 2*8 + 8 + 32 - 2 = 54 cycles. Split along n, each would
  // run two row folds of 4 columns: 2 * (16 + 4 + 30) = 100.
  const auto t = systolic_tile_timing(two_corelets_8x8(), tile(16, 8, 32));
  EXPECT_EQ(t.cycles, 54u);
  // Each corelet reads its half of A once and all of B once.
  EXPECT_EQ(t.scratchpad_read_bytes_a, 16u * 32);
  EXPECT_EQ(t.scratchpad_read_bytes_b, 2u * 32 * 8);
}

TEST(SystolicTimingCorelets, ADepthwiseColumnUsesBothCorelets) {
  // n = 1 (a depthwise channel): the single column cannot be split, the rows
  // can: 64 rows are 4 folds on each corelet instead of 8 on one.
  MacArrayParams one = two_corelets_8x8();
  one.corelets = 1;
  const auto single = systolic_tile_timing(one, tile(64, 1, 9));
  const auto both = systolic_tile_timing(two_corelets_8x8(), tile(64, 1, 9));
  EXPECT_EQ(single.cycles, 8u * (2 * 8 + 1 + 9 - 2));
  EXPECT_EQ(both.cycles, 4u * (2 * 8 + 1 + 9 - 2));
}

TEST(SystolicTimingCorelets, InstancesAreDealtToTheCorelets) {
  // Three 8x8x10 instances: two on one corelet, one on the other.
  MacTile three = tile(8, 8, 10);
  three.count = 3;
  const auto t = systolic_tile_timing(two_corelets_8x8(), three);
  EXPECT_EQ(t.cycles, 2u * (2 * 8 + 8 + 10 - 2));
}

TEST(SystolicTimingCorelets, AnL0ServesTheFoldsReReads) {
  // One corelet, OS, m = 16, n = 16, k = 8: 2 x 2 folds, so without L0 A is
  // read twice (once per column fold) and B twice.
  MacArrayParams p = two_corelets_8x8();
  p.corelets = 1;
  const auto plain = systolic_tile_timing(p, tile(16, 16, 8));
  EXPECT_EQ(plain.scratchpad_read_bytes(), 2u * 128 + 2u * 128);
  p.l0 = L0Params{1, 1 << 20};  // 1 KiB holds both operands (256 bytes)
  const auto buffered = systolic_tile_timing(p, tile(16, 16, 8));
  EXPECT_EQ(buffered.scratchpad_read_bytes(), 128u + 128u);
  EXPECT_EQ(buffered.cycles, plain.cycles);
  // An L0 that feeds 1 byte per cycle cannot keep up with 512 bytes of reads.
  p.l0 = L0Params{1, 1};
  EXPECT_EQ(systolic_tile_timing(p, tile(16, 16, 8)).cycles, 512u);
}

}  // namespace
}  // namespace lpt::core
