#include "sim/trace_info.hpp"


#include <algorithm>
#include <cstdio>
#include <ostream>

#include "sim/workload.hpp"
#include "sim/cli_options.hpp"

namespace lpt {

namespace {

void accumulate(LayerInfo& sum, const LayerInfo& layer) {
  sum.fwd_macs += layer.fwd_macs;
  sum.bwd_macs += layer.bwd_macs;
  sum.wgrad_macs += layer.wgrad_macs;
  sum.parameters += layer.parameters;
  sum.activation_elements += layer.activation_elements;
}

// 4089184256 -> "4.089 G": totals are read by people comparing with papers.
std::string engineering(double value) {
  const char* units[] = {"", " k", " M", " G", " T", " P"};
  int unit = 0;
  while (value >= 1000.0 && unit < 5) value /= 1000.0, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f%s" : "%.3f%s", value, units[unit]);
  return text;
}

std::string padded(const std::string& s, std::size_t width, bool left_align) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return left_align ? s + fill : fill + s;
}

nlohmann::json layer_json(const LayerInfo& l, int element_bytes) {
  return {{"name", l.name},
          {"type", l.type},
          {"fwd_macs", l.fwd_macs},
          {"bwd_macs", l.bwd_macs},
          {"wgrad_macs", l.wgrad_macs},
          {"parameters", l.parameters},
          {"activation_elements", l.activation_elements},
          {"activation_bytes", l.activation_elements * element_bytes}};
}


}  // namespace

TraceInfo compute_trace_info(const Trace& trace) {
  TraceInfo info;
  info.network = trace.network;
  info.source = trace.source;
  info.batch = trace.batch;
  info.total.name = "total";
  for (const LayerWork& work : expand_training(trace, ExpansionOptions{})) {
    LayerInfo layer;
    layer.name = work.name;
    layer.type = work.type;
    layer.fwd_macs = work.phase(Phase::kFwd).macs();
    layer.bwd_macs = work.phase(Phase::kBwd).macs();
    layer.wgrad_macs = work.phase(Phase::kWgrad).macs();
    layer.parameters = work.parameters;
    layer.activation_elements = work.output_elements;
    accumulate(info.total, layer);
    info.layers.push_back(std::move(layer));
  }
  return info;
}

void print_trace_info(const TraceInfo& info, int element_bytes, std::ostream& out) {
  std::size_t name_width = 5;
  for (const auto& l : info.layers) name_width = std::max(name_width, l.name.size());
  name_width = std::min<std::size_t>(name_width, 40);

  out << "network " << info.network << ", batch " << info.batch << "\nsource: " << info.source
      << "\nMACs are per training step (whole batch); activations are forward outputs at "
      << element_bytes << " bytes/element\n\n";
  const auto row = [&](const LayerInfo& l) {
    out << padded(l.name, name_width, true) << "  " << padded(l.type, 16, true) << " "
        << padded(std::to_string(l.fwd_macs), 16, false) << " "
        << padded(std::to_string(l.bwd_macs), 16, false) << " "
        << padded(std::to_string(l.wgrad_macs), 16, false) << " "
        << padded(std::to_string(l.parameters), 12, false) << " "
        << padded(std::to_string(l.activation_elements * element_bytes), 14, false) << "\n";
  };
  out << padded("layer", name_width, true) << "  " << padded("type", 16, true) << " "
      << padded("fwd MACs", 16, false) << " " << padded("bwd MACs", 16, false) << " "
      << padded("wgrad MACs", 16, false) << " " << padded("params", 12, false) << " "
      << padded("act. bytes", 14, false) << "\n";
  for (const auto& l : info.layers) row(l);
  row(info.total);

  const auto per_sample = [&](std::int64_t v) {
    return engineering(static_cast<double>(v) / static_cast<double>(info.batch));
  };
  const LayerInfo& t = info.total;
  out << "\nper step:   fwd " << engineering(static_cast<double>(t.fwd_macs)) << "MACs, bwd "
      << engineering(static_cast<double>(t.bwd_macs)) << "MACs, wgrad "
      << engineering(static_cast<double>(t.wgrad_macs)) << "MACs, activations "
      << engineering(static_cast<double>(t.activation_elements * element_bytes)) << "B\n"
      << "per sample: fwd " << per_sample(t.fwd_macs) << "MACs, bwd " << per_sample(t.bwd_macs)
      << "MACs, wgrad " << per_sample(t.wgrad_macs) << "MACs\n"
      << "parameters: " << t.parameters << " (" << engineering(static_cast<double>(t.parameters))
      << ")\n";
}

nlohmann::json trace_info_json(const TraceInfo& info, int element_bytes) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : info.layers) layers.push_back(layer_json(l, element_bytes));
  return {{"network", info.network},
          {"source", info.source},
          {"batch", info.batch},
          {"element_bytes", element_bytes},
          {"layers", std::move(layers)},
          {"total", layer_json(info.total, element_bytes)}};
}

int run_trace_info(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  namespace po = boost::program_options;
  const std::string usage =
      "usage: lptsim trace-info FILE [--batch N] [--element-bytes B] [--json]\n"
      "Per-layer and total MACs (FWD/BWD/WGRAD), parameters and activation bytes of a\n"
      "trace (.json) or a SCALE-Sim topology (.csv).";
  po::options_description options("options");
  options.add_options()("help,h", "show this help")
      ("file", po::value<std::string>()->required(), "the trace")
      ("batch,b", po::value<std::int64_t>(), "override the trace's batch size")
      ("element-bytes", po::value<std::int64_t>()->default_value(2),
       "bytes per stored activation element (1..16)")
      ("json", "print JSON instead of a table");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (auto code = parse_command_line("trace-info", usage, options, &positional, args, vm, out, err))
    return *code;
  const std::int64_t element_bytes = vm["element-bytes"].as<std::int64_t>();
  if (element_bytes < 1 || element_bytes > 16) {
    err << "lptsim trace-info: --element-bytes must be in [1, 16]\n";
    return kExitBadInput;
  }
  try {
    Trace trace = load_trace(vm["file"].as<std::string>());
    if (vm.count("batch")) {
      const auto batch = vm["batch"].as<std::int64_t>();
      if (batch < 1 || batch > (std::int64_t{1} << 20)) {
        err << "lptsim trace-info: --batch must be in [1, 1048576]\n";
        return kExitBadInput;
      }
      trace.batch = batch;
    }
    const TraceInfo info = compute_trace_info(trace);
    const int bytes = static_cast<int>(element_bytes);
    if (vm.count("json"))
      out << json_text(trace_info_json(info, bytes), 2) << "\n";
    else
      print_trace_info(info, bytes, out);
  } catch (const InputError& e) {
    err << "lptsim trace-info: " << e.what() << "\n";
    return kExitBadInput;
  }
  return kExitOk;
}

}  // namespace lpt
