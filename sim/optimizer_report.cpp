#include "sim/optimizer_report.hpp"

#include <cstdio>

namespace lpt {

namespace {

template <class Value>
std::optional<double> weighted_mean(const OptimizerReport& r, Value value) {
  if (r.timings.empty()) return std::nullopt;
  double mean = 0;
  for (std::size_t i = 0; i < r.shares.size(); ++i) {
    if (!r.timings[i]) return std::nullopt;
    mean += r.shares[i].share * value(*r.timings[i]);
  }
  return mean;
}

nlohmann::json optional_number(std::optional<double> value) {
  return value ? nlohmann::json(*value) : nlohmann::json();
}

nlohmann::json memory_json(const MemoryFootprint& m) {
  return {{"weights_bytes", m.weights},         {"gradients_bytes", m.gradients},
          {"optimizer_state_bytes", m.optimizer_state}, {"curvature_bytes", m.curvature},
          {"activations_bytes", m.activations}, {"total_bytes", m.total()}};
}

}  // namespace

std::optional<double> OptimizerReport::mean_step_cycles() const {
  return weighted_mean(*this, [](const ReferenceTiming& t) { return static_cast<double>(t.total_cycles); });
}

std::optional<double> OptimizerReport::mean_step_energy_pj() const {
  return weighted_mean(*this, [](const ReferenceTiming& t) { return t.energy_pj; });
}

std::vector<GenerationEstimate> esgd_generations(const OptimizerReport& r, const core::ChipParams& chip) {
  const auto* esgd = std::get_if<Esgd>(&r.optimizer);
  if (!esgd || r.timings.empty() || !r.timings.front() || !r.evaluation) return {};
  const ReferenceTiming& step = *r.timings.front();
  const double hz = chip.clock_ghz * 1e9;
  const double mu = esgd->population, k = esgd->steps_per_generation;
  const double individual_compute_s = (k * static_cast<double>(step.total_cycles) +
                                       static_cast<double>(r.evaluation->total_cycles)) / hz;
  const double compute_pj = mu * (k * step.energy_pj + r.evaluation->energy_pj);
  // One individual's weights and state (the footprint holds every one on the chip).
  const int on_one_chip = individuals_per_chip(r.optimizer, 1);
  const double individual_bytes =
      static_cast<double>(r.memory.weights + r.memory.optimizer_state) /
      individuals_per_chip(r.optimizer, r.population_system ? r.population_system->chips : 1);
  const double dram_pj_per_byte = chip.energy.dram_read_pj_per_byte + chip.energy.dram_write_pj_per_byte;
  std::vector<GenerationEstimate> out;
  GenerationEstimate one;
  one.individuals_per_chip = on_one_chip;
  one.compute_seconds = mu * individual_compute_s;
  one.compute_pj = compute_pj;
  // Each overwritten individual: its weights and state read and written in DRAM.
  one.copy_seconds = mu * 2 * individual_bytes / (chip.dram_bytes_per_cycle() * hz);
  one.copy_pj = mu * individual_bytes * dram_pj_per_byte;
  out.push_back(one);
  if (const auto& system = r.population_system) {
    GenerationEstimate spread;
    spread.chips = system->chips;
    spread.individuals_per_chip = individuals_per_chip(r.optimizer, system->chips);
    spread.compute_seconds = spread.individuals_per_chip * individual_compute_s;
    spread.compute_pj = compute_pj;
    // Each chip receives its overwritten individuals over its link, one after another.
    spread.copy_seconds = spread.individuals_per_chip *
                          (individual_bytes / (system->link.gb_per_s * 1e9) + system->link.latency_ns * 1e-9);
    spread.copy_pj = mu * individual_bytes * (8 * system->link.pj_per_bit + dram_pj_per_byte);
    out.push_back(spread);
  }
  return out;
}

nlohmann::json optimizer_report_json(const OptimizerReport& r, const core::ChipParams& chip) {
  const double clock_ghz = chip.clock_ghz;
  nlohmann::json out = {{"optimizer", optimizer_json(r.optimizer)}};
  nlohmann::json schedule = nlohmann::json::array();
  for (std::size_t i = 0; i < r.shares.size(); ++i) {
    nlohmann::json skipped = nlohmann::json::array();
    for (const Phase p : r.shares[i].skipped) skipped.push_back(to_string(p));
    const auto& t = r.timings[i];
    schedule.push_back({{"skipped_phases", skipped},
                        {"share_of_steps", r.shares[i].share},
                        {"cycles", t ? nlohmann::json(t->total_cycles) : nlohmann::json()},
                        {"energy_pj", t ? nlohmann::json(t->energy_pj) : nlohmann::json()}});
  }
  out["schedule"] = schedule;
  const auto cycles = r.mean_step_cycles();
  out["mean_step"] = {{"cycles", optional_number(cycles)},
                      {"seconds", optional_number(cycles ? std::optional(*cycles / (clock_ghz * 1e9)) : std::nullopt)},
                      {"energy_pj", optional_number(r.mean_step_energy_pj())}};
  out["sgd_momentum"] = r.sgd ? nlohmann::json{{"cycles", r.sgd->total_cycles}, {"energy_pj", r.sgd->energy_pj},
                                               {"memory", memory_json(r.sgd_memory)}}
                              : nlohmann::json();
  out["memory"] = memory_json(r.memory);
  out["memory"]["capacity_bytes"] = r.capacity_bytes ? nlohmann::json(*r.capacity_bytes) : nlohmann::json();
  if (std::holds_alternative<Esgd>(r.optimizer)) {
    out["evaluation"] = r.evaluation ? nlohmann::json{{"cycles", r.evaluation->total_cycles},
                                                      {"energy_pj", r.evaluation->energy_pj}}
                                     : nlohmann::json();
    nlohmann::json generations = nlohmann::json::array();
    for (const GenerationEstimate& g : esgd_generations(r, chip))
      generations.push_back({{"chips", g.chips},
                             {"individuals_per_chip", g.individuals_per_chip},
                             {"seconds", g.seconds()},
                             {"compute_seconds", g.compute_seconds},
                             {"copy_seconds", g.copy_seconds},
                             {"energy_pj", g.energy_pj()},
                             {"copy_energy_pj", g.copy_pj}});
    out["generation"] = generations;
  }
  out["errors"] = r.errors;
  return out;
}

void print_optimizer_summary(const OptimizerReport& r, const core::ChipParams& chip, std::ostream& out) {
  const double clock_ghz = chip.clock_ghz;
  char buffer[320];
  const double ms_per_cycle = 1.0 / (clock_ghz * 1e6);
  std::string line = "optimizer   " + std::string(optimizer_name(r.optimizer));
  if (r.shares.size() > 1) {
    if (const auto cycles = r.mean_step_cycles()) {
      std::snprintf(buffer, sizeof buffer, ": %.3f ms per step over its schedule (%zu kinds of step)",
                    *cycles * ms_per_cycle, r.shares.size());
      line += buffer;
    }
  }
  if (r.sgd) {
    const double cycles = r.mean_step_cycles().value_or(0);
    const double energy = r.mean_step_energy_pj().value_or(0);
    if (cycles > 0 && r.sgd->total_cycles > 0 && r.sgd->energy_pj > 0) {
      std::snprintf(buffer, sizeof buffer, "; %.2fx the time and %.2fx the energy of sgd_momentum (%.3f ms)",
                    cycles / static_cast<double>(r.sgd->total_cycles), energy / r.sgd->energy_pj,
                    static_cast<double>(r.sgd->total_cycles) * ms_per_cycle);
      line += buffer;
    }
  }
  out << line << "\n";
  for (const GenerationEstimate& g : esgd_generations(r, chip)) {
    std::snprintf(buffer, sizeof buffer,
                  "generation  %.3f s, %.3f J on %d chip%s (%d individuals each; selection copies %.3f s)\n",
                  g.seconds(), g.energy_pj() * 1e-12, g.chips, g.chips > 1 ? "s" : "", g.individuals_per_chip,
                  g.copy_seconds);
    out << buffer;
  }
  out << "memory      " << describe(r.memory);
  if (r.capacity_bytes) {
    std::snprintf(buffer, sizeof buffer, " of %.3g GiB", static_cast<double>(*r.capacity_bytes) / (1u << 30));
    out << buffer;
  }
  if (r.sgd) {
    std::snprintf(buffer, sizeof buffer, "; sgd_momentum %.3g GiB",
                  static_cast<double>(r.sgd_memory.total()) / (1u << 30));
    out << buffer;
  }
  out << " per chip\n";
  for (const std::string& e : r.errors) out << "optimizer   " << e << "\n";
}

}  // namespace lpt
