// The reference semantics of low-precision accumulation: every add is rounded to the
// accumulator format as if the sum were computed exactly, and a length-K reduction can be
// split into chunks (Wang et al., NeurIPS 2018, "Training Deep Neural Networks with 8-bit
// Floating Point Numbers", Sec. 3: chunk-based accumulation).
//
// This is the slow, obviously-right path; models/numerics/gemm.* has a vectorised one that
// the tests hold to these results bit for bit.
#pragma once

#include <array>
#include <cstdint>

#include "models/numerics/format.hpp"
#include "models/numerics/random.hpp"
#include "models/numerics/rounding.hpp"

namespace lpt::num {

// a + b rounded to double with round-to-odd: truncate, then set the last bit if anything
// was lost. Rounding this to a format at least two bits narrower than double gives the
// same result as rounding the exact sum, for every deterministic rounding (Boldo and
// Melquiond, IEEE TC 2008, "Emulation of FMA and correctly rounded sums: proved
// algorithms using rounding to odd"), and its top 51 bits are the exact sum's.
double add_round_to_odd(double a, double b);

// How one accumulation stage rounds.
struct StageRounding {
  Rounding rounding = Rounding::kNearestEven;
  int stochastic_bits = kMaxStochasticBits;  // random bits of a kStochastic rounder
};

// round(sum + addend) onto `accumulator`, with the exact sum: the accumulate step every
// reduction here is built from. `random` (one CounterRandom block) feeds stochastic
// rounding: kStochastic uses its first word; kStochasticExact both, rounding the exact sum
// first onto the doubles next to it and then onto the accumulator, each with the
// probability of sr_exact. As the accumulator's values are doubles, the two steps round
// up with the exact sum's own probability (to 2^-64 per step), which round-to-odd, exact
// only to 52 - p bits below a p-bit accumulator's last, cannot give.
double add_rounded(const Format& accumulator, double sum, double addend, const StageRounding& rounding,
                   const std::array<std::uint64_t, 2>& random);

// Where the random words of stochastic accumulation come from: one stream per output
// element and stage, indexed by the add's position, so results do not depend on the order
// in which outputs are computed.
enum class AccumulationStage : std::uint64_t { kInner = 0, kOuter = 1, kOutput = 2 };
inline CounterRandom stage_random(std::uint64_t seed, std::uint64_t output_index, AccumulationStage stage) {
  return CounterRandom(seed, output_index * 4 + static_cast<std::uint64_t>(stage));
}

// A running chunk-based reduction (chunk_length <= 1: one plain running sum).
// add() takes the products in order; value() is the reduction of everything added so far
// (the open chunk merged into the outer sum), which makes prefix sums of one long stream
// the same as separate reductions of each prefix length.
class ChunkedAccumulator {
 public:
  ChunkedAccumulator(const Format& accumulator, int chunk_length, StageRounding inner, StageRounding outer,
                     std::uint64_t seed, std::uint64_t output_index);

  void add(double product);
  double value() const;
  std::uint64_t count() const { return count_; }

 private:
  bool chunked() const { return chunk_length_ > 1; }

  const Format* accumulator_;
  int chunk_length_;
  StageRounding inner_, outer_;
  CounterRandom inner_random_, outer_random_;
  double chunk_sum_ = 0.0;  // the open chunk (or the whole sum when plain)
  double outer_sum_ = 0.0;  // the merged chunks
  std::uint64_t count_ = 0;
};

}  // namespace lpt::num
