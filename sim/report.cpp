#include "sim/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "models/common/text.hpp"

namespace lpt {

const char* to_string(core::StallCause cause) {
  switch (cause) {
    case core::StallCause::kDram: return "dram";
    case core::StallCause::kInterconnect: return "interconnect";
    case core::StallCause::kScratchpad: return "scratchpad";
    case core::StallCause::kSfu: return "sfu";
    case core::StallCause::kDependency: return "dependency";
    case core::StallCause::kCommunication: return "communication";
    case core::StallCause::kCount: break;
  }
  return "?";
}

void Activity::add(const core::StepStats& step, const StepInfo& info, std::int64_t array_pes,
                   const energy::EnergyBreakdown& step_energy) {
  energy += step_energy;
  const double cores = static_cast<double>(step.cores.size());
  cycles += step.cycles;
  steps += 1;
  core::Counters total;
  for (const auto& c : step.cores) total.add(c.counters);
  // Residency is decided by the mapping, not measured by the cores.
  total[core::Counter::kOnChipReadBytes] += info.on_chip_read_bytes;
  total[core::Counter::kDramWriteAvoidedBytes] += info.avoided_write_bytes;
  for (const core::Counter c : core::all_counters()) {
    const auto i = static_cast<std::size_t>(c);
    if (core::info(c).aggregate == core::Aggregate::kMeanOverCores)
      means[i] += static_cast<double>(total.values[i]) / cores;
    else
      sums[i] += total.values[i];
  }
  if (macs_by_datapath.size() < total.macs_by_datapath.size()) macs_by_datapath.resize(total.macs_by_datapath.size());
  for (std::size_t d = 0; d < total.macs_by_datapath.size(); ++d) macs_by_datapath[d] += total.macs_by_datapath[d];
  if (info.macs_per_pe_per_cycle() > 0)
    peak_macs += static_cast<double>(step.cycles) * cores * static_cast<double>(array_pes) *
                 info.macs_per_pe_per_cycle();
  bound_cycles += info.bound.cycles();
  bound += info.bound;
}

void Activity::merge(const Activity& a) {
  cycles += a.cycles;
  for (std::size_t i = 0; i < core::kCounters; ++i) means[i] += a.means[i], sums[i] += a.sums[i];
  if (macs_by_datapath.size() < a.macs_by_datapath.size()) macs_by_datapath.resize(a.macs_by_datapath.size());
  for (std::size_t d = 0; d < a.macs_by_datapath.size(); ++d) macs_by_datapath[d] += a.macs_by_datapath[d];
  peak_macs += a.peak_macs;
  steps += a.steps;
  bound_cycles += a.bound_cycles;
  bound += a.bound;
  energy += a.energy;
}

std::uint64_t SystemReport::communication_cycles() const {
  std::uint64_t total = 0;
  for (const CollectiveRecord& c : collectives) total += c.cycles();
  return total;
}

std::uint64_t SystemReport::exposed_cycles() const {
  std::uint64_t total = 0;
  for (const CollectiveRecord& c : collectives) total += c.exposed_cycles;
  return total;
}

std::uint64_t SystemReport::bytes() const {
  std::uint64_t total = 0;
  for (const CollectiveRecord& c : collectives) total += c.bytes;
  return total;
}

std::uint64_t SystemReport::link_bytes() const {
  std::uint64_t total = 0;
  for (const CollectiveRecord& c : collectives) total += c.link_bytes;
  return total;
}

double RunReport::total_area_mm2() const {
  double total = 0;
  for (const auto& [block, mm2] : area_mm2) total += mm2;
  return total;
}

const char* to_string(StepKind kind) {
  switch (kind) {
    case StepKind::kGemm: return "gemm";
    case StepKind::kElementwise: return "elementwise";
    case StepKind::kUpdate: return "update";
    case StepKind::kCommunication: return "communication";
    case StepKind::kCollective: return "collective";
  }
  return "?";
}

namespace {

StepKind kind_of(const StepInfo& info) {
  if (info.collective) return StepKind::kCollective;
  if (info.gemm) return info.gemm->k_reduction ? StepKind::kCommunication : StepKind::kGemm;
  return info.phase == Phase::kUpdate ? StepKind::kUpdate : StepKind::kElementwise;
}

// Sets `value` at a '.'-separated path of `json`.
void set_path(nlohmann::json& json, std::string_view path, nlohmann::json value) {
  nlohmann::json* node = &json;
  for (std::size_t dot; (dot = path.find('.')) != std::string_view::npos; path.remove_prefix(dot + 1))
    node = &(*node)[std::string(path.substr(0, dot))];
  (*node)[std::string(path)] = std::move(value);
}

std::string datapath_label(const core::Datapath& d) { return d.a + " x " + d.b + " -> " + d.accumulator; }

// Operations (2 per MAC, whatever the format) per joule, in tera.
double tera_ops_per_joule(const Activity& a, double pj) {
  return pj > 0 ? 2.0 * static_cast<double>(a.macs()) / (pj * 1e-12) / 1e12 : 0.0;
}

nlohmann::json energy_json(const Activity& a, double seconds) {
  nlohmann::json dynamic, leakage;
  for (std::size_t c = 0; c < energy::kComponents; ++c) {
    const char* name = energy::to_string(static_cast<energy::Component>(c));
    dynamic[name] = a.energy.dynamic_pj[c];
    leakage[name] = a.energy.leakage_pj[c];
  }
  const double total = a.energy.total_pj(), chip = a.energy.chip_pj();
  return {{"total_pj", total},
          {"chip_pj", chip},
          {"dynamic_pj", dynamic},
          {"leakage_pj", leakage},
          {"pj_per_mac", a.macs() > 0 ? total / static_cast<double>(a.macs()) : 0.0},
          {"tflops_per_w", tera_ops_per_joule(a, total)},
          {"chip_tflops_per_w", tera_ops_per_joule(a, chip)},
          {"average_power_w", seconds > 0 ? total * 1e-12 / seconds : 0.0}};
}

nlohmann::json activity_json(const Activity& a, double clock_ghz, const std::vector<core::Datapath>& datapaths) {
  const double seconds = static_cast<double>(a.cycles) / (clock_ghz * 1e9);
  nlohmann::json out = {{"cycles", a.cycles}, {"seconds", seconds}};
  for (const core::Counter c : core::all_counters()) {
    const core::CounterInfo& counter = core::info(c);
    if (counter.aggregate == core::Aggregate::kMeanOverCores)
      set_path(out, counter.name, a.mean(c));
    else
      set_path(out, counter.name, a.sum(c));
  }
  nlohmann::json by_datapath = nlohmann::json::object();
  for (std::size_t d = 0; d < a.macs_by_datapath.size() && d < datapaths.size(); ++d)
    if (a.macs_by_datapath[d] > 0) by_datapath[datapath_label(datapaths[d])] = a.macs_by_datapath[d];
  out["macs_by_datapath"] = by_datapath;
  out["mac_utilisation"] = a.mac_utilisation();
  out["achieved_tflops"] = seconds > 0 ? 2.0 * static_cast<double>(a.macs()) / seconds / 1e12 : 0.0;
  out["steps"] = a.steps;
  out["energy"] = energy_json(a, seconds);
  out["bound"] = {{"cycles", a.bound_cycles},
                  {"fraction_achieved", a.fraction_of_bound()},
                  {"limited_by", a.bound.limited_by()},
                  {"overlapped_cycles", a.bound.cycles()},
                  {"compute_cycles", a.bound.compute_cycles},
                  {"dram_bytes", a.bound.dram_bytes},
                  {"dram_cycles", a.bound.dram_cycles},
                  {"sfu_cycles", a.bound.sfu_cycles},
                  {"rounder_cycles", a.bound.rounder_cycles}};
  return out;
}

}  // namespace

double RunReport::achieved_tflops() const {
  return 2.0 * static_cast<double>(total.macs()) / seconds() / 1e12;
}

double RunReport::fraction_of_peak(const Activity& a) const {
  if (a.cycles == 0 || peak_tflops <= 0) return 0;
  const double seconds = static_cast<double>(a.cycles) / (clock_ghz * 1e9);
  return 2.0 * static_cast<double>(a.macs()) / seconds / 1e12 / peak_tflops;
}

namespace {

// A step's activity summed over its cores, for the energy model.
energy::ActivityTotals activity_totals(const core::StepStats& step, double clock_hz) {
  core::Counters sum;
  for (const auto& c : step.cores) sum.add(c.counters);
  energy::ActivityTotals totals;
  for (std::size_t i = 0; i < core::kCounters; ++i) totals.counters[i] = static_cast<double>(sum.values[i]);
  totals.macs_by_datapath = std::move(sum.macs_by_datapath);
  totals.seconds = static_cast<double>(step.cycles) / clock_hz;
  return totals;
}

struct StepEnergy {
  double pj = 0, seconds = 0;
};

// A collective runs beside other steps: for the power window, the part of its
// energy that was not exposed goes to the steps that completed while it ran,
// by their cycles (kept on its own entry if none did).
void spread_collective_energy(const core::RunStats& stats, std::vector<StepEnergy>& steps) {
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const auto& collective = stats.steps[s].collective;
    if (!collective || collective->end_cycle <= collective->start_cycle) continue;
    double concurrent_cycles = 0;
    const auto during = [&](std::size_t t) {
      const std::uint64_t done = stats.steps[t].completion_cycle;
      return !stats.steps[t].collective && done > collective->start_cycle && done <= collective->end_cycle;
    };
    for (std::size_t t = 0; t < steps.size(); ++t)
      if (during(t)) concurrent_cycles += static_cast<double>(stats.steps[t].cycles);
    if (concurrent_cycles <= 0) continue;
    const double exposed = static_cast<double>(stats.steps[s].cycles) /
                           static_cast<double>(collective->end_cycle - collective->start_cycle);
    const double hidden_pj = steps[s].pj * (1 - std::min(1.0, exposed));
    steps[s].pj -= hidden_pj;
    for (std::size_t t = 0; t < steps.size(); ++t)
      if (during(t)) steps[t].pj += hidden_pj * static_cast<double>(stats.steps[t].cycles) / concurrent_cycles;
  }
}

// A collective step's stats split over its bucket's layers in proportion to
// their gradient elements (the last takes what rounding leaves), so that the
// parts add up to the step.
std::vector<core::StepStats> split_by_layer(const core::StepStats& step, const CollectiveStep& bucket) {
  const std::uint64_t total = std::max<std::uint64_t>(bucket.elements(), 1);
  std::vector<core::StepStats> parts(bucket.layers.size(), step);
  const auto share = [&](std::uint64_t value, std::size_t part, std::uint64_t& given) {
    const std::uint64_t v = part + 1 == parts.size()
                                ? value - given
                                : static_cast<std::uint64_t>(static_cast<long double>(value) *
                                                             bucket.layers[part].second / total);
    given += v;
    return v;
  };
  std::uint64_t given_cycles = 0;
  for (std::size_t p = 0; p < parts.size(); ++p) parts[p].cycles = share(step.cycles, p, given_cycles);
  for (std::size_t c = 0; c < step.cores.size(); ++c) {
    std::uint64_t given_core_cycles = 0;
    for (std::size_t p = 0; p < parts.size(); ++p) parts[p].cores[c].cycles = share(step.cores[c].cycles, p, given_core_cycles);
    for (const core::Counter counter : core::all_counters()) {
      std::uint64_t given = 0;
      for (std::size_t p = 0; p < parts.size(); ++p)
        parts[p].cores[c].counters[counter] = share(step.cores[c].counters[counter], p, given);
    }
  }
  return parts;
}

// The highest mean power over consecutive steps lasting at least
// kPeakPowerWindowSeconds, or over the whole run if it is shorter.
double peak_power_w(const std::vector<StepEnergy>& steps) {
  double pj = 0, seconds = 0, peak = 0;
  std::size_t first = 0;
  for (std::size_t last = 0; last < steps.size(); ++last) {
    pj += steps[last].pj, seconds += steps[last].seconds;
    // Drop leading steps while the window stays long enough.
    while (first < last && seconds - steps[first].seconds >= kPeakPowerWindowSeconds)
      pj -= steps[first].pj, seconds -= steps[first].seconds, ++first;
    if (seconds >= kPeakPowerWindowSeconds) peak = std::max(peak, pj * 1e-12 / seconds);
  }
  if (peak == 0 && seconds > 0) peak = pj * 1e-12 / seconds;  // a run shorter than the window
  return peak;
}

}  // namespace

RunReport build_report(const AcceleratorConfig& config, const Trace& trace,
                       const std::vector<LayerWork>& layers, const MappedProgram& mapped,
                       const core::RunStats& stats, const std::vector<Phase>& phases) {
  RunReport r;
  r.tool_version = LPTSIM_VERSION;
  r.config = config;
  r.network = trace.network;
  for (const Layer& layer : trace.layers) r.layer_names.push_back(layer.name);
  r.batch = trace.batch * config.chips();  // the trace is at one chip's share
  r.phases = phases;
  r.clock_ghz = config.chip.clock_ghz;
  r.chip = config.chip;
  const auto& array = config.chip.core.mac_array;
  const std::int64_t pes = array.pes();
  const GemmPrecision& fwd = config.precision.for_gemm(Phase::kFwd, LayerPosition::kMiddle);
  const int peak_rate = std::min(array.macs_per_pe_per_cycle.at(fwd.a.name),
                                 array.macs_per_pe_per_cycle.at(fwd.b.name));
  r.peak_tflops = 2.0 * config.chip.cores * static_cast<double>(pes) * peak_rate *
                  config.chip.clock_ghz * 1e9 / 1e12;
  if (config.chips() > 1) {
    r.config_compression = config.data_parallel.compression;
    r.system = SystemReport{*config.system, core::to_string(config.data_parallel.algorithm),
                            config.gradient_format().name, trace.batch * config.chips(), stats.chips_mirrored,
                            stats.reported_chip, stats.chip_cycles, {}};
  }
  r.simulation_events = stats.simulation_events;
  r.datapaths = mapped.program.datapaths;
  r.operating_point = {config.chip.clock_ghz, config.chip.voltage};
  const energy::EnergyModel model(config.chip, r.datapaths, r.operating_point,
                                  config.system ? config.system->link.pj_per_bit : 0);
  r.area_mm2 = model.area_mm2();
  r.leakage_mw = model.leakage_mw();
  const double clock_hz = config.chip.clock_ghz * 1e9;
  std::vector<StepEnergy> step_energies;

  // Rows in program order of first appearance: forward layers first, then the
  // backward pass from the last layer, then the update.
  std::map<std::pair<std::size_t, Phase>, std::size_t> row_of;
  for (std::size_t s = 0; s < mapped.steps.size(); ++s) {
    const StepInfo& info = mapped.steps[s];
    const auto key = std::make_pair(info.layer, info.phase);
    auto it = row_of.find(key);
    if (it == row_of.end()) {
      LayerPhaseRow row;
      row.layer = info.layer;
      row.name = layers[info.layer].name;
      row.type = layers[info.layer].type;
      row.phase = info.phase;
      it = row_of.emplace(key, r.rows.size()).first;
      r.rows.push_back(std::move(row));
    }
    LayerPhaseRow& row = r.rows[it->second];
    const auto append = [](std::string& list, const std::string& item) {
      if (!item.empty() && list.find(item) == std::string::npos) list += (list.empty() ? "" : ";") + item;
    };
    append(row.tiling, info.tiling());
    if (info.gemm && !info.gemm->k_reduction) append(row.datapath, info.gemm->datapath.label());
    const energy::EnergyBreakdown step_energy = model.energy(activity_totals(stats.steps[s], clock_hz));
    step_energies.push_back({step_energy.total_pj(), static_cast<double>(stats.steps[s].cycles) / clock_hz});
    r.steps.push_back({mapped.program.steps[s].label, stats.steps[s].cycles, step_energy.total_pj()});
    r.per_kind[static_cast<std::size_t>(kind_of(info))].add(stats.steps[s], info, pes, step_energy);
    if (!info.collective) {
      row.activity.add(stats.steps[s], info, pes, step_energy);
      continue;
    }
    // A collective (a bucket's all-reduce, a K-FAC exchange): a row per layer, each with its share.
    const std::vector<core::StepStats> parts = split_by_layer(stats.steps[s], *info.collective);
    for (std::size_t p = 0; p < parts.size(); ++p) {
      const std::size_t layer = info.collective->layers[p].first;
      auto at = row_of.find({layer, info.phase});
      if (at == row_of.end()) {
        LayerPhaseRow part_row;
        part_row.layer = layer;
        part_row.name = layers[layer].name;
        part_row.type = layers[layer].type;
        part_row.phase = info.phase;
        at = row_of.emplace(std::pair(layer, info.phase), r.rows.size()).first;
        r.rows.push_back(std::move(part_row));
      }
      r.rows[at->second].activity.add(parts[p], info, pes, model.energy(activity_totals(parts[p], clock_hz)));
    }
    if (stats.steps[s].collective && r.system && info.phase == Phase::kAllReduce) {
      const core::CollectiveStats& c = *stats.steps[s].collective;
      const core::Collective& work = *mapped.program.steps[s].collective;
      r.system->collectives.push_back({mapped.program.steps[s].label, info.collective->layers, work.elements,
                                       work.bytes(), work.sent_elements(), c.start_cycle, c.end_cycle,
                                       stats.steps[s].cycles, c.rounds, c.bytes_sent,
                                       c.counters[core::Counter::kDramReadBytes] +
                                           c.counters[core::Counter::kDramWriteBytes],
                                       c.counters[core::Counter::kSfuAluOps]});
    }
  }
  spread_collective_energy(stats, step_energies);
  r.peak_power_w = peak_power_w(step_energies);
  // Fused layers: a row each, after the forward row of the layer they joined.
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].fused_into) continue;
    const std::size_t producer = *layers[i].fused_into;
    LayerPhaseRow row;
    row.layer = i;
    row.name = layers[i].name;
    row.type = layers[i].type;
    row.phase = Phase::kFwd;
    row.fused_into = layers[producer].name;
    auto at = std::find_if(r.rows.begin(), r.rows.end(), [&](const LayerPhaseRow& x) {
      return x.layer == producer && x.phase == Phase::kFwd;
    });
    if (at == r.rows.end()) continue;  // the forward pass is not simulated
    while (std::next(at) != r.rows.end() && std::next(at)->layer < i && !std::next(at)->fused_into.empty()) ++at;
    r.rows.insert(std::next(at), std::move(row));
  }
  for (const auto& row : r.rows) {
    r.per_phase[static_cast<std::size_t>(row.phase)].merge(row.activity);
    r.total.merge(row.activity);
  }
  r.total.cycles = stats.total_cycles;
  for (const auto& res : stats.resources) {
    const double capacity = res.bytes_per_cycle * static_cast<double>(stats.total_cycles);
    r.resources.push_back({res.name, res.kind, res.bytes, capacity > 0 ? static_cast<double>(res.bytes) / capacity : 0});
  }
  r.fusion = to_string(config.fusion);
  r.residency = to_string(config.residency);
  return r;
}

namespace {

// SQNR for JSON, which has no infinity or NaN: null means no error at all, or
// no finite result (the NaN and overflow fractions say which).
nlohmann::json sqnr_json(double db) { return std::isfinite(db) ? nlohmann::json(db) : nlohmann::json(); }

double fraction(std::uint64_t part, std::uint64_t whole) {
  return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

nlohmann::json layer_phase_fidelity_json(const LayerPhaseFidelity& f) {
  const num::FidelityStats& s = f.result;
  if (s.count == 0) return {{"not_measured", "its GEMMs' reductions exceed fidelity/max_operand_values"}};
  return {{"sqnr_db", sqnr_json(s.sqnr_db)},
          {"gemms_not_measured", f.not_measured},
          {"relative_l2_error", s.relative_l2_error},
          {"max_abs_error", s.max_abs_error},
          {"mean_signed_error", s.mean_signed_error},
          {"outputs", s.count},
          {"result_overflow_fraction", s.fraction_overflow},
          {"result_nan_fraction", s.fraction_nan},
          {"operand_underflow_fraction", fraction(f.operands.underflow, f.operands.values)},
          {"operand_overflow_fraction", fraction(f.operands.overflow, f.operands.values)},
          {"operand_flushed_subnormal_fraction", fraction(f.operands.flushed_subnormals, f.operands.values)}};
}

// report.json's fidelity/allreduce (docs/report-schema.md).
nlohmann::json allreduce_fidelity_json(const AllReduceFidelity& a) {
  nlohmann::json out = {
      {"method", "synthetic weight gradients of `workers` workers summed in the communication format, every add "
                 "rounded to the weight-gradient accumulator, in the order of the algorithm, against the FP64 sum "
                 "(docs/fidelity.md)"},
      {"gradients", "synthetic, ASSUMED: s * (sqrt(rho) z_shared + sqrt(1 - rho) z_worker), z ~ N(0, 1), "
                    "log2 s ~ N(0, assumed_spread_binades^2), rho = assumed_correlation"},
      {"workers", a.workers},
      {"elements", a.elements},
      {"assumed_correlation", a.correlation},
      {"assumed_spread_binades", a.spread_binades},
      {"communication_format", a.communication_format},
      {"communication_rounding", a.communication_rounding},
      {"accumulator", a.accumulator_format},
      {"accumulator_rounding", a.accumulator_rounding},
      {"algorithm", a.algorithm},
      {"order", a.order},
      {"scale", a.scale}};
  if (!a.not_measured.empty()) {
    out["not_measured"] = a.not_measured;
    return out;
  }
  const num::FidelityStats total = a.total.stats(), quantization = a.quantization.stats(),
                           reduction = a.reduction.stats();
  out["sqnr_db"] = sqnr_json(total.sqnr_db);
  out["relative_l2_error"] = total.relative_l2_error;
  out["max_abs_error"] = total.max_abs_error;
  out["mean_signed_error"] = total.mean_signed_error;
  out["overflow_fraction"] = total.fraction_overflow;
  out["underflow_fraction"] = total.fraction_underflow;
  out["nan_fraction"] = total.fraction_nan;
  out["quantization_sqnr_db"] = sqnr_json(quantization.sqnr_db);
  out["reduction_sqnr_db"] = sqnr_json(reduction.sqnr_db);
  if (const auto& c = a.compression) {
    nlohmann::json steps = nlohmann::json::array();
    for (std::size_t i = 0; i < c->steps.size(); ++i) {
      const num::CltkStep& s = c->steps[i];
      steps.push_back({{"step", i},
                       {"leader", s.leader},
                       {"sqnr_db", sqnr_json(s.step.sqnr_db)},
                       {"relative_l2_error", s.step.relative_l2_error},
                       {"cumulative_sqnr_db", sqnr_json(s.cumulative.sqnr_db)},
                       {"cumulative_relative_l2_error", s.cumulative.relative_l2_error},
                       {"topk_overlap", s.topk_overlap}});
    }
    out["compression"] = {
        {"method", "ScaleCom CLT-k with error feedback (the leader of step t is worker t mod workers); the memory "
                   "update m <- (1 - beta) m + beta (a - sent) is ASSUMED (docs/fidelity.md)"},
        {"ratio", c->ratio},
        {"memory_beta", c->memory_beta},
        {"elements", c->elements},
        {"k", c->k},
        {"bytes_per_worker_per_step", c->bytes_per_worker_per_step},
        {"steps", steps},
        {"per_step_sqnr_db", sqnr_json(c->per_step.sqnr_db)},
        {"per_step_relative_l2_error", c->per_step.relative_l2_error},
        {"cumulative_sqnr_db", sqnr_json(c->cumulative.sqnr_db)},
        {"cumulative_relative_l2_error", c->cumulative.relative_l2_error},
        {"topk_overlap", c->topk_overlap}};
  }
  return out;
}

// The fidelity of each layer's phase, by (layer index, phase).
std::map<std::pair<std::size_t, Phase>, LayerPhaseFidelity> fidelity_by_row(const RunReport& r) {
  std::map<std::pair<std::size_t, Phase>, LayerPhaseFidelity> out;
  if (r.fidelity)
    for (const LayerPhaseFidelity& f : r.fidelity->layer_phases()) out.emplace(std::pair(f.layer, f.phase), f);
  return out;
}

// Why a measurement is flagged, or nothing. SQNR counts finite values only:
// NaN or overflowed `values` flag it whatever the SQNR of the others.
std::string flag_reason(const num::FidelityStats& s, double min_sqnr_db, const char* values) {
  char buffer[96];
  if (s.fraction_nan > 0 || s.fraction_overflow > 0) {
    std::snprintf(buffer, sizeof buffer, "%.0f%% of %s NaN, %.0f%% overflowed", 100 * s.fraction_nan, values,
                  100 * s.fraction_overflow);
    return buffer;
  }
  if (s.sqnr_db < min_sqnr_db) {
    std::snprintf(buffer, sizeof buffer, "%.1f dB", s.sqnr_db);
    return buffer;
  }
  return {};
}

}  // namespace

std::vector<FlaggedLayer> flagged_layers(const RunReport& r) {
  std::vector<FlaggedLayer> out;
  if (!r.fidelity) return out;
  for (const LayerPhaseFidelity& f : r.fidelity->layer_phases()) {
    const num::FidelityStats& s = f.result;
    if (s.count == 0) continue;
    const std::string why = flag_reason(s, r.fidelity->params.min_sqnr_db, "results");
    if (!why.empty()) out.push_back({f.layer, f.phase, s.sqnr_db, why});
  }
  // The gradient all-reduce, by the same rule, as its own entry.
  if (const auto& a = r.fidelity->allreduce; a && a->not_measured.empty() && a->total.count > 0) {
    const num::FidelityStats s = a->total.stats();
    const std::string why = flag_reason(s, r.fidelity->params.min_sqnr_db, "sums");
    // First, so that the summary's first few entries show it.
    if (!why.empty()) out.insert(out.begin(), FlaggedLayer{0, Phase::kAllReduce, s.sqnr_db, why, true});
  }
  return out;
}

std::optional<FlaggedLayer> worst_fidelity(const RunReport& r) {
  std::optional<FlaggedLayer> worst;
  if (!r.fidelity) return worst;
  for (const LayerPhaseFidelity& f : r.fidelity->layer_phases())
    if (f.result.count > 0 && !std::isnan(f.result.sqnr_db) && (!worst || f.result.sqnr_db < worst->sqnr_db))
      worst = {f.layer, f.phase, f.result.sqnr_db, {}};
  return worst;
}

nlohmann::json fidelity_json(const RunReport& r) {
  if (!r.fidelity) return nullptr;
  const FidelityReport& f = *r.fidelity;
  const auto layer_name = [&](std::size_t layer) { return r.layer_names.at(layer); };
  nlohmann::json out = {{"method", "each GEMM run bit-exactly on its datapath on sampled outputs, each with its full "
                                   "reduction, against FP64 on the same drawn operands (docs/fidelity.md)"},
                        {"sampled_outputs_per_gemm", f.params.sampled_outputs},
                        {"seed", f.params.seed},
                        {"max_operand_values", f.params.max_operand_values},
                        {"min_sqnr_db", f.params.min_sqnr_db},
                        {"from_cache", f.from_cache}};
  if (const auto worst = worst_fidelity(r))
    out["worst"] = {{"layer", layer_name(worst->layer)}, {"phase", to_string(worst->phase)},
                    {"sqnr_db", sqnr_json(worst->sqnr_db)}};
  out["worst_sqnr_db"] = out.contains("worst") ? out["worst"]["sqnr_db"] : nlohmann::json();
  nlohmann::json flagged = nlohmann::json::array();
  for (const FlaggedLayer& l : flagged_layers(r))
    flagged.push_back({{"layer", l.allreduce ? std::string(kAllReduceFlagName) : layer_name(l.layer)},
                       {"phase", to_string(l.phase)}, {"sqnr_db", sqnr_json(l.sqnr_db)}, {"why", l.why}});
  out["flagged"] = std::move(flagged);
  if (f.allreduce) out["allreduce"] = allreduce_fidelity_json(*f.allreduce);
  if (f.inverse) out["kfac_inverse"] = inverse_fidelity_json(*f.inverse);
  nlohmann::json gemms = nlohmann::json::array();
  for (const GemmFidelity& g : f.gemms) {
    const num::FidelityStats s = g.result.stats();
    if (!g.not_measured.empty()) {
      gemms.push_back({{"layer", layer_name(g.layer)}, {"phase", to_string(g.phase)}, {"gemm", g.label},
                       {"mnk", {g.m, g.n, g.k}}, {"datapath", g.datapath}, {"not_measured", g.not_measured}});
      continue;
    }
    gemms.push_back({{"layer", layer_name(g.layer)},
                     {"phase", to_string(g.phase)},
                     {"gemm", g.label},
                     {"mnk", {g.m, g.n, g.k}},
                     {"sampled", {g.rows, g.cols}},
                     {"datapath", g.datapath},
                     {"a_values", g.a_values},
                     {"b_values", g.b_values},
                     {"a_scale", g.a_scale},
                     {"b_scale", g.b_scale},
                     {"sqnr_db", sqnr_json(s.sqnr_db)},
                     {"relative_l2_error", s.relative_l2_error},
                     {"max_abs_error", s.max_abs_error}});
  }
  out["gemms"] = std::move(gemms);
  return out;
}

namespace {

nlohmann::json system_json(const RunReport& r) {
  const SystemReport& sys = *r.system;
  const auto seconds = [&](std::uint64_t cycles) { return static_cast<double>(cycles) / (r.clock_ghz * 1e9); };
  nlohmann::json collectives = nlohmann::json::array();
  std::map<std::size_t, nlohmann::json> by_layer;
  for (const CollectiveRecord& c : sys.collectives) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& [layer, elements] : c.layers) {
      layers.push_back(r.layer_names.at(layer));
      // A layer's share of its bucket, by its gradient elements.
      const double share = c.elements ? static_cast<double>(elements) / static_cast<double>(c.elements) : 0;
      by_layer[layer] = {{"layer", r.layer_names.at(layer)},
                         {"elements", elements},
                         {"bytes", share * static_cast<double>(c.bytes)},
                         {"bucket", collectives.size()},
                         {"communication_cycles", share * static_cast<double>(c.cycles())},
                         {"exposed_cycles", share * static_cast<double>(c.exposed_cycles)}};
    }
    collectives.push_back({{"label", c.label},
                           {"layers", layers},
                           {"elements", c.elements},
                           {"bytes", c.bytes},
                           {"sent_elements", c.sent_elements},
                           {"rounds", c.rounds},
                           {"bytes_sent_to_other_chips", c.link_bytes},
                           {"start_cycle", c.start_cycle},
                           {"end_cycle", c.end_cycle},
                           {"cycles", c.cycles()},
                           {"exposed_cycles", c.exposed_cycles}});
  }
  nlohmann::json per_layer = nlohmann::json::array();
  for (auto& [layer, entry] : by_layer) per_layer.push_back(std::move(entry));
  const std::uint64_t communication = sys.communication_cycles(), exposed = sys.exposed_cycles();
  nlohmann::json system = sys.params;
  system["algorithm"] = sys.algorithm;
  system["gradient_format"] = sys.gradient_format;
  if (const auto& compression = r.config_compression)
    system["compression"] = {{"method", "cltk"}, {"ratio", compression->ratio}, {"memory_beta", compression->memory_beta}};
  system["global_batch"] = sys.global_batch;
  system["batch_per_chip"] = sys.global_batch / sys.params.chips;
  system["simulated"] = sys.mirrored ? "one chip standing for all (they run alike)" : "every chip";
  system["reported_chip"] = sys.reported_chip;
  system["chip_cycles"] = sys.chip_cycles;
  system["peak_tflops"] = r.peak_tflops * sys.params.chips;
  system["achieved_tflops"] = r.achieved_tflops() * sys.params.chips;
  system["allreduce"] = {{"bytes_per_chip", sys.bytes()},
                         {"bytes_sent_to_other_chips", sys.link_bytes()},
                         {"buckets", sys.collectives.size()},
                         {"communication_cycles", communication},
                         {"communication_seconds", seconds(communication)},
                         {"exposed_cycles", exposed},
                         {"exposed_seconds", seconds(exposed)},
                         {"hidden_fraction",
                          communication ? 1.0 - static_cast<double>(exposed) / static_cast<double>(communication) : 1.0},
                         {"collectives", collectives},
                         {"layers", per_layer}};
  const References& refs = sys.references;
  const auto step_cycles = static_cast<double>(r.total.cycles);
  if (const auto& one = refs.one_chip) {
    const double speedup = step_cycles > 0 ? static_cast<double>(one->total_cycles) / step_cycles : 0.0;
    system["scaling"] = {{"one_chip_cycles", one->total_cycles},
                         {"speedup", speedup},
                         {"efficiency", speedup / sys.params.chips}};
  }
  if (r.config_compression) {
    nlohmann::json& c = system["allreduce"]["compression"];
    std::uint64_t sent = 0;
    for (const CollectiveRecord& record : sys.collectives) sent += record.sent_elements;
    c = {{"method", "cltk"}, {"ratio", r.config_compression->ratio}, {"sent_elements", sent}};
    if (const auto& dense = refs.dense) {
      c["dense_step_cycles"] = dense->total_cycles;
      c["step_cycles_saved"] = static_cast<double>(dense->total_cycles) - step_cycles;
      c["dense_communication_cycles"] = dense->communication_cycles;
      c["communication_cycles_saved"] =
          static_cast<double>(dense->communication_cycles) - static_cast<double>(communication);
      c["dense_bytes_sent_to_other_chips"] = dense->bytes_sent;
      c["bytes_saved"] = static_cast<double>(dense->bytes_sent) - static_cast<double>(sys.link_bytes());
      // What compressing costs the chip beyond the dense all-reduce's own work.
      double dram = 0, ops = 0;
      for (const CollectiveRecord& record : sys.collectives)
        dram += static_cast<double>(record.dram_bytes), ops += static_cast<double>(record.sfu_ops);
      c["extra_dram_bytes"] = dram - static_cast<double>(dense->collective_dram_bytes);
      c["extra_sfu_ops"] = ops - static_cast<double>(dense->collective_sfu_ops);
    }
  }
  if (!refs.errors.empty()) system["reference_run_errors"] = refs.errors;
  return system;
}

}  // namespace

nlohmann::json to_json(const RunReport& r) {
  nlohmann::json out;
  out["tool"] = {{"name", "lptsim"}, {"version", r.tool_version}};
  out["inputs"] = {{"config_file", r.config_file}, {"trace_file", r.trace_file}};
  out["config"] = r.config;
  nlohmann::json phases = nlohmann::json::array();
  for (Phase p : r.phases) phases.push_back(to_string(p));
  out["workload"] = {{"network", r.network}, {"batch", r.batch}, {"mode", r.mode}, {"phases", phases}};
  if (r.system) out["system"] = system_json(r);
  if (r.optimizer) out["optimizer"] = optimizer_report_json(*r.optimizer, r.chip);
  out["totals"] = activity_json(r.total, r.clock_ghz, r.datapaths);
  out["totals"]["peak_tflops"] = r.peak_tflops;
  out["totals"]["samples_per_second"] = r.samples_per_second();
  out["totals"]["fraction_of_peak"] = r.fraction_of_peak(r.total);
  {
    nlohmann::json& e = out["totals"]["energy"];
    // On a system, the totals are one chip's; the batch and its energy are all chips'.
    const double joules = r.total.energy.total_pj() * 1e-12 * (r.system ? r.system->params.chips : 1);
    if (r.system) e["system_pj"] = joules * 1e12;
    e["peak_power_w"] = r.peak_power_w;
    e["peak_power_window_s"] = kPeakPowerWindowSeconds;
    e["leakage_power_w"] = r.leakage_mw * 1e-3;
    e["samples_per_joule"] = joules > 0 ? static_cast<double>(r.batch) / joules : 0.0;
    e["energy_delay_js"] = joules * r.seconds();
    e["operating_point"] = {{"clock_ghz", r.operating_point.clock_ghz}, {"voltage", r.operating_point.voltage}};
  }
  out["totals"]["area"] = {{"blocks_mm2", r.area_mm2},
                           {"total_mm2", r.total_area_mm2()},
                           {"peak_tflops_per_mm2", r.total_area_mm2() > 0 ? r.peak_tflops / r.total_area_mm2() : 0.0}};
  nlohmann::json kinds;
  for (const StepKind k : kAllStepKinds) {
    kinds[to_string(k)] = activity_json(r.per_kind[static_cast<std::size_t>(k)], r.clock_ghz, r.datapaths);
    kinds[to_string(k)]["fraction_of_peak"] = r.fraction_of_peak(r.per_kind[static_cast<std::size_t>(k)]);
  }
  out["step_kinds"] = kinds;
  nlohmann::json resources = nlohmann::json::array();
  for (const auto& res : r.resources)
    resources.push_back({{"name", res.name}, {"kind", res.kind}, {"bytes", res.bytes}, {"utilisation", res.utilisation}});
  out["resources"] = resources;
  nlohmann::json per_phase;
  for (Phase p : r.phases) per_phase[to_string(p)] = activity_json(r.per_phase[static_cast<std::size_t>(p)], r.clock_ghz, r.datapaths);
  out["phases"] = per_phase;
  const auto fidelity = fidelity_by_row(r);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows) {
    nlohmann::json j = activity_json(row.activity, r.clock_ghz, r.datapaths);
    j["layer_index"] = row.layer;
    j["layer"] = row.name;
    j["type"] = row.type;
    j["phase"] = to_string(row.phase);
    j["tiling"] = row.tiling;
    j["datapath"] = row.datapath;
    j["fused_into"] = row.fused_into.empty() ? nlohmann::json() : nlohmann::json(row.fused_into);
    if (const auto f = fidelity.find({row.layer, row.phase}); f != fidelity.end())
      j["fidelity"] = layer_phase_fidelity_json(f->second);
    rows.push_back(std::move(j));
  }
  out["layers"] = std::move(rows);
  nlohmann::json steps = nlohmann::json::array();
  for (const StepRecord& step : r.steps)
    steps.push_back({{"step", step.label}, {"cycles", step.cycles}, {"energy_pj", step.energy_pj}});
  out["steps"] = std::move(steps);
  out["fidelity"] = fidelity_json(r);
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& [stage, seconds] : r.stage_seconds) stages[stage] = seconds;
  out["simulator"] = {{"wall_seconds", r.wall_seconds}, {"events", r.simulation_events}, {"stage_seconds", stages}};
  return out;
}

namespace {

// The ACTIVITY columns: cycles, every counter in declaration order, then
// what is derived from them.
std::string csv_header() {
  std::string header = "cycles";
  for (const core::Counter c : core::all_counters()) header += "," + std::string(core::info(c).csv);
  header += ",mac_utilisation,bound_cycles,bound_limited_by,bound_dram_bytes,fraction_of_bound,energy_pj";
  for (std::size_t c = 0; c < energy::kComponents; ++c)
    header += std::string(",energy_") + energy::to_string(static_cast<energy::Component>(c)) + "_pj";
  return header;
}

void write_activity_csv(const Activity& a, std::ostream& out) {
  char buffer[128];
  out << a.cycles;
  for (const core::Counter c : core::all_counters()) {
    if (core::info(c).aggregate == core::Aggregate::kMeanOverCores)
      std::snprintf(buffer, sizeof buffer, ",%.1f", a.mean(c));
    else
      std::snprintf(buffer, sizeof buffer, ",%llu", static_cast<unsigned long long>(a.sum(c)));
    out << buffer;
  }
  std::snprintf(buffer, sizeof buffer, ",%.6f,%.1f,%s,%.0f,%.6f,%.1f", a.mac_utilisation(), a.bound_cycles,
                a.bound.limited_by(), a.bound.dram_bytes, a.fraction_of_bound(), a.energy.total_pj());
  out << buffer;
  for (std::size_t c = 0; c < energy::kComponents; ++c) {
    std::snprintf(buffer, sizeof buffer, ",%.1f", a.energy.component_pj(static_cast<energy::Component>(c)));
    out << buffer;
  }
}

}  // namespace

std::string counter_table_markdown() {
  std::string out = "| field | CSV column | unit | meaning |\n|---|---|---|---|\n";
  for (const core::Counter c : core::all_counters()) {
    const core::CounterInfo& i = core::info(c);
    out += "| `" + std::string(i.name) + "` | `" + std::string(i.csv) + "` | " + std::string(i.unit) + " | " +
           std::string(i.description) + " |\n";
  }
  return out;
}

void write_layers_csv(const RunReport& r, std::ostream& out) {
  out << "layer_index,layer,type,phase," << csv_header()
      << ",tiling,datapath,fused_into,sqnr_db,relative_l2_error,max_abs_error,operand_underflow_fraction,"
         "operand_overflow_fraction,operand_flushed_subnormal_fraction\n";
  const auto fidelity = fidelity_by_row(r);
  for (const auto& row : r.rows) {
    // Names come from the user's trace: quoted and defused (csv_text_cell).
    out << row.layer << ',' << csv_text_cell(row.name) << ',' << csv_text_cell(row.type) << ','
        << to_string(row.phase) << ',';
    write_activity_csv(row.activity, out);
    out << ",\"" << row.tiling << "\"," << csv_text_cell(row.datapath) << ',' << csv_text_cell(row.fused_into);
    // Empty cells where no GEMM was measured; "inf" where there was no error.
    if (const auto f = fidelity.find({row.layer, row.phase}); f != fidelity.end() && f->second.result.count > 0) {
      const num::FidelityStats& s = f->second.result;
      const OperandCounts& o = f->second.operands;
      char buffer[256];
      std::snprintf(buffer, sizeof buffer, ",%.3f,%.6g,%.6g,%.6g,%.6g,%.6g", s.sqnr_db, s.relative_l2_error,
                    s.max_abs_error, fraction(o.underflow, o.values), fraction(o.overflow, o.values),
                    fraction(o.flushed_subnormals, o.values));
      out << buffer;
    } else {
      out << ",,,,,,";
    }
    out << "\n";
  }
}

void write_phases_csv(const RunReport& r, std::ostream& out) {
  out << "phase," << csv_header() << '\n';
  for (Phase p : r.phases) {
    out << to_string(p) << ',';
    write_activity_csv(r.per_phase[static_cast<std::size_t>(p)], out);
    out << '\n';
  }
  out << "total,";
  write_activity_csv(r.total, out);
  out << '\n';
}

namespace {

// One line of a summary table: where a group's time went. "%peak" is achieved
// / peak FLOPS over the group's cycles, "%bound" its roofline bound / cycles;
// the MAC and SFU columns are busy fractions (they overlap), the stall columns
// what the cores waited on while the MAC array was idle (they add up with
// "MAC" to 100%).
void print_row(std::ostream& out, const RunReport& r, const std::string& name, const Activity& a,
               double step_cycles) {
  char buffer[320];
  const double c = a.cycles ? static_cast<double>(a.cycles) : 1.0;
  const auto pct = [&](double v) { return 100.0 * v / c; };
  std::snprintf(buffer, sizeof buffer,
                "%-30s %12llu %5.1f%% %5.1f%% %6.1f%% %-7s | %5.1f%% %5.1f%% | %5.1f%% %5.1f%% %5.1f%% %5.1f%% %5.1f%%",
                name.c_str(), static_cast<unsigned long long>(a.cycles),
                step_cycles > 0 ? 100.0 * static_cast<double>(a.cycles) / step_cycles : 0.0,
                100.0 * r.fraction_of_peak(a), 100.0 * a.fraction_of_bound(), a.bound.limited_by(),
                // A collective's SFU adds run beside other steps, longer than its exposed cycles.
                pct(a.mean(core::Counter::kBusyCycles)), std::min(100.0, pct(a.mean(core::Counter::kSfuBusyCycles))),
                pct(a.mean(core::Counter::kStallDram)), pct(a.mean(core::Counter::kStallInterconnect)),
                pct(a.mean(core::Counter::kStallScratchpad)), pct(a.mean(core::Counter::kStallSfu)),
                pct(a.mean(core::Counter::kStallDependency)));
  out << buffer;
  // On a system of chips, also the wait for the chips' all-reduce.
  if (r.system) {
    std::snprintf(buffer, sizeof buffer, " %5.1f%%", pct(a.mean(core::Counter::kStallCommunication)));
    out << buffer;
  }
  out << '\n';
}

void print_header(std::ostream& out, const RunReport& r, const char* first) {
  char buffer[320];
  std::snprintf(buffer, sizeof buffer,
                "%-30s %12s %6s %6s %7s %-7s | %6s %6s | %6s %6s %6s %6s %6s%s\n", first, "cycles",
                "share", "%peak", "%bound", "bound", "MAC", "SFU", "dram", "ring", "spad", "sfu", "cores",
                r.system ? "   comm" : "");
  out << buffer;
}

void print_top(std::ostream& out, const RunReport& r, const char* title, const char* first,
               std::vector<std::pair<std::string, Activity>> groups, std::size_t count) {
  std::stable_sort(groups.begin(), groups.end(),
                   [](const auto& a, const auto& b) { return a.second.cycles > b.second.cycles; });
  if (groups.size() > count) groups.resize(count);
  out << '\n' << title << '\n';
  print_header(out, r, first);
  for (const auto& [name, activity] : groups)
    print_row(out, r, name, activity, static_cast<double>(r.total.cycles));
}

}  // namespace

namespace {

// The summary's all-reduce lines: its SQNR, and CLT-k's.
void print_allreduce_fidelity(const AllReduceFidelity& a, std::ostream& out) {
  char buffer[320];
  if (!a.not_measured.empty()) {
    out << "            gradient all-reduce not measured: " << a.not_measured << '\n';
    return;
  }
  const num::FidelityStats total = a.total.stats();
  std::snprintf(buffer, sizeof buffer,
                "            gradient all-reduce %.1f dB vs FP64 (%s order over %d chips, %s, adds in %s; the format "
                "alone %.1f dB; synthetic gradients, assumed correlation %.2f)\n",
                total.sqnr_db, a.order.c_str(), a.workers, a.communication_format.c_str(),
                a.accumulator_format.c_str(), a.quantization.stats().sqnr_db, a.correlation);
  out << buffer;
  if (const auto& c = a.compression) {
    std::snprintf(buffer, sizeof buffer,
                  "            CLT-k ratio %g: %.1f dB per step, %.1f dB cumulative over %zu steps, top-k overlap "
                  "%.2f\n",
                  c->ratio, c->per_step.sqnr_db, c->cumulative.sqnr_db, c->steps.size(), c->topk_overlap);
    out << buffer;
  }
}

// The summary's line on K-FAC's Newton–Schulz inverses.
void print_inverse_fidelity(const InverseFidelity& i, double min_sqnr_db, std::ostream& out) {
  char buffer[320];
  if (!i.not_measured.empty()) {
    out << "            K-FAC inverses not measured: " << i.not_measured << "\n";
    return;
  }
  std::snprintf(buffer, sizeof buffer,
                "            K-FAC inverse (%s): after %d Newton-Schulz iterations |I - FX| = %.2g (FP64: %.2g), "
                "X %.1f dB vs the exact inverse; a %d-row factor of condition %.2g\n",
                i.datapath.c_str(), i.params.iterations, i.result.residual.back(), i.result.fp64_residual.back(),
                i.result.inverse.sqnr_db, i.params.dimension, i.result.condition);
  out << buffer;
  if (!(i.result.inverse.sqnr_db >= min_sqnr_db))
    out << "            (the inverse is below fidelity/min_sqnr_db: more iterations, more damping or wider formats)\n";
}

void print_fidelity(const RunReport& r, std::ostream& out) {
  const FidelityReport& f = *r.fidelity;
  char buffer[320];
  const auto worst = worst_fidelity(r);
  if (!worst) {
    out << "fidelity    no GEMM measured: their reductions exceed fidelity/max_operand_values\n";
    if (const auto& a = f.allreduce) print_allreduce_fidelity(*a, out);
    return;
  }
  const auto where = [&](const FlaggedLayer& l) {
    return l.allreduce ? std::string(kAllReduceFlagName) : r.layer_names.at(l.layer) + " " + to_string(l.phase);
  };
  std::snprintf(buffer, sizeof buffer,
                "fidelity    worst SQNR %.1f dB (%s) vs FP64, up to %d sampled outputs per GEMM%s\n",
                worst->sqnr_db, where(*worst).c_str(), f.params.sampled_outputs, f.from_cache ? " (cached)" : "");
  out << buffer;
  const auto unmeasured = std::count_if(f.gemms.begin(), f.gemms.end(), [](const GemmFidelity& g) {
    return !g.not_measured.empty();
  });
  if (unmeasured > 0) {
    std::snprintf(buffer, sizeof buffer, "            %zu GEMMs not measured: their reductions exceed "
                  "fidelity/max_operand_values\n", static_cast<std::size_t>(unmeasured));
    out << buffer;
  }
  if (const auto& a = f.allreduce) print_allreduce_fidelity(*a, out);
  if (const auto& i = f.inverse) print_inverse_fidelity(*i, f.params.min_sqnr_db, out);
  const std::vector<FlaggedLayer> flagged = flagged_layers(r);
  if (flagged.empty()) {
    std::snprintf(buffer, sizeof buffer, "            no layer phase below %.1f dB, no NaN or overflowed result\n",
                  f.params.min_sqnr_db);
    out << buffer;
    return;
  }
  std::snprintf(buffer, sizeof buffer, "            %zu layer phase%s below %.1f dB or with NaN or overflowed results:",
                flagged.size(), flagged.size() == 1 ? "" : "s", f.params.min_sqnr_db);
  out << buffer;
  for (std::size_t i = 0; i < flagged.size() && i < 8; ++i) {
    out << ' ' << where(flagged[i]) << " (" << flagged[i].why << ')'
        << (i + 1 < std::min<std::size_t>(8, flagged.size()) ? "," : "");
  }
  out << (flagged.size() > 8 ? ", ... (all in report.json /fidelity/flagged)\n" : "\n");
}

}  // namespace

void print_summary(const RunReport& r, std::ostream& out, std::size_t top_layers) {
  char buffer[320];
  const double step = static_cast<double>(r.total.cycles);
  out << "lptsim " << r.tool_version << ": " << r.network << ", batch " << r.batch
      << (r.system ? " over " + std::to_string(r.system->params.chips) + " chips" : std::string()) << ", on "
      << r.config.value("name", std::string("?")) << ", " << r.mode << ", fusion " << r.fusion
      << ", residency " << r.residency << "\n\n";
  std::snprintf(buffer, sizeof buffer,
                "step        %llu cycles, %.3f ms, %.1f samples/s\n"
                "utilisation %.1f%% of peak (%.2f of %.2f TFLOPS)\n"
                "bound       %.0f cycles: the step runs at %.1f%% of its roofline bound\n",
                static_cast<unsigned long long>(r.total.cycles), r.seconds() * 1e3,
                r.samples_per_second(), 100.0 * r.fraction_of_peak(r.total), r.achieved_tflops(),
                r.peak_tflops, r.total.bound_cycles, 100.0 * r.total.fraction_of_bound());
  out << buffer;
  if (r.optimizer) print_optimizer_summary(*r.optimizer, r.chip, out);
  double dram = 0, ring = 0, scratchpad = 0;
  int scratchpads = 0;
  for (const auto& res : r.resources) {
    if (res.kind == "dram") dram = std::max(dram, res.utilisation);
    if (res.kind == "interconnect") ring = std::max(ring, res.utilisation);
    if (res.kind == "scratchpad") scratchpad += res.utilisation, ++scratchpads;
  }
  if (r.system) {
    const SystemReport& sys = *r.system;
    const std::uint64_t communication = sys.communication_cycles(), exposed = sys.exposed_cycles();
    double link = 0;
    for (const auto& res : r.resources)
      if (res.kind == "link") link = std::max(link, res.utilisation);
    std::snprintf(buffer, sizeof buffer,
                  "system      %d chips (%s, %.1f GB/s links%s): %.2f of %.2f TFLOPS; busiest link %.1f%%\n"
                  "all-reduce  %.1f MB per chip in %zu buckets (%s, %s): %.3f ms communicating, %.3f ms exposed "
                  "(%.1f%% hidden)\n",
                  sys.params.chips, core::to_string(sys.params.topology), sys.params.link.gb_per_s,
                  sys.mirrored ? "; one chip simulated for all" : "", r.achieved_tflops() * sys.params.chips,
                  r.peak_tflops * sys.params.chips, 100.0 * link, static_cast<double>(sys.bytes()) / 1e6,
                  sys.collectives.size(), sys.algorithm.c_str(), sys.gradient_format.c_str(),
                  static_cast<double>(communication) / (r.clock_ghz * 1e6),
                  static_cast<double>(exposed) / (r.clock_ghz * 1e6),
                  communication ? 100.0 * (1.0 - static_cast<double>(exposed) / static_cast<double>(communication))
                                : 100.0);
    out << buffer;
    if (const auto& one = sys.references.one_chip) {
      const double speedup = static_cast<double>(one->total_cycles) / std::max(1.0, static_cast<double>(r.total.cycles));
      std::snprintf(buffer, sizeof buffer,
                    "scaling     %.2fx one chip at the whole batch (%llu cycles): %.1f%% efficiency\n", speedup,
                    static_cast<unsigned long long>(one->total_cycles), 100.0 * speedup / sys.params.chips);
      out << buffer;
    }
    if (r.config_compression) {
      std::snprintf(buffer, sizeof buffer, "compression CLT-k, ratio %g: %.2f MB sent to other chips",
                    r.config_compression->ratio, static_cast<double>(sys.link_bytes()) / 1e6);
      out << buffer;
      if (const auto& dense = sys.references.dense) {
        std::snprintf(buffer, sizeof buffer, " (dense %.2f MB); step %+.3f ms vs dense",
                      static_cast<double>(dense->bytes_sent) / 1e6,
                      (static_cast<double>(r.total.cycles) - static_cast<double>(dense->total_cycles)) /
                          (r.clock_ghz * 1e6));
        out << buffer;
      }
      out << "\n";
    }
  }
  std::snprintf(buffer, sizeof buffer,
                "DRAM        read %.1f MB, written %.1f MB (roofline least: %.1f MB); %.1f%% of its bandwidth\n"
                "busiest ring link %.1f%%, scratchpad ports %.1f%% (mean over cores) of their bandwidth\n",
                static_cast<double>(r.total.sum(core::Counter::kDramReadBytes)) / 1e6,
                static_cast<double>(r.total.sum(core::Counter::kDramWriteBytes)) / 1e6, r.total.bound.dram_bytes / 1e6,
                100.0 * dram, 100.0 * ring, scratchpads ? 100.0 * scratchpad / scratchpads : 0.0);
  out << buffer;
  if (r.total.sum(core::Counter::kOnChipReadBytes) > 0 || r.total.sum(core::Counter::kDramWriteAvoidedBytes) > 0) {
    std::snprintf(buffer, sizeof buffer,
                  "kept on chip: %.1f MB read from the scratchpads instead of DRAM, %.1f MB never written\n",
                  static_cast<double>(r.total.sum(core::Counter::kOnChipReadBytes)) / 1e6,
                  static_cast<double>(r.total.sum(core::Counter::kDramWriteAvoidedBytes)) / 1e6);
    out << buffer;
  }
  {
    const double joules = r.total.energy.total_pj() * 1e-12, chip = r.total.energy.chip_pj() * 1e-12;
    char links_buffer[64] = "";
    // Chip-to-chip links, or the host link of a spilled step.
    if (const double links_pj = r.total.energy.component_pj(energy::Component::kLinks); r.system || links_pj > 0)
      std::snprintf(links_buffer, sizeof links_buffer, ", links %.3f mJ", links_pj * 1e-9);
    const std::string links = links_buffer;
    std::snprintf(buffer, sizeof buffer,
                  "%s %.3f mJ (chip %.3f mJ, DRAM %.3f mJ%s) at %.2f GHz, %.2f V: %.2f TFLOPS/W (chip %.2f), "
                  "%.3f pJ/MAC\n"
                  "power       %.2f W average, %.2f W peak (%.0f us window), %.2f W leakage; %.1f mm2, "
                  "%.2f peak TFLOPS/mm2\n",
                  r.system ? "energy/chip" : "energy     ", joules * 1e3, chip * 1e3,
                  r.total.energy.component_pj(energy::Component::kDram) * 1e-9, links.c_str(), r.operating_point.clock_ghz,
                  r.operating_point.voltage, tera_ops_per_joule(r.total, r.total.energy.total_pj()),
                  tera_ops_per_joule(r.total, r.total.energy.chip_pj()),
                  r.total.macs() > 0 ? r.total.energy.total_pj() / static_cast<double>(r.total.macs()) : 0.0,
                  r.seconds() > 0 ? joules / r.seconds() : 0.0, r.peak_power_w, kPeakPowerWindowSeconds * 1e6,
                  r.leakage_mw * 1e-3, r.total_area_mm2(),
                  r.total_area_mm2() > 0 ? r.peak_tflops / r.total_area_mm2() : 0.0);
    out << buffer;
    std::vector<std::pair<double, const char*>> consumers;
    for (std::size_t c = 0; c < energy::kComponents; ++c) {
      const auto component = static_cast<energy::Component>(c);
      consumers.emplace_back(r.total.energy.component_pj(component), energy::to_string(component));
    }
    std::sort(consumers.rbegin(), consumers.rend());
    out << "energy by component:";
    for (std::size_t i = 0; i < consumers.size() && i < 6; ++i) {
      std::snprintf(buffer, sizeof buffer, " %s %.1f%%", consumers[i].second,
                    joules > 0 ? 100.0 * consumers[i].first * 1e-12 / joules : 0.0);
      out << buffer << (i + 1 < std::min<std::size_t>(6, consumers.size()) ? "," : "\n");
    }
  }
  if (r.fidelity) print_fidelity(r, out);
  out << "\ncolumns: share of the step; achieved/peak FLOPS; roofline bound/cycles and its limit;\n"
         "MAC and SFU busy (they overlap); with the MAC array idle, the cores waited on: dram, ring,\n"
         "scratchpad ports, SFU/rounders, other cores (MAC + waits = 100%)\n\n";
  print_header(out, r, "kind of step");
  for (const StepKind k : kAllStepKinds)
    if (r.per_kind[static_cast<std::size_t>(k)].steps > 0)
      print_row(out, r, to_string(k), r.per_kind[static_cast<std::size_t>(k)], step);
  out << '\n';
  print_header(out, r, "phase");
  for (Phase p : r.phases) print_row(out, r, to_string(p), r.per_phase[static_cast<std::size_t>(p)], step);
  print_row(out, r, "total", r.total, step);

  std::map<std::string, Activity> by_kind;
  std::vector<std::pair<std::string, Activity>> by_layer;
  for (const auto& row : r.rows) {
    if (!row.fused_into.empty()) continue;
    by_kind[row.type + "/" + to_string(row.phase)].merge(row.activity);
    by_layer.emplace_back(row.name + "/" + to_string(row.phase), row.activity);
  }
  print_top(out, r, "most expensive layer kinds:", "layer type/phase", {by_kind.begin(), by_kind.end()}, top_layers);
  print_top(out, r, "most expensive layer phases (all in layers.csv):", "layer/phase", std::move(by_layer), top_layers);
}

}  // namespace lpt
