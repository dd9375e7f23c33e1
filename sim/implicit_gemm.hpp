// Implicit-GEMM operands: a convolution's GEMM multiplies an im2col matrix that
// never exists in DRAM. The raw activation tensor is loaded (each tile with the
// halo of its spatial window) and expanded to columns between the scratchpad
// and the MAC array, which costs scratchpad port bandwidth, not DRAM traffic.
// This module says how many raw tensor elements a block of the im2col matrix
// needs (docs/architecture.md, "Implicit GEMM").
#pragma once

#include <compare>
#include <cstdint>

namespace lpt {

// The im2col matrix of a convolution over a tensor of `channels` x in_h x in_w
// per sample: one row per output pixel (batch-major, then row-major over
// out_h x out_w) and `columns` columns, channel-major (each channel owns
// columns / channels of them: its kernel taps).
// Forward and weight-gradient GEMMs read the input X through it; the data
// gradient, a transposed convolution, reads dY through it with the stride
// turned into an upsampling (`upsampling` = true: the output grid is the
// stride times finer than the input grid, so a window of kernel_h rows of the
// output grid touches about kernel_h / stride rows of the input).
struct ConvWindow {
  std::int64_t channels = 1;
  std::int64_t in_h = 1, in_w = 1;    // the tensor read
  std::int64_t out_h = 1, out_w = 1;  // the pixels of the GEMM's rows
  std::int64_t kernel_h = 1, kernel_w = 1;  // dilated extent
  std::int64_t stride_h = 1, stride_w = 1;
  bool upsampling = false;
  std::int64_t columns = 1;  // of one instance (group)
  // Weight gradients read Xᵀ: pixels run along the GEMM's k, not its m.
  bool pixels_along_rows = true;

  auto operator<=>(const ConvWindow&) const = default;
};

// Raw tensor elements behind a block of `pixels` consecutive im2col rows and
// `columns` consecutive columns: the channels those columns touch times the
// input area the pixels' windows cover (whole images, or whole input rows with
// the window's halo, or part of one row). Never more than the block itself.
// Blocks are assumed to start at a tile boundary: an unaligned block may
// touch one more input row or channel.
long double window_elements(const ConvWindow& window, long double pixels, long double columns);

// Elements of one block of the GEMM's A operand (m x k) in DRAM: the window's
// footprint, rows and columns swapped for a transposed (weight-gradient) read.
long double a_block_elements(const ConvWindow& window, long double rows, long double cols);

}  // namespace lpt
