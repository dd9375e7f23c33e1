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

}  // namespace

const char* to_string(Dataflow dataflow) {
  switch (dataflow) {
    case Dataflow::kOutputStationary: return "os";
    case Dataflow::kWeightStationary: return "ws";
    case Dataflow::kInputStationary: return "is";
  }
  return "?";
}

std::optional<std::uint64_t> DramParams::capacity_bytes() const {
  if (!capacity_gib) return std::nullopt;
  return static_cast<std::uint64_t>(*capacity_gib * static_cast<double>(std::uint64_t{1} << 30));
}

double ChipParams::dram_bytes_per_cycle() const {
  return static_cast<double>(dram.channels) * dram.gb_per_s_per_channel * dram.efficiency / clock_ghz;
}

double DmaParams::dram_bytes_per_cycle(std::uint64_t latency_cycles) const {
  if (latency_cycles == 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(outstanding_requests) * request_bytes / static_cast<double>(latency_cycles);
}

std::uint64_t latency_cycles(double ns, double clock_ghz) {
  // The small tolerance keeps exact products (100 ns at 1.6 GHz: 160 cycles) exact despite rounding.
  return static_cast<std::uint64_t>(std::ceil(ns * clock_ghz - 1e-9));
}

std::uint64_t ChipParams::dram_latency_cycles() const { return latency_cycles(dram.latency_ns, clock_ghz); }

double ChipParams::host_bytes_per_cycle() const { return host_link.value().gb_per_s / clock_ghz; }

std::uint64_t ChipParams::host_latency_cycles() const { return latency_cycles(host_link.value().latency_ns, clock_ghz); }

namespace {

const param::Schema<L0Params>& l0_schema() {
  using K = param::Keys<L0Params>;
  static const param::Schema<L0Params> schema(
      "A corelet's private operand buffer between the scratchpad and its array: the array's re-reads of a tile's "
      "operands across folds come from it instead of the scratchpad ports (docs/chip-model.md).",
      {K::integer("size_kib", &L0Params::size_kib, 1, 1 << 20, "KiB",
                  "capacity per corelet; it must hold one PE-row block of A and one column block of B at every "
                  "format the array runs"),
       K::integer("bytes_per_cycle", &L0Params::bytes_per_cycle, 1, kMaxBandwidth, "bytes/cycle",
                  "what it feeds its array: a tile takes at least its operand reads / this")});
  return schema;
}

const param::Schema<MacArrayParams>& mac_array_schema() {
  using K = param::Keys<MacArrayParams>;
  static const param::Schema<MacArrayParams> schema(
      "A core's MAC arrays: `corelets` independent rows × cols systolic arrays sharing the core's scratchpad; a "
      "tile is split across them along n, m or its instances, never along k.",
      {K::integer("rows", &MacArrayParams::rows, 1, kMaxArrayDim, "PEs", "rows of one corelet's array"),
       K::integer("cols", &MacArrayParams::cols, 1, kMaxArrayDim, "PEs", "columns of one corelet's array"),
       K::integer("corelets", &MacArrayParams::corelets, 1, 64, "arrays", "independent arrays per core"),
       K::optional_object("l0", &MacArrayParams::l0, l0_schema(), "no L0: the arrays read the scratchpad directly",
                          "per-corelet operand buffer"),
       K::choice("dataflow", &MacArrayParams::dataflow,
                 {{"os", Dataflow::kOutputStationary},
                  {"ws", Dataflow::kWeightStationary},
                  {"is", Dataflow::kInputStationary}},
                 "output, B or A stationary: which GEMM dimensions map to the array's rows, its columns and "
                 "the streamed dimension (docs/chip-model.md)"),
       K::boolean("pipelined_folds", &MacArrayParams::pipelined_folds,
                  "double-buffered PE registers: the next fold fills while the current one drains"),
       K::integer_map("macs_per_pe_per_cycle", &MacArrayParams::macs_per_pe_per_cycle, "format name", 1, 4096,
                      "MACs", "{\"fp16\": 8}",
                      "the operand formats the array runs, each with the MACs one PE does per cycle (a dot product "
                      "that wide along k); a precision policy may use only these")});
  return schema;
}

const param::Schema<AccumulatorParams>& accumulator_schema() {
  using K = param::Keys<AccumulatorParams>;
  static const param::Schema<AccumulatorParams> schema(
      "The PEs' accumulators.",
      {K::strings("formats", &AccumulatorParams::formats, 1, 16,
                  "accumulation formats the hardware offers; a precision policy's accumulators must be among them"),
       K::integer("chunk_length", &AccumulatorParams::chunk_length, 1, 1 << 24, "products",
                  "products summed per chunk before the chunk is added to the outer sum; the energy model charges "
                  "one accumulator add per chunk")});
  return schema;
}

const param::Schema<RounderParams>& rounder_schema() {
  using K = param::Keys<RounderParams>;
  static const param::Schema<RounderParams> schema(
      "The stochastic rounders that convert GEMM outputs and weight updates.",
      {K::integer("lanes", &RounderParams::lanes, 1, kMaxLanes, "elements/cycle", "elements rounded per cycle"),
       K::integer("random_bits", &RounderParams::random_bits, 1, 64, "bits",
                  "width of the random number added before truncation; the energy model charges per bit")});
  return schema;
}

const param::Schema<SfuOpsPerCycle>& sfu_ops_schema() {
  using K = param::Keys<SfuOpsPerCycle>;
  static const param::Schema<SfuOpsPerCycle> schema(
      "Operations one SFU lane completes per cycle, by kind.",
      {K::number("alu", &SfuOpsPerCycle::alu, 1e-6, 1e6, "ops/lane/cycle",
                 "add, multiply, fma, max, compare and select"),
       K::number("exp", &SfuOpsPerCycle::exp, 1e-6, 1e6, "ops/lane/cycle", "exp and log"),
       K::number("div_sqrt", &SfuOpsPerCycle::div_sqrt, 1e-6, 1e6, "ops/lane/cycle",
                 "divide, square root and reciprocal square root")});
  return schema;
}

const param::Schema<SfuParams>& sfu_schema() {
  using K = param::Keys<SfuParams>;
  static const param::Schema<SfuParams> schema(
      "The special-function unit: element-wise layers, normalisation, softmax and the optimizer's update. A task's "
      "SFU work takes Σ over kinds ⌈ops / (lanes × ops_per_cycle)⌉ cycles.",
      {K::integer("lanes", &SfuParams::lanes, 1, kMaxLanes, "lanes", "parallel SFU lanes"),
       K::object("ops_per_cycle", &SfuParams::ops_per_cycle, sfu_ops_schema(), "per-lane rate of each kind"),
       K::choice("fusion", &SfuParams::fusion,
                 {{"none", SfuFusion::kNone}, {"epilogue", SfuFusion::kEpilogue}, {"full", SfuFusion::kFull}},
                 "the fusion its place in the datapath allows: `none` streams from the scratchpad only, `epilogue` "
                 "also sits on the arrays' output path (activations, dropout), `full` there also reduces over the "
                 "output and reads a second tensor (batch-norm statistics, residual adds); a config's `fusion` may "
                 "not ask for more")});
  return schema;
}

const param::Schema<ScratchpadParams>& scratchpad_schema() {
  using K = param::Keys<ScratchpadParams>;
  static const param::Schema<ScratchpadParams> schema(
      "A core's scratchpad (L1): holds the tiles' operands and results; its ports are shared by DMA fills and "
      "drains and the arrays' operand reads.",
      {K::integer("size_kib", &ScratchpadParams::size_kib, 1, std::int64_t{1} << 30, "KiB",
                  "capacity per core: bounds the tiles the mapper picks and what stays resident"),
       K::integer("banks", &ScratchpadParams::banks, 1, 4096, "banks",
                  "no effect on timing (bank conflicts are not modelled); the bank size sets the SRAM access energy"),
       K::integer("ports", &ScratchpadParams::ports, 1, 64, "ports", "read/write ports"),
       K::integer("bytes_per_cycle_per_port", &ScratchpadParams::bytes_per_cycle_per_port, 1, kMaxBandwidth,
                  "bytes/cycle", "bandwidth of one port"),
       K::integer("buffer_slots", &ScratchpadParams::buffer_slots, 1, 64, "tasks",
                  "tasks whose operands may be resident at once (2: double buffering)")});
  return schema;
}

const param::Schema<DmaParams>& dma_schema() {
  using K = param::Keys<DmaParams>;
  static const param::Schema<DmaParams> schema(
      "A core's DMA engine. Transfers are split into requests; with `outstanding_requests` in flight one engine "
      "moves at most outstanding_requests × request_bytes per DRAM latency, however wide DRAM is.",
      {K::integer("max_outstanding", &DmaParams::max_outstanding, 1, 4096, "transfers",
                  "tile loads and stores in flight per core; the rest queue in order"),
       K::integer("request_bytes", &DmaParams::request_bytes, 1, 1 << 30, "bytes", "size of one DRAM request"),
       K::integer("outstanding_requests", &DmaParams::outstanding_requests, 1, 1 << 20, "requests",
                  "DRAM requests in flight per engine")});
  return schema;
}

const param::Schema<CoreParams>& core_schema() {
  using K = param::Keys<CoreParams>;
  static const param::Schema<CoreParams> schema(
      "One core; the chip has `cores` alike.",
      {K::object("mac_array", &CoreParams::mac_array, mac_array_schema(), "the MAC arrays"),
       K::object("accumulator", &CoreParams::accumulator, accumulator_schema(), "the PEs' accumulators"),
       K::object("rounder", &CoreParams::rounder, rounder_schema(), "the stochastic rounders"),
       K::object("sfu", &CoreParams::sfu, sfu_schema(), "the special-function unit"),
       K::object("scratchpad", &CoreParams::scratchpad, scratchpad_schema(), "the scratchpad (L1)"),
       K::object("dma", &CoreParams::dma, dma_schema(), "the DMA engine")});
  return schema;
}

const param::Schema<RingParams>& ring_schema() {
  using K = param::Keys<RingParams>;
  static const param::Schema<RingParams> schema(
      "The on-chip network: a ring with one stop per core and one for the memory controller. A transfer takes "
      "the shorter direction (ties clockwise).",
      {K::choice("topology", &RingParams::topology, {{"ring", std::string("ring")}},
                 "required, so that a config written for another topology fails instead of simulating a ring"),
       K::boolean("bidirectional", &RingParams::bidirectional, "links in both directions; else one way round"),
       K::integer("link_bytes_per_cycle", &RingParams::link_bytes_per_cycle, 1, kMaxBandwidth, "bytes/cycle",
                  "bandwidth of each directed link"),
       K::integer("hop_latency_cycles", &RingParams::hop_latency_cycles, 0, 1'000'000, "cycles",
                  "added to a transfer's latency per hop")});
  return schema;
}

const param::Schema<DramParams>& dram_schema() {
  using K = param::Keys<DramParams>;
  static const param::Schema<DramParams> schema(
      "Off-chip memory. Channels are taken as address-interleaved at fine grain: one pool of channels × "
      "gb_per_s_per_channel × efficiency.",
      {K::integer("channels", &DramParams::channels, 1, 1024, "channels", "DRAM channels"),
       K::number("gb_per_s_per_channel", &DramParams::gb_per_s_per_channel, 1e-3, 1e12, "GB/s (10⁹ bytes/s)",
                 "peak bandwidth of one channel"),
       K::number("latency_ns", &DramParams::latency_ns, 0, 1e6, "ns",
                 "added to every DRAM transfer; rounded up to whole cycles"),
       K::number("efficiency", &DramParams::efficiency, 0.01, 1, "fraction",
                 "sustained / peak bandwidth (turnaround, refresh, row misses)"),
       K::optional(K::value({"capacity_gib", "number", "GiB (2³⁰ bytes)", param::number_range(1.0 / (1 << 20), 1 << 20),
                             {}, "what the chip's DRAM holds: a training step whose memory footprint (weights, "
                             "gradients, optimizer state, curvature, saved activations) exceeds it is an error"},
                            &DramParams::capacity_gib,
                            [](const JsonReader& in) { return std::optional<double>(in.number(1.0 / (1 << 20), 1 << 20)); }),
                   "not checked: the report gives the footprint only")});
  return schema;
}

const param::Schema<HostLinkParams>& host_link_schema() {
  using K = param::Keys<HostLinkParams>;
  static const param::Schema<HostLinkParams> schema(
      "The chip's link to its host's memory (PCIe or the like). Transfers to and from host memory cross the ring to "
      "the memory stop, then this link; a core waiting for them stalls as for DRAM.",
      {K::number("gb_per_s", &HostLinkParams::gb_per_s, 1e-3, 1e6, "GB/s (10⁹ bytes/s)", "bandwidth each way"),
       K::number("latency_ns", &HostLinkParams::latency_ns, 0, 1e7, "ns", "added to every transfer"),
       K::number("pj_per_bit", &HostLinkParams::pj_per_bit, 0, 1e4, "pJ/bit",
                 "energy of a bit crossing it (the `links` energy component)")});
  return schema;
}

}  // namespace

const param::Schema<ChipParams>& chip_schema() {
  using K = param::Keys<ChipParams>;
  static const param::Schema<ChipParams> schema(
      "The chip: a chip description file, or the object under a config's `chip`.",
      {K::integer("cores", &ChipParams::cores, 1, 1024, "cores", "cores on the ring, all alike"),
       K::number("clock_ghz", &ChipParams::clock_ghz, 1e-3, 100, "GHz",
                 "converts cycles to seconds and the DRAM figures to bytes per cycle and cycles"),
       K::number("voltage", &ChipParams::voltage, 0.05, 5, "V",
                 "the cores' supply at clock_ghz: the energy model scales the table's dynamic energy by "
                 "(voltage / reference_voltage)² and leakage by voltage / reference_voltage"),
       K::value({"energy", "object or string", {}, {}, {}, "the energy table (below), or its file name relative to "
                 "the chip description"},
                &ChipParams::energy, [](const JsonReader& in) { return energy::energy_table_schema().read(in); }),
       K::object("core", &ChipParams::core, core_schema(), "one core"),
       K::object("interconnect", &ChipParams::interconnect, ring_schema(), "the on-chip ring"),
       K::object("dram", &ChipParams::dram, dram_schema(), "off-chip memory"),
       K::optional_object("host_link", &ChipParams::host_link, host_link_schema(), "none: nothing can be spilled",
                          "the link to the host's memory, over which a config with `spill_to_host` moves what does "
                          "not fit the DRAM"),
       K::optional(K::text("notes", &ChipParams::notes, "free text: where the numbers come from"))});
  return schema;
}

void from_json(const JsonReader& reader, MacArrayParams& params) { params = mac_array_schema().read(reader); }
void from_json(const JsonReader& reader, AccumulatorParams& params) { params = accumulator_schema().read(reader); }
void from_json(const JsonReader& reader, RounderParams& params) { params = rounder_schema().read(reader); }
void from_json(const JsonReader& reader, SfuParams& params) { params = sfu_schema().read(reader); }
void from_json(const JsonReader& reader, ScratchpadParams& params) { params = scratchpad_schema().read(reader); }
void from_json(const JsonReader& reader, DmaParams& params) { params = dma_schema().read(reader); }
void from_json(const JsonReader& reader, CoreParams& params) { params = core_schema().read(reader); }
void from_json(const JsonReader& reader, RingParams& params) { params = ring_schema().read(reader); }
void from_json(const JsonReader& reader, DramParams& params) { params = dram_schema().read(reader); }
void from_json(const JsonReader& reader, ChipParams& params) { params = chip_schema().read(reader); }

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
  if (params.capacity_gib) json["capacity_gib"] = *params.capacity_gib;
}

void to_json(nlohmann::json& json, const ChipParams& params) {
  json = {{"cores", params.cores},
          {"clock_ghz", params.clock_ghz},
          {"voltage", params.voltage},
          {"energy", params.energy},
          {"core", params.core},
          {"interconnect", params.interconnect},
          {"dram", params.dram}};
  if (params.host_link)
    json["host_link"] = {{"gb_per_s", params.host_link->gb_per_s},
                         {"latency_ns", params.host_link->latency_ns},
                         {"pj_per_bit", params.host_link->pj_per_bit}};
  if (!params.notes.empty()) json["notes"] = params.notes;
}

}  // namespace lpt::core
