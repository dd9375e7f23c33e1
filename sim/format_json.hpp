// Number formats in configs: a preset name, or an object describing a custom format.
//
//   "fp8_e4m3"
//   {"base": "fp8_e4m3", "overflow": "saturate"}                  (a preset, changed)
//   {"name": "e3m4", "exponent_bits": 3, "mantissa_bits": 4, "bias": 3,
//    "specials": "fn", "overflow": "nan"}                            (from scratch)
//   {"kind": "integer", "bits": 8, "scale": 0.125}
//
// The object's keys and defaults are declared in format_json.cpp's schema and
// rendered in docs/config-reference.md.
#pragma once

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/common/param_schema.hpp"
#include "models/numerics/format.hpp"

namespace lpt::num {

// Throws lpt::InputError at the reader's path for unknown names, unknown keys, bad values
// and impossible descriptors.
FormatSpec format_from_json(const lpt::JsonReader& reader);
void from_json(const lpt::JsonReader& reader, FormatSpec& spec);
// The reference section of format objects (their keys are declared once, in a
// param::Schema): one section, whatever the path of the key that takes one.
void describe_format_object(const std::string& path, param::ObjectDocs& docs);

// A preset is written as its name; anything else as a full descriptor object.
void to_json(nlohmann::json& json, const FormatSpec& spec);
// Every field of the descriptor, presets included (reads back to the same spec).
nlohmann::json descriptor_to_json(const FormatSpec& spec);

}  // namespace lpt::num
