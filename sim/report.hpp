// Turns the chip's measurements into the run report: per layer and phase, per
// phase, and totals (docs/report-schema.md describes every field).
#pragma once

#include <array>
#include <map>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/core/stats.hpp"
#include "models/energy/energy_model.hpp"
#include "sim/config.hpp"
#include "sim/fidelity.hpp"
#include "sim/optimizer_report.hpp"
#include "sim/reference_run.hpp"
#include "sim/mapping.hpp"
#include "sim/trace.hpp"
#include "sim/workload.hpp"

namespace lpt {

const char* to_string(core::StallCause cause);

// Cycles and activity of one group of steps (a layer's phase, a whole phase,
// or the whole run): every counter of models/core/counters.hpp aggregated over
// the group's steps and cores (cycle counters as means over cores, so busy +
// stalls == cycles; the others as sums), and its roofline bound.
struct Activity {
  std::uint64_t cycles = 0;
  std::array<double, core::kCounters> means{};          // Aggregate::kMeanOverCores counters
  std::array<std::uint64_t, core::kCounters> sums{};    // Aggregate::kSum counters
  std::vector<std::uint64_t> macs_by_datapath;          // indexed as RunReport::datapaths
  double peak_macs = 0;  // what the arrays could have done in these cycles at the formats used
  std::size_t steps = 0;
  // Roofline: bound_cycles sums each step's bound (its slowest resource);
  // `bound` sums each resource's time over the steps, to tell which dominates.
  double bound_cycles = 0;
  Bound bound;
  energy::EnergyBreakdown energy;  // at the run's operating point (models/energy)

  std::uint64_t sum(core::Counter c) const { return sums[static_cast<std::size_t>(c)]; }
  double mean(core::Counter c) const { return means[static_cast<std::size_t>(c)]; }
  std::uint64_t macs() const { return sum(core::Counter::kMacs); }
  double mac_utilisation() const { return peak_macs > 0 ? static_cast<double>(macs()) / peak_macs : 0; }
  // How close the group came to its bound: bound_cycles / cycles (1 = at the bound).
  double fraction_of_bound() const { return cycles ? bound_cycles / static_cast<double>(cycles) : 0; }
  void merge(const Activity& other);
  void add(const core::StepStats& step, const StepInfo& info, std::int64_t array_pes,
           const energy::EnergyBreakdown& step_energy);
};

struct LayerPhaseRow {
  std::size_t layer = 0;
  std::string name, type;
  Phase phase = Phase::kFwd;
  std::string tiling;    // tile shapes of the GEMMs, ';'-separated
  std::string datapath;  // the GEMMs' datapaths (GemmDatapath::label), ';'-separated
  // A layer whose work fusion moved into a GEMM layer has one row, with no
  // activity of its own, naming that layer (its cost is in that layer's rows).
  std::string fused_into;
  Activity activity;
};

// What a step does, for the time split of the summary.
// kCommunication: the on-chip reduction of a k-split GEMM's partial sums;
// kCollective: a chip-to-chip all-reduce, its cycles the part not hidden.
enum class StepKind { kGemm, kElementwise, kUpdate, kCommunication, kCollective };
inline constexpr std::array<StepKind, 5> kAllStepKinds = {StepKind::kGemm, StepKind::kElementwise,
                                                          StepKind::kUpdate, StepKind::kCommunication,
                                                          StepKind::kCollective};
const char* to_string(StepKind kind);

// A shared resource's load over the run: bytes / (bandwidth x run cycles).
struct ResourceUse {
  std::string name, kind;
  std::uint64_t bytes = 0;
  double utilisation = 0;
};

// One program step's time and energy, in program order (a power trace).
struct StepRecord {
  std::string label;  // e.g. "conv1/fwd/Y=X*W"
  std::uint64_t cycles = 0;
  double energy_pj = 0;
};

// Peak power is the highest mean power over this much simulated time.
inline constexpr double kPeakPowerWindowSeconds = 10e-6;

// One bucket's gradient all-reduce on a system of chips (on the reported chip).
struct CollectiveRecord {
  std::string label;
  std::vector<std::pair<std::size_t, std::uint64_t>> layers;  // (layer, gradient elements)
  std::uint64_t elements = 0, bytes = 0;  // per chip, in the gradient format
  std::uint64_t sent_elements = 0;        // all-reduced: all, or CLT-k's k
  std::uint64_t start_cycle = 0, end_cycle = 0;
  std::uint64_t exposed_cycles = 0;  // the cores' mean wait for it
  std::uint64_t rounds = 0;
  std::uint64_t link_bytes = 0;  // sent by the chip
  std::uint64_t dram_bytes = 0, sfu_ops = 0;  // the chip's reads and writes, and its adds
  std::uint64_t cycles() const { return end_cycle - start_cycle; }
};

// The reference runs of a system's run (sim/reference_run), or why one failed.
struct References {
  std::optional<ReferenceTiming> one_chip;  // at the whole batch
  std::optional<ReferenceTiming> dense;     // the same system without compression
  std::vector<std::string> errors;
};

// A data-parallel run on a system of chips.
struct SystemReport {
  core::SystemParams params;
  std::string algorithm, gradient_format;
  std::int64_t global_batch = 0;
  bool mirrored = false;  // one chip simulated for all
  int reported_chip = 0;
  std::vector<std::uint64_t> chip_cycles;
  std::vector<CollectiveRecord> collectives;
  References references;

  std::uint64_t communication_cycles() const;  // sum over buckets (they run one after another)
  std::uint64_t exposed_cycles() const;
  std::uint64_t link_bytes() const;
  std::uint64_t bytes() const;  // every bucket's gradient bytes, per chip
};

struct RunReport {
  std::string tool_version;
  std::string config_file, trace_file;
  nlohmann::json config;  // the resolved config
  std::string network;
  std::int64_t batch = 0;
  std::vector<Phase> phases;
  double clock_ghz = 0;
  double peak_tflops = 0;  // at the default forward operand formats
  core::ChipParams chip;   // as priced

  std::vector<LayerPhaseRow> rows;
  std::array<Activity, kPhaseCount> per_phase;  // indexed by Phase
  std::array<Activity, kAllStepKinds.size()> per_kind;   // indexed by StepKind
  Activity total;
  std::vector<ResourceUse> resources;
  std::vector<core::Datapath> datapaths;  // of the program, for Activity::macs_by_datapath
  energy::OperatingPoint operating_point;
  std::map<std::string, double> area_mm2;  // by block
  double leakage_mw = 0;                   // the whole chip's static power
  // The highest power over any run of consecutive steps lasting at least
  // kPeakPowerWindowSeconds (the whole run if it is shorter).
  double peak_power_w = 0;
  std::vector<StepRecord> steps;
  std::string fusion;
  std::string residency;
  std::string mode = "training";  // or "inference"
  std::optional<FidelityReport> fidelity;  // unless the pass was skipped
  std::optional<SystemReport> system;      // on a system of chips
  std::optional<OptimizerReport> optimizer;  // training: the optimizer's schedule and memory
  std::optional<CompressionParams> config_compression;  // its gradients' CLT-k compression
  std::vector<std::string> layer_names;    // by layer index, the trace's

  double seconds() const { return static_cast<double>(total.cycles) / (clock_ghz * 1e9); }
  double achieved_tflops() const;
  // Achieved / peak FLOPS over a group's cycles (peak at the default forward formats).
  double fraction_of_peak(const Activity& a) const;
  double samples_per_second() const { return static_cast<double>(batch) / seconds(); }
  double total_area_mm2() const;

  // Simulator performance, not part of the golden results.
  double wall_seconds = 0;
  // Where the wall time went, stage by stage (expand, map, residency, simulate, report).
  std::vector<std::pair<std::string, double>> stage_seconds;
  std::uint64_t simulation_events = 0;
};

// A layer's phase whose SQNR is below the config's threshold, or the worst;
// or the gradient all-reduce of a system of chips (`allreduce`, phase
// kAllReduce, `layer` unused), flagged by the same rule.
struct FlaggedLayer {
  std::size_t layer = 0;
  Phase phase = Phase::kFwd;
  double sqnr_db = 0;  // NaN when no result was finite
  std::string why;     // e.g. "12.3 dB", "50% of results NaN"
  bool allreduce = false;
};
// The name a flagged entry goes by: "gradient all-reduce" for the all-reduce.
inline constexpr const char* kAllReduceFlagName = "gradient all-reduce";
std::vector<FlaggedLayer> flagged_layers(const RunReport& report);
std::optional<FlaggedLayer> worst_fidelity(const RunReport& report);
// report.json's "fidelity" section (null without the pass).
nlohmann::json fidelity_json(const RunReport& report);

RunReport build_report(const AcceleratorConfig& config, const Trace& trace,
                       const std::vector<LayerWork>& layers, const MappedProgram& mapped,
                       const core::RunStats& stats, const std::vector<Phase>& phases);

nlohmann::json to_json(const RunReport& report);
// The counters' table of docs/report-schema.md (field, CSV column, unit,
// meaning), rendered from their one declaration (models/core/counters.hpp).
std::string counter_table_markdown();
void write_layers_csv(const RunReport& report, std::ostream& out);
void write_phases_csv(const RunReport& report, std::ostream& out);
// The human summary: phases, the most expensive layers, totals.
void print_summary(const RunReport& report, std::ostream& out, std::size_t top_layers = 10);

}  // namespace lpt
