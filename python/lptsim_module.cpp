// _lptsim: the numerics library (models/numerics) and the config's precision
// policy (sim/config, sim/gemm_datapath) as a Python extension. The Python
// package lptsim (python/lptsim/__init__.py) checks dtypes and shapes and hands
// this module C-contiguous float64 / uint32 arrays; everything here works on
// those and reports bad input as ValueError naming what was expected.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "models/common/json_reader.hpp"
#include "models/numerics/datapath.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/gemm.hpp"
#include "models/numerics/random.hpp"
#include "sim/config.hpp"
#include "sim/format_json.hpp"
#include "sim/gemm_datapath.hpp"

namespace py = pybind11;
using namespace lpt;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style>;
using BitsArray = py::array_t<std::uint32_t, py::array::c_style>;

// Operand quantization in gemm() draws from streams 4i + 3, which the accumulation
// stages (stage_random: 4i + 0..2 for output i) never use.
constexpr std::uint64_t kOperandAStream = 3;
constexpr std::uint64_t kOperandBStream = 7;

// A format given as a preset name or as the JSON text of a config's format object.
num::FormatSpec parse_format(const std::string& text) {
  if (!text.empty() && text.front() == '{') {
    try {
      return num::format_from_json(JsonReader(nlohmann::json::parse(text), ""));
    } catch (const InputError& e) {
      throw py::value_error("format " + text + ": " + (e.json_path().empty() ? "" : e.json_path() + ": ") +
                            e.message());
    } catch (const nlohmann::json::exception& e) {
      throw py::value_error("format " + text + ": " + e.what());
    }
  }
  const auto spec = num::find_format(text);
  if (!spec)
    throw py::value_error("unknown format \"" + text + "\"; expected one of " + num::preset_format_names() +
                          ", or a dict describing a format (docs/numerics.md)");
  return *spec;
}

num::Format make_format(const num::FormatSpec& spec) {
  try {
    return num::Format(spec);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

// A format argument: a Format, a preset name, or a dict as a config's format object.
num::Format to_format(const py::handle& value, const char* what) {
  if (py::isinstance<num::Format>(value)) return value.cast<num::Format>();
  const bool text = py::isinstance<py::str>(value), dict = py::isinstance<py::dict>(value);
  if (text || dict) {
    try {
      return make_format(parse_format(text ? value.cast<std::string>()
                                           : py::module_::import("json").attr("dumps")(value).cast<std::string>()));
    } catch (const py::value_error& e) {
      throw py::value_error(std::string(what) + ": " + e.what());
    }
  }
  throw py::value_error(std::string(what) + ": expected a format name, a dict describing a format or an "
                        "lptsim.Format, got " + py::repr(value).cast<std::string>());
}

num::Rounding parse_rounding_name(const std::string& name, const char* what) {
  const auto rounding = num::parse_rounding(name);
  if (!rounding)
    throw py::value_error(std::string(what) + ": unknown rounding \"" + name +
                          "\"; expected one of rne, away, rtz, sr, sr_exact");
  return *rounding;
}

std::optional<num::Rounding> optional_rounding(const std::optional<std::string>& name, const char* what) {
  if (!name) return std::nullopt;
  return parse_rounding_name(*name, what);
}

void check_sr_bits(int bits) {
  if (bits < 1 || bits > num::kMaxStochasticBits)
    throw py::value_error("sr_bits: expected 1.." + std::to_string(num::kMaxStochasticBits) + ", got " +
                          std::to_string(bits));
}

// Values and bit patterns of `values` in `format`; element e of a stochastic rounding
// draws CounterRandom(seed, 0).bits(e), as `lptsim numerics convert` does for its e-th value.
py::tuple convert(const DoubleArray& values, const num::Format& target, const std::string& rounding_name,
                  std::uint64_t seed, int sr_bits, bool saturate) {
  check_sr_bits(sr_bits);
  const num::Rounding rounding = parse_rounding_name(rounding_name, "rounding");
  std::optional<num::Format> saturating;
  if (saturate) {
    num::FormatSpec spec = target.spec();
    spec.overflow = num::Overflow::kSaturate;
    saturating.emplace(make_format(spec));
  }
  const num::Format& format = saturating ? *saturating : target;
  const auto n = static_cast<std::size_t>(values.size());
  DoubleArray out_values(n);
  BitsArray out_bits(n);
  const double* in = values.data();
  double* v = out_values.mutable_data();
  std::uint32_t* b = out_bits.mutable_data();
  {
    py::gil_scoped_release unlocked;
    const num::CounterRandom random(seed, 0);
    const bool stochastic = num::is_stochastic(rounding);
    for (std::size_t e = 0; e < n; ++e) {
      // Saturation promises finite results: +-Inf clamps like any overflow (numerics.md).
      const double x = saturate && std::isinf(in[e]) ? std::copysign(std::numeric_limits<double>::max(), in[e]) : in[e];
      const num::Conversion c = format.convert(x, rounding, stochastic ? random.bits(e) : 0, sr_bits);
      v[e] = c.value;
      b[e] = c.bits;
    }
  }
  return py::make_tuple(out_values, out_bits);
}

DoubleArray decode(const BitsArray& bits, const num::Format& format) {
  const auto n = static_cast<std::size_t>(bits.size());
  DoubleArray out(n);
  const std::uint32_t* in = bits.data();
  double* v = out.mutable_data();
  const std::uint32_t mask =
      format.total_bits() == 32 ? 0xffffffffu : (std::uint32_t{1} << format.total_bits()) - 1;
  for (std::size_t e = 0; e < n; ++e) {
    if (in[e] & ~mask)
      throw py::value_error("bits[" + std::to_string(e) + "] = " + std::to_string(in[e]) + " has bits beyond the " +
                            std::to_string(format.total_bits()) + " of \"" + format.name() + "\"");
    v[e] = format.decode(in[e]);
  }
  return out;
}

num::Datapath make_datapath(const num::DatapathConfig& config) {
  try {
    return num::Datapath(config);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

num::Matrix as_matrix(const DoubleArray& array, const char* name) {
  if (array.ndim() != 2)
    throw py::value_error(std::string(name) + ": expected a 2-D array, got " + std::to_string(array.ndim()) + "-D");
  num::Matrix m(static_cast<std::size_t>(array.shape(0)), static_cast<std::size_t>(array.shape(1)));
  std::copy(array.data(), array.data() + array.size(), m.values.begin());
  return m;
}

// C = A x B on the datapath, the operands first quantized to its operand formats with
// their default roundings (values already in the formats are unchanged).
DoubleArray run_gemm(const DoubleArray& a_values, const DoubleArray& b_values, const num::Datapath& datapath,
                     bool reference) {
  const num::Matrix a = as_matrix(a_values, "a"), b = as_matrix(b_values, "b");
  if (a.cols != b.rows)
    throw py::value_error("gemm: a is " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " and b is " +
                          std::to_string(b.rows) + " x " + std::to_string(b.cols) +
                          "; expected a's columns to equal b's rows");
  num::Matrix c;
  {
    py::gil_scoped_release unlocked;
    const std::uint64_t seed = datapath.config().seed;
    const auto& fa = datapath.operand_a();
    const auto& fb = datapath.operand_b();
    const num::EncodedMatrix ea =
        num::encode_matrix(fa, a, fa.spec().default_rounding, seed, kOperandAStream, datapath.config().stochastic_bits);
    const num::EncodedMatrix eb =
        num::encode_matrix(fb, b, fb.spec().default_rounding, seed, kOperandBStream, datapath.config().stochastic_bits);
    c = reference ? num::gemm_reference(datapath, ea, eb) : num::gemm(datapath, ea, eb);
  }
  DoubleArray out({c.rows, c.cols});
  std::copy(c.values.begin(), c.values.end(), out.mutable_data());
  return out;
}

Phase parse_phase(const std::string& name) {
  if (name == "fwd") return Phase::kFwd;
  if (name == "bwd") return Phase::kBwd;
  if (name == "wgrad") return Phase::kWgrad;
  throw py::value_error("unknown phase \"" + name + "\"; expected fwd, bwd or wgrad");
}

LayerPosition parse_position(const std::string& name) {
  if (name == "first") return LayerPosition::kFirst;
  if (name == "middle") return LayerPosition::kMiddle;
  if (name == "last") return LayerPosition::kLast;
  throw py::value_error("unknown layer position \"" + name + "\"; expected first, middle or last");
}

// A config's precision policy: every (phase, position)'s datapath as the simulator
// resolves it (gemm_numerics, seeded with the config's fidelity seed as
// resolve_gemm_datapath does), the loss scale and the update's formats and rounding.
py::dict load_policy(const std::string& path, const std::vector<std::string>& overrides) {
  AcceleratorConfig config;
  try {
    ConfigDocument doc = read_config_document(path);
    for (const std::string& o : overrides) apply_override(doc, o);
    config = parse_config_document(doc);
  } catch (const InputError& e) {
    throw py::value_error(e.what());
  }
  py::dict datapaths;
  for (const char* phase : {"fwd", "bwd", "wgrad"})
    for (const char* position : {"first", "middle", "last"}) {
      const GemmPrecision& p = config.precision.for_gemm(parse_phase(phase), parse_position(position));
      datapaths[py::make_tuple(phase, position)] =
          make_datapath(gemm_numerics(p, config.chip, config.fidelity.seed));
    }
  const UpdatePrecision& u = config.precision.update;
  py::dict update;
  update["weights"] = make_format(u.weights);
  update["optimizer_state"] = make_format(u.optimizer_state);
  // The chip's stochastic rounders add `random_bits`; "nearest" is each format's own nearest.
  const auto update_rounding = [&](const num::FormatSpec& format) {
    return std::string(u.stochastic_rounding ? "sr" : num::rounding_name(format.default_rounding));
  };
  update["weights_rounding"] = update_rounding(u.weights);
  update["state_rounding"] = update_rounding(u.optimizer_state);
  update["sr_bits"] = config.chip.core.rounder.random_bits;
  update["optimizer"] = std::string(optimizer_name(u.optimizer));
  py::dict out;
  out["name"] = config.name;
  out["datapaths"] = datapaths;
  out["loss_scale"] = config.precision.loss_scale.dynamic ? py::object(py::str("dynamic"))
                                                          : py::object(py::float_(config.precision.loss_scale.factor));
  out["update"] = update;
  out["seed"] = config.fidelity.seed;
  return out;
}

std::string format_repr(const num::Format& f) {
  return "lptsim.Format(\"" + f.name() + "\", " + std::to_string(f.total_bits()) + " bits)";
}

}  // namespace

PYBIND11_MODULE(_lptsim, m) {
  m.doc() = "Bit-exact low-precision numerics of lptsim (models/numerics); use the lptsim package.";

  py::class_<num::Format>(m, "Format")
      .def(py::init([](const py::object& spec) { return to_format(spec, "format"); }), py::arg("spec"),
           "A preset name, or a dict as a config's format object ({\"base\": \"fp8_e4m3\", ...}).")
      .def_property_readonly("name", &num::Format::name)
      .def_property_readonly("bits", &num::Format::total_bits)
      .def_property_readonly("is_integer", [](const num::Format& f) { return f.spec().is_integer; })
      .def_property_readonly("signed", [](const num::Format& f) { return f.spec().has_sign; })
      .def_property_readonly("exponent_bits", [](const num::Format& f) { return f.spec().exponent_bits; })
      .def_property_readonly("mantissa_bits", [](const num::Format& f) { return f.spec().mantissa_bits; })
      .def_property_readonly("bias", [](const num::Format& f) { return f.spec().bias; })
      .def_property_readonly("radix", [](const num::Format& f) { return f.spec().radix; })
      .def_property_readonly("scale", [](const num::Format& f) { return f.spec().scale; })
      .def_property_readonly("subnormals",
                             [](const num::Format& f) { return num::subnormals_name(f.spec().subnormals); })
      .def_property_readonly("specials",
                             [](const num::Format& f) { return num::special_values_name(f.spec().specials); })
      .def_property_readonly("overflow", [](const num::Format& f) { return num::overflow_name(f.spec().overflow); })
      .def_property_readonly("default_rounding",
                             [](const num::Format& f) { return num::rounding_name(f.spec().default_rounding); })
      .def_property_readonly("max_finite", &num::Format::max_finite)
      .def_property_readonly("lowest_finite", &num::Format::lowest_finite)
      .def_property_readonly("min_positive", &num::Format::min_positive)
      .def_property_readonly("min_normal", &num::Format::min_normal)
      .def_property_readonly("has_infinity", &num::Format::has_infinity)
      .def_property_readonly("has_nan", &num::Format::has_nan)
      .def("descriptor", [](const num::Format& f) { return num::descriptor_to_json(f.spec()).dump(); },
           "Every field of the format as the JSON text of a config's format object.")
      .def("__eq__", [](const num::Format& a, const num::Format& b) { return a.spec() == b.spec(); })
      .def("__repr__", &format_repr);

  m.def("preset_names", [] {
    std::vector<std::string> names;
    for (const auto& spec : num::preset_formats()) names.push_back(spec.name);
    return names;
  });
  m.def("convert", &convert, py::arg("values"), py::arg("format"), py::arg("rounding"), py::arg("seed"),
        py::arg("sr_bits"), py::arg("saturate"));
  m.def("decode", &decode, py::arg("bits"), py::arg("format"));

  py::class_<num::Datapath>(m, "Datapath")
      .def(py::init([](const py::object& a, const py::object& b, const py::object& accumulator, int chunk_length,
                       const std::optional<std::string>& rounding, const std::optional<std::string>& inner_rounding,
                       const std::optional<std::string>& outer_rounding, const py::object& output,
                       const std::optional<std::string>& output_rounding, int stochastic_bits, std::uint64_t seed) {
             num::DatapathConfig c;
             c.operand_a = to_format(a, "a").spec();
             c.operand_b = to_format(b, "b").spec();
             c.accumulator = to_format(accumulator, "accumulator").spec();
             c.chunk_length = chunk_length;
             // `rounding` is the config's accumulation_rounding (both stages); a stage's own wins.
             c.inner_rounding = optional_rounding(inner_rounding ? inner_rounding : rounding, "inner_rounding");
             c.outer_rounding = optional_rounding(outer_rounding ? outer_rounding : rounding, "outer_rounding");
             if (!output.is_none()) c.output = to_format(output, "output").spec();
             c.output_rounding = optional_rounding(output_rounding, "output_rounding");
             c.stochastic_bits = stochastic_bits;
             c.seed = seed;
             return make_datapath(c);
           }),
           py::arg("a"), py::arg("b"), py::arg("accumulator"), py::kw_only(), py::arg("chunk_length") = 0,
           py::arg("rounding") = py::none(), py::arg("inner_rounding") = py::none(),
           py::arg("outer_rounding") = py::none(), py::arg("output") = py::none(),
           py::arg("output_rounding") = py::none(), py::arg("stochastic_bits") = 24, py::arg("seed") = 0,
           "num::DatapathConfig, validated by num::Datapath (ValueError naming the problem).")
      .def_property_readonly("a", &num::Datapath::operand_a)
      .def_property_readonly("b", &num::Datapath::operand_b)
      .def_property_readonly("accumulator", &num::Datapath::accumulator)
      .def_property_readonly("result_format", &num::Datapath::result_format)
      .def_property_readonly("output", [](const num::Datapath& d) -> std::optional<num::Format> {
        if (!d.config().output) return std::nullopt;
        return d.result_format();
      })
      .def_property_readonly("chunk_length", [](const num::Datapath& d) { return d.config().chunk_length; })
      .def_property_readonly("inner_rounding",
                             [](const num::Datapath& d) { return std::string(num::rounding_name(d.inner().rounding)); })
      .def_property_readonly("outer_rounding",
                             [](const num::Datapath& d) { return std::string(num::rounding_name(d.outer().rounding)); })
      .def_property_readonly("output_rounding", [](const num::Datapath& d) -> std::optional<std::string> {
        if (!d.config().output) return std::nullopt;
        return std::string(num::rounding_name(d.output_rounding()));
      })
      .def_property_readonly("stochastic_bits", [](const num::Datapath& d) { return d.config().stochastic_bits; })
      .def_property_readonly("seed", [](const num::Datapath& d) { return d.config().seed; })
      .def("with_seed",
           [](const num::Datapath& d, std::uint64_t seed) {
             num::DatapathConfig c = d.config();
             c.seed = seed;
             return make_datapath(c);
           },
           py::arg("seed"), "The same datapath with its stochastic stages keyed by another seed.")
      .def("__repr__", [](const num::Datapath& d) {
        const num::DatapathConfig& c = d.config();
        std::string s = "lptsim.Datapath(" + c.operand_a.name + " x " + c.operand_b.name + " -> " +
                        c.accumulator.name + " (" + std::string(num::rounding_name(d.inner().rounding));
        if (d.chunked())
          s += ", chunk " + std::to_string(c.chunk_length) + ", merge " +
               std::string(num::rounding_name(d.outer().rounding));
        s += ")";
        if (c.output)
          s += " -> " + c.output->name + " (" + std::string(num::rounding_name(d.output_rounding())) + ")";
        return s + ", seed " + std::to_string(c.seed) + ")";
      });

  m.def("gemm", &run_gemm, py::arg("a"), py::arg("b"), py::arg("datapath"), py::arg("reference"));
  m.def("load_policy", &load_policy, py::arg("path"), py::arg("overrides"));
}
