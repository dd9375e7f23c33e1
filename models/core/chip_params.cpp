#include "models/core/chip_params.hpp"

#include <cmath>
#include <limits>

namespace lpt::core {

namespace {

// Upper bounds only catch typos (a size in bytes where KiB was meant); they are
// far above any real design yet still allow "unbounded" test configs.
constexpr std::int64_t kMaxArrayDim = 4096;
constexpr std::int64_t kMaxBandwidth = 1'000'000'000'000;  // bytes per cycle
constexpr std::int64_t kMaxLanes = 1 << 20;

int read_int(const JsonReader& reader, std::string_view key, std::int64_t min, std::int64_t max) {
  return static_cast<int>(reader.at(key).integer(min, max));
}

}  // namespace

const char* to_string(Dataflow dataflow) {
  switch (dataflow) {
    case Dataflow::kOutputStationary: return "os";
    case Dataflow::kWeightStationary: return "ws";
    case Dataflow::kInputStationary: return "is";
  }
  return "?";
}

double ChipParams::dram_bytes_per_cycle() const {
  return static_cast<double>(dram.channels) * dram.gb_per_s_per_channel * dram.efficiency / clock_ghz;
}

double DmaParams::dram_bytes_per_cycle(std::uint64_t latency_cycles) const {
  if (latency_cycles == 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(outstanding_requests) * request_bytes / static_cast<double>(latency_cycles);
}

std::uint64_t ChipParams::dram_latency_cycles() const {
  // The small tolerance keeps 100 ns at 1.6 GHz at 160 cycles despite rounding.
  return static_cast<std::uint64_t>(std::ceil(dram.latency_ns * clock_ghz - 1e-9));
}

void from_json(const JsonReader& reader, MacArrayParams& params) {
  params.rows = read_int(reader, "rows", 1, kMaxArrayDim);
  params.cols = read_int(reader, "cols", 1, kMaxArrayDim);
  params.corelets = read_int(reader, "corelets", 1, 64);
  params.l0.reset();
  if (auto l0 = reader.find("l0")) {
    L0Params p;
    p.size_kib = read_int(*l0, "size_kib", 1, 1 << 20);
    p.bytes_per_cycle = l0->at("bytes_per_cycle").integer(1, kMaxBandwidth);
    l0->finish();
    params.l0 = p;
  }
  params.dataflow = reader.at("dataflow").choice<Dataflow>({{"os", Dataflow::kOutputStationary},
                                                            {"ws", Dataflow::kWeightStationary},
                                                            {"is", Dataflow::kInputStationary}});
  params.pipelined_folds = reader.at("pipelined_folds").boolean();
  const JsonReader macs = reader.at("macs_per_pe_per_cycle");
  params.macs_per_pe_per_cycle.clear();
  for (const auto& [format, value] : macs.members())
    params.macs_per_pe_per_cycle[format] = static_cast<int>(value.integer(1, 4096));
  if (params.macs_per_pe_per_cycle.empty())
    macs.fail("expected at least one format, e.g. {\"fp16\": 8}");
  reader.finish();
}

void from_json(const JsonReader& reader, AccumulatorParams& params) {
  params.formats.clear();
  for (const JsonReader& format : reader.at("formats").elements(1, 16))
    params.formats.push_back(format.string());
  params.chunk_length = read_int(reader, "chunk_length", 1, 1 << 24);
  reader.finish();
}

void from_json(const JsonReader& reader, RounderParams& params) {
  params.lanes = read_int(reader, "lanes", 1, kMaxLanes);
  params.random_bits = read_int(reader, "random_bits", 1, 64);
  reader.finish();
}

void from_json(const JsonReader& reader, SfuParams& params) {
  params.lanes = read_int(reader, "lanes", 1, kMaxLanes);
  const JsonReader ops = reader.at("ops_per_cycle");
  params.ops_per_cycle.alu = ops.at("alu").number(1e-6, 1e6);
  params.ops_per_cycle.exp = ops.at("exp").number(1e-6, 1e6);
  params.ops_per_cycle.div_sqrt = ops.at("div_sqrt").number(1e-6, 1e6);
  ops.finish();
  params.fusion = reader.at("fusion").choice<SfuFusion>(
      {{"none", SfuFusion::kNone}, {"epilogue", SfuFusion::kEpilogue}, {"full", SfuFusion::kFull}});
  reader.finish();
}

void from_json(const JsonReader& reader, ScratchpadParams& params) {
  params.size_kib = reader.at("size_kib").integer(1, std::int64_t{1} << 30);
  params.banks = read_int(reader, "banks", 1, 4096);
  params.ports = read_int(reader, "ports", 1, 64);
  params.bytes_per_cycle_per_port = reader.at("bytes_per_cycle_per_port").integer(1, kMaxBandwidth);
  params.buffer_slots = read_int(reader, "buffer_slots", 1, 64);
  reader.finish();
}

void from_json(const JsonReader& reader, DmaParams& params) {
  params.max_outstanding = read_int(reader, "max_outstanding", 1, 4096);
  params.request_bytes = read_int(reader, "request_bytes", 1, 1 << 30);
  params.outstanding_requests = read_int(reader, "outstanding_requests", 1, 1 << 20);
  reader.finish();
}

void from_json(const JsonReader& reader, CoreParams& params) {
  from_json(reader.at("mac_array"), params.mac_array);
  from_json(reader.at("accumulator"), params.accumulator);
  from_json(reader.at("rounder"), params.rounder);
  from_json(reader.at("sfu"), params.sfu);
  from_json(reader.at("scratchpad"), params.scratchpad);
  from_json(reader.at("dma"), params.dma);
  reader.finish();
}

void from_json(const JsonReader& reader, RingParams& params) {
  params.topology = reader.at("topology").one_of({"ring"});
  params.bidirectional = reader.at("bidirectional").boolean();
  params.link_bytes_per_cycle = reader.at("link_bytes_per_cycle").integer(1, kMaxBandwidth);
  params.hop_latency_cycles = reader.at("hop_latency_cycles").integer(0, 1'000'000);
  reader.finish();
}

void from_json(const JsonReader& reader, DramParams& params) {
  params.channels = read_int(reader, "channels", 1, 1024);
  params.gb_per_s_per_channel = reader.at("gb_per_s_per_channel").number(1e-3, 1e12);
  params.latency_ns = reader.at("latency_ns").number(0, 1e6);
  params.efficiency = reader.at("efficiency").number(0.01, 1);
  reader.finish();
}

void from_json(const JsonReader& reader, ChipParams& params) {
  params.cores = read_int(reader, "cores", 1, 1024);
  params.clock_ghz = reader.at("clock_ghz").number(1e-3, 100);
  params.voltage = reader.at("voltage").number(0.05, 5);
  from_json(reader.at("energy"), params.energy);
  from_json(reader.at("core"), params.core);
  from_json(reader.at("interconnect"), params.interconnect);
  from_json(reader.at("dram"), params.dram);
  params.notes.clear();
  if (auto notes = reader.find("notes")) params.notes = notes->string();
  reader.finish();
}

void to_json(nlohmann::json& json, const MacArrayParams& params) {
  json = {{"rows", params.rows},
          {"cols", params.cols},
          {"corelets", params.corelets},
          {"dataflow", to_string(params.dataflow)},
          {"pipelined_folds", params.pipelined_folds},
          {"macs_per_pe_per_cycle", params.macs_per_pe_per_cycle}};
  if (params.l0)
    json["l0"] = {{"size_kib", params.l0->size_kib}, {"bytes_per_cycle", params.l0->bytes_per_cycle}};
}

void to_json(nlohmann::json& json, const AccumulatorParams& params) {
  json = {{"formats", params.formats}, {"chunk_length", params.chunk_length}};
}

void to_json(nlohmann::json& json, const RounderParams& params) {
  json = {{"lanes", params.lanes}, {"random_bits", params.random_bits}};
}

void to_json(nlohmann::json& json, const SfuParams& params) {
  json = {{"lanes", params.lanes},
          {"ops_per_cycle",
           {{"alu", params.ops_per_cycle.alu},
            {"exp", params.ops_per_cycle.exp},
            {"div_sqrt", params.ops_per_cycle.div_sqrt}}},
          {"fusion", params.fusion == SfuFusion::kFull       ? "full"
                     : params.fusion == SfuFusion::kEpilogue ? "epilogue"
                                                             : "none"}};
}

void to_json(nlohmann::json& json, const ScratchpadParams& params) {
  json = {{"size_kib", params.size_kib},
          {"banks", params.banks},
          {"ports", params.ports},
          {"bytes_per_cycle_per_port", params.bytes_per_cycle_per_port},
          {"buffer_slots", params.buffer_slots}};
}

void to_json(nlohmann::json& json, const DmaParams& params) {
  json = {{"max_outstanding", params.max_outstanding},
          {"request_bytes", params.request_bytes},
          {"outstanding_requests", params.outstanding_requests}};
}

void to_json(nlohmann::json& json, const CoreParams& params) {
  json = {{"mac_array", params.mac_array},   {"accumulator", params.accumulator},
          {"rounder", params.rounder},       {"sfu", params.sfu},
          {"scratchpad", params.scratchpad}, {"dma", params.dma}};
}

void to_json(nlohmann::json& json, const RingParams& params) {
  json = {{"topology", params.topology},
          {"bidirectional", params.bidirectional},
          {"link_bytes_per_cycle", params.link_bytes_per_cycle},
          {"hop_latency_cycles", params.hop_latency_cycles}};
}

void to_json(nlohmann::json& json, const DramParams& params) {
  json = {{"channels", params.channels},
          {"gb_per_s_per_channel", params.gb_per_s_per_channel},
          {"latency_ns", params.latency_ns},
          {"efficiency", params.efficiency}};
}

void to_json(nlohmann::json& json, const ChipParams& params) {
  json = {{"cores", params.cores},
          {"clock_ghz", params.clock_ghz},
          {"voltage", params.voltage},
          {"energy", params.energy},
          {"core", params.core},
          {"interconnect", params.interconnect},
          {"dram", params.dram}};
  if (!params.notes.empty()) json["notes"] = params.notes;
}

}  // namespace lpt::core
