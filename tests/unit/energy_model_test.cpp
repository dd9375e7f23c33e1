// The energy table's strict reading and the energy model's arithmetic on
// activity computed by hand.
#include "models/energy/energy_model.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "sim/config.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt::energy {
namespace {

using core::Counter;

core::ChipParams rapid_chip() { return load_chip(test_support::source_dir() / "configs/chip-rapid-4core.json"); }

nlohmann::json table_json() { return load_json_file(test_support::source_dir() / "configs/energy-7nm.json"); }

std::string parse_error(const nlohmann::json& json) {
  try {
    EnergyTable t;
    from_json(JsonReader(json, "/energy"), t);
  } catch (const InputError& e) {
    return e.json_path() + ": " + e.message();
  }
  return "accepted";
}

const core::Datapath kHfp8{"hfp8_e4m3", "hfp8_e4m3", "dlfloat16", 8, 8, 16};
const core::Datapath kFp16{"fp16", "fp16", "dlfloat16", 16, 16, 8};

// `macs` of datapath 0 at full arrays (busy PE-cycles = MACs / width), lasting `seconds`.
ActivityTotals gemm(const core::ChipParams& chip, std::uint64_t macs, int width, double seconds) {
  ActivityTotals a;
  a.macs_by_datapath = {macs};
  a.counters[static_cast<std::size_t>(Counter::kMacs)] = static_cast<double>(macs);
  a.counters[static_cast<std::size_t>(Counter::kBusyCycles)] =
      static_cast<double>(macs) / width / static_cast<double>(chip.core.mac_array.pes());
  a.seconds = seconds;
  return a;
}

double component(const EnergyBreakdown& e, Component c) { return e.dynamic_pj[static_cast<std::size_t>(c)]; }

TEST(EnergyTable, ShippedTableLoadsWithASourceForEverySection) {
  const core::ChipParams chip = rapid_chip();
  EXPECT_EQ(chip.energy.technology, "7 nm");
  EXPECT_DOUBLE_EQ(chip.voltage, chip.energy.reference_voltage);
  for (const auto& [section, source] : chip.energy.sources)
    EXPECT_TRUE(source.starts_with("stated") || source.starts_with("derived") || source.starts_with("assumed"))
        << section;
  EXPECT_EQ(chip.energy.sources.size(), 12u);
}

TEST(EnergyTable, BadEntriesAreErrorsNeverZeros) {
  auto json = table_json();
  json["multiply_pj"]["int4"] = -0.1;
  EXPECT_NE(parse_error(json).find("/energy/multiply_pj/int4"), std::string::npos);
  json = table_json();
  json["sfu_pj"]["exp"] = "cheap";
  EXPECT_NE(parse_error(json).find("/energy/sfu_pj/exp"), std::string::npos);
  json = table_json();
  json["dram"].erase("read_pj_per_byte");
  EXPECT_NE(parse_error(json).find("/energy/dram/read_pj_per_byte: missing required key"), std::string::npos);
  json = table_json();
  json["sources"]["dram"] = "DDR4, roughly";
  EXPECT_NE(parse_error(json).find("/energy/sources/dram"), std::string::npos);
  json = table_json();
  json["sources"].erase("area_mm2");
  EXPECT_NE(parse_error(json).find("/energy/sources/area_mm2"), std::string::npos);
  json = table_json();
  json["leakage_mw"]["per_pe"] = 1e300;
  EXPECT_NE(parse_error(json).find("/energy/leakage_mw/per_pe"), std::string::npos);
}

TEST(EnergyTable, MixedOperandsCostTheMeanUnlessThePairIsGiven) {
  EnergyTable t;
  t.multiply_pj = {{"a", 1.0}, {"b", 3.0}, {"a x c", 5.0}};
  EXPECT_DOUBLE_EQ(*t.multiply("a", "b"), 2.0);
  EXPECT_DOUBLE_EQ(*t.multiply("a", "c"), 5.0);
  EXPECT_FALSE(t.multiply("c", "a"));
  EXPECT_FALSE(t.multiply("b", "d"));
}

TEST(EnergyModel, MacEnergyIsMacsTimesTheTableEntries) {
  const core::ChipParams chip = rapid_chip();
  const EnergyModel model(chip, {kHfp8}, {chip.clock_ghz, chip.energy.reference_voltage});
  const std::uint64_t macs = 1'000'000;
  const EnergyBreakdown e = model.energy(gemm(chip, macs, 16, 0));
  const EnergyTable& t = chip.energy;
  EXPECT_DOUBLE_EQ(component(e, Component::kMultipliers), macs * t.multiply_pj.at("hfp8_e4m3"));
  // One accumulator add per PE cycle (16 MACs) and one per chunk of 64.
  EXPECT_NEAR(component(e, Component::kAccumulators), macs * t.accumulate_pj.at("dlfloat16") * (1.0 / 16 + 1.0 / 64),
              1e-6);
  EXPECT_NEAR(component(e, Component::kPeRegisters), macs * 2 * t.pe_register_pj_per_byte, 1e-6);
  EXPECT_NEAR(component(e, Component::kArrayPipeline), macs / 16.0 * t.pipeline_pj_per_pe_cycle.at("hfp8_e4m3"), 1e-3);
  EXPECT_DOUBLE_EQ(e.leakage_total_pj(), 0);  // no time passed
}

TEST(EnergyModel, ATableEntryMovesEnergyByItsRatio) {
  core::ChipParams chip = rapid_chip();
  const ActivityTotals a = gemm(chip, 1'000'000, 16, 1e-3);
  const double before = EnergyModel(chip, {kHfp8}, {1.6, 0.75}).energy(a).component_pj(Component::kMultipliers);
  chip.energy.multiply_pj["hfp8_e4m3"] *= 3;
  const double after = EnergyModel(chip, {kHfp8}, {1.6, 0.75}).energy(a).component_pj(Component::kMultipliers);
  EXPECT_NEAR(after / before, 3.0, 1e-12);
}

TEST(EnergyModel, Fp8SpendsLessOnMacsThanFp16ByTheTablesRatio) {
  const core::ChipParams chip = rapid_chip();
  const std::uint64_t macs = 1 << 24;
  const EnergyModel fp8(chip, {kHfp8}, {1.6, 0.75});
  const EnergyModel fp16(chip, {kFp16}, {1.6, 0.75});
  const double e8 = component(fp8.energy(gemm(chip, macs, 16, 0)), Component::kMultipliers);
  const double e16 = component(fp16.energy(gemm(chip, macs, 8, 0)), Component::kMultipliers);
  EXPECT_LT(e8, e16);
  EXPECT_NEAR(e8 / e16, chip.energy.multiply_pj.at("hfp8_e4m3") / chip.energy.multiply_pj.at("fp16"), 1e-12);
}

TEST(EnergyModel, LeakageScalesWithTimeAndVoltageDynamicWithItsSquare) {
  const core::ChipParams chip = rapid_chip();
  const EnergyModel nominal(chip, {kHfp8}, {1.6, 0.75});
  const EnergyModel low(chip, {kHfp8}, {1.0, 0.55});
  const ActivityTotals a = gemm(chip, 1 << 24, 16, 1e-3);
  ActivityTotals twice = a;
  twice.seconds *= 2;
  const EnergyBreakdown n = nominal.energy(a), l = low.energy(a);
  EXPECT_NEAR(nominal.energy(twice).leakage_total_pj(), 2 * n.leakage_total_pj(), 1e-6 * n.leakage_total_pj());
  // On-chip leakage by V; DRAM background power is on its own supply.
  const double dram_n = n.leakage_pj[static_cast<std::size_t>(Component::kDram)];
  const double dram_l = l.leakage_pj[static_cast<std::size_t>(Component::kDram)];
  EXPECT_DOUBLE_EQ(dram_n, dram_l);
  EXPECT_NEAR((l.leakage_total_pj() - dram_l) / (n.leakage_total_pj() - dram_n), 0.55 / 0.75, 1e-12);
  EXPECT_NEAR(l.dynamic_total_pj() / n.dynamic_total_pj(), std::pow(0.55 / 0.75, 2), 1e-12);
}

TEST(EnergyModel, ADatapathTheTableDoesNotPriceIsRejected) {
  const core::ChipParams chip = rapid_chip();
  EXPECT_THROW(EnergyModel(chip, {{"posit8", "posit8", "dlfloat16", 8, 8, 16}}, {1.6, 0.75}), std::invalid_argument);
  EXPECT_THROW(EnergyModel(chip, {{"fp16", "fp16", "fp64", 16, 16, 8}}, {1.6, 0.75}), std::invalid_argument);
}

TEST(EnergyModel, AreaAddsUpTheBlocks) {
  const core::ChipParams chip = rapid_chip();
  const EnergyModel model(chip, {}, {1.6, 0.75});
  const auto& a = chip.energy.area_mm2;
  EXPECT_NEAR(model.area_mm2().at("arrays"), 4 * 2 * 64 * a.per_pe, 1e-12);
  EXPECT_NEAR(model.area_mm2().at("scratchpad"), 4 * 2 * a.scratchpad_per_mib, 1e-12);
  double sum = 0;
  for (const auto& [block, mm2] : model.area_mm2()) sum += mm2;
  EXPECT_DOUBLE_EQ(model.total_area_mm2(), sum);
}

}  // namespace
}  // namespace lpt::energy
