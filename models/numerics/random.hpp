// Counter-based random numbers for stochastic rounding (Philox4x32-10, Salmon et al.,
// SC'11 "Parallel Random Numbers: As Easy as 1, 2, 3", via Debian's Random123).
//
// The draw for an element is a pure function of (seed, stream, element index): no state
// is advanced, so results do not depend on evaluation order or threading, and any tile of
// a tensor can be recomputed alone. Use one stream per tensor (or per tensor and step).
#pragma once

#include <array>
#include <cstdint>

#include <Random123/philox.h>

namespace lpt::num {

class CounterRandom {
 public:
  CounterRandom(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}

  std::uint64_t seed() const { return seed_; }
  std::uint64_t stream() const { return stream_; }

  // 128 random bits for element `index`.
  std::array<std::uint64_t, 2> block(std::uint64_t index) const {
    const r123::Philox4x32::ctr_type counter = {{
        static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
        static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)}};
    const r123::Philox4x32::key_type key = {{
        static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)}};
    const auto out = r123::Philox4x32()(counter, key);
    return {(std::uint64_t{out[1]} << 32) | out[0], (std::uint64_t{out[3]} << 32) | out[2]};
  }

  // 64 random bits for element `index` (the first half of its block).
  std::uint64_t bits(std::uint64_t index) const { return block(index)[0]; }

  // Uniform in [0, 1) on the 2^-53 grid.
  double uniform(std::uint64_t index) const {
    return static_cast<double>(bits(index) >> 11) * 0x1p-53;
  }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
};

}  // namespace lpt::num
