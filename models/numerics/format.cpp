#include "models/numerics/format.hpp"

#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace lpt::num {

__extension__ typedef unsigned __int128 Uint128;

namespace {

template <class Enum>
struct NamedValue {
  std::string_view name;
  Enum value;
};

constexpr NamedValue<SpecialValues> kSpecialNames[] = {
    {"ieee", SpecialValues::kIeee},
    {"fn", SpecialValues::kFiniteNan},
    {"fnuz", SpecialValues::kFnuz},
    {"merged", SpecialValues::kMergedInfNan},
    {"none", SpecialValues::kNone},
};
constexpr NamedValue<Subnormals> kSubnormalNames[] = {
    {"gradual", Subnormals::kGradual},
    {"flush", Subnormals::kFlush},
    {"normal", Subnormals::kLowestBinadeNormal},
};
constexpr NamedValue<Overflow> kOverflowNames[] = {
    {"saturate", Overflow::kSaturate},
    {"inf", Overflow::kInfinity},
    {"nan", Overflow::kNaN},
};

template <class Enum, std::size_t N>
std::string_view name_of(const NamedValue<Enum> (&table)[N], Enum value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return "?";
}

template <class Enum, std::size_t N>
std::optional<Enum> parse_named(const NamedValue<Enum> (&table)[N], std::string_view name) {
  for (const auto& entry : table)
    if (entry.name == name) return entry.value;
  return std::nullopt;
}

// Exponent e with scale == 2^e, or nullopt when scale is not a finite power of two.
std::optional<int> power_of_two_exponent(double scale) {
  if (!std::isfinite(scale) || scale <= 0) return std::nullopt;
  int exponent = 0;
  const double fraction = std::frexp(scale, &exponent);
  if (fraction != 0.5) return std::nullopt;
  return exponent - 1;
}

// floor(num * 2^num_exp / den * 2^128) and whether bits remain below that, for
// num * 2^num_exp < den (a fraction in [0, 1)). den is at most 2^54.
struct Fixed128 {
  Uint128 value;
  bool sticky;
};

Fixed128 fraction_128(std::uint64_t num, int num_exp, std::uint64_t den) {
  if (num == 0) return {0, false};
  const int shift = num_exp + 128;
  if (den == 1) {  // the common case: the gap between neighbours is a power of two
    if (shift >= 0) return {Uint128{num} << shift, false};
    if (shift <= -64) return {0, true};
    return {Uint128{num >> -shift}, (num & ((std::uint64_t{1} << -shift) - 1)) != 0};
  }
  if (shift <= -64) return {0, true};
  if (shift < 0) {
    const Uint128 scaled = Uint128{num} << (shift + 64);
    const Uint128 quotient = scaled / den;
    return {quotient >> 64, (scaled % den) != 0 || static_cast<std::uint64_t>(quotient) != 0};
  }
  if (shift <= 64) {
    const Uint128 scaled = Uint128{num} << shift;
    return {scaled / den, (scaled % den) != 0};
  }
  // Two-step long division: the quotient has up to 128 bits.
  const Uint128 high = Uint128{num} << (shift - 64);
  const Uint128 low = (high % den) << 64;
  return {((high / den) << 64) | (low / den), (low % den) != 0};
}

// Splits a finite nonzero |x| into significand in [2^52, 2^53) and exponent.
void decompose(double magnitude, std::uint64_t& significand, int& exponent) {
  const auto bits = std::bit_cast<std::uint64_t>(magnitude);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  significand = bits & ((std::uint64_t{1} << 52) - 1);
  if (biased != 0) {
    significand |= std::uint64_t{1} << 52;
    exponent = biased - 1075;
  } else {  // double subnormal: normalise
    const int shift = 52 - (std::bit_width(significand) - 1);
    significand <<= shift;
    exponent = -1074 - shift;
  }
}

// 2^exponent, exactly; by assembling the bits for normal doubles, as ldexp is a library call.
double power_of_two(int exponent) {
  if (exponent < -1022 || exponent > 1023) return std::ldexp(1.0, exponent);
  return std::bit_cast<double>(static_cast<std::uint64_t>(exponent + 1023) << 52);
}

int floor_div2(int value) { return value >= 0 ? value / 2 : -((-value + 1) / 2); }

}  // namespace

std::string_view special_values_name(SpecialValues v) { return name_of(kSpecialNames, v); }
std::string_view subnormals_name(Subnormals v) { return name_of(kSubnormalNames, v); }
std::string_view overflow_name(Overflow v) { return name_of(kOverflowNames, v); }
std::optional<SpecialValues> parse_special_values(std::string_view name) {
  return parse_named(kSpecialNames, name);
}
std::optional<Subnormals> parse_subnormals(std::string_view name) {
  return parse_named(kSubnormalNames, name);
}
std::optional<Overflow> parse_overflow(std::string_view name) {
  return parse_named(kOverflowNames, name);
}

std::string_view value_class_name(ValueClass c) {
  switch (c) {
    case ValueClass::kZero: return "zero";
    case ValueClass::kSubnormal: return "subnormal";
    case ValueClass::kNormal: return "normal";
    case ValueClass::kInfinity: return "inf";
    case ValueClass::kNaN: return "nan";
  }
  return "?";
}

void validate_format(const FormatSpec& spec) {
  const auto fail = [&](const std::string& message) {
    throw std::invalid_argument("format \"" + spec.name + "\": " + message);
  };
  if (spec.name.empty()) fail("the name must not be empty");
  const auto scale_exponent = power_of_two_exponent(spec.scale);
  if (!scale_exponent)
    fail("scale must be a positive power of two (so conversion stays exact), got " +
         std::to_string(spec.scale));
  if (spec.mantissa_bits < 0 || spec.exponent_bits < 0) fail("bit counts must be >= 0");
  if (spec.total_bits() > 32) fail("at most 32 bits in total, got " + std::to_string(spec.total_bits()));
  if (spec.total_bits() < 2) fail("at least 2 bits in total");

  if (spec.is_integer) {
    if (spec.exponent_bits != 0) fail("an integer format has no exponent bits");
    if (spec.mantissa_bits < 1) fail("an integer format needs at least one magnitude bit");
    if (spec.radix != 2) fail("an integer format has radix 2");
    if (spec.specials != SpecialValues::kNone) fail("an integer format has no special values (specials \"none\")");
    if (spec.overflow != Overflow::kSaturate) fail("an integer format can only saturate on overflow");
    if (spec.mantissa_bits + *scale_exponent > 1023 || *scale_exponent < -1074)
      fail("scale puts the format outside the range of double");
    return;
  }

  if (spec.exponent_bits < 1) fail("a floating format needs at least 1 exponent bit");
  if (spec.radix != 2 && spec.radix != 4) fail("radix must be 2 or 4, got " + std::to_string(spec.radix));
  if (spec.radix == 4 && spec.mantissa_bits != 0)
    fail("radix 4 is only defined with 0 mantissa bits (Sun et al. 2020's 1-3-0 FP4)");
  if (spec.bias < -100000 || spec.bias > 100000) fail("bias out of range");
  if (spec.specials == SpecialValues::kIeee && spec.mantissa_bits < 1)
    fail("IEEE specials need a mantissa bit to tell NaN from Inf");
  if (spec.specials == SpecialValues::kFnuz && !spec.has_sign)
    fail("FNUZ specials use the negative-zero code, which needs a sign bit");
  const bool has_inf = spec.specials == SpecialValues::kIeee || spec.specials == SpecialValues::kMergedInfNan;
  const bool has_nan = spec.specials != SpecialValues::kNone;
  if (spec.overflow == Overflow::kInfinity && !has_inf)
    fail("overflow \"inf\" needs a format with an Inf code (specials ieee or merged)");
  if (spec.overflow == Overflow::kNaN && !has_nan) fail("overflow \"nan\" needs a format with a NaN code");

  const int magnitude_bits = spec.exponent_bits + spec.mantissa_bits;
  std::int64_t max_code = (std::int64_t{1} << magnitude_bits) - 1;
  if (spec.specials == SpecialValues::kIeee)
    max_code = (((std::int64_t{1} << spec.exponent_bits) - 1) << spec.mantissa_bits) - 1;
  else if (spec.specials == SpecialValues::kFiniteNan || spec.specials == SpecialValues::kMergedInfNan)
    max_code -= 1;
  if (max_code < 1) fail("no positive finite value is left after the special codes");

  // Every value, and the step just above the largest, must be a normal or subnormal double.
  const std::int64_t top_field = max_code >> spec.mantissa_bits;
  std::int64_t lowest_exponent, highest_exponent;  // of the smallest quantum / one past the top
  if (spec.radix == 4) {
    lowest_exponent = 2 * (1 - std::int64_t{spec.bias});
    highest_exponent = 2 * (top_field + 1 - spec.bias);
  } else {
    const std::int64_t lowest_binade =
        spec.subnormals == Subnormals::kLowestBinadeNormal ? -spec.bias : 1 - spec.bias;
    lowest_exponent = lowest_binade - spec.mantissa_bits;
    highest_exponent = top_field - spec.bias + 1;
  }
  if (lowest_exponent + *scale_exponent < -1074 || highest_exponent + *scale_exponent > 1023)
    fail("bias " + std::to_string(spec.bias) + " and scale put the format outside the range of double");
}

namespace {

FormatSpec floating(std::string name, int e, int m, int bias, SpecialValues specials,
                    Overflow overflow, Rounding rounding = Rounding::kNearestEven,
                    Subnormals subnormals = Subnormals::kGradual) {
  FormatSpec spec;
  spec.name = std::move(name);
  spec.exponent_bits = e;
  spec.mantissa_bits = m;
  spec.bias = bias;
  spec.specials = specials;
  spec.overflow = overflow;
  spec.default_rounding = rounding;
  spec.subnormals = subnormals;
  return spec;
}

FormatSpec integer(std::string name, int bits) {
  FormatSpec spec;
  spec.name = std::move(name);
  spec.is_integer = true;
  spec.exponent_bits = 0;
  spec.mantissa_bits = bits - 1;
  spec.bias = 0;
  spec.specials = SpecialValues::kNone;
  spec.overflow = Overflow::kSaturate;
  return spec;
}

std::vector<FormatSpec> make_presets() {
  using enum SpecialValues;
  std::vector<FormatSpec> presets = {
      // OCP OFP8 v1.0 E5M2 and E4M3 (E4M3FN): non-saturating conversions by default.
      floating("fp8_e5m2", 5, 2, 15, kIeee, Overflow::kInfinity),
      floating("fp8_e4m3", 4, 3, 7, kFiniteNan, Overflow::kNaN),
      // HFP8 (Sun et al. NeurIPS 2019) forward 1-4-3 with bias 11; special values as XLA's
      // E4M3B11FNUZ reads it (no Inf, no -0, NaN = 0x80).
      floating("hfp8_e4m3", 4, 3, 11, kFnuz, Overflow::kNaN),
      floating("hfp8_e5m2", 5, 2, 15, kIeee, Overflow::kInfinity),
      // Wang et al. NeurIPS 2018 1-5-2: special values are not published; we assume IEEE
      // codes with saturation, as QPyTorch's emulation of the paper does. [A]
      floating("ibm_fp8", 5, 2, 15, kIeee, Overflow::kSaturate),
      // IBM DLFloat (Agrawal et al. ARITH 2019), the 1-6-9 accumulator/weight format of
      // Wang'18: no subnormals, one Inf/NaN code, ties away from zero; bias 31 assumed.
      floating("dlfloat16", 6, 9, 31, kMergedInfNan, Overflow::kInfinity, Rounding::kNearestAway,
               Subnormals::kLowestBinadeNormal),
      floating("fp16", 5, 10, 15, kIeee, Overflow::kInfinity),
      floating("bf16", 8, 7, 127, kIeee, Overflow::kInfinity),
      floating("fp32", 8, 23, 127, kIeee, Overflow::kInfinity),
      // Sun et al. NeurIPS 2020 radix-4 FP4 for gradients: magnitudes 4^-6..4^0 times a
      // per-tensor scale, code 0 is zero, saturating. Exact value set assumed. [A]
      [] {
        FormatSpec spec = floating("fp4_radix4", 3, 0, 7, kNone, Overflow::kSaturate,
                                   Rounding::kNearestEven, Subnormals::kFlush);
        spec.radix = 4;
        return spec;
      }(),
      integer("int2", 2),
      integer("int4", 4),
      integer("int8", 8),
  };
  for (const auto& spec : presets) validate_format(spec);
  return presets;
}

}  // namespace

const std::vector<FormatSpec>& preset_formats() {
  static const std::vector<FormatSpec> presets = make_presets();
  return presets;
}

std::optional<FormatSpec> find_format(std::string_view name) {
  for (const auto& spec : preset_formats())
    if (spec.name == name) return spec;
  return std::nullopt;
}

std::string preset_format_names() {
  std::string names;
  for (const auto& spec : preset_formats()) names += (names.empty() ? "" : ", ") + spec.name;
  return names;
}

// ---------------------------------------------------------------------------------------

struct Format::Neighbours {
  std::uint64_t lower_code;
  std::uint64_t upper_code;
  Fixed128 fraction;  // (|x| - lower) / (upper - lower)
};

Format::Format(FormatSpec spec) : spec_(std::move(spec)) {
  validate_format(spec_);
  scale_exponent_ = *power_of_two_exponent(spec_.scale);
  const int magnitude_bits = spec_.exponent_bits + spec_.mantissa_bits;
  magnitude_mask_ = static_cast<std::uint32_t>((std::uint64_t{1} << magnitude_bits) - 1);
  sign_mask_ = spec_.has_sign ? std::uint32_t{1} << magnitude_bits : 0;
  const std::uint64_t all_codes = std::uint64_t{magnitude_mask_};
  if (spec_.is_integer) {
    max_positive_code_ = all_codes;
  } else {
    switch (spec_.specials) {
      case SpecialValues::kIeee:
        max_positive_code_ = ((all_codes >> spec_.mantissa_bits) << spec_.mantissa_bits) - 1;
        break;
      case SpecialValues::kFiniteNan:
      case SpecialValues::kMergedInfNan: max_positive_code_ = all_codes - 1; break;
      case SpecialValues::kFnuz:
      case SpecialValues::kNone: max_positive_code_ = all_codes; break;
    }
  }
  max_finite_ = magnitude_value(max_positive_code_);
  lowest_finite_ = spec_.has_sign ? -magnitude_value(max_code(true)) : 0.0;
  const bool zero_field_is_zero = !spec_.is_integer && spec_.subnormals == Subnormals::kFlush;
  const std::uint64_t first_normal_code =
      spec_.is_integer || spec_.subnormals == Subnormals::kLowestBinadeNormal
          ? 1
          : std::uint64_t{1} << spec_.mantissa_bits;
  min_positive_ = magnitude_value(zero_field_is_zero ? first_normal_code : 1);
  min_normal_ = magnitude_value(first_normal_code);
  // A table makes decoding (and so every conversion's result) a load.
  if (spec_.total_bits() <= 16) {
    std::vector<double> table(std::size_t{1} << spec_.total_bits());
    for (std::uint32_t bits = 0; bits < table.size(); ++bits) table[bits] = decode_arithmetic(bits);
    decode_table_ = std::make_shared<const std::vector<double>>(std::move(table));
  }
}

bool Format::has_infinity() const {
  return !spec_.is_integer &&
         (spec_.specials == SpecialValues::kIeee || spec_.specials == SpecialValues::kMergedInfNan);
}

bool Format::signed_zero() const {
  return spec_.has_sign && !spec_.is_integer && spec_.specials != SpecialValues::kFnuz;
}

bool Format::has_nan() const { return !spec_.is_integer && spec_.specials != SpecialValues::kNone; }

std::uint64_t Format::max_code(bool negative) const {
  // Two's complement reaches one step further on the negative side.
  if (spec_.is_integer && spec_.has_sign && negative) return max_positive_code_ + 1;
  return max_positive_code_;
}

double Format::magnitude_value(std::uint64_t code) const {
  if (spec_.is_integer) return static_cast<double>(code) * power_of_two(scale_exponent_);
  const int m = spec_.mantissa_bits;
  const std::int64_t field = static_cast<std::int64_t>(code >> m);
  const std::uint64_t mantissa = code & ((std::uint64_t{1} << m) - 1);
  const std::uint64_t hidden = std::uint64_t{1} << m;
  if (spec_.radix == 4) {
    if (field == 0) return 0.0;
    return power_of_two(static_cast<int>(2 * (field - spec_.bias)) + scale_exponent_);
  }
  if (field == 0) {
    switch (spec_.subnormals) {
      case Subnormals::kGradual:
        return static_cast<double>(mantissa) * power_of_two(1 - spec_.bias - m + scale_exponent_);
      case Subnormals::kFlush: return 0.0;
      case Subnormals::kLowestBinadeNormal:
        if (mantissa == 0) return 0.0;
        return static_cast<double>(hidden + mantissa) * power_of_two(-spec_.bias - m + scale_exponent_);
    }
  }
  return static_cast<double>(hidden + mantissa) *
         power_of_two(static_cast<int>(field - spec_.bias - m) + scale_exponent_);
}

bool Format::exponent_field_all_ones(std::uint32_t magnitude) const {
  return (magnitude >> spec_.mantissa_bits) == (magnitude_mask_ >> spec_.mantissa_bits);
}

double Format::decode(std::uint32_t bits) const {
  bits &= sign_mask_ | magnitude_mask_;
  return decode_table_ ? (*decode_table_)[bits] : decode_arithmetic(bits);
}

double Format::decode_arithmetic(std::uint32_t bits) const {
  if (spec_.is_integer) {
    std::int64_t k = bits;
    if (spec_.has_sign && (bits & sign_mask_)) k -= std::int64_t{sign_mask_} << 1;
    return static_cast<double>(k) * power_of_two(scale_exponent_);
  }
  const bool negative = (bits & sign_mask_) != 0;
  const std::uint32_t magnitude = bits & magnitude_mask_;
  switch (classify(bits)) {
    case ValueClass::kNaN: return std::numeric_limits<double>::quiet_NaN();
    case ValueClass::kInfinity:
      return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    default: break;
  }
  const double value = magnitude_value(magnitude);
  return negative ? -value : value;
}

ValueClass Format::classify(std::uint32_t bits) const {
  bits &= sign_mask_ | magnitude_mask_;
  const std::uint32_t magnitude = bits & magnitude_mask_;
  if (spec_.is_integer) return bits == 0 ? ValueClass::kZero : ValueClass::kNormal;
  switch (spec_.specials) {
    case SpecialValues::kIeee:
      if (exponent_field_all_ones(magnitude)) {
        const bool mantissa_zero = (magnitude & ((1u << spec_.mantissa_bits) - 1)) == 0;
        return mantissa_zero ? ValueClass::kInfinity : ValueClass::kNaN;
      }
      break;
    case SpecialValues::kFiniteNan:
    case SpecialValues::kMergedInfNan:
      if (magnitude == magnitude_mask_) return ValueClass::kNaN;
      break;
    case SpecialValues::kFnuz:
      if (bits == sign_mask_) return ValueClass::kNaN;
      break;
    case SpecialValues::kNone: break;
  }
  if (magnitude == 0) return ValueClass::kZero;
  if ((magnitude >> spec_.mantissa_bits) != 0 || spec_.radix == 4) return ValueClass::kNormal;
  switch (spec_.subnormals) {
    case Subnormals::kGradual: return ValueClass::kSubnormal;
    case Subnormals::kFlush: return ValueClass::kZero;
    case Subnormals::kLowestBinadeNormal: return ValueClass::kNormal;
  }
  return ValueClass::kNormal;
}

std::uint32_t Format::nan_bits(bool negative) const {
  const std::uint32_t sign = negative ? sign_mask_ : 0;
  switch (spec_.specials) {
    case SpecialValues::kIeee: {
      const std::uint32_t exponent_ones = (magnitude_mask_ >> spec_.mantissa_bits) << spec_.mantissa_bits;
      return sign | exponent_ones | (1u << (spec_.mantissa_bits - 1));  // quiet NaN
    }
    case SpecialValues::kFnuz: return sign_mask_;
    default: return sign | magnitude_mask_;
  }
}

std::uint32_t Format::infinity_bits(bool negative) const {
  const std::uint32_t sign = negative ? sign_mask_ : 0;
  if (spec_.specials == SpecialValues::kIeee)
    return sign | ((magnitude_mask_ >> spec_.mantissa_bits) << spec_.mantissa_bits);
  return sign | magnitude_mask_;  // the merged Inf/NaN code
}

std::uint32_t Format::pack(bool negative, std::uint64_t magnitude_code) const {
  if (spec_.is_integer) {
    const std::int64_t k = negative ? -static_cast<std::int64_t>(magnitude_code)
                                    : static_cast<std::int64_t>(magnitude_code);
    return static_cast<std::uint32_t>(k) & (sign_mask_ | magnitude_mask_);
  }
  // FNUZ has no -0: its code is the NaN.
  if (magnitude_code == 0 && spec_.specials == SpecialValues::kFnuz) return 0;
  return (negative ? sign_mask_ : 0) | static_cast<std::uint32_t>(magnitude_code);
}

// The two adjacent magnitude codes around |x| = significand * 2^exponent (already divided
// by the scale), and where |x| lies between them. Codes may run past the largest finite
// one: the caller treats that as overflow.
Format::Neighbours Format::neighbours(std::uint64_t significand, int exponent) const {
  const int log2_floor = exponent + 52;  // significand is normalised to [2^52, 2^53)
  const int m = spec_.mantissa_bits;
  if (spec_.is_integer) {
    if (log2_floor >= 40) {  // far beyond any 32-bit integer: plainly an overflow
      return {max_code(true) + 1, max_code(true) + 2, {0, false}};
    }
    if (exponent >= 0) return {significand << exponent, (significand << exponent) + 1, {0, false}};
    const int discarded = -exponent;
    const std::uint64_t kept = discarded >= 64 ? 0 : significand >> discarded;
    const std::uint64_t remainder = discarded >= 64 ? significand : significand - (kept << discarded);
    return {kept, kept + 1, fraction_128(remainder, -discarded, 1)};
  }
  if (spec_.radix == 4) {
    const int lowest_power = 1 - spec_.bias;  // 4^lowest_power is the smallest nonzero value
    const int power = floor_div2(log2_floor);
    if (power < lowest_power) return {0, 1, fraction_128(significand, exponent - 2 * lowest_power, 1)};
    // (|x| - 4^k) / (4^(k+1) - 4^k) with 4^k = 2^(2k) and 2k > exponent.
    const std::uint64_t offset = significand - (std::uint64_t{1} << (2 * power - exponent));
    return {static_cast<std::uint64_t>(power + spec_.bias),
            static_cast<std::uint64_t>(power + spec_.bias) + 1,
            fraction_128(offset, exponent - 2 * power, 3)};
  }
  const int lowest_binade = spec_.subnormals == Subnormals::kLowestBinadeNormal ? -spec_.bias : 1 - spec_.bias;
  if (spec_.subnormals == Subnormals::kFlush && m > 0 && log2_floor < lowest_binade) {
    // Between 0 and the smallest normal, 2^lowest_binade.
    return {0, std::uint64_t{1} << m, fraction_128(significand, exponent - lowest_binade, 1)};
  }
  if (spec_.subnormals == Subnormals::kLowestBinadeNormal) {
    // Between 0 and the smallest nonzero value (2^m + 1) * 2^(lowest_binade - m).
    const std::uint64_t smallest = (std::uint64_t{1} << m) + 1;
    const int quantum = lowest_binade - m;
    const bool below_smallest =
        log2_floor < lowest_binade ||
        (log2_floor == lowest_binade && significand < (smallest << (52 - m)));
    if (below_smallest) return {0, 1, fraction_128(significand, exponent - quantum, smallest)};
  }
  const int binade = log2_floor > lowest_binade ? log2_floor : lowest_binade;
  const int quantum = binade - m;
  // Code of (kept * 2^quantum): the exponent field counts binades from the bias, and the
  // hidden bit folds into it (a subnormal kept < 2^m lands in field 0).
  const auto code_of = [&](std::uint64_t kept) {
    return (static_cast<std::uint64_t>(binade + spec_.bias) << m) + kept - (std::uint64_t{1} << m);
  };
  if (exponent >= quantum) {
    const std::uint64_t kept = significand << (exponent - quantum);
    return {code_of(kept), code_of(kept) + 1, {0, false}};
  }
  const int discarded = quantum - exponent;
  const std::uint64_t kept = discarded >= 64 ? 0 : significand >> discarded;
  const std::uint64_t remainder = discarded >= 64 ? significand : significand - (kept << discarded);
  return {code_of(kept), code_of(kept) + 1, fraction_128(remainder, -discarded, 1)};
}

// Ties to the neighbour with an even code. Without mantissa bits every nonzero significand
// is odd, and IEEE 754-2019 (like MPFR at precision 1) then rounds ties away from zero;
// zero stays the even choice.
bool Format::tie_goes_up(const Neighbours& nb) const {
  if (!spec_.is_integer && spec_.mantissa_bits == 0) return nb.lower_code != 0;
  return (nb.lower_code & 1) != 0;
}

Conversion Format::convert(double x, Rounding rounding, std::uint64_t random, int sr_bits) const {
  if (rounding == Rounding::kStochastic && (sr_bits < 1 || sr_bits > kMaxStochasticBits))
    throw std::invalid_argument("stochastic rounding needs 1.." + std::to_string(kMaxStochasticBits) +
                                " random bits, got " + std::to_string(sr_bits));
  Conversion result;
  auto finish = [&](std::uint32_t bits) {
    result.bits = bits;
    result.value = decode(bits);
    return result;
  };
  const bool negative = std::signbit(x);
  if (std::isnan(x)) {
    if (has_nan()) return finish(nan_bits(negative));
    result.flags.invalid = result.flags.inexact = true;
    return finish(pack(false, 0));
  }
  if (negative && !spec_.has_sign && x != 0) {  // clamp to the bottom of an unsigned range
    result.flags.inexact = result.flags.overflow = result.flags.saturated = true;
    return finish(pack(false, 0));
  }
  if (std::isinf(x)) {
    if (has_infinity()) return finish(infinity_bits(negative));
    result.flags.inexact = result.flags.overflow = true;
    if (spec_.overflow == Overflow::kNaN) return finish(nan_bits(negative));
    result.flags.saturated = true;
    return finish(pack(negative, max_code(negative)));
  }
  if (x == 0) return finish(pack(negative, 0));

  std::uint64_t significand;
  int exponent;
  decompose(std::fabs(x), significand, exponent);
  exponent -= scale_exponent_;
  const Neighbours nb = neighbours(significand, exponent);
  const Fixed128& fraction = nb.fraction;
  const bool exact = fraction.value == 0 && !fraction.sticky;

  bool round_up = false;
  if (!exact) {
    const Uint128 half = Uint128{1} << 127;
    switch (rounding) {
      case Rounding::kNearestEven:
        round_up = fraction.value > half || (fraction.value == half && (fraction.sticky || tie_goes_up(nb)));
        break;
      case Rounding::kNearestAway: round_up = fraction.value >= half; break;
      case Rounding::kTowardZero: break;
      case Rounding::kStochastic: {
        // Hardware: add R random bits to the top R discarded bits; a carry rounds up.
        const std::uint64_t top = static_cast<std::uint64_t>(fraction.value >> (128 - sr_bits));
        const std::uint64_t draw = sr_bits == 64 ? random : random & ((std::uint64_t{1} << sr_bits) - 1);
        const std::uint64_t room = sr_bits == 64 ? ~top + 1 : (std::uint64_t{1} << sr_bits) - top;
        round_up = top != 0 && draw >= room;
        break;
      }
      case Rounding::kStochasticExact: {
        // Up iff random / 2^64 < fraction, compared exactly.
        const std::uint64_t top = static_cast<std::uint64_t>(fraction.value >> 64);
        const bool below_top_nonzero = static_cast<std::uint64_t>(fraction.value) != 0 || fraction.sticky;
        round_up = random < top || (random == top && below_top_nonzero);
        break;
      }
    }
  }
  std::uint64_t code = round_up ? nb.upper_code : nb.lower_code;
  result.flags.inexact = !exact;
  if (code > max_code(negative)) {
    result.flags.overflow = true;
    // IEEE 754: rounding toward zero never turns a finite number into an infinity.
    if (spec_.overflow == Overflow::kSaturate || rounding == Rounding::kTowardZero) {
      result.flags.saturated = result.flags.inexact = true;
      code = max_code(negative);
    } else {
      result.flags.inexact = true;
      return finish(spec_.overflow == Overflow::kNaN ? nan_bits(negative) : infinity_bits(negative));
    }
  }
  if (code == 0) result.flags.underflow = true;
  result.bits = pack(negative, code);
  if (decode_table_) {
    result.value = (*decode_table_)[result.bits];
  } else {  // a finite result: no special codes to look for
    const double magnitude = magnitude_value(code);
    result.value = negative && !(code == 0 && !signed_zero()) ? -magnitude : magnitude;
  }
  return result;
}

}  // namespace lpt::num
