#include "sim/config.hpp"

#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace lpt {
namespace {

using lpt::test_support::source_dir;

// tiny.json with its chip description inlined, ready to be edited.
nlohmann::json tiny() {
  nlohmann::json doc = load_json_file((source_dir() / "configs/tiny.json").string());
  doc["chip"] = load_chip_document((source_dir() / "configs/").string() + doc["chip"].get<std::string>());
  return doc;
}

void expect_error(const nlohmann::json& doc, const std::string& path, const std::string& fragment) {
  try {
    parse_config(JsonReader(doc, ""));
    FAIL() << "accepted a bad config; expected an error at " << path;
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), path) << e.what();
    EXPECT_NE(e.message().find(fragment), std::string::npos) << e.what();
  }
}

TEST(Config, ShippedConfigsLoad) {
  for (const char* name : {"rapid-4core", "fp16-baseline", "tiny"}) {
    const auto config = load_config((source_dir() / "configs/").string() + name + ".json");
    EXPECT_EQ(config.name, name);
  }
  const auto rapid = load_config((source_dir() / "configs/rapid-4core.json").string());
  EXPECT_EQ(rapid.chip.cores, 4);
  EXPECT_EQ(rapid.precision.gemm[0]->a.name, "hfp8_e4m3");
  EXPECT_EQ(rapid.precision.gemm[1]->a.name, "hfp8_e5m2");
  EXPECT_EQ(rapid.precision.for_gemm(Phase::kFwd, LayerPosition::kFirst).a.name, "dlfloat16");
  EXPECT_EQ(rapid.precision.for_gemm(Phase::kFwd, LayerPosition::kMiddle).a.name, "hfp8_e4m3");
}

TEST(Config, ResolvedConfigRoundTrips) {
  const auto config = load_config((source_dir() / "configs/rapid-4core.json").string());
  const nlohmann::json written = config;
  const auto again = parse_config(JsonReader(written, ""));
  const nlohmann::json rewritten = again;
  EXPECT_EQ(written, rewritten);
}

TEST(Config, RejectsUnknownAndMissingKeys) {
  auto doc = tiny();
  doc["precision"]["fwd"]["acumulator"] = "fp32";
  expect_error(doc, "/precision/fwd/acumulator", "unknown key");
  doc = tiny();
  doc["precision"].erase("update");
  expect_error(doc, "/precision/update", "missing required key");
  doc = tiny();
  doc["colour"] = "blue";
  expect_error(doc, "/colour", "unknown key");
  // The valid keys are listed whether or not the file has them.
  expect_error(doc, "/colour", "expected one of: chip, data_parallel, description, fidelity, fusion, name, precision, residency, spill_to_host, system");
}

TEST(Config, RejectsFormatsTheChipDoesNotRun) {
  auto doc = tiny();
  doc["precision"]["bwd"]["a"] = "bf16";
  expect_error(doc, "/precision/bwd/a", "not run by the MAC array");
  doc = tiny();
  doc["precision"]["wgrad"]["accumulator"] = "fp16";
  expect_error(doc, "/precision/wgrad/accumulator", "accumulator/formats");
  doc = tiny();
  doc["precision"]["last_layer"]["fwd"]["b"] = "int8";
  expect_error(doc, "/precision/last_layer/fwd/b", "not run by the MAC array");
}

TEST(Config, RejectsUnknownFormatNames) {
  auto doc = tiny();
  doc["precision"]["fwd"]["output"] = "fp9";
  try {
    parse_config(JsonReader(doc, ""));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), "/precision/fwd/output") << e.what();
  }
  doc = tiny();
  doc["chip"]["core"]["mac_array"]["macs_per_pe_per_cycle"]["fp7"] = 2;
  expect_error(doc, "/chip/core/mac_array/macs_per_pe_per_cycle/fp7", "unknown format");
}

TEST(Config, RejectsBadOptimizerAndRounding) {
  auto doc = tiny();
  doc["precision"]["update"]["optimizer"] = "lamb";
  expect_error(doc, "/precision/update/optimizer", "sgd_momentum|adam");
  doc = tiny();
  doc["precision"]["update"]["rounding"] = 1;
  expect_error(doc, "/precision/update/rounding", "expected a string");
}

TEST(Config, LossScaleIsDynamicOrAPowerOfTwo) {
  auto doc = tiny();
  EXPECT_TRUE(parse_config(JsonReader(doc, "")).precision.loss_scale.dynamic);
  doc["precision"]["loss_scale"] = 1024;
  const LossScale fixed = parse_config(JsonReader(doc, "")).precision.loss_scale;
  EXPECT_FALSE(fixed.dynamic);
  EXPECT_EQ(fixed.factor, 1024);
  doc["precision"]["loss_scale"] = 1000;
  expect_error(doc, "/precision/loss_scale", "power of two");
  doc["precision"]["loss_scale"] = "static";
  expect_error(doc, "/precision/loss_scale", "dynamic");
}

TEST(Config, StageRoundingsReachTheDatapathAndImpossibleOnesAreErrors) {
  auto doc = tiny();
  doc["precision"]["wgrad"]["accumulation_rounding"] = "sr";
  doc["precision"]["wgrad"]["output_rounding"] = "rtz";
  const auto config = parse_config(JsonReader(doc, ""));
  EXPECT_EQ(config.precision.gemm[2]->accumulation_rounding, num::Rounding::kStochastic);
  EXPECT_EQ(config.precision.gemm[2]->output_rounding, num::Rounding::kTowardZero);
  const nlohmann::json written = config;
  EXPECT_EQ(written["precision"]["wgrad"]["accumulation_rounding"], "sr");
  // Stochastic adds into FP32 see 52 - 24 = 28 exact bits below the kept ones: a wider rounder cannot be emulated.
  doc["precision"]["wgrad"]["accumulator"] = "fp32";
  doc["chip"]["core"]["rounder"]["random_bits"] = 40;
  expect_error(doc, "/precision/wgrad", "needs 1..28 random bits, got 40");
  doc["chip"]["core"]["rounder"]["random_bits"] = 8;
  doc["precision"]["wgrad"]["accumulation_rounding"] = "nearest";
  expect_error(doc, "/precision/wgrad/accumulation_rounding", "expected one of rne|away|rtz|sr|sr_exact");
}

TEST(Config, FidelityParametersHaveDefaultsAndRanges) {
  auto doc = tiny();
  const FidelityParams defaults = parse_config(JsonReader(doc, "")).fidelity;
  EXPECT_TRUE(defaults.enabled);
  EXPECT_EQ(defaults.sampled_outputs, 16);
  doc["fidelity"] = {{"sampled_outputs", 64}, {"seed", 3}, {"min_sqnr_db", 12.5}, {"enabled", false}};
  const FidelityParams set = parse_config(JsonReader(doc, "")).fidelity;
  EXPECT_EQ(set, (FidelityParams{false, 64, std::int64_t{1} << 23, 3, 12.5}));
  doc["fidelity"] = {{"sampled_outputs", 0}};
  expect_error(doc, "/fidelity/sampled_outputs", "expected an integer in [1, 4096]");
  doc["fidelity"] = {{"samples", 8}};
  expect_error(doc, "/fidelity/samples",
               "expected one of: allreduce_elements, compression_steps, enabled, inverse_dimension, max_operand_values, min_sqnr_db, "
               "sampled_outputs, seed, worker_correlation");
  // The gradient all-reduce's: defaults, set, ranges.
  EXPECT_EQ(defaults.allreduce_elements, std::uint64_t{1} << 18);
  EXPECT_EQ(defaults.worker_correlation, 0.5);
  EXPECT_EQ(defaults.compression_steps, 8);
  doc["fidelity"] = {{"allreduce_elements", 4096}, {"worker_correlation", 0.9}, {"compression_steps", 3}};
  const FidelityParams allreduce = parse_config(JsonReader(doc, "")).fidelity;
  EXPECT_EQ(allreduce.allreduce_elements, 4096u);
  EXPECT_EQ(allreduce.worker_correlation, 0.9);
  EXPECT_EQ(allreduce.compression_steps, 3);
  doc["fidelity"] = {{"allreduce_elements", 100}};
  expect_error(doc, "/fidelity/allreduce_elements", "expected an integer in [1024, 16777216]");
  doc["fidelity"] = {{"worker_correlation", 1.5}};
  expect_error(doc, "/fidelity/worker_correlation", "[0, 1]");
  doc["fidelity"] = {{"compression_steps", 0}};
  expect_error(doc, "/fidelity/compression_steps", "expected an integer in [1, 1000]");
}

TEST(Config, FusionIsNoneUnlessTheConfigSaysSo) {
  auto doc = tiny();
  EXPECT_EQ(parse_config(JsonReader(doc, "")).fusion, Fusion::kNone);
  doc["fusion"] = "full";
  EXPECT_EQ(parse_config(JsonReader(doc, "")).fusion, Fusion::kFull);
  EXPECT_EQ(load_config(source_dir() / "configs/rapid-4core.json").fusion, Fusion::kFull);
  doc["fusion"] = "all";
  expect_error(doc, "/fusion", "none|epilogue|full");
  doc["fusion"] = true;
  expect_error(doc, "/fusion", "expected a string");
}

TEST(Config, AFusionModeTheChipsSfuCannotRunIsAnError) {
  auto doc = tiny();
  doc["chip"]["core"]["sfu"]["fusion"] = "epilogue";
  doc["fusion"] = "epilogue";
  EXPECT_EQ(parse_config(JsonReader(doc, "")).fusion, Fusion::kEpilogue);
  doc["fusion"] = "full";
  expect_error(doc, "/fusion", "/chip/core/sfu/fusion");
  expect_error(doc, "/fusion", "batch-norm statistics");
  doc["chip"]["core"]["sfu"]["fusion"] = "none";
  doc["fusion"] = "epilogue";
  expect_error(doc, "/fusion", "output path");
  doc["fusion"] = "none";
  EXPECT_EQ(parse_config(JsonReader(doc, "")).fusion, Fusion::kNone);
  doc["chip"]["core"]["sfu"]["fusion"] = "partial";
  expect_error(doc, "/chip/core/sfu/fusion", "none|epilogue|full");
  doc["chip"]["core"]["sfu"].erase("fusion");
  expect_error(doc, "/chip/core/sfu/fusion", "missing required key");
}

TEST(Config, AnEnergyTableMissingAnEntryTheConfigUsesIsAnError) {
  auto doc = tiny();
  doc["chip"]["energy"]["multiply_pj"].erase("hfp8_e4m3");
  expect_error(doc, "/chip/energy/multiply_pj", "no multiply energy for hfp8_e4m3 x hfp8_e4m3");
  doc = tiny();
  doc["chip"]["energy"]["accumulate_pj"].erase("dlfloat16");
  expect_error(doc, "/chip/energy/accumulate_pj", "no accumulate energy for dlfloat16");
  doc = tiny();
  doc["chip"]["energy"]["array"]["pipeline_pj_per_pe_cycle"].erase("hfp8_e5m2");
  expect_error(doc, "/chip/energy/array/pipeline_pj_per_pe_cycle", "hfp8_e5m2");
}

TEST(Config, EnergyTableErrorsNameTheTableFile) {
  const auto dir = std::filesystem::temp_directory_path() / "lptsim_energy_error";
  std::filesystem::create_directories(dir);
  auto chip = load_json_file(source_dir() / "configs/chip-tiny.json");
  chip["energy"] = "table.json";
  auto table = load_json_file(source_dir() / "configs/energy-7nm.json");
  table["sfu_pj"]["alu"] = -1;
  auto config = load_json_file(source_dir() / "configs/tiny.json");
  config["chip"] = "chip.json";
  for (const auto& [name, json] : {std::pair{"chip.json", chip}, {"table.json", table}, {"config.json", config}})
    std::ofstream(dir / name) << json.dump();
  try {
    load_config(dir / "config.json");
    ADD_FAILURE() << "accepted a negative energy";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "table.json").string());
    EXPECT_EQ(e.json_path(), "/sfu_pj/alu");
  }
  std::filesystem::remove_all(dir);
}

// --set: values land where the pointer says, in the config, its chip
// description or its energy table, before validation; errors name the place.
TEST(Config, OverridesSetValuesBeforeValidation) {
  const auto file = source_dir() / "configs/rapid-4core.json";
  ConfigDocument doc = read_config_document(file);
  apply_override(doc, "/chip/cores=8");
  apply_override(doc, "/fusion=epilogue");  // a bare word is a string
  apply_override(doc, "/chip/energy/dram/read_pj_per_byte=80.5");
  apply_override(doc, "/chip/core/accumulator/formats/1=\"fp32\"");
  const AcceleratorConfig config = parse_config_document(doc);
  EXPECT_EQ(config.chip.cores, 8);
  EXPECT_EQ(config.fusion, Fusion::kEpilogue);
  EXPECT_DOUBLE_EQ(config.chip.energy.dram_read_pj_per_byte, 80.5);
  EXPECT_EQ(load_config(file).chip.cores, 4);  // the files are untouched

  const auto error = [&](const std::string& text) -> InputError {
    ConfigDocument d = read_config_document(file);
    try {
      apply_override(d, text);
      parse_config_document(d);
    } catch (const InputError& e) {
      return e;
    }
    ADD_FAILURE() << "accepted --set " << text;
    return InputError("", "", "");
  };
  const InputError range = error("/chip/cores=0");
  EXPECT_EQ(range.file(), (source_dir() / "configs/chip-rapid-4core.json").string());
  EXPECT_EQ(range.json_path(), "/cores");
  EXPECT_NE(range.message().find("set by --set /chip/cores"), std::string::npos);
  const InputError typo = error("/chip/core/sfu/lanez=3");
  EXPECT_EQ(typo.json_path(), "/core/sfu/lanez");
  EXPECT_NE(typo.message().find("lanes"), std::string::npos);
  const InputError energy = error("/chip/energy/sfu_pj/alu=-1");
  EXPECT_EQ(energy.file(), (source_dir() / "configs/energy-7nm.json").string());
  EXPECT_EQ(energy.json_path(), "/sfu_pj/alu");
  // Missing objects on the way are created, then validated like any key.
  const InputError nowhere = error("/chip/nowhere/x=1");
  EXPECT_EQ(nowhere.json_path(), "/nowhere");
  EXPECT_NE(nowhere.message().find("unknown key"), std::string::npos) << nowhere.message();
  EXPECT_NE(nowhere.message().find("created by --set /chip/nowhere/x"), std::string::npos) << nowhere.message();
  EXPECT_NE(error("/chip/cores/x/y=1").message().find("not an object"), std::string::npos);
  ConfigDocument optional_section = read_config_document(file);
  apply_override(optional_section, "/fidelity/seed=2");
  EXPECT_EQ(parse_config_document(optional_section).fidelity.seed, 2u);
  EXPECT_NE(error("cores=1").message().find("expected /json/pointer=value"), std::string::npos);
  EXPECT_NE(error("/chip/cores").message().find("expected /json/pointer=value"), std::string::npos);
  EXPECT_NE(error("/chip/core/accumulator/formats/9=fp32").message().find("no element"), std::string::npos);
  EXPECT_NE(error("/chip/core/accumulator/formats/x=fp32").message().find("no element"), std::string::npos);
  EXPECT_NE(error("/chip/core/accumulator/formats/01=fp32").message().find("no element"), std::string::npos);
  EXPECT_NE(error("/chip/~2=1").message().find("not a JSON pointer"), std::string::npos);
  EXPECT_NE(error("/chip/cores/x=1").message().find("not an object"), std::string::npos);
}

TEST(Config, ResidencyIsNoneUnlessTheConfigSaysSo) {
  auto doc = tiny();
  EXPECT_EQ(parse_config(JsonReader(doc, "")).residency, Residency::kNone);
  doc["residency"] = "liveness";
  EXPECT_EQ(parse_config(JsonReader(doc, "")).residency, Residency::kLiveness);
  EXPECT_EQ(load_config(source_dir() / "configs/rapid-4core.json").residency, Residency::kLiveness);
  doc["residency"] = "always";
  expect_error(doc, "/residency", "none|liveness");
}

TEST(Config, AnL0SmallerThanOneTileIsAnError) {
  auto doc = tiny();
  doc["chip"]["core"]["mac_array"]["rows"] = 512;
  doc["chip"]["core"]["mac_array"]["cols"] = 512;
  doc["chip"]["core"]["mac_array"]["l0"] = {{"size_kib", 1}, {"bytes_per_cycle", 64}};
  expect_error(doc, "/chip/core/mac_array/l0/size_kib", "cannot hold one");
  doc["chip"]["core"]["mac_array"]["l0"]["size_kib"] = 64;
  EXPECT_NO_THROW(parse_config(JsonReader(doc, "")));
}

TEST(Config, InferenceFormatsAreCheckedAgainstTheChip) {
  auto doc = tiny();
  ASSERT_TRUE(parse_config(JsonReader(doc, "")).precision.inference);
  doc["precision"]["inference"]["gemm"]["a"] = "int2";  // the tiny chip has no INT2 mode
  expect_error(doc, "/precision/inference/gemm/a", "not run by the MAC array");
  doc = tiny();
  doc["precision"]["inference"]["gemm"].erase("output");
  expect_error(doc, "/precision/inference/gemm/output", "missing required key");
  // The inference formats become the forward formats.
  const auto policy = parse_config(JsonReader(tiny(), "")).precision.for_inference();
  EXPECT_EQ(policy.for_gemm(Phase::kFwd, LayerPosition::kMiddle).a.name, "int4");
  EXPECT_EQ(policy.for_gemm(Phase::kFwd, LayerPosition::kFirst).a.name, "hfp8_e4m3");
}

TEST(Config, ChipFileErrorsNameTheChipFile) {
  const auto dir = std::filesystem::temp_directory_path() / "lptsim_config_test";
  std::filesystem::create_directories(dir);
  auto chip = tiny()["chip"];
  chip["dram"]["channels"] = 0;
  std::ofstream(dir / "chip.json") << chip.dump();
  auto doc = tiny();
  doc["chip"] = "chip.json";
  std::ofstream(dir / "config.json") << doc.dump();
  try {
    load_config(dir / "config.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "chip.json").string());
    EXPECT_EQ(e.json_path(), "/dram/channels");
  }
  doc["chip"] = "missing-chip.json";
  std::ofstream(dir / "config.json") << doc.dump();
  try {
    load_config(dir / "config.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "missing-chip.json").string());
    EXPECT_NE(e.message().find("config.json"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Config, CrossChecksAgainstAChipFileNameBothFiles) {
  const auto dir = std::filesystem::temp_directory_path() / "lptsim_config_cross_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "chip.json") << tiny()["chip"].dump();
  auto doc = tiny();
  doc["chip"] = "chip.json";
  doc["precision"]["fwd"]["a"] = "bf16";
  std::ofstream(dir / "config.json") << doc.dump();
  try {
    load_config(dir / "config.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "config.json").string());
    EXPECT_EQ(e.json_path(), "/precision/fwd/a");
    EXPECT_NE(e.message().find((dir / "chip.json").string() + ": /core/mac_array/macs_per_pe_per_cycle"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Config, ErrorsNameTheFile) {
  try {
    load_config((source_dir() / "traces/tiny-cnn.json").string());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(e.file().find("tiny-cnn.json"), std::string::npos);
    // A trace given as a config is named for what it is.
    EXPECT_NE(e.message().find("this is a trace"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lpt
