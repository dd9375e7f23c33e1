#include "models/numerics/gemm.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include "models/numerics/accumulate.hpp"
#include "models/numerics/random.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace lpt::num {

EncodedMatrix encode_matrix(const Format& format, const Matrix& values, Rounding rounding, std::uint64_t seed,
                            std::uint64_t stream, int stochastic_bits) {
  EncodedMatrix encoded{values.rows, values.cols, std::vector<std::uint32_t>(values.values.size())};
  const CounterRandom random(seed, stream);
  for (std::size_t e = 0; e < values.values.size(); ++e) {
    const std::uint64_t draw = is_stochastic(rounding) ? random.bits(e) : 0;
    encoded.codes[e] = format.encode(values.values[e], rounding, draw, stochastic_bits);
  }
  return encoded;
}

Matrix decode_matrix(const Format& format, const EncodedMatrix& encoded) {
  Matrix values(encoded.rows, encoded.cols);
  for (std::size_t e = 0; e < encoded.codes.size(); ++e) values.values[e] = format.decode(encoded.codes[e]);
  return values;
}

Matrix gemm_fp64(const Matrix& a, const Matrix& b) {
  if (a.cols != b.rows)
    throw std::invalid_argument("gemm: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) +
                                " but B is " + std::to_string(b.rows) + "x" + std::to_string(b.cols));
  Matrix c(a.rows, b.cols);
  for (std::size_t i = 0; i < a.rows; ++i)
    for (std::size_t k = 0; k < a.cols; ++k) {
      const double a_ik = a(i, k);
      for (std::size_t j = 0; j < b.cols; ++j) c(i, j) += a_ik * b(k, j);
    }
  return c;
}

std::string_view lane_kind_name(LaneKind kind) {
  switch (kind) {
    case LaneKind::kHalf: return "half";
    case LaneKind::kFloat: return "float";
    case LaneKind::kDouble: return "double";
    case LaneKind::kReference: return "reference";
  }
  return "?";
}

bool half_lanes_compiled() {
#if defined(__AVX512FP16__)
  return true;
#else
  return false;
#endif
}

namespace {

void check_shapes(const EncodedMatrix& a, const EncodedMatrix& b) {
  if (a.cols != b.rows)
    throw std::invalid_argument("gemm: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) +
                                " but B is " + std::to_string(b.rows) + "x" + std::to_string(b.cols));
  if (a.codes.size() != a.rows * a.cols || b.codes.size() != b.rows * b.cols)
    throw std::invalid_argument("gemm: an encoded matrix holds a code count that does not match its shape");
}

// A rectangle of the output that one thread computes whole: rows [row_begin, row_end) by
// columns [col_begin, col_end).
struct Block {
  std::size_t row_begin, row_end, col_begin, col_end;
};

// Blocks per thread: threads that get more of a shared machine's cores take more blocks.
constexpr unsigned kBlocksPerThread = 4;

// Cuts an m x n output into about kBlocksPerThread blocks per thread (one when `threads`
// is 1): row ranges (multiples of row_align, so the multi-row kernels stay in use) while
// there are enough rows, and column ranges (multiples of col_align) as well only when
// there are not.
std::vector<Block> split_output(std::size_t m, std::size_t n, unsigned threads, std::size_t row_align,
                                std::size_t col_align) {
  const auto bounds = [](std::size_t extent, std::size_t align, std::size_t wanted) {
    const std::size_t units = (extent + align - 1) / align;
    const std::size_t parts = std::max<std::size_t>(1, std::min(units, wanted));
    std::vector<std::size_t> cuts(parts + 1);
    for (std::size_t p = 0; p <= parts; ++p) cuts[p] = std::min(extent, units * p / parts * align);
    return cuts;
  };
  const std::size_t wanted = threads == 1 ? 1 : std::size_t{threads} * kBlocksPerThread;
  const std::vector<std::size_t> rows = bounds(m, row_align, wanted);
  const std::size_t row_parts = rows.size() - 1;
  const std::vector<std::size_t> cols = bounds(n, col_align, (wanted + row_parts - 1) / row_parts);
  std::vector<Block> blocks;
  for (std::size_t r = 0; r < row_parts; ++r)
    for (std::size_t c = 0; c + 1 < cols.size(); ++c) blocks.push_back({rows[r], rows[r + 1], cols[c], cols[c + 1]});
  return blocks;
}

// compute(block) for every block, on up to `threads` threads (the caller's among them).
// The first exception a block throws is rethrown here once every thread has stopped.
template <class Compute>
void run_blocks(const std::vector<Block>& blocks, unsigned threads, const Compute& compute) {
  const std::size_t workers = std::min<std::size_t>(threads, blocks.size());
  if (workers <= 1) {
    for (const Block& block : blocks) compute(block);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  const auto work = [&] {
    try {
      for (std::size_t b = next.fetch_add(1); b < blocks.size(); b = next.fetch_add(1)) compute(blocks[b]);
    } catch (...) {
      const std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = blocks.size();  // the others stop after their current block
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (std::size_t w = 1; w < workers; ++w) helpers.emplace_back(work);
    work();
  }
  if (failure) std::rethrow_exception(failure);
}

// Leaves elements uninitialised: decoded operands are written whole, in parallel, so a
// zero fill first would only add a serial pass (and take its page faults on one thread).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
};
template <class T>
using Decoded = std::vector<T, UninitializedAllocator<T>>;

// The values of A and B as T (exact: the callers check that T holds them), through a
// table when a format is narrow (the hardware's operands are bit patterns; decoding each
// one through the codec would cost more than the GEMM). Split over `threads` element
// ranges of both at once: alone, this pass would cap the GEMM's speed-up, and one start
// of the threads costs less than two.
template <class T = double>
std::array<Decoded<T>, 2> decode_operands(const Datapath& datapath, const EncodedMatrix& a, const EncodedMatrix& b,
                                          unsigned threads) {
  constexpr std::size_t kRangeAlign = 4096;
  const Format* formats[2] = {&datapath.operand_a(), &datapath.operand_b()};
  const std::vector<std::uint32_t>* codes[2] = {&a.codes, &b.codes};
  std::array<Decoded<T>, 2> values;
  std::array<std::vector<T>, 2> tables;
  for (std::size_t o = 0; o < 2; ++o) {
    values[o].resize(codes[o]->size());
    tables[o].resize(formats[o]->total_bits() <= 16 ? formats[o]->encoding_count() : 0);
    for (std::uint32_t code = 0; code < tables[o].size(); ++code)
      tables[o][code] = static_cast<T>(formats[o]->decode(code));
  }
  const std::size_t a_size = a.codes.size();
  run_blocks(split_output(a_size + b.codes.size(), 1, threads, kRangeAlign, 1), threads, [&](const Block& range) {
    // The range's part in A, then its part in B.
    const std::size_t begins[2] = {std::min(range.row_begin, a_size), std::max(range.row_begin, a_size) - a_size};
    const std::size_t ends[2] = {std::min(range.row_end, a_size), std::max(range.row_end, a_size) - a_size};
    for (std::size_t o = 0; o < 2; ++o) {
      const std::vector<T>& table = tables[o];
      const std::vector<std::uint32_t>& from = *codes[o];
      const std::uint32_t mask = static_cast<std::uint32_t>(table.size() - 1);
      if (table.empty())
        for (std::size_t e = begins[o]; e < ends[o]; ++e) values[o][e] = static_cast<T>(formats[o]->decode(from[e]));
      else
        for (std::size_t e = begins[o]; e < ends[o]; ++e) values[o][e] = table[from[e] & mask];
    }
  });
  return values;
}

// The spacing of a format's finest grid: every value is a multiple of it.
double quantum(const Format& format) {
  const FormatSpec& spec = format.spec();
  if (spec.is_integer || spec.radix != 2) return format.min_positive();
  return std::ldexp(1.0, std::ilogb(format.min_normal()) - spec.mantissa_bits);
}

// The addends one stage sums: their widest significand, finest grid and largest magnitude.
struct Addends {
  int width;
  double quantum;
  double max_magnitude;
};

// Whether every sum of a stage that does not overflow is exact in T: sums that do not
// overflow have magnitude below 8 * max finite (larger ones are redone by the reference as
// overflows), exact when that span of bits down to the finest grid fits in the lane.
template <class T>
bool sums_exact(const Format& accumulator, const Addends& addends) {
  const int span =
      std::ilogb(8 * accumulator.max_finite()) - std::ilogb(std::min(quantum(accumulator), addends.quantum)) + 1;
  return span <= std::numeric_limits<T>::digits;
}

template <class T>
bool stage_fits(const Format& accumulator, const StageRounding& stage, const Addends& addends) {
  constexpr int kLanePrecision = std::numeric_limits<T>::digits;
  const FormatSpec& spec = accumulator.spec();
  if (stage.rounding == Rounding::kStochasticExact) return false;  // needs the exact sum's whole fraction
  if (spec.is_integer || spec.radix != 2 || !spec.has_sign || spec.specials == SpecialValues::kFnuz) return false;
  const int precision = spec.mantissa_bits + 1;
  if (precision + 2 > kLanePrecision || addends.width > kLanePrecision) return false;
  const double lane_min = std::numeric_limits<T>::min(), lane_max = std::numeric_limits<T>::max();
  if (quantum(accumulator) < lane_min || addends.quantum < lane_min) return false;
  if (8 * accumulator.max_finite() > lane_max || 8 * addends.max_magnitude > lane_max) return false;
  if (stage.rounding == Rounding::kStochastic)
    // The rounder reads the top precision + R bits of the exact sum: an exact lane sum has
    // them, and so does a double sum rounded to odd (its top 52 bits are the exact sum's).
    // Only double lanes: the random words fill 64-bit slots anyway.
    return std::is_same_v<T, double> && precision + stage.stochastic_bits <= kLanePrecision - 1;
  if (sums_exact<T>(accumulator, addends)) return true;
  const bool nearest = stage.rounding == Rounding::kNearestEven || stage.rounding == Rounding::kNearestAway;
  return nearest && addends.width <= precision &&
         kLanePrecision >= std::max(2 * precision + 2, precision + addends.width + 3);
}

template <class T>
bool operands_fit(const Datapath& datapath) {
  constexpr int kLanePrecision = std::numeric_limits<T>::digits;
  for (const Format* format : {&datapath.operand_a(), &datapath.operand_b()}) {
    if (significand_width(format->spec()) > kLanePrecision) return false;
    if (quantum(*format) < std::numeric_limits<T>::min()) return false;
  }
  return significand_width(datapath.operand_a().spec()) + significand_width(datapath.operand_b().spec()) <=
         kLanePrecision;
}

Addends product_addends(const Datapath& datapath) {
  return {significand_width(datapath.operand_a().spec()) + significand_width(datapath.operand_b().spec()),
          quantum(datapath.operand_a()) * quantum(datapath.operand_b()),
          datapath.operand_a().max_finite() * datapath.operand_b().max_finite()};
}

template <class T> struct LaneBits;
template <> struct LaneBits<float> { using type = std::uint32_t; };
template <> struct LaneBits<double> { using type = std::uint64_t; };

// Rounding of a lane value's magnitude bits to the accumulator's grid, valid while the
// value lies in the accumulator's normal range: there its grid is the lane's own with the
// low `shift` bits cleared, and a carry out of the kept bits moves to the next binade by
// itself.
template <class T>
struct LaneRounder {
  using U = typename LaneBits<T>::type;
  static constexpr U kSign = U{1} << (sizeof(U) * 8 - 1);

  Rounding rounding;
  int shift;
  U low_mask;          // the bits rounded away
  U half;              // half a gap
  U min_bits;          // the smallest normal accumulator magnitude
  U overflow_bits;     // the smallest magnitude that rounds beyond the largest finite value
  // Round to nearest even by adding and subtracting 1.5 * 2^shift ulp of the value (same
  // sign): the sum stays in one binade whose grid is the accumulator's, and that addend's
  // even multiple of the grid keeps ties to even. Needs shift >= 3 and a finite addend.
  static constexpr int kExponentAt = std::numeric_limits<T>::digits - 1;
  static constexpr U kSignExponent = ~((U{1} << kExponentAt) - 1);
  U magic_offset;      // added to a value's sign and exponent bits: the addend's bits
  bool magic_rounds;
  // Sums below the normal range are exact and on the lanes' grid too when the accumulator
  // has gradual subnormals and the addends lie on its finest grid: only overflow needs
  // watching then.
  bool low_sums_exact;

  LaneRounder(const Format& accumulator, Rounding mode, double addend_quantum) : rounding(mode) {
    low_sums_exact = accumulator.spec().subnormals == Subnormals::kGradual && addend_quantum >= quantum(accumulator);
    shift = std::numeric_limits<T>::digits - 1 - accumulator.spec().mantissa_bits;
    low_mask = (U{1} << shift) - 1;
    half = U{1} << (shift - 1);
    min_bits = std::bit_cast<U>(static_cast<T>(accumulator.min_normal()));
    // Rounding is monotone in the magnitude: search the first code past the largest value.
    const U max_bits = std::bit_cast<U>(static_cast<T>(accumulator.max_finite()));
    U low = max_bits, high = std::bit_cast<U>(std::numeric_limits<T>::infinity());
    while (high - low > 1) {
      const U middle = low + (high - low) / 2;
      (round(middle) > max_bits ? high : low) = middle;
    }
    overflow_bits = high;
    magic_offset = (static_cast<U>(shift) << kExponentAt) | (U{1} << (kExponentAt - 1));
    magic_rounds = shift >= 3 && (overflow_bits >> kExponentAt) + shift < (kSignExponent >> kExponentAt) / 2;
  }

  U round(U magnitude) const {
    switch (rounding) {
      case Rounding::kNearestEven: return round_as<Rounding::kNearestEven>(magnitude, low_mask, half, shift);
      case Rounding::kNearestAway: return round_as<Rounding::kNearestAway>(magnitude, low_mask, half, shift);
      default: return round_as<Rounding::kTowardZero>(magnitude, low_mask, half, shift);
    }
  }

  template <Rounding kMode>
  static U round_as(U magnitude, U low_mask, U half, int shift) {
    if constexpr (kMode == Rounding::kNearestEven) {
      return (magnitude + (half - 1) + ((magnitude >> shift) & 1)) & ~low_mask;
    } else if constexpr (kMode == Rounding::kNearestAway) {
      return (magnitude + half) & ~low_mask;
    } else {
      return magnitude & ~low_mask;
    }
  }
};

// Lanes one block of accumulate_lanes keeps in flight: enough independent sums to hide
// the add-round latency of each one.
constexpr std::size_t kBlockLanes = 64;

// sums[j] = the accumulated products a[0..count) x b[0..count)[j] for j < lanes (kLanes,
// or `lanes` when kLanes is 0), rounded after every add; flagged[j] != 0 where some sum
// left the accumulator's normal range (its result is then meaningless and must be redone).
// Returns whether any lane is flagged. Written so that GCC vectorises the j loops.
template <class T, Rounding kMode, std::size_t kLanes>
bool accumulate_block(const LaneRounder<T>& rounder, const T* __restrict a, const T* __restrict b,
                      std::size_t stride, std::size_t count, std::size_t lanes, T* __restrict sums,
                      typename LaneRounder<T>::U* __restrict flagged) {
  using U = typename LaneRounder<T>::U;
  const std::size_t width = kLanes != 0 ? kLanes : lanes;
  const U low_mask = rounder.low_mask, half = rounder.half;
  const int shift = rounder.shift;
  T block_sums[kBlockLanes];
  // Range tracking on the doubled magnitude (the bits shifted left: the sign drops out):
  // the smallest nonzero one (zero wraps to the top under -1) and the largest.
  U lowest[kBlockLanes], highest[kBlockLanes];
  for (std::size_t j = 0; j < width; ++j) {
    block_sums[j] = T(0);
    lowest[j] = ~U{0};
    highest[j] = 0;
  }
  for (std::size_t k = 0; k < count; ++k) {
    const T a_k = a[k];
    const T* __restrict b_row = b + k * stride;
    for (std::size_t j = 0; j < width; ++j) {
      const U bits = std::bit_cast<U>(block_sums[j] + a_k * b_row[j]);
      const U doubled = bits << 1;
      lowest[j] = std::min(lowest[j], static_cast<U>(doubled - 1));
      highest[j] = std::max(highest[j], doubled);
      // Rounding the signed pattern is sign-magnitude rounding: a carry never reaches the
      // sign bit from a finite value, and non-finite ones are flagged.
      block_sums[j] = std::bit_cast<T>(LaneRounder<T>::template round_as<kMode>(bits, low_mask, half, shift));
    }
  }
  const U low_limit = 2 * rounder.min_bits - 1, high_limit = 2 * rounder.overflow_bits;
  U any = 0;
  for (std::size_t j = 0; j < width; ++j) {
    sums[j] = block_sums[j];
    flagged[j] = static_cast<U>(lowest[j] < low_limit) | static_cast<U>(highest[j] >= high_limit);
    any |= flagged[j];
  }
  return any != 0;
}

// The same as accumulate_block for kRows rows of A (a, a + a_stride, ...) and
// kRegisterLanes lanes, with the sums and range trackers held in registers across the k
// loop (GCC vector extensions): the loop body then has no stores, which is what limits
// accumulate_block, and each row of B loaded serves every row of A. Row r's results go to
// sums and flagged + r * out_stride. 4 x 2 vectors: eight independent sums cover the
// add-round latency, and the spills this costs are cheaper than fewer sums. AVX-512's 32
// registers hold them in 64-byte vectors without spills.
#if defined(__AVX512F__)
constexpr std::size_t kVectorBytes = 64;
#else
constexpr std::size_t kVectorBytes = 32;
#endif
constexpr std::size_t kRegisterRows = 4;
constexpr std::size_t kRegisterVectors = 2;
template <class T>
constexpr std::size_t kRegisterLanes = kRegisterVectors * kVectorBytes / sizeof(T);

template <class T, Rounding kMode, std::size_t kRows, bool kWatchLow>
bool accumulate_in_registers(const LaneRounder<T>& rounder, const T* __restrict a, std::size_t a_stride,
                             const T* __restrict b, std::size_t stride, std::size_t count, T* __restrict sums,
                             typename LaneRounder<T>::U* __restrict flagged, std::size_t out_stride) {
  using U = typename LaneRounder<T>::U;
  typedef T Values __attribute__((vector_size(kVectorBytes)));
  typedef U Bits __attribute__((vector_size(kVectorBytes)));
  constexpr std::size_t kPerVector = kVectorBytes / sizeof(T);
  const U low_mask = rounder.low_mask, half = rounder.half, magic_offset = rounder.magic_offset;
  Values vector_sums[kRows][kRegisterVectors];
  Bits lowest[kRows][kRegisterVectors], highest[kRows][kRegisterVectors];
#pragma GCC unroll 4
  for (std::size_t r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kRegisterVectors; ++v) {
      vector_sums[r][v] = Values{};
      lowest[r][v] = Bits{} - 1;
      highest[r][v] = Bits{};
    }
  for (std::size_t k = 0; k < count; ++k) {
    const T* b_row = b + k * stride;
    Values b_values[kRegisterVectors];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kRegisterVectors; ++v)
      std::memcpy(&b_values[v], b_row + v * kPerVector, sizeof(Values));
#pragma GCC unroll 4
    for (std::size_t r = 0; r < kRows; ++r) {
      const Values a_k = a[r * a_stride + k] - Values{};  // a broadcast (x - +0 is x, also for -0)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kRegisterVectors; ++v) {
        const Bits bits = __builtin_bit_cast(Bits, vector_sums[r][v] + a_k * b_values[v]);
        const Bits doubled = bits << 1;
        if constexpr (kWatchLow) {
          const Bits doubled_minus_one = doubled - 1;
          lowest[r][v] = doubled_minus_one < lowest[r][v] ? doubled_minus_one : lowest[r][v];
        }
        highest[r][v] = doubled > highest[r][v] ? doubled : highest[r][v];
        // No helper functions on vectors here: returning one would change the ABI per ISA.
        if constexpr (kMode == Rounding::kNearestEven) {
          // Fewer ops than the integer rounding; the subtraction is exact.
          const Values magic = __builtin_bit_cast(Values, (bits & LaneRounder<T>::kSignExponent) + magic_offset);
          vector_sums[r][v] = (__builtin_bit_cast(Values, bits) + magic) - magic;
        } else if constexpr (kMode == Rounding::kNearestAway) {
          vector_sums[r][v] = __builtin_bit_cast(Values, (bits + half) & ~low_mask);
        } else {
          vector_sums[r][v] = __builtin_bit_cast(Values, bits & ~low_mask);
        }
      }
    }
  }
  const U low_limit = 2 * rounder.min_bits - 1, high_limit = 2 * rounder.overflow_bits;
  U any = 0;
  for (std::size_t r = 0; r < kRows; ++r)
    for (std::size_t v = 0; v < kRegisterVectors; ++v)
      for (std::size_t j = 0; j < kPerVector; ++j) {
        const std::size_t lane = r * out_stride + v * kPerVector + j;
        sums[lane] = vector_sums[r][v][j];
        flagged[lane] =
            static_cast<U>(kWatchLow && lowest[r][v][j] < low_limit) | static_cast<U>(highest[r][v][j] >= high_limit);
        any |= flagged[lane];
      }
  return any != 0;
}

// Every one of `lanes` lanes for kRows rows of A, laid out as in accumulate_in_registers
// (out_stride = lanes).
template <class T, Rounding kMode, std::size_t kRows>
bool accumulate_lanes(const LaneRounder<T>& rounder, const T* a, std::size_t a_stride, const T* b,
                      std::size_t stride, std::size_t count, std::size_t lanes, T* sums,
                      typename LaneRounder<T>::U* flagged) {
  bool any = false;
  std::size_t j = 0;
  const bool in_registers = kMode != Rounding::kNearestEven || rounder.magic_rounds;
  const auto in_registers_kernel = rounder.low_sums_exact ? accumulate_in_registers<T, kMode, kRows, false>
                                                         : accumulate_in_registers<T, kMode, kRows, true>;
  for (; in_registers && j + kRegisterLanes<T> <= lanes; j += kRegisterLanes<T>)
    any |= in_registers_kernel(rounder, a, a_stride, b + j, stride, count, sums + j, flagged + j, lanes);
  for (std::size_t r = 0; r < kRows; ++r) {
    const T* a_row = a + r * a_stride;
    T* row_sums = sums + r * lanes;
    typename LaneRounder<T>::U* row_flagged = flagged + r * lanes;
    std::size_t tail = j;
    for (; tail + kBlockLanes <= lanes; tail += kBlockLanes)
      any |= accumulate_block<T, kMode, kBlockLanes>(rounder, a_row, b + tail, stride, count, 0, row_sums + tail,
                                                     row_flagged + tail);
    if (tail < lanes)
      any |= accumulate_block<T, kMode, 0>(rounder, a_row, b + tail, stride, count, lanes - tail, row_sums + tail,
                                           row_flagged + tail);
  }
  return any;
}

// Whether the inner stage can run in binary16 lanes (see select_gemm_kernel).
bool half_lanes_fit([[maybe_unused]] const Datapath& datapath) {
#if !defined(__AVX512FP16__)
  return false;
#else
  const FormatSpec& spec = datapath.accumulator().spec();
  const bool binary16 = !spec.is_integer && spec.has_sign && spec.exponent_bits == 5 && spec.mantissa_bits == 10 &&
                        spec.bias == 15 && spec.radix == 2 && spec.subnormals == Subnormals::kGradual &&
                        spec.specials == SpecialValues::kIeee && spec.overflow == Overflow::kInfinity &&
                        spec.scale == 1.0;
  if (!binary16 || datapath.inner().rounding != Rounding::kNearestEven) return false;
  for (const Format* format : {&datapath.operand_a(), &datapath.operand_b()}) {
    if (format->total_bits() > 16) return false;
    for (std::uint32_t code = 0; code < format->encoding_count(); ++code) {
      const double value = format->decode(code);
      if (std::isfinite(value) && static_cast<double>(static_cast<_Float16>(value)) != value) return false;
    }
  }
  return true;
#endif
}

#if defined(__AVX512FP16__)

// The chunk sums of kRows rows of A in binary16 lanes, laid out as accumulate_in_registers
// does (as floats): vfmadd231ph rounds a * b + sum once, which is the datapath's rounded
// add, so no range tracking is needed; a lane is flagged when its sum ends Inf or NaN
// (both sticky: the products are finite unless an operand is not). 64 lanes a step, the
// last ones masked; 4 x 2 independent sums cover the FMA latency.
template <std::size_t kRows>
bool accumulate_half(const _Float16* a, std::size_t a_stride, const _Float16* b, std::size_t stride,
                     std::size_t count, std::size_t lanes, float* sums, std::uint32_t* flagged) {
  constexpr std::size_t kPerVector = 32;
  bool any = false;
  for (std::size_t j0 = 0; j0 < lanes; j0 += 2 * kPerVector) {
    __mmask32 masks[2];
    for (std::size_t v = 0; v < 2; ++v) {
      const std::size_t valid = std::min(kPerVector, lanes - std::min(lanes, j0 + v * kPerVector));
      masks[v] = valid == kPerVector ? ~__mmask32{0} : static_cast<__mmask32>((std::uint32_t{1} << valid) - 1);
    }
    __m512h vector_sums[kRows][2];
    for (std::size_t r = 0; r < kRows; ++r) vector_sums[r][0] = vector_sums[r][1] = _mm512_setzero_ph();
    for (std::size_t k = 0; k < count; ++k) {
      const _Float16* b_row = b + k * stride + j0;
      // Masked loads do not touch the lanes past the end.
      const __m512h b0 = _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(masks[0], b_row));
      const __m512h b1 = _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(masks[1], b_row + kPerVector));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < kRows; ++r) {
        const __m512h a_k = _mm512_set1_ph(a[r * a_stride + k]);
        vector_sums[r][0] = _mm512_fmadd_ph(a_k, b0, vector_sums[r][0]);
        vector_sums[r][1] = _mm512_fmadd_ph(a_k, b1, vector_sums[r][1]);
      }
    }
    // Widened to floats 16 at a time; Inf and NaN are the all-ones exponent.
    const __m512i exponent = _mm512_set1_epi16(0x7C00);
    const __m512i one = _mm512_set1_epi32(1);
    for (std::size_t r = 0; r < kRows; ++r)
      for (std::size_t v = 0; v < 2; ++v) {
        const __m512i bits = _mm512_castph_si512(vector_sums[r][v]);
        const __mmask32 special = _mm512_cmpeq_epi16_mask(_mm512_and_si512(bits, exponent), exponent) & masks[v];
        any |= special != 0;
        const std::size_t lane = r * lanes + j0 + v * kPerVector;
        // Zero-masking extracts: GCC 12's plain ones warn of their own undefined pass-through.
        const __m256i halves[2] = {_mm512_maskz_extracti64x4_epi64(0xF, bits, 0),
                                   _mm512_maskz_extracti64x4_epi64(0xF, bits, 1)};
        for (std::size_t h = 0; h < 2; ++h) {
          const auto valid = static_cast<__mmask16>(masks[v] >> (16 * h));
          _mm512_mask_storeu_ps(sums + lane + 16 * h, valid, _mm512_cvtxph_ps(_mm256_castsi256_ph(halves[h])));
          _mm512_mask_storeu_epi32(flagged + lane + 16 * h, valid,
                                   _mm512_maskz_mov_epi32(static_cast<__mmask16>(special >> (16 * h)), one));
        }
      }
  }
  return any;
}
#endif

// sums[j] += addends[j] rounded, except where the sum leaves the normal range: there
// flagged[j] != 0 and sums[j] keeps its old value for the redo. Returns whether any is.
template <class T, Rounding kMode, class A>
bool add_lanes(const LaneRounder<T>& rounder, T* __restrict sums, const A* __restrict addends, std::size_t lanes,
               typename LaneRounder<T>::U* __restrict flagged) {
  using U = typename LaneRounder<T>::U;
  const U low_mask = rounder.low_mask, half = rounder.half;
  const int shift = rounder.shift;
  const U min_minus_one = rounder.min_bits - 1, overflow_bits = rounder.overflow_bits;
  U any = 0;
  for (std::size_t j = 0; j < lanes; ++j) {
    const U bits = std::bit_cast<U>(sums[j] + static_cast<T>(addends[j]));
    const U sign = bits & LaneRounder<T>::kSign;
    const U magnitude = bits ^ sign;
    const U flag = static_cast<U>(magnitude - 1 < min_minus_one) | static_cast<U>(magnitude >= overflow_bits);
    flagged[j] = flag;
    any |= flag;
    const U rounded = LaneRounder<T>::template round_as<kMode>(magnitude, low_mask, half, shift) | sign;
    sums[j] = flag != 0 ? sums[j] : std::bit_cast<T>(rounded);
  }
  return any != 0;
}

template <class T, std::size_t kRows>
bool accumulate_lanes(const LaneRounder<T>& rounder, const T* a, std::size_t a_stride, const T* b,
                      std::size_t stride, std::size_t count, std::size_t lanes, T* sums,
                      typename LaneRounder<T>::U* flagged) {
  switch (rounder.rounding) {
    case Rounding::kNearestEven:
      return accumulate_lanes<T, Rounding::kNearestEven, kRows>(rounder, a, a_stride, b, stride, count, lanes, sums,
                                                                flagged);
    case Rounding::kNearestAway:
      return accumulate_lanes<T, Rounding::kNearestAway, kRows>(rounder, a, a_stride, b, stride, count, lanes, sums,
                                                                flagged);
    default:
      return accumulate_lanes<T, Rounding::kTowardZero, kRows>(rounder, a, a_stride, b, stride, count, lanes, sums,
                                                               flagged);
  }
}

template <class T, class A>
bool add_lanes(const LaneRounder<T>& rounder, T* sums, const A* addends, std::size_t lanes,
               typename LaneRounder<T>::U* flagged) {
  switch (rounder.rounding) {
    case Rounding::kNearestEven: return add_lanes<T, Rounding::kNearestEven>(rounder, sums, addends, lanes, flagged);
    case Rounding::kNearestAway: return add_lanes<T, Rounding::kNearestAway>(rounder, sums, addends, lanes, flagged);
    default: return add_lanes<T, Rounding::kTowardZero>(rounder, sums, addends, lanes, flagged);
  }
}

// ---- Stochastic rounding in double lanes -------------------------------------------------
// Hardware SR adds R random bits just below the accumulator's kept bits and truncates.
// Within the accumulator's normal range its grid is the double's with the low `shift`
// bits cleared, so that is an integer add and a mask on the sum's bits; the sum must carry
// the exact sum's top precision + R bits (exact, or rounded to odd as add_rounded does).

struct StochasticRounder {
  std::uint64_t low_mask;    // the double's bits below the accumulator's last kept bit
  int draw_shift;            // where the R random bits go: just below the kept bits
  std::uint64_t draw_mask;   // R low bits
  std::uint64_t min_bits;    // the smallest normal accumulator magnitude
  std::uint64_t max_bits;    // the largest finite one (beyond it a carry may overflow)
  bool round_to_odd;         // lane sums may be inexact
  std::uint64_t seed;

  StochasticRounder(const Format& accumulator, const StageRounding& stage, const Addends& addends,
                    std::uint64_t random_seed)
      : seed(random_seed) {
    const int shift = std::numeric_limits<double>::digits - 1 - accumulator.spec().mantissa_bits;
    low_mask = (std::uint64_t{1} << shift) - 1;
    draw_shift = shift - stage.stochastic_bits;
    draw_mask = (std::uint64_t{1} << stage.stochastic_bits) - 1;
    min_bits = std::bit_cast<std::uint64_t>(accumulator.min_normal());
    max_bits = std::bit_cast<std::uint64_t>(accumulator.max_finite());
    round_to_odd = !sums_exact<double>(accumulator, addends);
  }
};

// Random words, one 64-bit slot per output element: GCC vector extensions at the widest
// width the build allows.
#if defined(__AVX512F__)
constexpr std::size_t kWordBytes = 64;
#else
constexpr std::size_t kWordBytes = 32;
#endif
typedef std::uint64_t Words __attribute__((vector_size(kWordBytes)));
constexpr std::size_t kWordsPerVector = kWordBytes / sizeof(std::uint64_t);

// 32 x 32 -> 64-bit products of each slot's low halves: one pmuludq, where GCC would emit a
// full 64-bit multiply for (a & low) * (b & low). References, as vector values would
// change the ABI per ISA.
[[gnu::always_inline]] inline void multiply_low_halves(const Words& a, const Words& b, Words& product) {
#if defined(__AVX512F__)
  // The zero-masking form: GCC 12's plain one warns of its own undefined pass-through.
  product = reinterpret_cast<Words>(
      _mm512_maskz_mul_epu32(0xFF, reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b)));
#elif defined(__AVX2__)
  product = reinterpret_cast<Words>(_mm256_mul_epu32(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b)));
#elif defined(__SSE2__)
  __m128i halves_a[2], halves_b[2], halves[2];
  std::memcpy(halves_a, &a, sizeof a);
  std::memcpy(halves_b, &b, sizeof b);
  for (int h = 0; h < 2; ++h) halves[h] = _mm_mul_epu32(halves_a[h], halves_b[h]);
  std::memcpy(&product, halves, sizeof product);
#else
  const Words low = Words{} + 0xFFFFFFFFu;
  product = (a & low) * (b & low);
#endif
}

// CounterRandom(seed, stream).bits(index) for kWordsPerVector streams at once: Philox4x32-10
// (Random123's rounds and constants) with each 32-bit word in a 64-bit slot. The high
// halves of the slots collect garbage that the multiplies ignore and the end masks off.
[[gnu::always_inline]] inline void philox_bits(std::uint64_t seed, std::uint64_t index, const Words& stream,
                                               Words& bits) {
  Words c0 = Words{} + (index & 0xFFFFFFFFu), c1 = Words{} + (index >> 32), c2 = stream, c3 = stream >> 32;
  const Words m0 = Words{} + PHILOX_M4x32_0, m1 = Words{} + PHILOX_M4x32_1;
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += PHILOX_W32_0, k1 += PHILOX_W32_1;
    Words p0, p1;
    multiply_low_halves(m0, c0, p0);
    multiply_low_halves(m1, c2, p1);
    c0 = (p1 >> 32) ^ c1 ^ k0;
    c1 = p1;
    c2 = (p0 >> 32) ^ c3 ^ k1;
    c3 = p0;
  }
  bits = (c1 << 32) | (c0 & 0xFFFFFFFFu);
}

// increments[l] = the random bits stochastic add number `index` of output element
// first_output + l draws (stage_random(...).bits(index)), masked to R bits and shifted to
// just below the kept bits, for l < count rounded up to whole vectors (`increments` has
// room for them).
void stochastic_increments(const StochasticRounder& rounder, AccumulationStage stage, std::uint64_t first_output,
                           std::uint64_t index, std::size_t count, std::uint64_t* increments) {
  Words offsets{};
  for (std::size_t l = 0; l < kWordsPerVector; ++l) offsets[l] = 4 * l;
  // The stream of output element o is o * 4 + stage (stage_random).
  Words stream = offsets + (first_output * 4 + static_cast<std::uint64_t>(stage));
  for (std::size_t l = 0; l < count; l += kWordsPerVector, stream += 4 * kWordsPerVector) {
    Words bits;
    philox_bits(rounder.seed, index, stream, bits);
    bits = (bits & rounder.draw_mask) << rounder.draw_shift;
    std::memcpy(increments + l, &bits, sizeof bits);
  }
}

// The stochastically rounded add of `addend` to `sum` in a double lane: the sum (rounded to
// odd like add_round_to_odd unless kRoundToOdd is false because it is exact), plus the
// random increment, truncated to the accumulator's grid. Sets `outside` where the sum left
// the normal range (the lane must be redone).
template <bool kRoundToOdd>
[[gnu::always_inline]] inline double add_stochastic(const StochasticRounder& rounder, double sum, double addend,
                                                    std::uint64_t increment, std::uint64_t& outside) {
  constexpr std::uint64_t kSign = std::uint64_t{1} << 63;
  const double high = sum + addend;
  std::uint64_t bits = std::bit_cast<std::uint64_t>(high);
  if constexpr (kRoundToOdd) {
    // TwoSum's error; an inexact sum with an even last bit moves one step towards the
    // exact sum (up in magnitude when the error has the sum's sign), landing on odd.
    const double addend_part = high - sum;
    const double error = (sum - (high - addend_part)) + (addend - addend_part);
    const std::uint64_t step = static_cast<std::uint64_t>(error != 0) & ~bits & 1;
    const std::uint64_t towards_zero = (std::bit_cast<std::uint64_t>(error) ^ bits) >> 63;
    bits += step - 2 * (step & towards_zero);
  }
  const std::uint64_t magnitude = bits & ~kSign;
  outside |= static_cast<std::uint64_t>(magnitude - 1 < rounder.min_bits - 1) |
             static_cast<std::uint64_t>(magnitude > rounder.max_bits);
  // A carry out of the kept bits moves to the next binade by itself and never reaches
  // the sign bit from the normal range.
  return std::bit_cast<double>((bits + increment) & ~rounder.low_mask);
}

// Adds of one kSrSteps x kSrLanes tile: its random increments (16 KiB) stay in L1.
constexpr std::size_t kSrLanes = 32;
constexpr std::size_t kSrSteps = 64;
static_assert(kSrLanes % kWordsPerVector == 0);

// The stochastically rounded accumulation of products a[0..count) x b[0..count)[l] for
// l < lanes (<= kSrLanes) of output elements first_output + l, whose first add has random
// index first_index: sums[l] and outside[l] != 0 where a sum left the normal range.
template <bool kRoundToOdd>
bool accumulate_stochastic(const StochasticRounder& rounder, const double* __restrict a, const double* __restrict b,
                           std::size_t stride, std::size_t count, std::size_t lanes, std::uint64_t first_output,
                           std::uint64_t first_index, double* __restrict sums, std::uint64_t* __restrict outside) {
  alignas(kWordBytes) std::uint64_t increments[kSrSteps][kSrLanes];
  double lane_sums[kSrLanes];
  std::uint64_t lane_outside[kSrLanes];
  for (std::size_t l = 0; l < kSrLanes; ++l) lane_sums[l] = 0.0, lane_outside[l] = 0;
  for (std::size_t k0 = 0; k0 < count; k0 += kSrSteps) {
    const std::size_t steps = std::min(kSrSteps, count - k0);
    // The random words first, in a loop of their own: Philox's long dependency chains then
    // overlap across steps instead of stalling the sums.
    for (std::size_t step = 0; step < steps; ++step)
      stochastic_increments(rounder, AccumulationStage::kInner, first_output, first_index + k0 + step, lanes,
                            increments[step]);
    for (std::size_t step = 0; step < steps; ++step) {
      const double a_k = a[k0 + step];
      const double* __restrict b_row = b + (k0 + step) * stride;
      for (std::size_t l = 0; l < lanes; ++l)
        lane_sums[l] =
            add_stochastic<kRoundToOdd>(rounder, lane_sums[l], a_k * b_row[l], increments[step][l], lane_outside[l]);
    }
  }
  std::uint64_t any = 0;
  for (std::size_t l = 0; l < lanes; ++l) {
    sums[l] = lane_sums[l];
    outside[l] = lane_outside[l];
    any |= lane_outside[l];
  }
  return any != 0;
}

// sums[l] += addends[l] stochastically rounded with increments[l], except where the sum
// leaves the normal range: there flagged[l] != 0 and sums[l] keeps its old value.
template <bool kRoundToOdd, class A>
bool add_stochastic_lanes(const StochasticRounder& rounder, double* __restrict sums, const A* __restrict addends,
                          const std::uint64_t* __restrict increments, std::size_t lanes,
                          std::uint64_t* __restrict flagged) {
  std::uint64_t any = 0;
  for (std::size_t l = 0; l < lanes; ++l) {
    std::uint64_t outside = 0;
    const double rounded =
        add_stochastic<kRoundToOdd>(rounder, sums[l], static_cast<double>(addends[l]), increments[l], outside);
    flagged[l] = outside;
    any |= outside;
    sums[l] = outside != 0 ? sums[l] : rounded;
  }
  return any != 0;
}

// The reference, one ChunkedAccumulator per output element of `block`.
void reference_block(const Datapath& datapath, const Decoded<double>& a, const Decoded<double>& b,
                     std::size_t k_total, const Block& block, Matrix& result) {
  const std::size_t n = result.cols;
  for (std::size_t i = block.row_begin; i < block.row_end; ++i)
    for (std::size_t j = block.col_begin; j < block.col_end; ++j) {
      ChunkedAccumulator sum = datapath.make_accumulator(i * n + j);
      for (std::size_t k = 0; k < k_total; ++k) sum.add(a[i * k_total + k] * b[k * n + j]);
      result(i, j) = datapath.finish(sum.value(), i * n + j);
    }
}

// The vectorised GEMM with inner-stage lanes T (the outer stage always in double lanes or
// through the reference, as `kernel` says), one output block at a time.
template <class T>
class LaneGemm {
 public:
  using U = typename LaneRounder<T>::U;

  // The operands are decoded on `threads` threads, once: into binary16 for kHalf lanes,
  // else into T.
  LaneGemm(const Datapath& datapath, const GemmKernel& kernel, const EncodedMatrix& a_codes,
           const EncodedMatrix& b_codes, unsigned threads)
      : datapath_(datapath),
        k_total_(a_codes.cols),
        n_(b_codes.cols),
        inner_rounder_(datapath.accumulator(), datapath.inner().rounding, product_addends(datapath).quantum),
        chunk_(datapath.chunked() ? static_cast<std::size_t>(datapath.config().chunk_length) : k_total_) {
#if defined(__AVX512FP16__)
    if constexpr (std::is_same_v<T, float>) {
      if (kernel.inner == LaneKind::kHalf) {
        half_ = true;
        auto [a_half, b_half] = decode_operands<_Float16>(datapath, a_codes, b_codes, threads);
        a_half_ = std::move(a_half);
        b_half_ = std::move(b_half);
      }
    }
#endif
    if (kernel.inner != LaneKind::kHalf) {
      auto [a_lanes, b_lanes] = decode_operands<T>(datapath, a_codes, b_codes, threads);
      a_lanes_ = std::move(a_lanes);
      b_lanes_ = std::move(b_lanes);
    }
    if (is_stochastic(datapath.inner().rounding))
      inner_stochastic_.emplace(datapath.accumulator(), datapath.inner(), product_addends(datapath),
                                datapath.config().seed);
    const Format& accumulator = datapath.accumulator();
    const Addends chunk_sums{significand_width(accumulator.spec()), quantum(accumulator), accumulator.max_finite()};
    if (kernel.outer == LaneKind::kDouble && is_stochastic(datapath.outer().rounding))
      outer_stochastic_.emplace(accumulator, datapath.outer(), chunk_sums, datapath.config().seed);
    else if (kernel.outer == LaneKind::kDouble)
      outer_rounder_.emplace(accumulator, datapath.outer().rounding, chunk_sums.quantum);
  }

  void compute(const Block& block, Matrix& result) const {
    const Format& accumulator = datapath_.accumulator();
    const std::size_t k_total = k_total_, n = n_, c0 = block.col_begin, width = block.col_end - block.col_begin;
    // Chunk sums stay in T: every accumulator value is an exact T number (select_gemm_kernel).
    std::vector<T> row_sums(kRegisterRows * width);
    std::vector<U> row_flagged(kRegisterRows * width);
    std::vector<std::uint64_t> outer_flagged(width);
    std::vector<std::uint64_t> outer_increments(outer_stochastic_ ? width + kWordsPerVector : 0);
    const std::uint64_t seed = datapath_.config().seed;
    const bool inner_stochastic = is_stochastic(datapath_.inner().rounding);
    // The running (outer) sums live in `result`; chunks are the outer loop so that one
    // chunk of B stays in cache while every row of the block passes over it.
    for (std::size_t k0 = 0, chunk_index = 0; k0 < k_total; k0 += chunk_, ++chunk_index) {
      const std::size_t count = std::min(chunk_, k_total - k0);
      for (std::size_t i0 = block.row_begin, rows = 0; i0 < block.row_end; i0 += rows) {
        rows = block.row_end - i0 >= kRegisterRows ? kRegisterRows : 1;
        const bool any_flagged = accumulate_inner(i0, rows, k0, count, c0, width, row_sums.data(), row_flagged.data());
        for (std::size_t i = i0; i < i0 + rows; ++i) {
          double* outer = result.values.data() + i * n + c0;
          T* sums = row_sums.data() + (i - i0) * width;
          const U* flagged = row_flagged.data() + (i - i0) * width;
          if (any_flagged)
            for (std::size_t lane = 0; lane < width; ++lane) {
              if (flagged[lane] == 0) continue;
              // Redo this lane's chunk through the codec: overflow, Inf, NaN or subnormal sums.
              const std::size_t j = c0 + lane;
              const CounterRandom random = stage_random(seed, i * n + j, AccumulationStage::kInner);
              double sum = 0.0;
              for (std::size_t k = k0; k < k0 + count; ++k) {
                const double product = a_value(i * k_total + k) * b_value(k * n + j);
                sum = add_rounded(accumulator, sum, product, datapath_.inner(),
                                  inner_stochastic ? random.block(k) : std::array<std::uint64_t, 2>{});
              }
              sums[lane] = static_cast<T>(sum);
            }
          if (!datapath_.chunked()) {
            std::copy(sums, sums + width, outer);
          } else if (outer_stochastic_) {
            stochastic_increments(*outer_stochastic_, AccumulationStage::kOuter, i * n + c0, chunk_index, width,
                                  outer_increments.data());
            const auto add = outer_stochastic_->round_to_odd ? add_stochastic_lanes<true, T>
                                                             : add_stochastic_lanes<false, T>;
            if (add(*outer_stochastic_, outer, sums, outer_increments.data(), width, outer_flagged.data()))
              for (std::size_t lane = 0; lane < width; ++lane)
                if (outer_flagged[lane] != 0)
                  outer[lane] = add_rounded(
                      accumulator, outer[lane], sums[lane], datapath_.outer(),
                      stage_random(seed, i * n + c0 + lane, AccumulationStage::kOuter).block(chunk_index));
          } else if (outer_rounder_) {
            if (add_lanes(*outer_rounder_, outer, sums, width, outer_flagged.data()))
              for (std::size_t lane = 0; lane < width; ++lane)
                if (outer_flagged[lane] != 0)
                  outer[lane] = add_rounded(accumulator, outer[lane], sums[lane], datapath_.outer(), {});
          } else {
            const bool stochastic = is_stochastic(datapath_.outer().rounding);
            for (std::size_t lane = 0; lane < width; ++lane) {
              const std::array<std::uint64_t, 2> random =
                  stochastic ? stage_random(seed, i * n + c0 + lane, AccumulationStage::kOuter).block(chunk_index)
                             : std::array<std::uint64_t, 2>{};
              outer[lane] = add_rounded(accumulator, outer[lane], sums[lane], datapath_.outer(), random);
            }
          }
        }
      }
    }
    if (datapath_.config().output)  // else finish() is the identity: skip the call per element
      for (std::size_t i = block.row_begin; i < block.row_end; ++i)
        for (std::size_t j = block.col_begin; j < block.col_end; ++j)
          result(i, j) = datapath_.finish(result(i, j), i * n + j);
  }

 private:
  // Operand values from whichever decoding there is.
  double a_value(std::size_t e) const {
#if defined(__AVX512FP16__)
    if (half_) return static_cast<double>(a_half_[e]);
#endif
    return static_cast<double>(a_lanes_[e]);
  }
  double b_value(std::size_t e) const {
#if defined(__AVX512FP16__)
    if (half_) return static_cast<double>(b_half_[e]);
#endif
    return static_cast<double>(b_lanes_[e]);
  }

  // The chunk sums of rows [i0, i0 + rows) (1 or kRegisterRows) for columns [c0, c0 + width)
  // over adds [k0, k0 + count), laid out as accumulate_lanes does.
  bool accumulate_inner(std::size_t i0, std::size_t rows, std::size_t k0, std::size_t count, std::size_t c0,
                        std::size_t width, T* sums, U* flagged) const {
#if defined(__AVX512FP16__)
    if constexpr (std::is_same_v<T, float>) {
      if (half_) {
        const _Float16* a_half = a_half_.data() + i0 * k_total_ + k0;
        const _Float16* b_half = b_half_.data() + k0 * n_ + c0;
        return rows == kRegisterRows
                   ? accumulate_half<kRegisterRows>(a_half, k_total_, b_half, n_, count, width, sums, flagged)
                   : accumulate_half<1>(a_half, k_total_, b_half, n_, count, width, sums, flagged);
      }
    }
#endif
    const T* a_rows = a_lanes_.data() + i0 * k_total_ + k0;
    const T* b_chunk = b_lanes_.data() + k0 * n_ + c0;
    if constexpr (std::is_same_v<T, double>) {
      if (inner_stochastic_) {
        const auto accumulate =
            inner_stochastic_->round_to_odd ? accumulate_stochastic<true> : accumulate_stochastic<false>;
        bool any = false;
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t l0 = 0; l0 < width; l0 += kSrLanes)
            any |= accumulate(*inner_stochastic_, a_rows + r * k_total_, b_chunk + l0, n_, count,
                              std::min(kSrLanes, width - l0), (i0 + r) * n_ + c0 + l0, k0, sums + r * width + l0,
                              flagged + r * width + l0);
        return any;
      }
    }
    return rows == kRegisterRows ? accumulate_lanes<T, kRegisterRows>(inner_rounder_, a_rows, k_total_, b_chunk, n_,
                                                                      count, width, sums, flagged)
                                 : accumulate_lanes<T, 1>(inner_rounder_, a_rows, k_total_, b_chunk, n_, count, width,
                                                          sums, flagged);
  }

  const Datapath& datapath_;
  std::size_t k_total_, n_;
  Decoded<T> a_lanes_, b_lanes_;
#if defined(__AVX512FP16__)
  bool half_ = false;                       // kHalf inner lanes
  Decoded<_Float16> a_half_, b_half_;       // their operands
#endif
  LaneRounder<T> inner_rounder_;
  std::optional<LaneRounder<double>> outer_rounder_;
  std::optional<StochasticRounder> inner_stochastic_, outer_stochastic_;  // the stages that round stochastically
  std::size_t chunk_;
};

template <class T>
Matrix gemm_lanes(const Datapath& datapath, const GemmKernel& kernel, const EncodedMatrix& a, const EncodedMatrix& b,
                  unsigned threads) {
  const LaneGemm<T> lanes(datapath, kernel, a, b, threads);
  Matrix result(a.rows, b.cols);
  run_blocks(split_output(a.rows, b.cols, threads, kRegisterRows, kRegisterLanes<T>), threads,
             [&](const Block& block) { lanes.compute(block, result); });
  return result;
}

// The cost of a multiply-add in binary16 lanes' units, after their rates in the benchmark
// (about 50, 12, 0.5 and 0.05 G MAC/s a core on an AVX-512 machine).
std::size_t multiply_add_cost(LaneKind inner, Rounding inner_rounding) {
  if (inner == LaneKind::kReference) return 1000;
  if (inner_rounding == Rounding::kStochastic) return 100;
  return inner == LaneKind::kHalf ? 1 : 4;
}

// The cost below which starting threads (tens of microseconds) would cost about as much
// as it saves: some 100 microseconds of work.
constexpr std::size_t kThreadedWork = std::size_t{1} << 22;

}  // namespace

GemmKernel select_gemm_kernel(const Datapath& datapath) {
  GemmKernel kernel;
  const Format& accumulator = datapath.accumulator();
  const Addends products = product_addends(datapath);
  if (half_lanes_fit(datapath))
    kernel.inner = LaneKind::kHalf;
  else if (operands_fit<float>(datapath) && stage_fits<float>(accumulator, datapath.inner(), products))
    kernel.inner = LaneKind::kFloat;
  else if (operands_fit<double>(datapath) && stage_fits<double>(accumulator, datapath.inner(), products))
    kernel.inner = LaneKind::kDouble;
  const Addends chunk_sums{significand_width(accumulator.spec()), quantum(accumulator), accumulator.max_finite()};
  if (datapath.chunked() && stage_fits<double>(accumulator, datapath.outer(), chunk_sums))
    kernel.outer = LaneKind::kDouble;
  return kernel;
}

Matrix gemm_reference(const Datapath& datapath, const EncodedMatrix& a, const EncodedMatrix& b) {
  check_shapes(a, b);
  Matrix result(a.rows, b.cols);
  const auto [a_values, b_values] = decode_operands(datapath, a, b, 1);
  reference_block(datapath, a_values, b_values, a.cols, Block{0, a.rows, 0, b.cols}, result);
  return result;
}

Matrix gemm(const Datapath& datapath, const EncodedMatrix& a, const EncodedMatrix& b, const GemmOptions& options) {
  check_shapes(a, b);
  if (options.threads < 0)
    throw std::invalid_argument("gemm: the thread count must be >= 0 (0: all cores), got " +
                                std::to_string(options.threads));
  const GemmKernel kernel = select_gemm_kernel(datapath);
  const std::size_t m = a.rows, k = a.cols, n = b.cols;
  const bool reference = kernel.inner == LaneKind::kReference || k == 0;
  const std::size_t cost =
      multiply_add_cost(reference ? LaneKind::kReference : kernel.inner, datapath.inner().rounding);
  const std::size_t work = m * n * std::max<std::size_t>(k, 1) * cost;
  const unsigned threads = work < kThreadedWork ? 1
                           : options.threads > 0 ? static_cast<unsigned>(options.threads)
                                                 : std::max(1u, std::thread::hardware_concurrency());
  if (reference) {
    // Named, not a structured binding: clang 14 cannot capture bindings in a lambda.
    const auto operands = decode_operands(datapath, a, b, threads);
    const auto& a_values = operands[0];
    const auto& b_values = operands[1];
    Matrix result(m, n);
    run_blocks(split_output(m, n, threads, 1, 1), threads,
               [&](const Block& block) { reference_block(datapath, a_values, b_values, k, block, result); });
    return result;
  }
  // kHalf lanes hand their chunk sums on as floats.
  if (kernel.inner == LaneKind::kFloat || kernel.inner == LaneKind::kHalf)
    return gemm_lanes<float>(datapath, kernel, a, b, threads);
  return gemm_lanes<double>(datapath, kernel, a, b, threads);
}

}  // namespace lpt::num
