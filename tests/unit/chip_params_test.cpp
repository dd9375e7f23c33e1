// Parsing of the "chip" config object: good files, round trip, and every kind
// of bad input named by its JSON path.
#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>

#include "models/core/chip_params.hpp"
#include "sim/config.hpp"

namespace lpt::core {
namespace {

using lpt::test_support::source_dir;

nlohmann::json tiny_chip_json() { return lpt::load_chip_document(source_dir() / "configs/chip-tiny.json"); }

ChipParams parse(const nlohmann::json& json) {
  ChipParams params;
  from_json(JsonReader(json, "/chip"), params);
  return params;
}

// Parses `json` expecting an InputError at `path`; returns its message.
std::string expect_error_at(const nlohmann::json& json, const std::string& path) {
  try {
    parse(json);
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), path) << e.what();
    return e.message();
  }
  ADD_FAILURE() << "no error for " << path;
  return {};
}

TEST(ChipParams, ParsesRapidConfig) {
  const auto json = lpt::load_chip_document(source_dir() / "configs/chip-rapid-4core.json");
  const ChipParams p = parse(json);
  EXPECT_EQ(p.cores, 4);
  EXPECT_DOUBLE_EQ(p.clock_ghz, 1.6);
  EXPECT_EQ(p.core.mac_array.rows, 8);
  EXPECT_EQ(p.core.mac_array.cols, 8);
  EXPECT_EQ(p.core.mac_array.corelets, 2);
  ASSERT_TRUE(p.core.mac_array.l0);
  EXPECT_EQ(p.core.mac_array.l0->size_bytes(), 32u * 1024);
  EXPECT_EQ(p.core.mac_array.dataflow, Dataflow::kOutputStationary);
  EXPECT_TRUE(p.core.mac_array.pipelined_folds);
  EXPECT_EQ(p.core.mac_array.macs_per_pe_per_cycle.at("hfp8_e4m3"), 16);
  EXPECT_EQ(p.core.mac_array.macs_per_pe_per_cycle.at("int4"), 64);
  EXPECT_EQ(p.core.accumulator.chunk_length, 64);
  EXPECT_EQ(p.core.scratchpad.size_bytes(), 2u * 1024 * 1024);
  EXPECT_DOUBLE_EQ(p.core.scratchpad.bytes_per_cycle(), 512.0);
  EXPECT_DOUBLE_EQ(p.core.sfu.ops_per_cycle.exp, 0.25);
  EXPECT_TRUE(p.interconnect.bidirectional);
  // 4 x 25.6 GB/s at 1.6 GHz = 64 B/cycle; 100 ns = 160 cycles.
  EXPECT_DOUBLE_EQ(p.dram_bytes_per_cycle(), 64.0 * 0.9);  // 90% efficiency
  EXPECT_EQ(p.dram_latency_cycles(), 160u);
  EXPECT_FALSE(p.notes.empty());
  // Peak: 4 cores x 128 PEs x 16 MACs x 2 FLOP x 1.6 GHz = 26.2 TFLOPS HFP8.
  const double tflops = p.cores * p.core.mac_array.pes() *
                        p.core.mac_array.macs_per_pe_per_cycle.at("hfp8_e4m3") * 2 * p.clock_ghz /
                        1000.0;
  EXPECT_NEAR(tflops, 26.2, 0.05);
}

TEST(ChipParams, IdealMemoryConfigHasFreeTransfers) {
  const ChipParams p = parse(lpt::load_chip_document(source_dir() / "configs/chip-rapid-ideal-memory.json"));
  EXPECT_EQ(p.cores, 4);
  EXPECT_GE(p.dram_bytes_per_cycle(), 1e12);
  EXPECT_EQ(p.dram_latency_cycles(), 0u);
  EXPECT_EQ(p.interconnect.hop_latency_cycles, 0);
}

TEST(ChipParams, RoundTripsThroughJson) {
  const ChipParams p = parse(tiny_chip_json());
  nlohmann::json written = p;
  const ChipParams again = parse(written);
  nlohmann::json rewritten = again;
  EXPECT_EQ(written, rewritten);
  EXPECT_EQ(written, tiny_chip_json());
}

TEST(ChipParams, NotesAreOptional) {
  auto json = tiny_chip_json();
  json.erase("notes");
  EXPECT_TRUE(parse(json).notes.empty());
  nlohmann::json written = parse(json);
  EXPECT_FALSE(written.contains("notes"));
}

TEST(ChipParams, MissingKeyNamesItsPath) {
  auto json = tiny_chip_json();
  json["core"]["scratchpad"].erase("buffer_slots");
  EXPECT_NE(expect_error_at(json, "/chip/core/scratchpad/buffer_slots").find("missing"),
            std::string::npos);
}

TEST(ChipParams, WrongTypeNamesItsPath) {
  auto json = tiny_chip_json();
  json["core"]["mac_array"]["rows"] = "eight";
  EXPECT_NE(expect_error_at(json, "/chip/core/mac_array/rows").find("integer"), std::string::npos);
  json = tiny_chip_json();
  json["interconnect"]["bidirectional"] = 1;
  expect_error_at(json, "/chip/interconnect/bidirectional");
}

TEST(ChipParams, OutOfRangeNamesItsPath) {
  auto json = tiny_chip_json();
  json["cores"] = 0;
  expect_error_at(json, "/chip/cores");
  json = tiny_chip_json();
  json["core"]["mac_array"]["macs_per_pe_per_cycle"]["int4"] = 0;
  expect_error_at(json, "/chip/core/mac_array/macs_per_pe_per_cycle/int4");
  json = tiny_chip_json();
  json["dram"]["gb_per_s_per_channel"] = -1.0;
  expect_error_at(json, "/chip/dram/gb_per_s_per_channel");
  json = tiny_chip_json();
  json["core"]["sfu"]["ops_per_cycle"]["exp"] = 0;
  expect_error_at(json, "/chip/core/sfu/ops_per_cycle/exp");
  json = tiny_chip_json();
  json["core"]["mac_array"]["rows"] = 2.5;
  expect_error_at(json, "/chip/core/mac_array/rows");
}

TEST(ChipParams, UnknownKeyNamesItsPath) {
  auto json = tiny_chip_json();
  json["core"]["dma"]["max_outstandng"] = 4;
  EXPECT_NE(expect_error_at(json, "/chip/core/dma/max_outstandng").find("unknown key"),
            std::string::npos);
  json = tiny_chip_json();
  json["l2"] = nlohmann::json::object();
  expect_error_at(json, "/chip/l2");
}

TEST(ChipParams, BadChoicesAreRejected) {
  auto json = tiny_chip_json();
  json["core"]["mac_array"]["dataflow"] = "rs";
  EXPECT_NE(expect_error_at(json, "/chip/core/mac_array/dataflow").find("os|ws|is"),
            std::string::npos);
  json = tiny_chip_json();
  json["interconnect"]["topology"] = "mesh";
  expect_error_at(json, "/chip/interconnect/topology");
  json = tiny_chip_json();
  json["core"]["mac_array"]["macs_per_pe_per_cycle"] = nlohmann::json::object();
  expect_error_at(json, "/chip/core/mac_array/macs_per_pe_per_cycle");
  json = tiny_chip_json();
  json["core"]["accumulator"]["formats"] = nlohmann::json::array();
  expect_error_at(json, "/chip/core/accumulator/formats");
}

TEST(ChipParams, ParsesEachDataflow) {
  auto json = tiny_chip_json();
  for (const auto& [name, dataflow] : {std::pair{"os", Dataflow::kOutputStationary},
                                       std::pair{"ws", Dataflow::kWeightStationary},
                                       std::pair{"is", Dataflow::kInputStationary}}) {
    json["core"]["mac_array"]["dataflow"] = name;
    EXPECT_EQ(parse(json).core.mac_array.dataflow, dataflow);
    EXPECT_STREQ(to_string(dataflow), name);
  }
}

}  // namespace
}  // namespace lpt::core
