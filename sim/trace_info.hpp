// `lptsim trace-info`: what a trace asks of the hardware, before any
// simulation: per-layer and total MACs of the forward, backward-data and
// weight-gradient GEMMs (from the training workload expansion), trainable
// parameters, and the activation memory of the forward outputs.
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/trace.hpp"

namespace lpt {

struct LayerInfo {
  std::string name;
  std::string type;
  // MACs per training step (whole batch) of the GEMMs in each phase, as the
  // workload expansion places them (a matmul's dB runs in the backward pass).
  std::int64_t fwd_macs = 0, bwd_macs = 0, wgrad_macs = 0;
  std::int64_t parameters = 0;
  std::int64_t activation_elements = 0;  // forward output, whole batch
};

struct TraceInfo {
  std::string network;
  std::string source;
  std::int64_t batch = 1;
  std::vector<LayerInfo> layers;
  LayerInfo total;  // sums over the layers; name "total"
};

TraceInfo compute_trace_info(const Trace& trace);

// A fixed-width table, one row per layer, then totals per step and per sample.
// Activation bytes assume `element_bytes` per stored activation.
void print_trace_info(const TraceInfo& info, int element_bytes, std::ostream& out);
nlohmann::json trace_info_json(const TraceInfo& info, int element_bytes);

// The `trace-info` subcommand; `args` are the words after "trace-info".
// Returns 0, or 2 for bad usage or input (message on `err`).
int run_trace_info(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace lpt
