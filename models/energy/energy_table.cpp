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

double energy(const JsonReader& reader, std::string_view key) { return reader.at(key).number(0, kMaxPicojoules); }

std::map<std::string, double> energies_by_format(const JsonReader& reader) {
  std::map<std::string, double> out;
  for (const auto& [format, value] : reader.members()) out[format] = value.number(0, kMaxPicojoules);
  if (out.empty()) reader.fail("expected at least one format, e.g. {\"fp16\": 0.3}");
  return out;
}

SramEnergy sram(const JsonReader& reader) {
  SramEnergy s;
  s.read_pj_per_byte = energy(reader, "read");
  s.write_pj_per_byte = energy(reader, "write");
  s.reference_bank_kib = reader.at("reference_bank_kib").number(1.0 / 1024, 1 << 20);
  reader.finish();
  return s;
}

}  // namespace

namespace {

// The entry of the pair "a x b", else the mean of the two formats' entries.
std::optional<double> by_operands(const std::map<std::string, double>& table, const std::string& a,
                                  const std::string& b) {
  if (const auto pair = table.find(a + " x " + b); pair != table.end()) return pair->second;
  const auto ea = table.find(a), eb = table.find(b);
  if (ea == table.end() || eb == table.end()) return std::nullopt;
  return (ea->second + eb->second) / 2;
}

PerBlock per_block(const JsonReader& reader, double max) {
  const auto value = [&](std::string_view key) { return reader.at(key).number(0, max); };
  return {value("per_pe"),         value("scratchpad_per_mib"), value("l0_per_kib"), value("sfu_per_lane"),
          value("rounder_per_lane"), value("ring_per_stop"),    value("core_other")};
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

void from_json(const JsonReader& reader, EnergyTable& t) {
  t = {};
  if (auto notes = reader.find("notes")) t.notes = notes->string();
  t.technology = reader.at("technology").string();
  t.reference_voltage = reader.at("reference_voltage").number(0.05, 5);
  t.multiply_pj = energies_by_format(reader.at("multiply_pj"));
  t.accumulate_pj = energies_by_format(reader.at("accumulate_pj"));
  const JsonReader array = reader.at("array");
  t.pe_register_pj_per_byte = energy(array, "pe_register_pj_per_byte");
  t.pipeline_pj_per_pe_cycle = energies_by_format(array.at("pipeline_pj_per_pe_cycle"));
  array.finish();
  const JsonReader sfu = reader.at("sfu_pj");
  t.sfu_alu_pj = energy(sfu, "alu");
  t.sfu_exp_pj = energy(sfu, "exp");
  t.sfu_div_sqrt_pj = energy(sfu, "div_sqrt");
  sfu.finish();
  const JsonReader rounder = reader.at("rounder_pj");
  t.rounder_pj_per_element = energy(rounder, "per_element");
  t.rounder_pj_per_random_bit = energy(rounder, "per_random_bit");
  rounder.finish();
  t.scratchpad = sram(reader.at("scratchpad_pj_per_byte"));
  t.l0 = sram(reader.at("l0_pj_per_byte"));
  t.ring_pj_per_byte_hop = energy(reader, "ring_pj_per_byte_hop");
  const JsonReader dram = reader.at("dram");
  t.dram_read_pj_per_byte = energy(dram, "read_pj_per_byte");
  t.dram_write_pj_per_byte = energy(dram, "write_pj_per_byte");
  t.dram_background_mw_per_channel = dram.at("background_mw_per_channel").number(0, kMaxMilliwatts);
  dram.finish();
  const JsonReader leak = reader.at("leakage_mw");
  t.leakage_mw = per_block(leak, kMaxMilliwatts);
  leak.finish();
  const JsonReader area = reader.at("area_mm2");
  t.area_mm2 = per_block(area, kMaxSquareMm);
  t.dram_phy_mm2_per_channel = area.at("dram_phy_per_channel").number(0, kMaxSquareMm);
  area.finish();
  const JsonReader sources = reader.at("sources");
  for (const std::string_view section : kSections) {
    const std::string text = sources.at(section).string();
    if (!text.starts_with("stated") && !text.starts_with("derived") && !text.starts_with("assumed"))
      sources.fail_at(section, "a source starts with its label: stated, derived or assumed");
    t.sources[std::string(section)] = text;
  }
  sources.finish();
  reader.finish();
}

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
