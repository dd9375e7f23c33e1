// Number formats described by one plain descriptor, and an exact codec for them.
//
// A floating format's value is (-1)^s * scale * radix^(E - bias) * 1.f for normals and
// (-1)^s * scale * 2^(1 - bias) * 0.f for gradual subnormals; an integer format's value is
// scale * k with k in two's complement. Every corner on which the papers and emulators
// disagree (bias, special codes, subnormals, overflow) is a field, with the papers'/OCP's
// choices as named presets (docs/numerics.md).
//
// Conversions are exact for every double: rounding works on the double's integer
// significand, never through an intermediate float type.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/numerics/rounding.hpp"

namespace lpt::num {

// Which codes are not finite numbers.
enum class SpecialValues {
  kIeee,        // "ieee": all-ones exponent is Inf (mantissa 0) or NaN; +-0
  kFiniteNan,   // "fn": no Inf; only S.1..1 (all ones) is NaN (OCP E4M3FN)
  kFnuz,        // "fnuz": no Inf, no -0; the negative-zero code 1000..0 is the one NaN
  kMergedInfNan,// "merged": S.1..1 is one code meaning Inf-or-NaN (decodes to NaN) (DLFloat)
  kNone,        // "none": every code is a finite number (integers, FP4)
};

// What the lowest exponent field (0) means.
enum class Subnormals {
  kGradual,             // "gradual": IEEE subnormals 0.f * 2^(1-bias)
  kFlush,               // "flush": exponent 0 codes read as zero, results below the smallest
                        //          normal round within {0, smallest normal}
  kLowestBinadeNormal,  // "normal": exponent 0 is an ordinary binade 1.f * 2^(-bias); only the
                        //          all-zero code is zero (DLFloat has no subnormals)
};

// What a finite result beyond the largest finite value becomes.
enum class Overflow {
  kSaturate,  // "saturate": +-max finite
  kInfinity,  // "inf": +-Inf (or the merged Inf/NaN code)
  kNaN,       // "nan": NaN
};

std::string_view special_values_name(SpecialValues v);
std::string_view subnormals_name(Subnormals v);
std::string_view overflow_name(Overflow v);
std::optional<SpecialValues> parse_special_values(std::string_view name);
std::optional<Subnormals> parse_subnormals(std::string_view name);
std::optional<Overflow> parse_overflow(std::string_view name);

struct FormatSpec {
  std::string name;
  bool is_integer = false;   // two's complement integer times scale
  bool has_sign = true;      // a sign bit (unsigned formats clamp negative inputs to 0)
  int exponent_bits = 5;     // 0 for integers
  int mantissa_bits = 2;     // stored fraction bits; for integers the magnitude bits
  int bias = 15;
  int radix = 2;             // 2, or 4 (only with 0 mantissa bits: Sun'20 FP4)
  Subnormals subnormals = Subnormals::kGradual;
  SpecialValues specials = SpecialValues::kIeee;
  Overflow overflow = Overflow::kInfinity;
  Rounding default_rounding = Rounding::kNearestEven;
  double scale = 1.0;        // a power of two, so that scaling stays exact

  int total_bits() const { return (has_sign ? 1 : 0) + exponent_bits + mantissa_bits; }
  bool operator==(const FormatSpec&) const = default;
};

// Throws std::invalid_argument naming the problem if `spec` describes no usable format.
void validate_format(const FormatSpec& spec);

// The named presets of numerics.md, in a stable order.
const std::vector<FormatSpec>& preset_formats();
std::optional<FormatSpec> find_format(std::string_view name);
// Comma-separated preset names, for error messages.
std::string preset_format_names();

enum class ValueClass { kZero, kSubnormal, kNormal, kInfinity, kNaN };
std::string_view value_class_name(ValueClass c);

// What happened in one conversion (besides the result itself).
struct ConversionFlags {
  bool inexact = false;    // the result differs from the input
  bool overflow = false;   // the rounded magnitude exceeded the largest finite value
  bool saturated = false;  // ... and was clamped to +-max finite (also negative -> 0 when unsigned)
  bool underflow = false;  // a nonzero input became zero
  bool invalid = false;    // NaN into a format without NaN (the result is +0); an Inf
                           // into a format without Inf is an overflow instead
};

struct Conversion {
  std::uint32_t bits = 0;
  double value = 0.0;
  ConversionFlags flags;
};

class Format {
 public:
  explicit Format(FormatSpec spec);  // validates; throws std::invalid_argument

  const FormatSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  int total_bits() const { return spec_.total_bits(); }
  std::uint64_t encoding_count() const { return std::uint64_t{1} << total_bits(); }

  // Bits outside total_bits() are ignored.
  double decode(std::uint32_t bits) const;
  ValueClass classify(std::uint32_t bits) const;

  // `random` feeds the stochastic roundings: kStochastic uses its low `sr_bits` bits
  // (1..64), kStochasticExact all 64 (round up iff random/2^64 < distance to the lower
  // neighbour in units of the gap). Deterministic roundings ignore both.
  Conversion convert(double x, Rounding rounding, std::uint64_t random = 0,
                     int sr_bits = kMaxStochasticBits) const;
  std::uint32_t encode(double x, Rounding rounding, std::uint64_t random = 0,
                       int sr_bits = kMaxStochasticBits) const {
    return convert(x, rounding, random, sr_bits).bits;
  }
  // x rounded onto the format, as a double (decode(encode(x))).
  double round(double x, Rounding rounding, std::uint64_t random = 0,
               int sr_bits = kMaxStochasticBits) const {
    return convert(x, rounding, random, sr_bits).value;
  }
  double round(double x) const { return round(x, spec_.default_rounding); }

  double max_finite() const { return max_finite_; }       // largest finite value
  double lowest_finite() const { return lowest_finite_; } // most negative finite value
  double min_positive() const { return min_positive_; }   // smallest value > 0
  double min_normal() const { return min_normal_; }       // smallest positive normal
  bool has_infinity() const;
  bool has_nan() const;

 private:
  // Magnitude codes (the bits without sign, or |k| for integers) are monotone in value;
  // rounding picks between two adjacent ones.
  struct Neighbours;  // defined in format.cpp

  Neighbours neighbours(std::uint64_t significand, int exponent) const;
  bool tie_goes_up(const Neighbours& nb) const;
  bool signed_zero() const;  // whether -0 has its own code
  double magnitude_value(std::uint64_t code) const;
  std::uint32_t pack(bool negative, std::uint64_t magnitude_code) const;
  std::uint32_t nan_bits(bool negative) const;
  std::uint32_t infinity_bits(bool negative) const;
  std::uint64_t max_code(bool negative) const;
  bool exponent_field_all_ones(std::uint32_t magnitude) const;

  double decode_arithmetic(std::uint32_t bits) const;

  FormatSpec spec_;
  // Every code's value, for formats of up to 16 bits; shared so that copies stay cheap.
  std::shared_ptr<const std::vector<double>> decode_table_;
  std::uint32_t sign_mask_ = 0;
  std::uint32_t magnitude_mask_ = 0;
  std::uint64_t max_positive_code_ = 0;
  int scale_exponent_ = 0;
  double max_finite_ = 0, lowest_finite_ = 0, min_positive_ = 0, min_normal_ = 0;
};

}  // namespace lpt::num
