#include "sim/scalesim_import.hpp"
#include "sim/cli_options.hpp"

#include "models/common/input_file.hpp"
#include "models/common/text.hpp"


#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

namespace lpt {

namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// One non-blank line: its 1-based number and its comma-separated fields, with
// the "#" comment and the empty field after a trailing comma removed.
struct CsvLine {
  int number = 0;
  std::vector<std::string> fields;
};

std::vector<CsvLine> read_lines(std::istream& in) {
  std::vector<CsvLine> lines;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    const auto comment = text.find('#');
    const std::string content = trim(std::string_view(text).substr(0, comment));
    if (content.empty()) continue;
    CsvLine line{number, {}};
    std::size_t start = 0;
    while (true) {
      const auto comma = content.find(',', start);
      line.fields.push_back(trim(std::string_view(content).substr(start, comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (line.fields.size() > 1 && line.fields.back().empty()) line.fields.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

enum class Form { kConv, kGemm };

class RowReader {
 public:
  RowReader(const std::string& file, const CsvLine& line) : file_(file), line_(line) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw InputError(file_, "line " + std::to_string(line_.number), message);
  }

  std::int64_t positive(std::size_t column, const char* what) const {
    const std::string& text = line_.fields[column];
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size())
      fail(std::string(what) + " (column " + std::to_string(column + 1) +
           ") must be an integer, got " + quoted_excerpt(text));
    if (value < 1 || value > (std::int64_t{1} << 31))
      fail(std::string(what) + " (column " + std::to_string(column + 1) +
           ") must be between 1 and 2^31, got " + text);
    return value;
  }

  std::string name() const {
    if (line_.fields[0].empty()) fail("empty layer name (column 1)");
    if (!is_valid_utf8(line_.fields[0]))
      fail("layer name (column 1) is not valid UTF-8: " + quoted_excerpt(line_.fields[0]));
    return line_.fields[0];
  }

  std::string where() const { return "line " + std::to_string(line_.number); }

 private:
  const std::string& file_;
  const CsvLine& line_;
};

Form header_form(const std::string& file, const CsvLine& header) {
  std::vector<std::string> columns;
  for (const auto& f : header.fields) columns.push_back(lower(f));
  const bool gemm = columns.size() == 4 && columns[1] == "m" && columns[2] == "n" &&
                    columns[3] == "k";
  if (gemm) return Form::kGemm;
  const bool conv = (columns.size() == 8 || columns.size() == 9) &&
                    columns[1].find("ifmap") != std::string::npos;
  if (conv) return Form::kConv;
  throw InputError(file, "line " + std::to_string(header.number),
                   "expected a SCALE-Sim header: \"Layer name, IFMAP Height, IFMAP Width, "
                   "Filter Height, Filter Width, Channels, Num Filter, Strides\" or "
                   "\"Layer, M, N, K\"");
}

// SCALE-Sim sizes the output ceil((H - F + S) / S): a partial window at the
// far edge still produces an output. PyTorch's floor((H + 2P - F) / S) + 1 gives
// the same size with the smallest symmetric padding covering the missing
// S - (H - F) mod S elements, so imported layers keep SCALE-Sim's MAC counts.
std::int64_t edge_padding(std::int64_t in, std::int64_t kernel, std::int64_t stride) {
  const std::int64_t remainder = (in - kernel) % stride;
  return remainder == 0 ? 0 : (stride - remainder + 1) / 2;
}

Layer conv_row(const RowReader& row, std::size_t field_count) {
  if (field_count != 8 && field_count != 9)
    row.fail("expected 8 or 9 fields (name, IFMAP height, IFMAP width, filter height, filter "
             "width, channels, num filter, stride[, stride width]), got " +
             std::to_string(field_count));
  ConvLayer c;
  const std::string name = row.name();
  c.in_h = row.positive(1, "IFMAP height");
  c.in_w = row.positive(2, "IFMAP width");
  c.kernel_h = row.positive(3, "filter height");
  c.kernel_w = row.positive(4, "filter width");
  c.in_channels = row.positive(5, "channels");
  const std::int64_t filters = row.positive(6, "num filter");
  c.stride_h = row.positive(7, "stride");
  c.stride_w = field_count == 9 ? row.positive(8, "stride width") : c.stride_h;
  if (c.kernel_h > c.in_h || c.kernel_w > c.in_w)
    row.fail("filter " + std::to_string(c.kernel_h) + "x" + std::to_string(c.kernel_w) +
             " is larger than the IFMAP " + std::to_string(c.in_h) + "x" +
             std::to_string(c.in_w));
  c.pad_h = edge_padding(c.in_h, c.kernel_h, c.stride_h);
  c.pad_w = edge_padding(c.in_w, c.kernel_w, c.stride_w);
  // SCALE-Sim splits a layer named "...DP..." into one convolution per input
  // channel, each with `filters` filters: a depthwise convolution.
  const bool depthwise = name.find("DP") != std::string::npos;
  if (depthwise) {
    c.depthwise = true;
    c.groups = c.in_channels;
    c.out_channels = c.in_channels * filters;
  } else {
    c.out_channels = filters;
  }
  return Layer{name, depthwise ? "depthwise_conv2d" : "conv2d", c};
}

Layer gemm_row(const RowReader& row, std::size_t field_count) {
  if (field_count != 4) row.fail("expected 4 fields (layer, M, N, K), got " + std::to_string(field_count));
  LinearLayer l;
  const std::string name = row.name();
  l.tokens = row.positive(1, "M");
  l.out_features = row.positive(2, "N");
  l.in_features = row.positive(3, "K");
  return Layer{name, "linear", l};
}

}  // namespace

Trace import_scalesim_csv(std::istream& in, const std::string& file, const std::string& network) {
  const std::vector<CsvLine> lines = read_lines(in);
  if (lines.empty()) throw InputError(file, "line 1", "empty SCALE-Sim topology: no header line");
  const Form form = header_form(file, lines.front());
  Trace trace;
  trace.network = network;
  trace.source = "SCALE-Sim topology " + file;
  trace.batch = 1;
  std::set<std::string> names;
  for (auto line = lines.begin() + 1; line != lines.end(); ++line) {
    const RowReader row(file, *line);
    Layer layer = form == Form::kConv ? conv_row(row, line->fields.size())
                                      : gemm_row(row, line->fields.size());
    if (!names.insert(layer.name).second) row.fail("duplicate layer name " + quoted_excerpt(layer.name));
    layer.where = row.where();
    trace.layers.push_back(std::move(layer));
  }
  if (trace.layers.empty())
    throw InputError(file, "line " + std::to_string(lines.front().number),
                     "SCALE-Sim topology has a header but no layer rows");
  return trace;
}

Trace import_scalesim_csv(const std::filesystem::path& file) {
  std::istringstream in(read_input_file(file));
  return import_scalesim_csv(in, file.string(), file.stem().string());
}

void write_trace_json(const Trace& trace, std::ostream& out) {
  out << "{\n  \"network\": " << json_text(trace.network)
      << ",\n  \"source\": " << json_text(trace.source)
      << ",\n  \"batch\": " << trace.batch << ",\n  \"layers\": [\n";
  for (std::size_t i = 0; i < trace.layers.size(); ++i) {
    // Name and type first, as people write them; the other keys in to_json's order.
    nlohmann::json fields = trace.layers[i];
    out << "    {\"name\": " << json_text(fields["name"]) << ", \"type\": " << json_text(fields["type"]);
    fields.erase("name");
    fields.erase("type");
    for (const auto& [key, value] : fields.items())
      out << ", " << json_text(key) << ": " << json_text(value);
    out << (i + 1 < trace.layers.size() ? "},\n" : "}\n");
  }
  out << "  ]\n}\n";
}

int run_import_scalesim(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
  namespace po = boost::program_options;
  const std::string usage =
      "usage: lptsim import-scalesim FILE.csv [--out TRACE.json] [--batch N]\n"
      "Converts a SCALE-Sim topology (convolution or \"Layer, M, N, K\" GEMM form) into an\n"
      "lptsim trace (docs/traces.md); without --out the trace is printed.";
  po::options_description options("options");
  options.add_options()("help,h", "show this help")
      ("file", po::value<std::string>()->required(), "the SCALE-Sim topology")
      ("out,o", po::value<std::string>(), "write the trace here instead of printing it")
      ("batch,b", po::value<std::int64_t>()->default_value(1), "batch size of the trace");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (auto code = parse_command_line("import-scalesim", usage, options, &positional, args, vm, out, err))
    return *code;
  const auto batch = vm["batch"].as<std::int64_t>();
  if (batch < 1 || batch > (std::int64_t{1} << 20)) {
    err << "lptsim import-scalesim: --batch must be in [1, 1048576]\n";
    return kExitBadInput;
  }
  try {
    Trace trace = import_scalesim_csv(std::filesystem::path(vm["file"].as<std::string>()));
    trace.batch = batch;
    if (!vm.count("out")) {
      write_trace_json(trace, out);
      return kExitOk;
    }
    const std::string out_file = vm["out"].as<std::string>();
    std::ofstream file(out_file);
    write_trace_json(trace, file);
    if (!file.flush()) throw InputError(out_file, "", "cannot write the trace");
    out << "wrote " << out_file << " (" << trace.layers.size() << " layers)\n";
  } catch (const InputError& e) {
    err << "lptsim import-scalesim: " << e.what() << "\n";
    return kExitBadInput;
  }
  return kExitOk;
}

}  // namespace lpt
