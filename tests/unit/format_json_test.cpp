// Formats in configs: preset names and custom descriptors (sim/format_json.*).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sim/format_json.hpp"

namespace lpt::num {
namespace {

FormatSpec parse(const nlohmann::json& json) { return format_from_json(lpt::JsonReader(json, "/format")); }

// The InputError's path and message, for asserting on both.
std::pair<std::string, std::string> error_of(const nlohmann::json& json) {
  try {
    parse(json);
  } catch (const lpt::InputError& e) {
    return {e.json_path(), e.message()};
  }
  return {"", "no error"};
}

TEST(FormatJson, PresetNamesGiveThePreset) {
  for (const auto& preset : preset_formats()) EXPECT_EQ(parse(preset.name), preset) << preset.name;
}

TEST(FormatJson, UnknownNameListsThePresets) {
  const auto [path, message] = error_of("fp8_e4m4");
  EXPECT_EQ(path, "/format");
  EXPECT_NE(message.find("unknown format \"fp8_e4m4\""), std::string::npos) << message;
  EXPECT_NE(message.find("hfp8_e4m3"), std::string::npos) << message;
  EXPECT_EQ(error_of(42).second.find("expected a format name or a format object"), 0u) << error_of(42).second;
}

TEST(FormatJson, BaseWithOverrides) {
  const FormatSpec spec = parse({{"base", "fp8_e4m3"}, {"overflow", "saturate"}});
  FormatSpec expected = *find_format("fp8_e4m3");
  expected.overflow = Overflow::kSaturate;
  expected.name = "fp8_e4m3_custom";
  EXPECT_EQ(spec, expected);
  // Unchanged base keeps its name; a given name wins.
  EXPECT_EQ(parse({{"base", "bf16"}}), *find_format("bf16"));
  EXPECT_EQ(parse({{"base", "bf16"}, {"name", "mine"}, {"rounding", "sr"}}).name, "mine");
  // Changing the specials of a base re-derives the overflow it allows.
  EXPECT_EQ(parse({{"base", "fp8_e4m3"}, {"specials", "none"}}).overflow, Overflow::kSaturate);
}

TEST(FormatJson, CustomFloatFromScratchHasIeeeDefaults) {
  const FormatSpec spec = parse({{"name", "e3m4"}, {"exponent_bits", 3}, {"mantissa_bits", 4}});
  EXPECT_EQ(spec.bias, 3);
  EXPECT_EQ(spec.specials, SpecialValues::kIeee);
  EXPECT_EQ(spec.overflow, Overflow::kInfinity);
  EXPECT_EQ(spec.default_rounding, Rounding::kNearestEven);
  EXPECT_EQ(Format(spec).max_finite(), 15.5);
  // QPyTorch-like E5M2: the top binade finite, saturating (numerics.md: max 114688).
  const FormatSpec qpytorch = parse({{"exponent_bits", 5}, {"mantissa_bits", 2}, {"specials", "none"},
                                     {"rounding", "away"}});
  EXPECT_EQ(Format(qpytorch).max_finite(), 114688);
  EXPECT_EQ(qpytorch.overflow, Overflow::kSaturate);
}

TEST(FormatJson, CustomIntegers) {
  const FormatSpec spec = parse({{"kind", "integer"}, {"bits", 6}, {"scale", 0.125}});
  EXPECT_TRUE(spec.is_integer);
  EXPECT_EQ(spec.total_bits(), 6);
  EXPECT_EQ(Format(spec).max_finite(), 31 * 0.125);
  const FormatSpec uint4 = parse({{"base", "int4"}, {"signed", false}});
  EXPECT_EQ(uint4.total_bits(), 4);
  EXPECT_EQ(Format(uint4).max_finite(), 15);
}

TEST(FormatJson, BadValuesNameTheirPath) {
  EXPECT_EQ(error_of({{"exponent_bits", 4}}).first, "/format/mantissa_bits");
  EXPECT_EQ(error_of({{"exponent_bits", 4}, {"mantissa_bits", "3"}}).first, "/format/mantissa_bits");
  EXPECT_EQ(error_of({{"exponent_bits", 40}, {"mantissa_bits", 3}}).first, "/format/exponent_bits");
  EXPECT_EQ(error_of({{"base", "fp16"}, {"overflow", "wrap"}}).first, "/format/overflow");
  EXPECT_NE(error_of({{"base", "fp16"}, {"overflow", "wrap"}}).second.find("saturate|inf|nan"), std::string::npos);
  EXPECT_EQ(error_of({{"base", "nope"}}).first, "/format/base");
  EXPECT_EQ(error_of({{"base", "fp16"}, {"rounding", "nearest"}}).first, "/format/rounding");
  EXPECT_EQ(error_of({{"base", "int8"}, {"kind", "float"}}).first, "/format/kind");
}

TEST(FormatJson, UnknownAndForeignKeysAreRejected) {
  const auto [path, message] = error_of({{"base", "fp16"}, {"mantisa_bits", 3}});
  EXPECT_EQ(path, "/format/mantisa_bits");
  EXPECT_NE(message.find("mantissa_bits"), std::string::npos) << message;
  // An integer has no exponent.
  EXPECT_EQ(error_of({{"kind", "integer"}, {"bits", 8}, {"exponent_bits", 2}}).first, "/format/exponent_bits");
}

TEST(FormatJson, ImpossibleDescriptorsFailAtTheObject) {
  const auto [path, message] = error_of({{"exponent_bits", 4}, {"mantissa_bits", 3}, {"radix", 4}});
  EXPECT_EQ(path, "/format");
  EXPECT_NE(message.find("radix 4"), std::string::npos) << message;
  EXPECT_NE(error_of({{"base", "fp8_e4m3"}, {"overflow", "inf"}}).second.find("Inf code"), std::string::npos);
  EXPECT_NE(error_of({{"base", "fp8_e4m3"}, {"scale", 3}}).second.find("power of two"), std::string::npos);
  EXPECT_EQ(error_of({{"base", "fp8_e4m3"}, {"scale", 3}}).first, "/format");
}

TEST(FormatJson, ToJsonRoundTrips) {
  for (const auto& preset : preset_formats()) {
    nlohmann::json json = preset;
    EXPECT_EQ(json, preset.name);
    EXPECT_EQ(parse(json), preset);
  }
  FormatSpec custom = *find_format("dlfloat16");
  custom.name = "dlfloat_sat";
  custom.overflow = Overflow::kSaturate;
  custom.scale = 0.5;
  nlohmann::json json = custom;
  EXPECT_TRUE(json.is_object());
  EXPECT_EQ(json["overflow"], "saturate");
  EXPECT_EQ(parse(json), custom);
  FormatSpec integer = *find_format("int8");
  integer.name = "int6";
  integer.mantissa_bits = 5;
  json = integer;
  EXPECT_EQ(json["bits"], 6);
  EXPECT_EQ(parse(json), integer);
  // The full descriptor of a preset reads back to the preset.
  for (const auto& preset : preset_formats()) EXPECT_EQ(parse(descriptor_to_json(preset)), preset) << preset.name;
}

}  // namespace
}  // namespace lpt::num
