// SCALE-Sim topology import: lets users reuse their SCALE-Sim topology CSVs
// (Samajdar et al., "A Systematic Methodology for Characterizing Scalability
// of DNN Accelerators using SCALE-Sim", ISPASS 2020) as lptsim traces.
//
// Two forms, told apart by the header line:
//  - convolution: "Layer name, IFMAP Height, IFMAP Width, Filter Height,
//    Filter Width, Channels, Num Filter, Strides[, Stride width]". SCALE-Sim has
//    no padding (its IFMAP is the padded input) but counts a partial window at
//    the far edge; rows become conv2d layers padded just enough to give
//    SCALE-Sim's output size and MAC count. Rows whose name contains "DP" are SCALE-Sim's depthwise layers
//    (Num Filter filters per input channel) and become depthwise_conv2d with
//    channel_multiplier = Num Filter.
//  - GEMM: "Layer, M, N, K": an (M x K)·(K x N) product with a K x N weight,
//    imported as a linear layer with tokens = M.
// Fields are comma separated; a trailing comma, surrounding blanks, blank lines
// and "#" comments are allowed. SCALE-Sim topologies describe one sample, so
// the trace has batch 1 (`lptsim run --batch` scales it).
#pragma once

#include <filesystem>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "sim/trace.hpp"

namespace lpt {

// Throws InputError naming the file and "line N" for a malformed header or row.
Trace import_scalesim_csv(const std::filesystem::path& file);

// The same from a stream; `file` and `network` label errors and the trace.
Trace import_scalesim_csv(std::istream& in, const std::string& file, const std::string& network);

// Writes a trace as JSON with one layer per line, like the shipped traces.
void write_trace_json(const Trace& trace, std::ostream& out);

// The `import-scalesim` subcommand (`args` are the words after it):
// FILE.csv [--out TRACE.json] [--batch N]; the trace goes to --out or `out`.
// Returns 0, or 2 for bad usage or input (message on `err`).
int run_import_scalesim(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace lpt
