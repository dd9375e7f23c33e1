#include "sim/format_json.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

namespace lpt::num {
namespace {

constexpr std::array<std::string_view, 5> kCommonKeys = {"base", "name", "kind", "signed", "rounding"};
constexpr std::array<std::string_view, 8> kFloatKeys = {"exponent_bits", "mantissa_bits", "bias", "radix",
                                                        "subnormals",    "specials",      "overflow", "scale"};
constexpr std::array<std::string_view, 2> kIntegerKeys = {"bits", "scale"};

// Rejects keys that do not belong to this kind of format, listing the ones that do (the
// reader's own check only knows the keys that were present and read).
void reject_foreign_keys(const lpt::JsonReader& reader, bool is_integer) {
  std::string allowed;
  const auto allow = [&](auto keys) {
    for (std::string_view key : keys)
      allowed += (allowed.empty() ? "" : ", ") + std::string(key);
  };
  allow(kCommonKeys);
  if (is_integer) allow(kIntegerKeys); else allow(kFloatKeys);
  for (const auto& item : reader.json().items()) {
    const std::string& key = item.key();  // a named variable: clang 14 cannot capture bindings
    const auto known = [&](auto keys) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    if (known(kCommonKeys) || (is_integer ? known(kIntegerKeys) : known(kFloatKeys))) continue;
    reader.fail_at(key, std::string("unknown key for ") + (is_integer ? "an integer" : "a floating") +
                            " format; expected one of: " + allowed);
  }
}

FormatSpec preset_or_fail(const lpt::JsonReader& reader) {
  const std::string name = reader.string();
  const auto spec = find_format(name);
  if (!spec) reader.fail("unknown format " + quoted_excerpt(name) + "; expected one of " + preset_format_names() +
                         ", or an object describing a format");
  return *spec;
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

template <class Enum, class Parse>
Enum enum_value(const lpt::JsonReader& reader, Parse parse, std::string_view choices) {
  const std::string text = reader.string();
  const auto value = parse(text);
  if (!value) reader.fail("expected one of " + std::string(choices) + ", got " + quoted_excerpt(text));
  return *value;
}

FormatSpec descriptor_from_json(const lpt::JsonReader& reader) {
  std::optional<FormatSpec> base;
  if (const auto base_reader = reader.find("base")) base = preset_or_fail(*base_reader);
  bool is_integer = base && base->is_integer;
  if (const auto kind = reader.find("kind")) is_integer = kind->one_of({"float", "integer"}) == "integer";
  reject_foreign_keys(reader, is_integer);
  // A base of the other kind shares nothing useful.
  if (base && base->is_integer != is_integer) reader.fail_at("kind", "differs from the kind of base \"" + base->name + "\"");

  FormatSpec spec = base.value_or(FormatSpec{});
  spec.is_integer = is_integer;
  if (const auto sign = reader.find("signed")) spec.has_sign = sign->boolean();

  if (is_integer) {
    spec.exponent_bits = 0;
    spec.bias = 0;
    spec.radix = 2;
    spec.subnormals = Subnormals::kGradual;
    spec.specials = SpecialValues::kNone;
    spec.overflow = Overflow::kSaturate;
    if (const auto bits = base ? reader.find("bits") : std::optional(reader.at("bits")))
      spec.mantissa_bits = static_cast<int>(bits->integer(2, 32)) - (spec.has_sign ? 1 : 0);
    else
      spec.mantissa_bits = base->total_bits() - (spec.has_sign ? 1 : 0);
  } else {
    if (base) {
      if (const auto e = reader.find("exponent_bits")) spec.exponent_bits = static_cast<int>(e->integer(1, 11));
      if (const auto m = reader.find("mantissa_bits")) spec.mantissa_bits = static_cast<int>(m->integer(0, 31));
    } else {
      spec.exponent_bits = static_cast<int>(reader.at("exponent_bits").integer(1, 11));
      spec.mantissa_bits = static_cast<int>(reader.at("mantissa_bits").integer(0, 31));
      spec.bias = (1 << (spec.exponent_bits - 1)) - 1;
      spec.specials = SpecialValues::kIeee;
    }
    if (const auto bias = reader.find("bias")) spec.bias = static_cast<int>(bias->integer(-100000, 100000));
    if (const auto radix = reader.find("radix")) spec.radix = static_cast<int>(radix->integer(2, 4));
    if (const auto sub = reader.find("subnormals"))
      spec.subnormals = enum_value<Subnormals>(*sub, parse_subnormals, "gradual|flush|normal");
    if (const auto specials = reader.find("specials"))
      spec.specials = enum_value<SpecialValues>(*specials, parse_special_values, "ieee|fn|fnuz|merged|none");
    if (const auto overflow = reader.find("overflow"))
      spec.overflow = enum_value<Overflow>(*overflow, parse_overflow, "saturate|inf|nan");
    else if (!base || reader.has("specials"))
      spec.overflow = default_overflow(spec.specials);
  }
  if (const auto scale = reader.find("scale")) spec.scale = scale->number(0x1p-1000, 0x1p1000);
  if (const auto rounding = reader.find("rounding"))
    spec.default_rounding = enum_value<Rounding>(*rounding, parse_rounding, "rne|away|rtz|sr|sr_exact");
  if (const auto name = reader.find("name")) {
    spec.name = name->string();
  } else if (!base) {
    spec.name = "custom";
  } else if (!(spec == *base)) {
    spec.name = base->name + "_custom";
  }
  reader.finish();
  try {
    validate_format(spec);
  } catch (const std::invalid_argument& e) {
    reader.fail(e.what());
  }
  return spec;
}

}  // namespace

FormatSpec format_from_json(const lpt::JsonReader& reader) {
  if (reader.json().is_string()) return preset_or_fail(reader);
  if (!reader.json().is_object())
    reader.fail(std::string("expected a format name or a format object, got ") + reader.json().type_name());
  return descriptor_from_json(reader);
}

void from_json(const lpt::JsonReader& reader, FormatSpec& spec) { spec = format_from_json(reader); }

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
