#include "sim/optimizer_report.hpp"

#include <cmath>
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
  const double mu = esgd->population, lambda = esgd->offspring, k = esgd->steps_per_generation;
  const double step_s = static_cast<double>(step.total_cycles) / hz;
  const double evaluation_s = static_cast<double>(r.evaluation->total_cycles) / hz;
  // One individual's weights W and optimizer state S (the footprint holds
  // every copy on the chip).
  const int chips = r.population_system ? r.population_system->chips : 1;
  const double copies = weight_copies_per_chip(r.optimizer, chips);
  const double w = static_cast<double>(r.memory.weights) / copies;
  const double s = static_cast<double>(r.memory.optimizer_state) / copies;
  const double b = w + s;
  // DRAM traffic per individual: save its copy before training and, at
  // worst, restore it (read and write W + S each); per offspring: read two
  // parents' weights and one's state, write W + S.
  const double read_per_individual = 2 * b, read_per_offspring = 2 * w + s;
  const double write_per_individual = 2 * b, write_per_offspring = b;
  const double dram_bytes_per_s = chip.dram_bytes_per_cycle() * hz;
  const double dram_pj = (mu * read_per_individual + lambda * read_per_offspring) * chip.energy.dram_read_pj_per_byte +
                         (mu * write_per_individual + lambda * write_per_offspring) *
                             chip.energy.dram_write_pj_per_byte;
  const double compute_pj = mu * k * step.energy_pj + (mu + lambda) * r.evaluation->energy_pj;
  const auto on = [&](int n) {
    const double individuals = individuals_per_chip(r.optimizer, n), offspring = std::ceil(lambda / n);
    GenerationEstimate g;
    g.chips = n;
    g.individuals_per_chip = static_cast<int>(individuals);
    g.compute_seconds =
        individuals * k * step_s + std::ceil((mu + lambda) / n) * evaluation_s;
    g.copy_seconds = (individuals * (read_per_individual + write_per_individual) +
                      offspring * (read_per_offspring + write_per_offspring)) /
                     dram_bytes_per_s;
    g.compute_pj = compute_pj;
    g.copy_pj = dram_pj;
    g.memory_bytes = static_cast<double>(r.memory.total()) + b * (weight_copies_per_chip(r.optimizer, n) - copies);
    return g;
  };
  std::vector<GenerationEstimate> out = {on(1)};
  if (const auto& system = r.population_system) {
    GenerationEstimate spread = on(system->chips);
    // An offspring's parents may be on other chips: at worst both, fetched over the link.
    const double offspring = std::ceil(lambda / system->chips);
    spread.copy_seconds += offspring * (read_per_offspring / (system->link.gb_per_s * 1e9) +
                                        2 * system->link.latency_ns * 1e-9);
    spread.copy_pj += lambda * read_per_offspring * 8 * system->link.pj_per_bit;
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
  out["memory"]["spilled_to_host_bytes"] = r.spill.spilled_bytes;
  out["memory"]["host_bytes_moved_each_way_per_step"] = r.spill.moved_per_step();
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
                             {"memory_bytes_per_chip", g.memory_bytes},
                             {"fits_dram", r.capacity_bytes ? nlohmann::json(g.memory_bytes <= static_cast<double>(
                                                                                    *r.capacity_bytes))
                                                            : nlohmann::json()},
                             {"energy_pj", g.energy_pj()},
                             {"copy_energy_pj", g.copy_pj}});
    out["generation"] = generations;
  }
  out["errors"] = r.errors;
  return out;
}

void print_optimizer_summary(const OptimizerReport& r, const core::ChipParams& chip, std::ostream& out) {
  char buffer[320];
  const double ms_per_cycle = 1.0 / (chip.clock_ghz * 1e6);
  std::string line = "optimizer   " + std::string(optimizer_name(r.optimizer));
  if (r.shares.size() > 1) {
    std::snprintf(buffer, sizeof buffer, ": the step above has every phase, 1 in %.0f steps",
                  1 / r.shares.front().share);
    line += buffer;
    if (const auto cycles = r.mean_step_cycles()) {
      std::snprintf(buffer, sizeof buffer, "; %.3f ms per step over its schedule", *cycles * ms_per_cycle);
      line += buffer;
    }
  }
  if (std::holds_alternative<Esgd>(r.optimizer)) {
    line += ": the step above is one individual's SGD-momentum step on one chip";
    if (r.evaluation) {
      std::snprintf(buffer, sizeof buffer, "; its evaluation pass %.3f ms",
                    static_cast<double>(r.evaluation->total_cycles) * ms_per_cycle);
      line += buffer;
    }
  }
  if (r.sgd && r.sgd->total_cycles > 0) {
    if (const auto cycles = r.mean_step_cycles()) {
      std::snprintf(buffer, sizeof buffer, "; %.2fx the time", *cycles / static_cast<double>(r.sgd->total_cycles));
      line += buffer;
      const double energy = r.mean_step_energy_pj().value_or(std::nan(""));
      if (std::isfinite(energy) && std::isfinite(r.sgd->energy_pj) && r.sgd->energy_pj > 0) {
        std::snprintf(buffer, sizeof buffer, " and %.2fx the energy", energy / r.sgd->energy_pj);
        line += buffer;
      }
      std::snprintf(buffer, sizeof buffer, " of sgd_momentum (%.3f ms)",
                    static_cast<double>(r.sgd->total_cycles) * ms_per_cycle);
      line += buffer;
    }
  }
  out << line << "\n";
  for (const GenerationEstimate& g : esgd_generations(r, chip)) {
    std::snprintf(buffer, sizeof buffer,
                  "generation  %.3f s, %.3f J on %d chip%s (%d individuals and %.3g GiB per chip; back-off and "
                  "offspring copies %.3f s, estimated)\n",
                  g.seconds(), g.energy_pj() * 1e-12, g.chips, g.chips > 1 ? "s" : "", g.individuals_per_chip,
                  g.memory_bytes / (1u << 30), g.copy_seconds);
    out << buffer;
    if (r.capacity_bytes && g.memory_bytes > static_cast<double>(*r.capacity_bytes))
      out << "            (that does not fit the chip's DRAM)\n";
  }
  out << "memory      " << describe(r.memory);
  if (r.capacity_bytes) {
    std::snprintf(buffer, sizeof buffer, " of %.3g GiB", static_cast<double>(*r.capacity_bytes) / (1u << 30));
    out << buffer;
  }
  out << " per chip";
  if (r.spill.spilled_bytes > 0) {
    std::snprintf(buffer, sizeof buffer, "; %.3g GiB of it in host memory, %.1f MB moved each way per step",
                  static_cast<double>(r.spill.spilled_bytes) / (1u << 30),
                  static_cast<double>(r.spill.moved_per_step()) / 1e6);
    out << buffer;
  }
  if (r.sgd) {
    std::snprintf(buffer, sizeof buffer, "; sgd_momentum %.3g GiB",
                  static_cast<double>(r.sgd_memory.total()) / (1u << 30));
    out << buffer;
  }
  out << "\n";
  for (const std::string& e : r.errors) out << "optimizer   " << e << "\n";
}

}  // namespace lpt
