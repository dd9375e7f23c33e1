#include "models/energy/energy_model.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>

namespace lpt::energy {

namespace {

std::size_t at(Component c) { return static_cast<std::size_t>(c); }

// Per byte of an access to an SRAM whose banks hold `bank_kib`.
double sram_scale(const SramEnergy& sram, double bank_kib) { return std::sqrt(bank_kib / sram.reference_bank_kib); }

}  // namespace

const char* to_string(Component component) {
  switch (component) {
    case Component::kMultipliers: return "multipliers";
    case Component::kAccumulators: return "accumulators";
    case Component::kPeRegisters: return "pe_registers";
    case Component::kArrayPipeline: return "array_pipeline";
    case Component::kL0: return "l0";
    case Component::kScratchpad: return "scratchpad";
    case Component::kSfu: return "sfu";
    case Component::kRounders: return "rounders";
    case Component::kRing: return "ring";
    case Component::kCoreOther: return "core_other";
    case Component::kDram: return "dram";
    case Component::kLinks: return "links";
    case Component::kCount: break;
  }
  return "?";
}

double EnergyBreakdown::dynamic_total_pj() const { return std::accumulate(dynamic_pj.begin(), dynamic_pj.end(), 0.0); }
double EnergyBreakdown::leakage_total_pj() const { return std::accumulate(leakage_pj.begin(), leakage_pj.end(), 0.0); }

EnergyBreakdown& EnergyBreakdown::operator+=(const EnergyBreakdown& other) {
  for (std::size_t i = 0; i < kComponents; ++i) {
    dynamic_pj[i] += other.dynamic_pj[i];
    leakage_pj[i] += other.leakage_pj[i];
  }
  return *this;
}

EnergyModel::EnergyModel(const core::ChipParams& chip, std::vector<core::Datapath> datapaths, OperatingPoint point,
                         double link_pj_per_bit)
    : chip_(chip), table_(chip.energy), datapaths_(std::move(datapaths)), point_(point),
      link_pj_per_bit_(link_pj_per_bit) {
  const double v = point.voltage / table_.reference_voltage;
  dynamic_scale_ = v * v;
  leakage_scale_ = v;
  const double chunk = static_cast<double>(std::max(1, chip.core.accumulator.chunk_length));
  for (const core::Datapath& d : datapaths_) {
    const auto multiply = table_.multiply(d.a, d.b);
    const auto accumulate = table_.accumulate_pj.find(d.accumulator);
    const auto pipeline = table_.pipeline(d.a, d.b);
    if (!multiply || !pipeline)
      throw std::invalid_argument("energy table: no multiply or pipeline energy for " + d.a + " x " + d.b);
    pipeline_pj_.push_back(*pipeline);
    if (accumulate == table_.accumulate_pj.end())
      throw std::invalid_argument("energy table: no accumulate energy for " + d.accumulator);
    multiply_pj_.push_back(*multiply);
    // A PE sums its v-wide dot product in its adder tree (in the multiply's
    // energy) and adds that sum into the accumulator once per cycle; each
    // chunk of the reduction then spills once into the outer sum.
    const double v = std::max(1, d.macs_per_pe_per_cycle);
    accumulate_pj_.push_back(accumulate->second * (1 / v + 1 / chunk));
    register_pj_.push_back(table_.pe_register_pj_per_byte * (d.a_bits + d.b_bits) / 8.0);
  }

  // Leakage and area are given per unit of the same blocks.
  const auto& core = chip.core;
  const double cores = chip.cores;
  const std::array<std::pair<Component, double>, 7> blocks = {{
      {Component::kArrayPipeline, cores * static_cast<double>(core.mac_array.pes())},
      {Component::kScratchpad, cores * static_cast<double>(core.scratchpad.size_kib) / 1024},
      {Component::kL0, core.mac_array.l0 ? cores * core.mac_array.corelets * core.mac_array.l0->size_kib : 0.0},
      {Component::kSfu, cores * core.sfu.lanes},
      {Component::kRounders, cores * core.rounder.lanes},
      {Component::kRing, cores + 1},  // the memory controller's stop too
      {Component::kCoreOther, cores},
  }};
  const auto per_unit = [](const PerBlock& p, Component c) {
    switch (c) {
      case Component::kArrayPipeline: return p.per_pe;
      case Component::kScratchpad: return p.scratchpad_per_mib;
      case Component::kL0: return p.l0_per_kib;
      case Component::kSfu: return p.sfu_per_lane;
      case Component::kRounders: return p.rounder_per_lane;
      case Component::kRing: return p.ring_per_stop;
      case Component::kCoreOther: return p.core_other;
      default: return 0.0;  // not a block
    }
  };
  for (const auto& [component, units] : blocks) {
    leakage_mw_[at(component)] = units * per_unit(table_.leakage_mw, component) * leakage_scale_;
    area_[component == Component::kArrayPipeline ? "arrays" : to_string(component)] =
        units * per_unit(table_.area_mm2, component);
  }
  leakage_mw_[at(Component::kDram)] = chip.dram.channels * table_.dram_background_mw_per_channel;
  area_["dram_phy"] = chip.dram.channels * table_.dram_phy_mm2_per_channel;
}

EnergyBreakdown EnergyModel::energy(const ActivityTotals& a) const {
  using core::Counter;
  EnergyBreakdown e;
  auto& dyn = e.dynamic_pj;
  for (std::size_t d = 0; d < a.macs_by_datapath.size() && d < datapaths_.size(); ++d) {
    const auto macs = static_cast<double>(a.macs_by_datapath[d]);
    dyn[at(Component::kMultipliers)] += macs * multiply_pj_[d];
    dyn[at(Component::kAccumulators)] += macs * accumulate_pj_[d];
    dyn[at(Component::kPeRegisters)] += macs * register_pj_[d];
  }
  // The PE cycles the arrays ran, shared among the datapaths by their ideal
  // PE cycles (MACs / dot-product width): partial folds clock whole arrays.
  const auto& core = chip_.core;
  const double pe_cycles = a[Counter::kBusyCycles] * static_cast<double>(core.mac_array.pes());
  double ideal = 0;
  for (std::size_t d = 0; d < a.macs_by_datapath.size() && d < datapaths_.size(); ++d)
    ideal += static_cast<double>(a.macs_by_datapath[d]) / std::max(1, datapaths_[d].macs_per_pe_per_cycle);
  for (std::size_t d = 0; d < a.macs_by_datapath.size() && d < datapaths_.size() && ideal > 0; ++d) {
    const double share = static_cast<double>(a.macs_by_datapath[d]) / std::max(1, datapaths_[d].macs_per_pe_per_cycle) / ideal;
    dyn[at(Component::kArrayPipeline)] += pe_cycles * share * pipeline_pj_[d];
  }
  if (core.mac_array.l0) {
    const double scale = sram_scale(table_.l0, core.mac_array.l0->size_kib);
    dyn[at(Component::kL0)] = scale * (a[Counter::kL0ReadBytes] * table_.l0.read_pj_per_byte +
                                       a[Counter::kL0WriteBytes] * table_.l0.write_pj_per_byte);
  }
  const double bank_kib = static_cast<double>(core.scratchpad.size_kib) / std::max(1, core.scratchpad.banks);
  dyn[at(Component::kScratchpad)] =
      sram_scale(table_.scratchpad, bank_kib) * (a[Counter::kScratchpadReadBytes] * table_.scratchpad.read_pj_per_byte +
                                                  a[Counter::kScratchpadWriteBytes] * table_.scratchpad.write_pj_per_byte);
  dyn[at(Component::kSfu)] = a[Counter::kSfuAluOps] * table_.sfu_alu_pj + a[Counter::kSfuExpOps] * table_.sfu_exp_pj +
                             a[Counter::kSfuDivSqrtOps] * table_.sfu_div_sqrt_pj;
  dyn[at(Component::kRounders)] =
      a[Counter::kRoundedElements] *
      (table_.rounder_pj_per_element + core.rounder.random_bits * table_.rounder_pj_per_random_bit);
  dyn[at(Component::kRing)] = a[Counter::kRingByteHops] * table_.ring_pj_per_byte_hop;
  for (double& pj : dyn) pj *= dynamic_scale_;
  dyn[at(Component::kDram)] = a[Counter::kDramReadBytes] * table_.dram_read_pj_per_byte +
                              a[Counter::kDramWriteBytes] * table_.dram_write_pj_per_byte;
  dyn[at(Component::kLinks)] = a[Counter::kLinkByteHops] * 8 * link_pj_per_bit_;
  if (chip_.host_link)
    dyn[at(Component::kLinks)] +=
        (a[Counter::kHostReadBytes] + a[Counter::kHostWriteBytes]) * 8 * chip_.host_link->pj_per_bit;
  for (std::size_t c = 0; c < kComponents; ++c) e.leakage_pj[c] = leakage_mw_[c] * 1e-3 * a.seconds * 1e12;
  return e;
}

double EnergyModel::leakage_mw() const { return std::accumulate(leakage_mw_.begin(), leakage_mw_.end(), 0.0); }

double EnergyModel::total_area_mm2() const {
  double total = 0;
  for (const auto& [block, mm2] : area_) total += mm2;
  return total;
}

}  // namespace lpt::energy
