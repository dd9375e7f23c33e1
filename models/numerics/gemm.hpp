// GEMM C = A x B on the low-precision datapath (models/numerics/datapath.hpp), in two
// implementations that agree bit for bit:
//  - gemm_reference: one ChunkedAccumulator per output element, every add through the
//    format codec (the definition);
//  - gemm: the same rounding done lane-parallel across the output columns in float or
//    double lanes with integer ops on the sum's bits (or, to nearest even, adding and
//    subtracting a power of two scaled to the sum; stochastically, adding the random bits
//    below the kept ones, drawn lane-parallel from the same Philox streams), or by the
//    hardware's binary16 FMA where that is the accumulator, used whenever the datapath's
//    formats and roundings let the lanes carry the sums exactly enough (see
//    select_gemm_kernel). Lanes whose sums leave the accumulator's normal range
//    (overflow, Inf, NaN, subnormal) are redone through the reference, so every corner is
//    handled by the codec itself.
// gemm splits the output into blocks of rows (or of rows and columns) computed on several
// threads; every output element keys its own random numbers, so the result does not
// depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "models/numerics/datapath.hpp"
#include "models/numerics/format.hpp"

namespace lpt::num {

// Row-major values.
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> values;

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c, double fill = 0.0) : rows(r), cols(c), values(r * c, fill) {}
  double& operator()(std::size_t r, std::size_t c) { return values[r * cols + c]; }
  double operator()(std::size_t r, std::size_t c) const { return values[r * cols + c]; }
};

// Row-major bit patterns of one format (what the hardware stores).
struct EncodedMatrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint32_t> codes;
};

// Quantizes `values` into `format`. Stochastic roundings draw element e's random word from
// CounterRandom(seed, stream).bits(e).
EncodedMatrix encode_matrix(const Format& format, const Matrix& values, Rounding rounding,
                            std::uint64_t seed = 0, std::uint64_t stream = 0, int stochastic_bits = kMaxStochasticBits);
Matrix decode_matrix(const Format& format, const EncodedMatrix& encoded);

// Plain double-precision GEMM: the FP64 baseline of fidelity measurements.
Matrix gemm_fp64(const Matrix& a, const Matrix& b);

// A is M x K in the datapath's operand_a format, B is K x N in operand_b; the result holds
// values of datapath.result_format(). Output element (i, j) keys its random numbers with
// output index i * N + j. Throws std::invalid_argument on mismatched shapes.
Matrix gemm_reference(const Datapath& datapath, const EncodedMatrix& a, const EncodedMatrix& b);

struct GemmOptions {
  // Threads computing the output; 0: std::thread::hardware_concurrency(). GEMMs too small
  // to pay for starting threads run on the calling thread whatever this says.
  int threads = 0;
};
// Throws std::invalid_argument on mismatched shapes or a negative thread count.
Matrix gemm(const Datapath& datapath, const EncodedMatrix& a, const EncodedMatrix& b, const GemmOptions& options = {});

// Which lanes carry each accumulation stage in gemm().
// kHalf: IEEE binary16 lanes with the hardware's fused multiply-add, only in builds for
// AVX512-FP16 (e.g. -march=native on such a CPU).
enum class LaneKind { kHalf, kFloat, kDouble, kReference };
std::string_view lane_kind_name(LaneKind kind);
// Whether this build has kHalf lanes.
bool half_lanes_compiled();

struct GemmKernel {
  LaneKind inner = LaneKind::kReference;  // the adds inside a chunk (or the plain sum)
  LaneKind outer = LaneKind::kReference;  // the adds merging chunk sums (unused when plain)
};

// A stage runs in T lanes when the operands, products and accumulator values are exact
// normal T numbers, and either every non-overflowing sum is exact in T, or the rounding is
// to nearest and T has enough spare bits that rounding the T sum gives the same result as
// rounding the exact sum (products of at most p significant bits into a p-bit
// accumulator, T precision >= max(2p + 2, p + w + 3) with w the product width: a tiny
// addend stays below a quarter gap, a large one leaves the sum exact). A kStochastic stage
// with R random bits runs in double lanes when p + R <= 52: its sums are exact or rounded
// to odd as add_rounded does, which keeps the top 52 bits the rounder reads exact.
// kStochasticExact stages (two random words and the exact sum's whole fraction per add)
// stay on the reference.
// The inner stage runs in kHalf lanes (where compiled) when the accumulator is IEEE
// binary16 itself with rounding to nearest even and every operand value is a binary16
// number: a binary16 FMA then is the datapath's rounded add, subnormals included, and
// only sums that end up Inf or NaN are redone.
GemmKernel select_gemm_kernel(const Datapath& datapath);

}  // namespace lpt::num
