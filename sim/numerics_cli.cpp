#include "sim/numerics_cli.hpp"

#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "models/numerics/format.hpp"
#include "models/numerics/random.hpp"
#include "sim/cli_options.hpp"
#include "sim/format_json.hpp"
#include "sim/numerics_swamping.hpp"

namespace lpt {
namespace po = boost::program_options;
using num::Format;
using num::FormatSpec;

namespace {

// Bad usage or input: the message goes to err and the command exits with 2.
struct UsageError {
  std::string message;
};

// A preset name, or a JSON object describing a custom format (see sim/format_json.hpp).
FormatSpec parse_format_argument(const std::string& text, const std::string& option) {
  if (!text.empty() && text.front() == '{') {
    try {
      return num::format_from_json(JsonReader(parse_json_text(text, option), ""));
    } catch (const InputError& e) {
      throw UsageError{option + ": " + (e.json_path().empty() ? "" : e.json_path() + ": ") + e.message()};
    }
  }
  const auto spec = num::find_format(text);
  if (!spec)
    throw UsageError{option + ": unknown format " + quoted_excerpt(text) + "; expected one of " + num::preset_format_names() +
                     ", or a JSON object describing a format"};
  return *spec;
}

// Shortest decimal that reads back as the same double.
std::string decimal(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string hexfloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%a", value);
  return buffer;
}

std::string hex_bits(std::uint32_t bits, int total_bits) {
  std::ostringstream text;
  text << "0x" << std::hex << std::setfill('0') << std::setw((total_bits + 3) / 4) << bits;
  return text.str();
}

std::string trim(const std::string& line) {
  const auto first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = line.find_last_not_of(" \t\r");
  return line.substr(first, last - first + 1);
}

// 0b0111_1011, 0x7b or 123: a code of a format with `total_bits` bits.
std::optional<std::uint32_t> parse_bit_pattern(const std::string& text, int total_bits, std::string& problem) {
  std::string digits;
  for (char c : text)
    if (c != '_') digits += c;
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
    base = 2;
    digits = digits.substr(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits = digits.substr(2);
  }
  std::uint64_t value = 0;
  const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || result.ec != std::errc() || result.ptr != digits.data() + digits.size()) {
    problem = "not a bit pattern (expected 0b..., 0x... or a decimal integer)";
    return std::nullopt;
  }
  if (value >> total_bits) {
    problem = "does not fit in " + std::to_string(total_bits) + " bits";
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

// Decimal, C99 hex-float, inf or nan: the nearest double.
std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

int run_guarded(std::string_view command, std::ostream& err, const auto& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    err << "lptsim numerics " << command << ": " << e.message << "\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    err << "lptsim numerics " << command << ": " << e.what() << "\n";
    return 2;
  }
}

nlohmann::json format_summary(const Format& format) {
  const FormatSpec& spec = format.spec();
  nlohmann::json json;
  json["descriptor"] = num::descriptor_to_json(spec);
  json["name"] = spec.name;
  json["bits"] = format.total_bits();
  json["encodings"] = format.encoding_count();
  json["max"] = hexfloat(format.max_finite());
  json["lowest"] = hexfloat(format.lowest_finite());
  json["min_normal"] = hexfloat(format.min_normal());
  json["min_positive"] = hexfloat(format.min_positive());
  return json;
}

std::string layout(const FormatSpec& spec) {
  if (spec.is_integer) return "int" + std::to_string(spec.total_bits());
  return std::to_string(spec.has_sign ? 1 : 0) + "-" + std::to_string(spec.exponent_bits) + "-" +
         std::to_string(spec.mantissa_bits);
}

}  // namespace

int run_numerics_formats(const std::vector<std::string>& args, std::istream&, std::ostream& out, std::ostream& err) {
  return run_guarded("formats", err, [&] {
    po::options_description options("Options");
    options.add_options()("help,h", "show this help")("json", "one JSON object per line");
    po::variables_map values;
    if (auto code = parse_command_line("numerics formats",
                                       "Usage: lptsim numerics formats [--json]\n"
                                       "Lists every preset format: layout (sign-exponent-mantissa), bias, radix,\n"
                                       "special values, subnormals, overflow, default rounding, range, encodings.",
                                       options, nullptr, args, values, out, err))
      return *code;
    const bool json = values.count("json") > 0;
    // Columns are padded to their width plus one space; ranges as exact hex-floats.
    const auto row = [&](const std::vector<std::string>& cells) {
      static const int widths[] = {10, 6, 4, 5, 8, 7, 8, 8, 15, 11, 11, 0};
      for (std::size_t i = 0; i < cells.size(); ++i)
        out << std::left << std::setw(widths[i]) << cells[i] << (i + 1 < cells.size() ? " " : "\n");
    };
    if (!json)
      row({"name", "s-e-m", "bias", "radix", "specials", "subnorm", "overflow", "rounding", "max", "min_normal",
           "min_pos", "encodings"});
    for (const auto& spec : num::preset_formats()) {
      const Format format(spec);
      if (json) {
        out << json_text(format_summary(format)) << "\n";
        continue;
      }
      const bool integer = spec.is_integer;
      row({spec.name, layout(spec), integer ? "-" : std::to_string(spec.bias), std::to_string(spec.radix),
           std::string(num::special_values_name(spec.specials)),
           integer ? "-" : std::string(num::subnormals_name(spec.subnormals)),
           std::string(num::overflow_name(spec.overflow)), std::string(num::rounding_name(spec.default_rounding)),
           hexfloat(format.max_finite()), hexfloat(format.min_normal()), hexfloat(format.min_positive()),
           std::to_string(format.encoding_count())});
    }
    return 0;
  });
}

int run_numerics_convert(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                         std::ostream& err) {
  return run_guarded("convert", err, [&] {
    po::options_description options("Options");
    options.add_options()
        ("help,h", "show this help")
        ("to", po::value<std::string>()->required(), "target format: a preset name or a JSON descriptor")
        ("from", po::value<std::string>(), "read bit patterns of this format instead of numbers")
        ("round", po::value<std::string>(), "rne|away|rtz|sr|sr_exact (default: the target's own)")
        ("sr-bits", po::value<int>()->default_value(num::kMaxStochasticBits), "random bits for --round sr (1..64)")
        ("seed", po::value<std::uint64_t>()->default_value(0), "seed of the stochastic rounding (line i uses draw i)")
        ("saturate", "finite results: overflow and +-Inf become +-max finite (NaN stays NaN)")
        ("json", "one JSON object per line");
    po::variables_map values;
    if (auto code = parse_command_line("numerics convert",
        "Usage: lptsim numerics convert --to FMT [--from FMT] [--round MODE] [--sr-bits R] [--seed S]\n"
        "                               [--saturate] [--json]  < values\n"
        "Reads one value per line: a decimal or C99 hex-float (0x1.8p-3), read as the nearest double;\n"
        "with --from, a bit pattern of that format (0b0111_1011, 0x7b, 123). Prints the encoded bits,\n"
        "the value as hex-float and decimal, and its class (normal, subnormal, zero, inf, nan, saturated,\n"
        "invalid: NaN into a format without NaN, which gives +0). docs/numerics.md has the rules.",
        options, nullptr, args, values, out, err))
      return *code;

    FormatSpec target_spec = parse_format_argument(values["to"].as<std::string>(), "--to");
    const bool saturate = values.count("saturate") > 0;
    if (saturate) target_spec.overflow = num::Overflow::kSaturate;
    const Format target(target_spec);
    std::optional<Format> source;
    if (values.count("from")) source.emplace(parse_format_argument(values["from"].as<std::string>(), "--from"));
    num::Rounding rounding = target_spec.default_rounding;
    if (values.count("round")) {
      const auto parsed = num::parse_rounding(values["round"].as<std::string>());
      if (!parsed) throw UsageError{"--round: expected rne|away|rtz|sr|sr_exact"};
      rounding = *parsed;
    }
    const int sr_bits = values["sr-bits"].as<int>();
    if (sr_bits < 1 || sr_bits > num::kMaxStochasticBits) throw UsageError{"--sr-bits: expected 1..64"};
    const num::CounterRandom random(values["seed"].as<std::uint64_t>(), /*stream=*/0);
    const bool json = values.count("json") > 0;

    int status = 0;
    std::uint64_t line_number = 0, value_index = 0;
    std::string line;
    while (std::getline(in, line)) {
      ++line_number;
      const std::string text = trim(line);
      if (text.empty() || text.front() == '#') continue;
      double input;
      if (source) {
        std::string problem;
        const auto bits = parse_bit_pattern(text, source->total_bits(), problem);
        if (!bits) {
          err << "lptsim numerics convert: line " << line_number << ": \"" << text << "\" " << problem << "\n";
          status = 2;
          continue;
        }
        input = source->decode(*bits);
      } else {
        const auto number = parse_number(text);
        if (!number) {
          err << "lptsim numerics convert: line " << line_number << ": \"" << text
              << "\" is not a number (decimal, hex-float, inf or nan)\n";
          status = 2;
          continue;
        }
        input = *number;
      }
      // --saturate promises finite results in every format, as formats without Inf give
      // anyway: +-Inf converts as the largest double of its sign, so that it clamps like
      // any overflow, whether or not the target has an Inf code.
      const double converted =
          saturate && std::isinf(input) ? std::copysign(std::numeric_limits<double>::max(), input) : input;
      const num::Conversion c = target.convert(converted, rounding, random.bits(value_index++), sr_bits);
      const std::string cls = c.flags.saturated ? "saturated"
                              : c.flags.invalid ? "invalid"
                                                : std::string(num::value_class_name(target.classify(c.bits)));
      if (json) {
        nlohmann::json record = {{"input", text},
                                 {"bits", hex_bits(c.bits, target.total_bits())},
                                 {"value", hexfloat(c.value)},
                                 {"decimal", decimal(c.value)},
                                 {"class", cls},
                                 {"inexact", c.flags.inexact},
                                 {"overflow", c.flags.overflow},
                                 {"underflow", c.flags.underflow},
                                 {"invalid", c.flags.invalid}};
        if (source) record["input_value"] = hexfloat(input);
        out << json_text(record) << "\n";
      } else {
        out << text << "\t" << hex_bits(c.bits, target.total_bits()) << "\t" << hexfloat(c.value) << "\t"
            << decimal(c.value) << "\t" << cls << "\n";
      }
    }
    return status;
  });
}

const std::vector<NumericsSubcommand>& numerics_subcommands() {
  static const std::vector<NumericsSubcommand> table = {
      {"formats", "list the preset number formats with their parameters and ranges", run_numerics_formats},
      {"convert", "round numbers (or re-encode bit patterns) into a format, one per stdin line",
       run_numerics_convert},
      {"swamping", "error of long low-precision sums per accumulator, chunk length and rounding (CSV + plot)",
       run_numerics_swamping},
  };
  return table;
}

int run_numerics_command(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                         std::ostream& err) {
  const auto print_usage = [](std::ostream& stream) {
    stream << "Usage: lptsim numerics SUBCOMMAND [options]   (SUBCOMMAND --help for its options)\n\n";
    for (const auto& sub : numerics_subcommands())
      stream << "  " << std::left << std::setw(10) << sub.name << sub.help << "\n";
  };
  if (args.empty()) {
    print_usage(err);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(out);
    return 0;
  }
  for (const auto& sub : numerics_subcommands())
    if (sub.name == args[0]) return sub.run(std::vector<std::string>(args.begin() + 1, args.end()), in, out, err);
  err << "lptsim numerics: unknown subcommand \"" << args[0] << "\"\n";
  print_usage(err);
  return 2;
}

}  // namespace lpt
