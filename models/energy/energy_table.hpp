// Energy per action, leakage power and area of the chip's components: the
// table a chip description references ("energy": a file name or an object).
// Dynamic energies and leakage hold at `reference_voltage`; the operating
// point scales them (models/energy/energy_model.hpp). Every section names its
// source in `sources`, labelled stated / derived / assumed.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/common/param_schema.hpp"

namespace lpt::energy {

// Per byte of an SRAM access, at a reference bank size: a bank of another
// size costs sqrt(size / reference) times as much (bit-line and word-line
// length grow with the square root of the array).
struct SramEnergy {
  double read_pj_per_byte = 0;
  double write_pj_per_byte = 0;
  double reference_bank_kib = 0;
};

// A figure (leakage power, area) per unit of each block of the chip.
struct PerBlock {
  double per_pe = 0;
  double scratchpad_per_mib = 0;
  double l0_per_kib = 0;
  double sfu_per_lane = 0;
  double rounder_per_lane = 0;
  double ring_per_stop = 0;
  double core_other = 0;  // per core: controller, DMA engines, clock generation
};

struct EnergyTable {
  std::string technology;         // e.g. "7 nm"
  double reference_voltage = 0;   // V
  // One MAC of a PE's dot-product unit, by operand format: the multiply and
  // its share of the adder tree that sums the dot product. A pair may be
  // given as "a x b", else a mixed pair costs the mean of its formats' entries.
  std::map<std::string, double> multiply_pj;
  // An add into the accumulator, by accumulator format: once per PE cycle
  // (a dot product's sum) and once per chunk (its spill into the outer sum).
  std::map<std::string, double> accumulate_pj;
  // Operand delivery in the arrays: per operand byte a MAC latches in its PE.
  double pe_register_pj_per_byte = 0;
  // Clock tree, pipeline registers and control of the arrays: per PE per cycle
  // the array runs, by operand format (pair rule as multiply_pj): RaPiD runs
  // floating- and fixed-point MACs in separate pipelines, and a cycle's cost
  // is shared by the MACs it does (16 HFP8 or 64 INT4 per PE).
  std::map<std::string, double> pipeline_pj_per_pe_cycle;
  double sfu_alu_pj = 0, sfu_exp_pj = 0, sfu_div_sqrt_pj = 0;
  double rounder_pj_per_element = 0, rounder_pj_per_random_bit = 0;
  SramEnergy scratchpad, l0;
  double ring_pj_per_byte_hop = 0;
  // Off chip, on its own supply: not scaled with the chip's voltage.
  double dram_read_pj_per_byte = 0, dram_write_pj_per_byte = 0;
  double dram_background_mw_per_channel = 0;
  PerBlock leakage_mw;  // at the reference voltage
  PerBlock area_mm2;
  double dram_phy_mm2_per_channel = 0;
  std::map<std::string, std::string> sources;  // section -> "stated|derived|assumed: ..."
  std::string notes;                            // optional free text

  // Energy of one multiply of `a` by `b`, and of a PE's pipeline cycle in
  // those formats; nullopt if the table has neither the pair nor both formats.
  std::optional<double> multiply(const std::string& a, const std::string& b) const;
  std::optional<double> pipeline(const std::string& a, const std::string& b) const;
};

// The table's keys, declared once: they read it and document it.
const param::Schema<EnergyTable>& energy_table_schema();

void from_json(const JsonReader& reader, EnergyTable& table);
void to_json(nlohmann::json& json, const EnergyTable& table);

}  // namespace lpt::energy
