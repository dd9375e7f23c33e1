#include "models/numerics/accumulate.hpp"

#include <bit>
#include <cmath>
#include <limits>

namespace lpt::num {

double add_round_to_odd(double a, double b) {
  const double high = a + b;
  if (!std::isfinite(high)) return high;
  // TwoSum (Knuth, TAOCP vol. 2): the exact error of the addition, branch-free.
  const double b_part = high - a;
  const double low = (a - (high - b_part)) + (b - b_part);
  if (low == 0 || (std::bit_cast<std::uint64_t>(high) & 1) != 0) return high;
  // high has an even last bit and lies on one side of the exact sum: its neighbour
  // towards the sum is the odd one, and the sum lies strictly between them.
  return std::nextafter(high, low > 0 ? std::numeric_limits<double>::infinity()
                                      : -std::numeric_limits<double>::infinity());
}

namespace {

// Whether random / 2^64 < magnitude / gap, exactly, for 0 < magnitude <= gap / 2 and a
// power-of-two gap (sr_exact's test, on the fraction of the gap).
bool draw_below(std::uint64_t random, double magnitude, double gap) {
  const double scaled = std::ldexp(magnitude, 64 - std::ilogb(gap));  // exact when >= 1
  if (scaled < 1) return random == 0;  // 0 < fraction * 2^64 < 1 (and maybe subnormal)
  const auto whole = static_cast<std::uint64_t>(scaled);
  return random < whole || (random == whole && scaled > static_cast<double>(whole));
}

}  // namespace

double add_rounded(const Format& accumulator, double sum, double addend, const StageRounding& rounding,
                   const std::array<std::uint64_t, 2>& random) {
  if (rounding.rounding != Rounding::kStochasticExact)
    return accumulator.round(add_round_to_odd(sum, addend), rounding.rounding, random[0], rounding.stochastic_bits);
  double high = sum + addend;
  if (std::isfinite(high)) {
    // TwoSum: the exact sum is high + low, and lies between high and its neighbour
    // towards low, within the accumulator's two neighbours of it.
    const double b_part = high - sum;
    const double low = (sum - (high - b_part)) + (addend - b_part);
    if (low != 0) {
      const double toward = std::nextafter(high, low > 0 ? std::numeric_limits<double>::infinity()
                                                         : -std::numeric_limits<double>::infinity());
      if (draw_below(random[1], std::fabs(low), std::fabs(toward - high))) high = toward;
    }
  }
  return accumulator.round(high, Rounding::kStochasticExact, random[0]);
}

ChunkedAccumulator::ChunkedAccumulator(const Format& accumulator, int chunk_length, StageRounding inner,
                                       StageRounding outer, std::uint64_t seed, std::uint64_t output_index)
    : accumulator_(&accumulator),
      chunk_length_(chunk_length),
      inner_(inner),
      outer_(outer),
      inner_random_(stage_random(seed, output_index, AccumulationStage::kInner)),
      outer_random_(stage_random(seed, output_index, AccumulationStage::kOuter)) {}

void ChunkedAccumulator::add(double product) {
  // Deterministic roundings ignore the random words: skip the Philox draw for them.
  const std::array<std::uint64_t, 2> random =
      is_stochastic(inner_.rounding) ? inner_random_.block(count_) : std::array<std::uint64_t, 2>{};
  chunk_sum_ = add_rounded(*accumulator_, chunk_sum_, product, inner_, random);
  ++count_;
  if (chunked() && count_ % static_cast<std::uint64_t>(chunk_length_) == 0) {
    const std::uint64_t chunk_index = count_ / static_cast<std::uint64_t>(chunk_length_) - 1;
    const std::array<std::uint64_t, 2> outer_random =
        is_stochastic(outer_.rounding) ? outer_random_.block(chunk_index) : std::array<std::uint64_t, 2>{};
    outer_sum_ = add_rounded(*accumulator_, outer_sum_, chunk_sum_, outer_, outer_random);
    chunk_sum_ = 0.0;
  }
}

double ChunkedAccumulator::value() const {
  if (!chunked()) return chunk_sum_;
  if (count_ % static_cast<std::uint64_t>(chunk_length_) == 0) return outer_sum_;
  // The open (last, partial) chunk is merged like a full one.
  const std::uint64_t chunk_index = count_ / static_cast<std::uint64_t>(chunk_length_);
  const std::array<std::uint64_t, 2> outer_random =
      is_stochastic(outer_.rounding) ? outer_random_.block(chunk_index) : std::array<std::uint64_t, 2>{};
  return add_rounded(*accumulator_, outer_sum_, chunk_sum_, outer_, outer_random);
}

}  // namespace lpt::num
