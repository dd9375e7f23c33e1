// Number formats in configs: a preset name, or an object describing a custom format.
//
//   "fp8_e4m3"
//   {"base": "fp8_e4m3", "overflow": "saturate"}                  (a preset, changed)
//   {"name": "e3m4", "exponent_bits": 3, "mantissa_bits": 4, "bias": 3,
//    "specials": "fn", "overflow": "nan"}                            (from scratch)
//   {"kind": "integer", "bits": 8, "scale": 0.125}
//
// Object keys: base, name, kind (float|integer), signed, exponent_bits, mantissa_bits,
// bias, radix, subnormals (gradual|flush|normal), specials (ieee|fn|fnuz|merged|none),
// overflow (saturate|inf|nan), rounding (rne|away|rtz|sr|sr_exact), scale; integers take
// bits instead of exponent_bits/mantissa_bits/bias/radix/subnormals/specials/overflow.
// Without a base: bias defaults to the IEEE 2^(e-1) - 1, specials to ieee (floats),
// overflow to what the specials allow (inf, else nan, else saturate), rounding to rne.
#pragma once

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/numerics/format.hpp"

namespace lpt::num {

// Throws lpt::InputError at the reader's path for unknown names, unknown keys, bad values
// and impossible descriptors.
FormatSpec format_from_json(const lpt::JsonReader& reader);
void from_json(const lpt::JsonReader& reader, FormatSpec& spec);

// A preset is written as its name; anything else as a full descriptor object.
void to_json(nlohmann::json& json, const FormatSpec& spec);
// Every field of the descriptor, presets included (reads back to the same spec).
nlohmann::json descriptor_to_json(const FormatSpec& spec);

}  // namespace lpt::num
