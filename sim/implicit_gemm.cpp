#include "sim/implicit_gemm.hpp"

#include <algorithm>
#include <cmath>

namespace lpt {

namespace {

// Input rows (or columns) that `outputs` consecutive output rows of a window
// `kernel` wide cover.
long double span(long double outputs, std::int64_t kernel, std::int64_t stride, bool upsampling) {
  const auto k = static_cast<long double>(kernel), s = static_cast<long double>(stride);
  if (upsampling) return std::ceil((outputs - 1) / s) + std::ceil(k / s);
  return (outputs - 1) * s + k;
}

}  // namespace

long double window_elements(const ConvWindow& w, long double pixels, long double columns) {
  if (pixels <= 0 || columns <= 0) return 0;
  const auto in_h = static_cast<long double>(w.in_h), in_w = static_cast<long double>(w.in_w);
  const auto out_w = static_cast<long double>(w.out_w);
  const long double image = static_cast<long double>(w.out_h) * out_w;
  long double area = 0;
  if (pixels >= image) {
    area = std::ceil(pixels / image) * in_h * in_w;
  } else if (pixels >= out_w) {
    area = std::min(in_h, span(std::ceil(pixels / out_w), w.kernel_h, w.stride_h, w.upsampling)) * in_w;
  } else {
    area = std::min(in_h, span(1, w.kernel_h, w.stride_h, w.upsampling)) *
           std::min(in_w, span(pixels, w.kernel_w, w.stride_w, w.upsampling));
  }
  const long double columns_per_channel =
      static_cast<long double>(w.columns) / static_cast<long double>(w.channels);
  const long double channels =
      std::min(static_cast<long double>(w.channels), std::ceil(columns / columns_per_channel));
  return std::min(pixels * columns, channels * area);
}

long double a_block_elements(const ConvWindow& w, long double rows, long double cols) {
  return w.pixels_along_rows ? window_elements(w, rows, cols) : window_elements(w, cols, rows);
}

}  // namespace lpt
