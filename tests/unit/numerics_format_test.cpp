// Exhaustive and reference checks of the format codec (models/numerics/format.*).
//
// Values are checked against references that do not share the codec's code path: a
// closed formula per preset written from the tables in numerics.md, the CPU's own float
// conversions, and MPFR (correctly rounded, with an emulated exponent range) for rounding.
#include <gtest/gtest.h>
#include <mpfr.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "models/numerics/format.hpp"

namespace lpt::num {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Format preset(std::string_view name) {
  const auto spec = find_format(name);
  if (!spec) throw std::runtime_error("no preset " + std::string(name));
  return Format(*spec);
}

// --- independent value references, from the format tables --------------------------------

// value of an IEEE-style binary code: s | e exponent bits | m mantissa bits.
double ieee_like_value(std::uint32_t bits, int e, int m, int bias) {
  const std::uint32_t mantissa = bits & ((1u << m) - 1);
  const std::uint32_t field = (bits >> m) & ((1u << e) - 1);
  const double sign = (bits >> (e + m)) & 1 ? -1.0 : 1.0;
  if (field == 0) return sign * mantissa * std::pow(2.0, 1 - bias - m);
  return sign * (1.0 + mantissa / std::pow(2.0, m)) * std::pow(2.0, static_cast<int>(field) - bias);
}

struct ReferenceCode {
  bool nan = false;
  bool inf = false;
  double value = 0;
};

// What numerics.md says each 8-bit-or-less preset's codes mean.
ReferenceCode reference_decode(std::string_view name, std::uint32_t bits) {
  ReferenceCode ref;
  if (name == "fp8_e5m2" || name == "hfp8_e5m2" || name == "ibm_fp8") {
    if ((bits & 0x7C) == 0x7C) {
      ref.inf = (bits & 0x03) == 0;
      ref.nan = !ref.inf;
    }
    ref.value = ieee_like_value(bits, 5, 2, 15);
  } else if (name == "fp8_e4m3") {
    ref.nan = (bits & 0x7F) == 0x7F;
    ref.value = ieee_like_value(bits, 4, 3, 7);
  } else if (name == "hfp8_e4m3") {
    ref.nan = bits == 0x80;
    ref.value = ieee_like_value(bits, 4, 3, 11);
  } else if (name == "fp4_radix4") {
    const int field = bits & 7;
    const double sign = bits & 8 ? -1.0 : 1.0;
    ref.value = field == 0 ? sign * 0.0 : sign * std::pow(4.0, field - 7);
  } else if (name == "int2") {
    ref.value = bits >= 2 ? static_cast<double>(bits) - 4 : bits;
  } else if (name == "int4") {
    ref.value = bits >= 8 ? static_cast<double>(bits) - 16 : bits;
  } else if (name == "int8") {
    ref.value = static_cast<double>(static_cast<std::int8_t>(static_cast<std::uint8_t>(bits)));
  } else {
    throw std::runtime_error("no reference for " + std::string(name));
  }
  return ref;
}

const std::vector<std::string> kSmallPresets = {"fp8_e5m2", "fp8_e4m3", "hfp8_e4m3", "hfp8_e5m2",
                                                "ibm_fp8",  "fp4_radix4", "int2", "int4", "int8"};

TEST(NumericsFormat, EverySmallPresetDecodesLikeItsTable) {
  for (const auto& name : kSmallPresets) {
    const Format format = preset(name);
    ASSERT_LE(format.total_bits(), 8) << name;
    for (std::uint32_t bits = 0; bits < format.encoding_count(); ++bits) {
      const ReferenceCode ref = reference_decode(name, bits);
      const double got = format.decode(bits);
      const ValueClass cls = format.classify(bits);
      if (ref.nan) {
        EXPECT_TRUE(std::isnan(got)) << name << " code " << bits;
        EXPECT_EQ(cls, ValueClass::kNaN) << name << " code " << bits;
      } else if (ref.inf) {
        EXPECT_EQ(got, std::copysign(kInf, ref.value)) << name << " code " << bits;
        EXPECT_EQ(cls, ValueClass::kInfinity) << name << " code " << bits;
      } else {
        EXPECT_EQ(got, ref.value) << name << " code " << bits;
        EXPECT_EQ(std::signbit(got), std::signbit(ref.value)) << name << " code " << bits;
        EXPECT_EQ(cls == ValueClass::kZero, ref.value == 0) << name << " code " << bits;
      }
    }
  }
}

// decode -> encode gives the code back, under every deterministic rounding.
void expect_round_trip(const Format& format) {
  for (std::uint64_t bits = 0; bits < format.encoding_count(); ++bits) {
    const auto code = static_cast<std::uint32_t>(bits);
    const double value = format.decode(code);
    for (Rounding rounding : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                              Rounding::kStochastic, Rounding::kStochasticExact}) {
      const Conversion c = format.convert(value, rounding, 0x9E3779B97F4A7C15ull, 7);
      if (std::isnan(value)) {
        ASSERT_EQ(format.classify(c.bits), ValueClass::kNaN) << format.name() << " code " << bits;
      } else if (value == 0 && format.spec().subnormals == Subnormals::kFlush) {
        // Flushed formats read every exponent-0 code as zero; zero encodes to one of them.
        ASSERT_EQ(format.classify(c.bits), ValueClass::kZero) << format.name() << " code " << bits;
        ASSERT_EQ(std::signbit(format.decode(c.bits)), std::signbit(value)) << format.name() << " code " << bits;
      } else {
        ASSERT_EQ(c.bits, code) << format.name() << " code " << bits << " value " << value;
        ASSERT_FALSE(c.flags.inexact) << format.name() << " code " << bits;
      }
    }
  }
}

TEST(NumericsFormat, EveryEncodingRoundTripsForSmallAnd16BitPresets) {
  for (const auto& spec : preset_formats())
    if (spec.total_bits() <= 16) expect_round_trip(Format(spec));
}

// Positive finite codes are ordered by value, with no two codes for one value except the
// formats' documented zeros; lowest/highest match the extremes of the value set.
TEST(NumericsFormat, ValueSetIsMonotoneAndExtremesMatch) {
  for (const auto& spec : preset_formats()) {
    if (spec.total_bits() > 16) continue;
    const Format format(spec);
    std::vector<double> values;
    for (std::uint64_t bits = 0; bits < format.encoding_count(); ++bits) {
      const double v = format.decode(static_cast<std::uint32_t>(bits));
      if (std::isfinite(v)) values.push_back(v);
    }
    std::sort(values.begin(), values.end());
    EXPECT_EQ(values.front(), format.lowest_finite()) << spec.name;
    EXPECT_EQ(values.back(), format.max_finite()) << spec.name;
    const auto positive = std::upper_bound(values.begin(), values.end(), 0.0);
    ASSERT_NE(positive, values.end());
    EXPECT_EQ(*positive, format.min_positive()) << spec.name;
    EXPECT_EQ(std::adjacent_find(positive, values.end()), values.end()) << spec.name << ": duplicate value";
  }
}

TEST(NumericsFormat, PresetExtremesFromTheDesignTable) {
  EXPECT_EQ(preset("fp8_e5m2").max_finite(), 57344);
  EXPECT_EQ(preset("fp8_e5m2").min_positive(), 0x1p-16);
  EXPECT_EQ(preset("fp8_e4m3").max_finite(), 448);
  EXPECT_EQ(preset("fp8_e4m3").min_positive(), 0x1p-9);
  EXPECT_EQ(preset("hfp8_e4m3").max_finite(), 30);
  EXPECT_EQ(preset("hfp8_e4m3").min_normal(), 0x1p-10);
  EXPECT_EQ(preset("hfp8_e4m3").min_positive(), 0x1p-13);
  EXPECT_EQ(preset("dlfloat16").max_finite(), (2 - 0x1p-8) * 0x1p32);
  EXPECT_EQ(preset("dlfloat16").min_positive(), (1 + 0x1p-9) * 0x1p-31);
  EXPECT_EQ(preset("fp16").max_finite(), 65504);
  EXPECT_EQ(preset("fp16").min_positive(), 0x1p-24);
  EXPECT_EQ(preset("bf16").max_finite(), static_cast<double>(0x1.FEp127f));
  EXPECT_EQ(preset("bf16").min_positive(), 0x1p-133);
  EXPECT_EQ(preset("fp32").max_finite(), static_cast<double>(std::numeric_limits<float>::max()));
  EXPECT_EQ(preset("fp32").min_positive(), static_cast<double>(std::numeric_limits<float>::denorm_min()));
  EXPECT_EQ(preset("fp4_radix4").max_finite(), 1.0);
  EXPECT_EQ(preset("fp4_radix4").min_positive(), std::pow(4.0, -6));
  EXPECT_EQ(preset("int8").lowest_finite(), -128);
  EXPECT_EQ(preset("int8").max_finite(), 127);
  EXPECT_EQ(preset("int4").lowest_finite(), -8);
  EXPECT_EQ(preset("int4").max_finite(), 7);
}

// --- 16-bit formats -----------------------------------------------------------------------

TEST(NumericsFormat, EveryFp16EncodingMatchesTheIeeeFormula) {
  const Format fp16 = preset("fp16");
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    const double got = fp16.decode(bits);
    if ((bits & 0x7C00) == 0x7C00) {
      EXPECT_EQ((bits & 0x3FF) == 0, std::isinf(got)) << bits;
      EXPECT_EQ((bits & 0x3FF) != 0, std::isnan(got)) << bits;
    } else {
      ASSERT_EQ(got, ieee_like_value(bits, 5, 10, 15)) << bits;
    }
  }
}

float float_from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

TEST(NumericsFormat, EveryBf16EncodingIsTheTopHalfOfAnFp32) {
  const Format bf16 = preset("bf16");
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    const float expected = float_from_bits(bits << 16);
    const double got = bf16.decode(bits);
    if (std::isnan(expected))
      ASSERT_TRUE(std::isnan(got)) << bits;
    else
      ASSERT_EQ(got, static_cast<double>(expected)) << bits;
  }
}

// numerics.md: FP32 -> BF16 RNE keeps the top 16 bits after adding 0x7FFF + ((bits >> 16) & 1).
std::uint32_t bf16_by_bit_trick(std::uint32_t f32) { return (f32 + 0x7FFF + ((f32 >> 16) & 1)) >> 16; }

TEST(NumericsFormat, Fp32ToBf16MatchesTheBitTrickNearEveryBoundary) {
  const Format bf16 = preset("bf16");
  std::mt19937_64 rng(7);
  std::vector<std::uint32_t> inputs;
  for (std::uint32_t high = 0; high < 65536; ++high) {
    for (std::uint32_t low : {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu})
      inputs.push_back((high << 16) | low);
    inputs.push_back((high << 16) | static_cast<std::uint32_t>(rng() & 0xFFFF));
  }
  for (std::uint32_t f32 : inputs) {
    const float x = float_from_bits(f32);
    if (std::isnan(x)) continue;
    const std::uint32_t got = bf16.encode(x, Rounding::kNearestEven);
    ASSERT_EQ(got, bf16_by_bit_trick(f32)) << std::hex << f32;
  }
}

TEST(NumericsFormat, Fp32MatchesTheCpuConversionFromDouble) {
  const Format fp32 = preset("fp32");
  std::mt19937_64 rng(11);
  for (int i = 0; i < 400000; ++i) {
    double x = std::bit_cast<double>(rng());
    // Keep most draws near float's range, where rounding is interesting.
    if (i % 2) x = std::ldexp(std::fmod(x, 1.0), static_cast<int>(rng() % 300) - 160);
    if (std::isnan(x)) continue;
    const float expected = static_cast<float>(x);  // IEEE RNE, overflow to Inf
    ASSERT_EQ(fp32.encode(x, Rounding::kNearestEven), std::bit_cast<std::uint32_t>(expected)) << std::hexfloat << x;
  }
}

// --- MPFR as the rounding reference ----------------------------------------------------------

// Rounds x like an IEEE-style format with p = m + 1 significant bits, gradual subnormals
// below 2^(1 - bias) and no upper exponent limit (the caller applies overflow).
class MpfrRounder {
 public:
  MpfrRounder(int mantissa_bits, int bias)
      : precision_(mantissa_bits + 1), smallest_exponent_(1 - bias - mantissa_bits) {
    mpfr_init2(value_, precision_);
    mpfr_init2(wide_, 256);
  }
  ~MpfrRounder() {
    mpfr_clear(value_);
    mpfr_clear(wide_);
  }
  MpfrRounder(const MpfrRounder&) = delete;
  MpfrRounder& operator=(const MpfrRounder&) = delete;

  double round(double x, mpfr_rnd_t mode) {
    const mpfr_exp_t old_min = mpfr_get_emin(), old_max = mpfr_get_emax();
    // MPFR's significands are in [1/2, 1): the smallest subnormal 2^k is 0.1 * 2^(k + 1).
    mpfr_set_emin(smallest_exponent_ + 1);
    mpfr_set_emax(4096);
    int ternary = mpfr_set_d(value_, x, mode);
    ternary = mpfr_check_range(value_, ternary, mode);
    mpfr_subnormalize(value_, ternary, mode);
    const double result = mpfr_get_d(value_, MPFR_RNDN);
    mpfr_set_emin(old_min);
    mpfr_set_emax(old_max);
    return result;
  }

  // Nearest with ties away: MPFR has directed modes, so pick between them exactly.
  double round_nearest_away(double x) {
    const double down = round(x, MPFR_RNDZ), up = round(x, MPFR_RNDA);
    if (down == up) return down;
    mpfr_set_d(wide_, x, MPFR_RNDN);
    mpfr_mul_2ui(wide_, wide_, 1, MPFR_RNDN);
    mpfr_sub_d(wide_, wide_, down, MPFR_RNDN);
    mpfr_sub_d(wide_, wide_, up, MPFR_RNDN);  // 2x - down - up, exact at 256 bits
    const int side = mpfr_sgn(wide_) * (x < 0 ? -1 : 1);
    return side >= 0 ? up : down;
  }

 private:
  int precision_;
  int smallest_exponent_;
  mpfr_t value_, wide_;
};

// Inputs that probe every gap of a format: each representable value, the midpoints to its
// neighbours and one double either side of them, plus random doubles over the range.
std::vector<double> probe_inputs(const Format& format, std::uint64_t random_count) {
  std::vector<double> values;
  const std::uint64_t codes = format.encoding_count();
  const std::uint64_t step = codes > 4096 ? codes / 4096 : 1;
  for (std::uint64_t bits = 0; bits < codes; bits += step) {
    const double v = format.decode(static_cast<std::uint32_t>(bits));
    if (std::isfinite(v)) values.push_back(v);
  }
  values.push_back(format.max_finite() * 2);
  std::sort(values.begin(), values.end());
  std::vector<double> inputs;
  for (std::size_t i = 0; i + 1 < values.size(); ++i) {
    const double mid = values[i] + (values[i + 1] - values[i]) / 2;
    for (double x : {values[i], mid, std::nextafter(mid, -kInf), std::nextafter(mid, kInf),
                     values[i] + (values[i + 1] - values[i]) / 4})
      inputs.push_back(x);
  }
  std::mt19937_64 rng(3);
  const int low = std::ilogb(format.min_positive()) - 3, high = std::ilogb(format.max_finite()) + 2;
  for (std::uint64_t i = 0; i < random_count; ++i) {
    const double unit = std::ldexp(static_cast<double>(rng() >> 11), -53);
    const int exponent = low + static_cast<int>(rng() % static_cast<std::uint64_t>(high - low + 1));
    inputs.push_back((rng() & 1 ? -1 : 1) * std::ldexp(1 + unit, exponent));
  }
  return inputs;
}

// Reference result for a finite x under an IEEE-style format's overflow rule.
double apply_overflow(const Format& format, double unbounded, Rounding rounding) {
  if (std::fabs(unbounded) <= format.max_finite()) return unbounded;
  const double saturated = std::copysign(format.max_finite(), unbounded);
  if (rounding == Rounding::kTowardZero) return saturated;
  switch (format.spec().overflow) {
    case Overflow::kSaturate: return saturated;
    case Overflow::kInfinity:  // DLFloat's merged Inf/NaN code reads back as NaN
      if (format.spec().specials == SpecialValues::kMergedInfNan) return std::numeric_limits<double>::quiet_NaN();
      return std::copysign(kInf, unbounded);
    case Overflow::kNaN: return std::numeric_limits<double>::quiet_NaN();
  }
  return unbounded;
}

void expect_matches_mpfr(const Format& format, std::uint64_t random_count) {
  MpfrRounder mpfr(format.spec().mantissa_bits, format.spec().bias);
  for (double x : probe_inputs(format, random_count)) {
    for (Rounding rounding : {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero}) {
      double unbounded = 0;
      switch (rounding) {
        case Rounding::kNearestEven: unbounded = mpfr.round(x, MPFR_RNDN); break;
        case Rounding::kNearestAway: unbounded = mpfr.round_nearest_away(x); break;
        default: unbounded = mpfr.round(x, MPFR_RNDZ); break;
      }
      double expected = apply_overflow(format, unbounded, rounding);
      if (expected == 0 && format.spec().specials == SpecialValues::kFnuz) expected = 0.0;  // no -0
      const double got = format.round(x, rounding);
      if (std::isnan(expected)) {
        ASSERT_TRUE(std::isnan(got)) << format.name() << " " << rounding_name(rounding) << " " << std::hexfloat << x;
      } else {
        ASSERT_EQ(got, expected) << format.name() << " " << rounding_name(rounding) << " " << std::hexfloat << x;
        ASSERT_EQ(std::signbit(got), std::signbit(expected)) << format.name() << " " << std::hexfloat << x;
      }
    }
  }
}

TEST(NumericsFormat, IeeeStyleFormatsRoundLikeMpfr) {
  for (const char* name : {"fp8_e5m2", "fp8_e4m3", "hfp8_e4m3", "hfp8_e5m2", "ibm_fp8", "fp16", "bf16", "fp32"})
    expect_matches_mpfr(preset(name), 20000);
}

TEST(NumericsFormat, CustomSaturatingAndFlushingFormatsRoundLikeMpfr) {
  FormatSpec spec = *find_format("fp8_e4m3");
  spec.name = "e4m3_saturating";
  spec.overflow = Overflow::kSaturate;
  expect_matches_mpfr(Format(spec), 5000);
  spec = *find_format("fp16");
  spec.name = "e3m4_bias_minus2";
  spec.exponent_bits = 3;
  spec.mantissa_bits = 4;
  spec.bias = -2;
  expect_matches_mpfr(Format(spec), 5000);
}

// Every small layout, not just the presets: each sign-exponent-mantissa split of up to 8
// bits, three biases, and each kind of special values; decoded against the closed formula
// and rounded against MPFR.
TEST(NumericsFormat, EverySmallCustomLayoutDecodesAndRoundsCorrectly) {
  int tested = 0;
  for (int e = 1; e <= 7; ++e) {
    for (int m = 0; e + m <= 7; ++m) {
      for (int bias : {(1 << (e - 1)) - 1, (1 << (e - 1)) + 3, -1}) {
        for (SpecialValues specials : {SpecialValues::kIeee, SpecialValues::kFiniteNan, SpecialValues::kFnuz,
                                       SpecialValues::kNone}) {
          FormatSpec spec;
          spec.name = "e" + std::to_string(e) + "m" + std::to_string(m) + "b" + std::to_string(bias) + "_" +
                      std::string(special_values_name(specials));
          spec.exponent_bits = e;
          spec.mantissa_bits = m;
          spec.bias = bias;
          spec.specials = specials;
          spec.overflow = specials == SpecialValues::kIeee   ? Overflow::kInfinity
                          : specials == SpecialValues::kNone ? Overflow::kSaturate
                                                             : Overflow::kNaN;
          try {
            validate_format(spec);
          } catch (const std::invalid_argument&) {
            continue;  // e.g. IEEE specials without a mantissa bit
          }
          const Format format(spec);
          const std::uint32_t magnitude_mask = (1u << (e + m)) - 1;
          for (std::uint32_t bits = 0; bits < format.encoding_count(); ++bits) {
            const std::uint32_t magnitude = bits & magnitude_mask;
            bool nan = false, inf = false;
            switch (specials) {
              case SpecialValues::kIeee:
                if ((magnitude >> m) == (magnitude_mask >> m)) (magnitude & ((1u << m) - 1)) ? nan = true : inf = true;
                break;
              case SpecialValues::kFiniteNan: nan = magnitude == magnitude_mask; break;
              case SpecialValues::kFnuz: nan = bits == magnitude_mask + 1; break;
              default: break;
            }
            const double got = format.decode(bits);
            if (nan) {
              ASSERT_TRUE(std::isnan(got)) << spec.name << " " << bits;
            } else if (inf) {
              ASSERT_TRUE(std::isinf(got)) << spec.name << " " << bits;
            } else {
              ASSERT_EQ(got, ieee_like_value(bits, e, m, bias)) << spec.name << " " << bits;
            }
          }
          expect_round_trip(format);
          expect_matches_mpfr(format, 300);
          ++tested;
        }
      }
    }
  }
  EXPECT_GT(tested, 250);
}

// The flushing and no-subnormal variants of every small layout: values from the closed
// formula, rounding checked against the neighbours found by search in that value set.
TEST(NumericsFormat, SmallLayoutsWithoutSubnormalsRoundWithinTheirValueSet) {
  int tested = 0;
  mpfr_t below, above;
  mpfr_inits2(256, below, above, static_cast<mpfr_ptr>(nullptr));
  for (Subnormals subnormals : {Subnormals::kFlush, Subnormals::kLowestBinadeNormal}) {
    for (int e = 1; e <= 7; ++e) {
      for (int m = 1; e + m <= 7; ++m) {
        FormatSpec spec;
        spec.name = "e" + std::to_string(e) + "m" + std::to_string(m) + "_" + std::string(subnormals_name(subnormals));
        spec.exponent_bits = e;
        spec.mantissa_bits = m;
        spec.bias = (1 << (e - 1)) - 1;
        spec.specials = SpecialValues::kNone;
        spec.overflow = Overflow::kSaturate;
        spec.subnormals = subnormals;
        const Format format(spec);
        std::vector<double> positive;  // the value set above zero, by the closed formula
        for (std::uint32_t magnitude = 0; magnitude < (1u << (e + m)); ++magnitude) {
          const std::uint32_t field = magnitude >> m, mantissa = magnitude & ((1u << m) - 1);
          double expected = ieee_like_value(magnitude, e, m, spec.bias);
          if (field == 0) {
            expected = subnormals == Subnormals::kFlush || mantissa == 0
                           ? 0.0
                           : (1 + mantissa / std::pow(2.0, m)) * std::pow(2.0, -spec.bias);
          }
          ASSERT_EQ(format.decode(magnitude), expected) << spec.name << " " << magnitude;
          if (expected > 0) positive.push_back(expected);
        }
        ASSERT_TRUE(std::is_sorted(positive.begin(), positive.end())) << spec.name;
        for (double x : probe_inputs(format, 500)) {
          const double a = std::min(std::fabs(x), positive.back());
          const auto upper = std::lower_bound(positive.begin(), positive.end(), a);
          const double hi = *upper;
          const double lo = upper == positive.begin() ? 0.0 : *(upper - 1);
          const double rtz = a == hi ? hi : lo;
          mpfr_set_d(below, a, MPFR_RNDN);
          mpfr_sub_d(below, below, lo, MPFR_RNDN);  // a - lo
          mpfr_set_d(above, hi, MPFR_RNDN);
          mpfr_sub_d(above, above, a, MPFR_RNDN);  // hi - a
          const double away = mpfr_cmp(below, above) >= 0 ? hi : lo;
          ASSERT_EQ(format.round(x, Rounding::kTowardZero), std::copysign(rtz, x)) << spec.name << " " << std::hexfloat << x;
          ASSERT_EQ(format.round(x, Rounding::kNearestAway), std::copysign(away, x)) << spec.name << " " << std::hexfloat << x;
        }
        expect_round_trip(format);
        ++tested;
      }
    }
  }
  mpfr_clears(below, above, static_cast<mpfr_ptr>(nullptr));
  EXPECT_EQ(tested, 42);
}

// --- DLFloat: no subnormals, lowest binade normal, ties away --------------------------------

TEST(NumericsFormat, EveryDlfloatEncodingMatchesItsDefinition) {
  const Format dl = preset("dlfloat16");
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    const std::uint32_t magnitude = bits & 0x7FFF;
    const double sign = bits & 0x8000 ? -1.0 : 1.0;
    const double got = dl.decode(bits);
    if (magnitude == 0x7FFF) {
      ASSERT_TRUE(std::isnan(got)) << bits;
    } else if (magnitude == 0) {
      ASSERT_EQ(got, 0.0) << bits;
    } else {
      const int field = static_cast<int>(magnitude >> 9);
      const double expected = sign * (1 + (magnitude & 0x1FF) / 512.0) * std::pow(2.0, field - 31);
      ASSERT_EQ(got, expected) << bits;
      ASSERT_EQ(dl.classify(bits), ValueClass::kNormal) << bits;
    }
  }
}

TEST(NumericsFormat, DlfloatRoundsLikeMpfrWithoutSubnormals) {
  const Format dl = preset("dlfloat16");
  // Above the smallest nonzero value DLFloat is a 10-bit binary format with a bias of 31
  // and no subnormals: MPFR with a large exponent range rounds the same.
  MpfrRounder mpfr(9, 1000);
  for (double x : probe_inputs(dl, 50000)) {
    if (std::fabs(x) < dl.min_positive()) continue;
    const auto same = [](double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
    ASSERT_TRUE(same(dl.round(x, Rounding::kNearestAway),
                     apply_overflow(dl, mpfr.round_nearest_away(x), Rounding::kNearestAway)))
        << std::hexfloat << x;
    ASSERT_TRUE(same(dl.round(x, Rounding::kNearestEven),
                     apply_overflow(dl, mpfr.round(x, MPFR_RNDN), Rounding::kNearestEven)))
        << std::hexfloat << x;
    ASSERT_TRUE(same(dl.round(x, Rounding::kTowardZero),
                     apply_overflow(dl, mpfr.round(x, MPFR_RNDZ), Rounding::kTowardZero)))
        << std::hexfloat << x;
  }
}

TEST(NumericsFormat, DlfloatBelowTheSmallestValue) {
  const Format dl = preset("dlfloat16");
  const double smallest = dl.min_positive();  // (1 + 2^-9) * 2^-31
  EXPECT_EQ(dl.round(smallest / 2, Rounding::kNearestAway), smallest);  // tie goes away
  EXPECT_EQ(dl.round(smallest / 2, Rounding::kNearestEven), 0.0);       // tie goes to zero
  EXPECT_EQ(dl.round(std::nextafter(smallest / 2, 0.0), Rounding::kNearestAway), 0.0);
  EXPECT_EQ(dl.round(std::nextafter(smallest / 2, 1.0), Rounding::kNearestEven), smallest);
  EXPECT_EQ(dl.round(0x1p-31, Rounding::kNearestAway), smallest);  // 2^-31 itself is not a value
  EXPECT_EQ(dl.round(0x1p-31, Rounding::kTowardZero), 0.0);
  EXPECT_TRUE(dl.convert(0x1p-40, Rounding::kNearestAway).flags.underflow);
  // Sign of zero is kept (DLFloat does not care; keeping it is the cheaper choice).
  EXPECT_EQ(dl.encode(-0x1p-40, Rounding::kNearestAway), 0x8000u);
  // Overflow and Inf go to the one Inf/NaN code, which reads back as NaN.
  EXPECT_EQ(dl.encode(kInf, Rounding::kNearestAway), 0x7FFFu);
  EXPECT_EQ(dl.encode(0x1p40, Rounding::kNearestAway), 0x7FFFu);
  EXPECT_EQ(dl.encode(-0x1p40, Rounding::kNearestAway), 0xFFFFu);
  EXPECT_TRUE(std::isnan(dl.round(0x1p40, Rounding::kNearestAway)));
}

// --- radix-4 FP4 and integers: the value set is small, so brute force is the reference -------

// Nearest value of the (sorted, finite) value set to x, ties to the one listed first by
// `prefer_lower`; the distances are compared exactly with MPFR.
double nearest_by_search(const std::vector<double>& sorted, double x, bool ties_to_larger_magnitude) {
  mpfr_t a, b;
  mpfr_inits2(256, a, b, static_cast<mpfr_ptr>(nullptr));
  double best = sorted.front();
  for (double candidate : sorted) {
    mpfr_set_d(a, x, MPFR_RNDN);
    mpfr_sub_d(a, a, candidate, MPFR_RNDN);
    mpfr_abs(a, a, MPFR_RNDN);
    mpfr_set_d(b, x, MPFR_RNDN);
    mpfr_sub_d(b, b, best, MPFR_RNDN);
    mpfr_abs(b, b, MPFR_RNDN);
    const int cmp = mpfr_cmp(a, b);
    if (cmp < 0 || (cmp == 0 && ties_to_larger_magnitude && std::fabs(candidate) > std::fabs(best))) best = candidate;
  }
  mpfr_clears(a, b, static_cast<mpfr_ptr>(nullptr));
  return best;
}

TEST(NumericsFormat, Fp4Radix4RoundsToTheNearestPowerOfFour) {
  const Format fp4 = preset("fp4_radix4");
  std::vector<double> values;
  for (int k = -6; k <= 0; ++k) values.push_back(std::pow(4.0, k));
  values.push_back(0.0);
  for (int k = -6; k <= 0; ++k) values.push_back(-std::pow(4.0, k));
  std::sort(values.begin(), values.end());
  for (double x : probe_inputs(fp4, 3000)) {
    const double clamped = std::clamp(x, -1.0, 1.0);
    ASSERT_EQ(fp4.round(x, Rounding::kNearestAway), nearest_by_search(values, clamped, true)) << std::hexfloat << x;
  }
  // The midpoint between 4^k and 4^(k+1) is 2.5 * 4^k. With no mantissa bits no significand
  // is even, so (IEEE 754-2019) a tie goes away from zero, except towards zero itself.
  EXPECT_EQ(fp4.round(2.5 / 16, Rounding::kNearestEven), 0.25);
  EXPECT_EQ(fp4.round(2.5 / 64, Rounding::kNearestEven), 1.0 / 16);
  EXPECT_EQ(fp4.round(std::nextafter(2.5 / 64, 0.0), Rounding::kNearestEven), 1.0 / 64);
  EXPECT_EQ(fp4.round(std::pow(4.0, -6) / 2, Rounding::kNearestEven), 0.0);
  EXPECT_EQ(fp4.round(std::pow(4.0, -6) / 2, Rounding::kNearestAway), std::pow(4.0, -6));
  EXPECT_EQ(fp4.round(3.9 / 16, Rounding::kTowardZero), 1.0 / 16);
  EXPECT_EQ(fp4.round(5.0, Rounding::kNearestEven), 1.0);  // saturates
  EXPECT_TRUE(fp4.convert(5.0, Rounding::kNearestEven).flags.saturated);
}

TEST(NumericsFormat, ScaledFp4MovesTheWholeGrid) {
  FormatSpec spec = *find_format("fp4_radix4");
  spec.name = "fp4_scaled";
  spec.scale = 8;
  const Format fp4(spec);
  EXPECT_EQ(fp4.max_finite(), 8.0);
  EXPECT_EQ(fp4.round(2.1, Rounding::kNearestEven), 2.0);
  EXPECT_EQ(fp4.decode(0x7), 8.0);
}

TEST(NumericsFormat, IntegersRoundAndSaturateInTwosComplement) {
  const Format int8 = preset("int8");
  std::vector<double> values;
  for (int k = -128; k <= 127; ++k) values.push_back(k);
  for (double x : {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.25, -3.75, 126.5, -127.5, 127.4999}) {
    EXPECT_EQ(int8.round(x, Rounding::kNearestAway), nearest_by_search(values, x, true)) << x;
    EXPECT_EQ(int8.round(x, Rounding::kNearestEven), std::nearbyint(x)) << x;  // FE_TONEAREST
    EXPECT_EQ(int8.round(x, Rounding::kTowardZero), std::trunc(x)) << x;
  }
  EXPECT_EQ(int8.round(1000.0, Rounding::kNearestEven), 127);
  EXPECT_EQ(int8.round(-1000.0, Rounding::kNearestEven), -128);
  EXPECT_EQ(int8.round(-128.4, Rounding::kNearestEven), -128);
  EXPECT_EQ(int8.round(1e300, Rounding::kNearestEven), 127);
  EXPECT_EQ(int8.encode(-1.0, Rounding::kNearestEven), 0xFFu);
  EXPECT_EQ(int8.encode(-0.0, Rounding::kNearestEven), 0u);
  EXPECT_EQ(int8.encode(-128.0, Rounding::kNearestEven), 0x80u);
  EXPECT_TRUE(int8.convert(128.0, Rounding::kNearestEven).flags.saturated);
  EXPECT_FALSE(int8.convert(-128.0, Rounding::kNearestEven).flags.saturated);
  // No NaN code: NaN becomes 0 and is flagged invalid; Inf saturates.
  const Conversion nan = int8.convert(std::nan(""), Rounding::kNearestEven);
  EXPECT_EQ(nan.bits, 0u);
  EXPECT_TRUE(nan.flags.invalid);
  EXPECT_EQ(int8.round(-kInf, Rounding::kNearestEven), -128);

  FormatSpec scaled = *find_format("int4");
  scaled.name = "int4_quarter";
  scaled.scale = 0.25;
  const Format int4(scaled);
  EXPECT_EQ(int4.round(0.3, Rounding::kNearestEven), 0.25);
  EXPECT_EQ(int4.round(0.375, Rounding::kNearestEven), 0.5);
  EXPECT_EQ(int4.max_finite(), 1.75);
  EXPECT_EQ(int4.lowest_finite(), -2.0);
}

TEST(NumericsFormat, UnsignedFormatsClampNegativeInputsToZero) {
  FormatSpec spec = *find_format("int8");
  spec.name = "uint8";
  spec.has_sign = false;
  spec.mantissa_bits = 8;
  const Format uint8(spec);
  EXPECT_EQ(uint8.max_finite(), 255);
  EXPECT_EQ(uint8.round(254.6, Rounding::kNearestEven), 255);
  EXPECT_EQ(uint8.round(-3.0, Rounding::kNearestEven), 0);
  EXPECT_TRUE(uint8.convert(-3.0, Rounding::kNearestEven).flags.saturated);
  EXPECT_EQ(uint8.decode(0xFF), 255);
}

// --- the XLA convert test vectors listed in numerics.md (RNE, non-saturating) ---------------

struct Vector {
  double input;
  double expected;  // NaN: expect NaN
};

void expect_vectors(std::string_view name, const std::vector<Vector>& vectors) {
  const Format format = preset(name);
  for (const auto& v : vectors) {
    const double got = format.round(v.input, Rounding::kNearestEven);
    if (std::isnan(v.expected))
      EXPECT_TRUE(std::isnan(got)) << name << " " << std::hexfloat << v.input << " -> " << got;
    else
      EXPECT_EQ(got, v.expected) << name << " " << std::hexfloat << v.input << " -> " << got;
  }
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(NumericsFormat, XlaVectorsE5M2) {
  expect_vectors("fp8_e5m2", {{0x1.2p0, 1.0},
                              {0x1.6p0, 0x1.8p0},
                              {0x1.Cp15, 0x1.Cp15},
                              {0x1.DFFFFEp15, 0x1.Cp15},
                              {0x1.Ep15, kInf},
                              {0x1p-17, 0},
                              {0x1.000002p-17, 0x0.4p-14},
                              {0x1.5p-15, 0x0.Cp-14}});
}

TEST(NumericsFormat, XlaVectorsE4M3FN) {
  expect_vectors("fp8_e4m3", {{0x1.1p0, 1.0},
                              {0x1.3p0, 0x1.4p0},
                              {448, 448},
                              {0x1.Dp8, 448},
                              {0x1.D00002p8, kNaN},
                              {kInf, kNaN},
                              {0x1p-10, 0},
                              {0x1.000002p-10, 0x0.2p-6},
                              {0x1.4p-8, 0x0.4p-6},
                              {0x1.Cp-8, 0x0.8p-6}});
}

TEST(NumericsFormat, XlaVectorsE4M3B11FNUZ) {
  expect_vectors("hfp8_e4m3", {{kInf, kNaN},
                               {0x1.Ep4, 30},
                               {0x1.EFFFFEp4, 30},
                               {0x1.Fp4, kNaN},
                               {0x1.Ep-11, 0x1p-10},
                               {0x1.0p-12, 0x0.4p-10},
                               {0x1.4p-12, 0x0.4p-10},
                               {0x1.Cp-12, 0x0.8p-10},
                               {0x1.5p-12, 0x0.6p-10},
                               {0x1p-14, 0},
                               {0x1.000002p-14, 0x0.2p-10}});
  const Format fnuz = preset("hfp8_e4m3");
  EXPECT_EQ(fnuz.encode(-0.0, Rounding::kNearestEven), 0u);  // -0 -> +0
  EXPECT_FALSE(std::signbit(fnuz.round(-0.0, Rounding::kNearestEven)));
  EXPECT_EQ(fnuz.encode(-0x1p-20, Rounding::kNearestEven), 0u);  // underflow never yields the NaN code
  EXPECT_EQ(fnuz.encode(std::nan(""), Rounding::kNearestEven), 0x80u);
}

// --- special values, overflow, NaN ---------------------------------------------------------

TEST(NumericsFormat, NaNPropagatesAndInfinityFollowsTheFormat) {
  for (const auto& spec : preset_formats()) {
    const Format format(spec);
    const Conversion nan = format.convert(-std::nan(""), Rounding::kNearestEven);
    if (format.has_nan()) {
      EXPECT_EQ(format.classify(nan.bits), ValueClass::kNaN) << spec.name;
      EXPECT_FALSE(nan.flags.invalid) << spec.name;
    }
    const double inf = format.round(kInf, Rounding::kNearestEven);
    if (spec.specials == SpecialValues::kIeee) {
      EXPECT_EQ(inf, kInf) << spec.name;
    } else if (spec.specials == SpecialValues::kNone) {
      EXPECT_EQ(inf, format.max_finite()) << spec.name;
    } else {
      EXPECT_TRUE(std::isnan(inf)) << spec.name;
    }
  }
}

TEST(NumericsFormat, OverflowFollowsThePolicyButRtzNeverOverflows) {
  FormatSpec spec = *find_format("fp8_e5m2");
  EXPECT_EQ(Format(spec).round(1e6, Rounding::kNearestEven), kInf);
  EXPECT_EQ(Format(spec).round(-1e6, Rounding::kNearestAway), -kInf);
  EXPECT_EQ(Format(spec).round(1e6, Rounding::kTowardZero), 57344);
  EXPECT_EQ(Format(spec).round(1e6, Rounding::kStochasticExact, 0), kInf);
  spec.overflow = Overflow::kSaturate;
  spec.name = "e5m2_saturating";
  const Conversion c = Format(spec).convert(-1e6, Rounding::kNearestEven);
  EXPECT_EQ(c.value, -57344);
  EXPECT_TRUE(c.flags.saturated && c.flags.overflow && c.flags.inexact);
  EXPECT_EQ(Format(spec).round(kInf, Rounding::kNearestEven), kInf);  // Inf is representable
  spec.overflow = Overflow::kNaN;
  spec.name = "e5m2_overflow_nan";
  EXPECT_TRUE(std::isnan(Format(spec).round(1e6, Rounding::kNearestEven)));
}

TEST(NumericsFormat, TiesToEvenAtEveryBinadeOfFp16) {
  const Format fp16 = preset("fp16");
  // 2^-24 is the odd code 1; every other power of two has an even code.
  for (int exponent = -23; exponent <= 15; ++exponent) {
    const double ulp = std::ldexp(1.0, std::max(exponent, -14) - 10);
    const double base = std::ldexp(1.0, exponent);  // even code (mantissa 0 or a power of two)
    // base + ulp/2 ties between base (even) and base + ulp (odd): stays at base.
    EXPECT_EQ(fp16.round(base + ulp / 2, Rounding::kNearestEven), base) << exponent;
    EXPECT_EQ(fp16.round(base + ulp / 2, Rounding::kNearestAway), base + ulp) << exponent;
    // base + 1.5 ulp ties between odd and even: goes up.
    if (exponent < 15) {
      EXPECT_EQ(fp16.round(base + 1.5 * ulp, Rounding::kNearestEven), base + 2 * ulp) << exponent;
    }
  }
  EXPECT_EQ(fp16.round(0x1p-25, Rounding::kNearestEven), 0.0);      // half the smallest subnormal
  EXPECT_EQ(fp16.round(0x1.8p-24, Rounding::kNearestEven), 0x1p-23);  // 1.5 subnormal ulps
  EXPECT_EQ(fp16.round(65520, Rounding::kNearestEven), kInf);         // the tie above 65504
  EXPECT_EQ(fp16.round(std::nextafter(65520.0, 0.0), Rounding::kNearestEven), 65504);
}

TEST(NumericsFormat, SubnormalEdgesAndFlushToZero) {
  const Format fp16 = preset("fp16");
  EXPECT_EQ(fp16.classify(0x0001), ValueClass::kSubnormal);
  EXPECT_EQ(fp16.classify(0x0400), ValueClass::kNormal);
  EXPECT_EQ(fp16.round(0x1.FFCp-15, Rounding::kNearestEven), 0x1p-14);  // rounds up into normals
  EXPECT_TRUE(fp16.convert(0x1p-30, Rounding::kNearestEven).flags.underflow);
  EXPECT_TRUE(std::signbit(fp16.round(-0x1p-30, Rounding::kNearestEven)));
  // Double subnormal inputs.
  EXPECT_EQ(fp16.round(std::numeric_limits<double>::denorm_min(), Rounding::kNearestEven), 0.0);
  // sr_exact rounds up iff random / 2^64 < fraction: only a zero draw lifts 2^-1074.
  const Format fp32 = preset("fp32");
  EXPECT_EQ(fp32.round(std::numeric_limits<double>::denorm_min(), Rounding::kStochasticExact, 1), 0.0);
  EXPECT_EQ(fp32.round(std::numeric_limits<double>::denorm_min(), Rounding::kStochasticExact, 0), 0x1p-149);

  FormatSpec spec = *find_format("fp16");
  spec.name = "fp16_ftz";
  spec.subnormals = Subnormals::kFlush;
  const Format ftz(spec);
  EXPECT_EQ(ftz.min_positive(), 0x1p-14);
  EXPECT_EQ(ftz.decode(0x0001), 0.0);  // denormals read as zero
  EXPECT_EQ(ftz.classify(0x0001), ValueClass::kZero);
  EXPECT_EQ(ftz.round(0x1p-15, Rounding::kNearestEven), 0.0);  // tie between 0 and 2^-14
  EXPECT_EQ(ftz.round(0x1p-15, Rounding::kNearestAway), 0x1p-14);
  EXPECT_EQ(ftz.round(0x1.8p-15, Rounding::kNearestEven), 0x1p-14);
  EXPECT_EQ(ftz.round(0x1.8p-15, Rounding::kTowardZero), 0.0);
  EXPECT_EQ(ftz.encode(0x1.8p-15, Rounding::kNearestEven), 0x0400u);
}

// --- descriptors that cannot work ---------------------------------------------------------

TEST(NumericsFormat, ImpossibleDescriptorsAreRejectedWithAReason) {
  const auto expect_rejected = [](FormatSpec spec, std::string_view reason) {
    try {
      validate_format(spec);
      ADD_FAILURE() << "accepted: " << reason;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  };
  FormatSpec base = *find_format("fp8_e4m3");
  FormatSpec spec = base;
  spec.radix = 3;
  expect_rejected(spec, "radix");
  spec = base;
  spec.radix = 4;
  expect_rejected(spec, "radix 4");
  spec = base;
  spec.mantissa_bits = 40;
  expect_rejected(spec, "32 bits");
  spec = base;
  spec.overflow = Overflow::kInfinity;
  expect_rejected(spec, "Inf code");
  spec = base;
  spec.specials = SpecialValues::kNone;
  spec.overflow = Overflow::kNaN;
  expect_rejected(spec, "NaN code");
  spec = base;
  spec.scale = 3;
  expect_rejected(spec, "power of two");
  spec = base;
  spec.bias = 2000;
  expect_rejected(spec, "range of double");
  spec = base;
  spec.exponent_bits = 0;
  expect_rejected(spec, "exponent bit");
  spec = base;
  spec.specials = SpecialValues::kIeee;
  spec.mantissa_bits = 0;
  spec.overflow = Overflow::kInfinity;
  expect_rejected(spec, "NaN from Inf");
  spec = base;
  spec.specials = SpecialValues::kFnuz;
  spec.has_sign = false;
  expect_rejected(spec, "sign bit");
  spec = *find_format("int8");
  spec.overflow = Overflow::kNaN;
  expect_rejected(spec, "saturate");
  spec = base;
  spec.name = "";
  expect_rejected(spec, "name");
  EXPECT_THROW(Format{spec}, std::invalid_argument);
  EXPECT_FALSE(find_format("fp8_e4m4").has_value());
}

TEST(NumericsFormat, EveryPresetIsValidAndNamedUniquely) {
  std::vector<std::string> names;
  for (const auto& spec : preset_formats()) {
    EXPECT_NO_THROW(validate_format(spec)) << spec.name;
    names.push_back(spec.name);
  }
  for (const char* required : {"fp8_e5m2", "fp8_e4m3", "hfp8_e4m3", "hfp8_e5m2", "ibm_fp8", "dlfloat16",
                               "fp16", "bf16", "fp32", "fp4_radix4", "int4", "int8"})
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  EXPECT_EQ(find_format("dlfloat16")->default_rounding, Rounding::kNearestAway);
  EXPECT_EQ(find_format("fp8_e4m3")->default_rounding, Rounding::kNearestEven);
}

}  // namespace
}  // namespace lpt::num
