#include "sim/format_json.hpp"

#include "models/common/param_schema.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <vector>
#include <stdexcept>
#include <string>

namespace lpt::num {
namespace {

// A format object's keys as written; what is absent comes from its base, or the
// defaults of its kind (resolve_descriptor).
struct FormatDescriptor {
  std::optional<FormatSpec> base;
  std::optional<std::string> name;
  std::optional<bool> is_integer;  // "kind"
  std::optional<bool> has_sign;    // "signed"
  std::optional<Rounding> rounding;
  std::optional<int> bits;  // integers
  std::optional<int> exponent_bits, mantissa_bits, bias, radix;  // floats
  std::optional<Subnormals> subnormals;
  std::optional<SpecialValues> specials;
  std::optional<Overflow> overflow;
  std::optional<double> scale;
};

constexpr std::array<std::string_view, 7> kFloatOnlyKeys = {"exponent_bits", "mantissa_bits", "bias", "radix",
                                                            "subnormals", "specials", "overflow"};

FormatSpec preset_or_fail(const lpt::JsonReader& reader) {
  const std::string name = reader.string();
  const auto spec = find_format(name);
  if (!spec) reader.fail("unknown format " + quoted_excerpt(name) + "; expected one of " + preset_format_names() +
                         ", or an object describing a format");
  return *spec;
}

template <class Enum>
std::vector<std::pair<std::string_view, std::optional<Enum>>> optional_choices(
    std::initializer_list<Enum> values, std::string_view (*name)(Enum)) {
  std::vector<std::pair<std::string_view, std::optional<Enum>>> out;
  for (const Enum v : values) out.emplace_back(name(v), v);
  return out;
}

template <class Member>
param::Key<FormatDescriptor> optional_integer(std::string key, Member member, std::int64_t min, std::int64_t max,
                                              std::string absent, std::string description) {
  using K = param::Keys<FormatDescriptor>;
  return K::optional(K::value({std::move(key), "integer", {}, param::integer_range(min, max), {}, std::move(description)},
                              member,
                              [min, max](const lpt::JsonReader& in) {
                                return std::optional<int>(static_cast<int>(in.integer(min, max)));
                              }),
                     std::move(absent));
}

const param::Schema<FormatDescriptor>& descriptor_schema() {
  using K = param::Keys<FormatDescriptor>;
  static const param::Schema<FormatDescriptor> schema(
      "A number format given as an object instead of a preset name (docs/numerics.md): a preset changed "
      "(`{\"base\": \"fp8_e4m3\", \"overflow\": \"saturate\"}`), a floating format from scratch "
      "(`exponent_bits`, `mantissa_bits`, …) or an integer (`{\"kind\": \"integer\", \"bits\": 8, \"scale\": "
      "0.125}`). Keys not given come from `base`, else from the defaults below. Integers take `bits` and none of "
      "the floating keys.",
      {K::optional(K::value({"base", "string", {}, "a preset name", {}, "the preset the other keys change"},
                            &FormatDescriptor::base,
                            [](const lpt::JsonReader& in) { return std::optional<FormatSpec>(preset_or_fail(in)); }),
                   "none"),
       K::optional(K::value({"name", "string", {}, "non-empty", {}, "shown in reports"}, &FormatDescriptor::name,
                            [](const lpt::JsonReader& in) { return std::optional<std::string>(in.string()); }),
                   "`custom`, or the base's name + `_custom` when changed"),
       K::optional(K::choice("kind", &FormatDescriptor::is_integer,
                             {{"float", std::optional<bool>(false)}, {"integer", std::optional<bool>(true)}},
                             "floating point, or two's complement integer × `scale`"),
                   "the base's, else `float`"),
       K::optional(K::value({"signed", "boolean", {}, "`true`, `false`", {}, "a sign bit (unsigned formats clamp "
                                                                              "negative inputs to 0)"},
                            &FormatDescriptor::has_sign,
                            [](const lpt::JsonReader& in) { return std::optional<bool>(in.boolean()); }),
                   "the base's, else `true`"),
       K::optional(K::choice("rounding", &FormatDescriptor::rounding,
                             optional_choices({Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                                               Rounding::kStochastic, Rounding::kStochasticExact},
                                              rounding_name),
                             "the format's default rounding (conversions that name none)"),
                   "the base's, else `rne`"),
       optional_integer("bits", &FormatDescriptor::bits, 2, 32, "the base's; required without one",
                        "integers: total bits, sign included"),
       optional_integer("exponent_bits", &FormatDescriptor::exponent_bits, 1, 11, "the base's; required without one",
                        "floats: exponent field width"),
       optional_integer("mantissa_bits", &FormatDescriptor::mantissa_bits, 0, 31, "the base's; required without one",
                        "floats: stored fraction bits"),
       optional_integer("bias", &FormatDescriptor::bias, -100000, 100000, "the base's, else the IEEE 2^(e−1) − 1",
                        "floats: exponent bias"),
       optional_integer("radix", &FormatDescriptor::radix, 2, 4, "the base's, else 2",
                        "floats: 2, or 4 with no mantissa bits (radix-4 FP4, Sun et al. NeurIPS 2020)"),
       K::optional(K::choice("subnormals", &FormatDescriptor::subnormals,
                             optional_choices({Subnormals::kGradual, Subnormals::kFlush, Subnormals::kLowestBinadeNormal},
                                              subnormals_name),
                             "floats: what the lowest exponent field means (`normal`: an ordinary binade, as DLFloat)"),
                   "the base's, else `gradual`"),
       K::optional(K::choice("specials", &FormatDescriptor::specials,
                             optional_choices({SpecialValues::kIeee, SpecialValues::kFiniteNan, SpecialValues::kFnuz,
                                               SpecialValues::kMergedInfNan, SpecialValues::kNone},
                                              special_values_name),
                             "floats: which codes are not finite numbers"),
                   "the base's, else `ieee`"),
       K::optional(K::choice("overflow", &FormatDescriptor::overflow,
                             optional_choices({Overflow::kSaturate, Overflow::kInfinity, Overflow::kNaN}, overflow_name),
                             "floats: what a finite result beyond the largest value becomes"),
                   "the base's unless `specials` is given, else what the specials allow: `inf`, else `nan`, else "
                   "`saturate`"),
       K::optional(K::value({"scale", "number", {}, "a power of two in [2^-1000, 2^1000]", {},
                             "every value is multiplied by it (integers: the step)"},
                            &FormatDescriptor::scale,
                            [](const lpt::JsonReader& in) { return std::optional<double>(in.number(0x1p-1000, 0x1p1000)); }),
                   "the base's, else 1")},
      [](const lpt::JsonReader& in, const FormatDescriptor& d) {
        const bool integer = d.is_integer.value_or(d.base && d.base->is_integer);
        // A base of the other kind shares nothing useful.
        if (d.base && d.is_integer && d.base->is_integer != *d.is_integer)
          in.fail_at("kind", "differs from the kind of base \"" + d.base->name + "\"");
        for (const auto& item : in.json().items()) {
          const std::string& key = item.key();  // a named variable: clang 14 cannot capture bindings
          const bool float_only = std::find(kFloatOnlyKeys.begin(), kFloatOnlyKeys.end(), key) != kFloatOnlyKeys.end();
          if (integer ? float_only : key == "bits")
            in.fail_at(key, std::string("not a key of ") + (integer ? "an integer" : "a floating") + " format");
        }
      });
  return schema;
}

Overflow default_overflow(SpecialValues specials) {
  switch (specials) {
    case SpecialValues::kIeee:
    case SpecialValues::kMergedInfNan: return Overflow::kInfinity;
    case SpecialValues::kFiniteNan:
    case SpecialValues::kFnuz: return Overflow::kNaN;
    case SpecialValues::kNone: return Overflow::kSaturate;
  }
  return Overflow::kSaturate;
}

FormatSpec resolve_descriptor(const lpt::JsonReader& reader, const FormatDescriptor& d) {
  const std::optional<FormatSpec>& base = d.base;
  FormatSpec spec = base.value_or(FormatSpec{});
  spec.is_integer = d.is_integer.value_or(base && base->is_integer);
  if (d.has_sign) spec.has_sign = *d.has_sign;
  if (spec.is_integer) {
    spec.exponent_bits = 0;
    spec.bias = 0;
    spec.radix = 2;
    spec.subnormals = Subnormals::kGradual;
    spec.specials = SpecialValues::kNone;
    spec.overflow = Overflow::kSaturate;
    if (!d.bits && !base) reader.fail_at("bits", "missing required key (an integer format without a base)");
    spec.mantissa_bits = d.bits.value_or(base ? base->total_bits() : 0) - (spec.has_sign ? 1 : 0);
  } else {
    if (!base) {
      if (!d.exponent_bits) reader.fail_at("exponent_bits", "missing required key (a floating format without a base)");
      if (!d.mantissa_bits) reader.fail_at("mantissa_bits", "missing required key (a floating format without a base)");
      spec.bias = (1 << (*d.exponent_bits - 1)) - 1;
      spec.specials = SpecialValues::kIeee;
    }
    if (d.exponent_bits) spec.exponent_bits = *d.exponent_bits;
    if (d.mantissa_bits) spec.mantissa_bits = *d.mantissa_bits;
    if (d.bias) spec.bias = *d.bias;
    if (d.radix) spec.radix = *d.radix;
    if (d.subnormals) spec.subnormals = *d.subnormals;
    if (d.specials) spec.specials = *d.specials;
    if (d.overflow) spec.overflow = *d.overflow;
    else if (!base || d.specials) spec.overflow = default_overflow(spec.specials);
  }
  if (d.scale) spec.scale = *d.scale;
  if (d.rounding) spec.default_rounding = *d.rounding;
  if (d.name) {
    spec.name = *d.name;
  } else if (!base) {
    spec.name = "custom";
  } else if (!(spec == *base)) {
    spec.name = base->name + "_custom";
  }
  try {
    validate_format(spec);
  } catch (const std::invalid_argument& e) {
    reader.fail(e.what());
  }
  return spec;
}

FormatSpec descriptor_from_json(const lpt::JsonReader& reader) {
  return resolve_descriptor(reader, descriptor_schema().read(reader));
}

}  // namespace

FormatSpec format_from_json(const lpt::JsonReader& reader) {
  if (reader.json().is_string()) return preset_or_fail(reader);
  if (!reader.json().is_object())
    reader.fail(std::string("expected a format name or a format object, got ") + reader.json().type_name());
  return descriptor_from_json(reader);
}

void from_json(const lpt::JsonReader& reader, FormatSpec& spec) { spec = format_from_json(reader); }

void describe_format_object(const std::string&, param::ObjectDocs& docs) {
  // One section for every key that takes a format, wherever it sits.
  descriptor_schema().describe("<any format>", docs);
}

void to_json(nlohmann::json& json, const FormatSpec& spec) {
  if (const auto preset = find_format(spec.name); preset && *preset == spec)
    json = spec.name;
  else
    json = descriptor_to_json(spec);
}

nlohmann::json descriptor_to_json(const FormatSpec& spec) {
  nlohmann::json json = nlohmann::json::object();
  json["name"] = spec.name;
  json["kind"] = spec.is_integer ? "integer" : "float";
  json["signed"] = spec.has_sign;
  if (spec.is_integer) {
    json["bits"] = spec.total_bits();
  } else {
    json["exponent_bits"] = spec.exponent_bits;
    json["mantissa_bits"] = spec.mantissa_bits;
    json["bias"] = spec.bias;
    json["radix"] = spec.radix;
    json["subnormals"] = subnormals_name(spec.subnormals);
    json["specials"] = special_values_name(spec.specials);
    json["overflow"] = overflow_name(spec.overflow);
  }
  json["scale"] = spec.scale;
  json["rounding"] = rounding_name(spec.default_rounding);
  return json;
}

}  // namespace lpt::num
