// Overflow-checked integer arithmetic for counts derived from user input
// (tensor elements, MACs, bytes). Input values are bounded one by one, but
// products of several of them are not: every such product goes through these,
// and an overflow is an error rather than undefined behaviour.
#pragma once

#include <cstdint>
#include <stdexcept>

namespace lpt {

// A count that does not fit in 64 bits. Callers that know which input it came
// from turn it into an InputError naming that input.
class CountOverflow : public std::overflow_error {
 public:
  CountOverflow() : std::overflow_error("count exceeds 64-bit integers") {}
};

template <class Int>
Int checked_mul(Int a, Int b) {
  Int result;
  if (__builtin_mul_overflow(a, b, &result)) throw CountOverflow();
  return result;
}

template <class Int>
Int checked_add(Int a, Int b) {
  Int result;
  if (__builtin_add_overflow(a, b, &result)) throw CountOverflow();
  return result;
}

template <class Int, class... More>
Int checked_product(Int first, More... more) {
  Int result = first;
  ((result = checked_mul(result, static_cast<Int>(more))), ...);
  return result;
}

}  // namespace lpt
