#include "models/energy/energy_table.hpp"

#include <array>

namespace lpt::energy {

namespace {

constexpr double kMaxPicojoules = 1e9;  // per action or per byte: far above any circuit
constexpr double kMaxMilliwatts = 1e9;
constexpr double kMaxSquareMm = 1e6;

// Sections that must name their source.
constexpr std::array<std::string_view, 12> kSections = {
    "reference_voltage", "multiply_pj", "accumulate_pj", "array",      "sfu_pj",     "rounder_pj",
    "scratchpad_pj_per_byte", "l0_pj_per_byte", "ring_pj_per_byte_hop", "dram", "leakage_mw", "area_mm2"};

// The entry of the pair "a x b", else the mean of the two formats' entries.
std::optional<double> by_operands(const std::map<std::string, double>& table, const std::string& a,
                                  const std::string& b) {
  if (const auto pair = table.find(a + " x " + b); pair != table.end()) return pair->second;
  const auto ea = table.find(a), eb = table.find(b);
  if (ea == table.end() || eb == table.end()) return std::nullopt;
  return (ea->second + eb->second) / 2;
}

nlohmann::json per_block_json(const PerBlock& b) {
  return {{"per_pe", b.per_pe},
          {"scratchpad_per_mib", b.scratchpad_per_mib},
          {"l0_per_kib", b.l0_per_kib},
          {"sfu_per_lane", b.sfu_per_lane},
          {"rounder_per_lane", b.rounder_per_lane},
          {"ring_per_stop", b.ring_per_stop},
          {"core_other", b.core_other}};
}

}  // namespace

std::optional<double> EnergyTable::multiply(const std::string& a, const std::string& b) const {
  return by_operands(multiply_pj, a, b);
}

std::optional<double> EnergyTable::pipeline(const std::string& a, const std::string& b) const {
  return by_operands(pipeline_pj_per_pe_cycle, a, b);
}

namespace {

using K = param::Keys<EnergyTable>;

template <class Member>
param::Key<EnergyTable> energy(std::string name, Member member, std::string unit, std::string description) {
  return K::number(std::move(name), member, 0, kMaxPicojoules, std::move(unit), std::move(description));
}

template <class Member>
param::Key<EnergyTable> energies_by_format(std::string name, Member member, std::string unit,
                                           std::string description) {
  return K::number_map(std::move(name), member, "format name", 0, kMaxPicojoules, std::move(unit),
                       "{\"fp16\": 0.3}", std::move(description));
}

const param::Schema<SramEnergy>& sram_schema() {
  using S = param::Keys<SramEnergy>;
  static const param::Schema<SramEnergy> schema(
      "Per byte of an SRAM access at a reference bank size; a bank of another size costs √(size / reference) "
      "times as much. The scratchpad's bank is its size / banks, an L0's its size.",
      {S::number("read", &SramEnergy::read_pj_per_byte, 0, kMaxPicojoules, "pJ/byte", "a byte read"),
       S::number("write", &SramEnergy::write_pj_per_byte, 0, kMaxPicojoules, "pJ/byte", "a byte written"),
       S::number("reference_bank_kib", &SramEnergy::reference_bank_kib, 1.0 / 1024, 1 << 20, "KiB",
                 "the bank size the figures hold for")});
  return schema;
}

// Leakage and area share their blocks: each figure is per unit of a block.
std::vector<param::Key<EnergyTable>> per_block_keys(PerBlock EnergyTable::*table, const std::string& unit,
                                                    double max) {
  const auto block = [table](double PerBlock::*figure) {
    return [table, figure](EnergyTable& t) -> double& { return (t.*table).*figure; };
  };
  return {K::number("per_pe", block(&PerBlock::per_pe), 0, max, unit + " per PE", "the MAC arrays"),
          K::number("scratchpad_per_mib", block(&PerBlock::scratchpad_per_mib), 0, max, unit + " per MiB",
                    "the scratchpads"),
          K::number("l0_per_kib", block(&PerBlock::l0_per_kib), 0, max, unit + " per KiB", "the L0 buffers"),
          K::number("sfu_per_lane", block(&PerBlock::sfu_per_lane), 0, max, unit + " per lane", "the SFUs"),
          K::number("rounder_per_lane", block(&PerBlock::rounder_per_lane), 0, max, unit + " per lane",
                    "the stochastic rounders"),
          K::number("ring_per_stop", block(&PerBlock::ring_per_stop), 0, max, unit + " per stop",
                    "the ring: one stop per core and one for the memory controller"),
          K::number("core_other", block(&PerBlock::core_other), 0, max, unit + " per core",
                    "the rest of a core: controller, DMA engine, clock generation")};
}

const param::Schema<EnergyTable>& array_schema() {
  static const param::Schema<EnergyTable> schema(
      "The MAC arrays beyond the MACs themselves.",
      {energy("pe_register_pj_per_byte", &EnergyTable::pe_register_pj_per_byte, "pJ/byte",
              "operands latched in the PEs: per operand byte a MAC reads"),
       energies_by_format("pipeline_pj_per_pe_cycle", &EnergyTable::pipeline_pj_per_pe_cycle, "pJ per PE cycle",
                          "clock tree, pipeline registers and control, per PE per cycle the array runs, by operand "
                          "format (a mixed pair as in multiply_pj)")});
  return schema;
}

const param::Schema<EnergyTable>& sfu_energy_schema() {
  static const param::Schema<EnergyTable> schema(
      "Energy of one SFU operation, by kind (as chip `core/sfu/ops_per_cycle` groups them).",
      {energy("alu", &EnergyTable::sfu_alu_pj, "pJ/op", "add, multiply, fma, max, compare, select"),
       energy("exp", &EnergyTable::sfu_exp_pj, "pJ/op", "exp and log"),
       energy("div_sqrt", &EnergyTable::sfu_div_sqrt_pj, "pJ/op", "divide, square root, reciprocal square root")});
  return schema;
}

const param::Schema<EnergyTable>& rounder_energy_schema() {
  static const param::Schema<EnergyTable> schema(
      "Energy of rounding one element: per_element + the chip's `random_bits` × per_random_bit.",
      {energy("per_element", &EnergyTable::rounder_pj_per_element, "pJ/element", "one rounded element"),
       energy("per_random_bit", &EnergyTable::rounder_pj_per_random_bit, "pJ/bit",
              "each random bit drawn for it")});
  return schema;
}

const param::Schema<EnergyTable>& dram_energy_schema() {
  static const param::Schema<EnergyTable> schema(
      "DRAM, on its own supply: not scaled with the chip's voltage.",
      {energy("read_pj_per_byte", &EnergyTable::dram_read_pj_per_byte, "pJ/byte", "a byte read, with the interface"),
       energy("write_pj_per_byte", &EnergyTable::dram_write_pj_per_byte, "pJ/byte",
              "a byte written, with the interface"),
       K::number("background_mw_per_channel", &EnergyTable::dram_background_mw_per_channel, 0, kMaxMilliwatts,
                 "mW per channel", "background power of a channel, for the whole run")});
  return schema;
}

const param::Schema<EnergyTable>& leakage_schema() {
  static const param::Schema<EnergyTable> schema(
      "Leakage power per unit of each block, at the reference voltage; it scales with voltage / "
      "reference_voltage.",
      per_block_keys(&EnergyTable::leakage_mw, "mW", kMaxMilliwatts));
  return schema;
}

const param::Schema<EnergyTable>& area_schema() {
  static const param::Schema<EnergyTable> schema("Area per unit of each block, for the report's area figures.", [] {
    auto keys = per_block_keys(&EnergyTable::area_mm2, "mm²", kMaxSquareMm);
    keys.push_back(K::number("dram_phy_per_channel", &EnergyTable::dram_phy_mm2_per_channel, 0, kMaxSquareMm,
                             "mm² per channel", "the DRAM interface (PHY)"));
    return keys;
  }());
  return schema;
}

using Sources = std::map<std::string, std::string>;

const param::Schema<Sources>& sources_schema() {
  static const param::Schema<Sources> schema(
      "Where each section's figures come from: text starting with its label.", [] {
        std::vector<param::Key<Sources>> keys;
        for (const std::string_view section : kSections)
          keys.push_back(param::Keys<Sources>::value(
              {std::string(section), "string", {}, "starts with `stated`, `derived` or `assumed`", {},
               "source of `" + std::string(section) + "`"},
              [section](Sources& sources) -> std::string& { return sources[std::string(section)]; },
              [](const JsonReader& in) {
                std::string text = in.string();
                if (!text.starts_with("stated") && !text.starts_with("derived") && !text.starts_with("assumed"))
                  in.fail("a source starts with its label: stated, derived or assumed");
                return text;
              }));
        return keys;
      }());
  return schema;
}

}  // namespace

const param::Schema<EnergyTable>& energy_table_schema() {
  static const param::Schema<EnergyTable> schema(
      "The energy table: a file a chip description names in `energy`, or the object there. Dynamic energies "
      "and leakage hold at `reference_voltage`; the chip's `voltage` scales them (docs/energy.md).",
      {K::text("technology", &EnergyTable::technology, "the process, e.g. \"7 nm\"; `lptsim validate` shows it"),
       K::number("reference_voltage", &EnergyTable::reference_voltage, 0.05, 5, "V",
                 "the supply the figures hold at"),
       energies_by_format("multiply_pj", &EnergyTable::multiply_pj, "pJ/MAC",
                          "one MAC of a PE's dot-product unit (the multiply and its share of the adder tree), by "
                          "operand format; a pair may be given as \"a x b\", else a mixed pair costs the mean of its "
                          "formats' entries"),
       energies_by_format("accumulate_pj", &EnergyTable::accumulate_pj, "pJ/add",
                          "an add into the accumulator, by accumulator format: once per PE cycle and once per chunk"),
       K::group("array", array_schema(), "the arrays' registers and pipeline"),
       K::group("sfu_pj", sfu_energy_schema(), "SFU operations"),
       K::group("rounder_pj", rounder_energy_schema(), "stochastic rounding"),
       K::object("scratchpad_pj_per_byte", &EnergyTable::scratchpad, sram_schema(), "scratchpad accesses"),
       K::object("l0_pj_per_byte", &EnergyTable::l0, sram_schema(), "L0 buffer accesses"),
       energy("ring_pj_per_byte_hop", &EnergyTable::ring_pj_per_byte_hop, "pJ/(byte × hop)",
              "a byte crossing one ring link"),
       K::group("dram", dram_energy_schema(), "DRAM"),
       K::group("leakage_mw", leakage_schema(), "leakage power"),
       K::group("area_mm2", area_schema(), "area"),
       K::object("sources", &EnergyTable::sources, sources_schema(), "the source of every section"),
       K::optional(K::text("notes", &EnergyTable::notes, "free text"))});
  return schema;
}

void from_json(const JsonReader& reader, EnergyTable& t) { t = energy_table_schema().read(reader); }

void to_json(nlohmann::json& json, const EnergyTable& t) {
  nlohmann::json area = per_block_json(t.area_mm2);
  area["dram_phy_per_channel"] = t.dram_phy_mm2_per_channel;
  json = {{"technology", t.technology},
          {"reference_voltage", t.reference_voltage},
          {"multiply_pj", t.multiply_pj},
          {"accumulate_pj", t.accumulate_pj},
          {"array", {{"pe_register_pj_per_byte", t.pe_register_pj_per_byte},
                     {"pipeline_pj_per_pe_cycle", t.pipeline_pj_per_pe_cycle}}},
          {"sfu_pj", {{"alu", t.sfu_alu_pj}, {"exp", t.sfu_exp_pj}, {"div_sqrt", t.sfu_div_sqrt_pj}}},
          {"rounder_pj", {{"per_element", t.rounder_pj_per_element}, {"per_random_bit", t.rounder_pj_per_random_bit}}},
          {"scratchpad_pj_per_byte", {{"read", t.scratchpad.read_pj_per_byte},
                                      {"write", t.scratchpad.write_pj_per_byte},
                                      {"reference_bank_kib", t.scratchpad.reference_bank_kib}}},
          {"l0_pj_per_byte", {{"read", t.l0.read_pj_per_byte},
                              {"write", t.l0.write_pj_per_byte},
                              {"reference_bank_kib", t.l0.reference_bank_kib}}},
          {"ring_pj_per_byte_hop", t.ring_pj_per_byte_hop},
          {"dram", {{"read_pj_per_byte", t.dram_read_pj_per_byte},
                    {"write_pj_per_byte", t.dram_write_pj_per_byte},
                    {"background_mw_per_channel", t.dram_background_mw_per_channel}}},
          {"leakage_mw", per_block_json(t.leakage_mw)},
          {"area_mm2", area},
          {"sources", t.sources}};
  if (!t.notes.empty()) json["notes"] = t.notes;
}

}  // namespace lpt::energy
