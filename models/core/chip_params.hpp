// Hardware parameters of the chip, one plain struct per module, parsed from the
// config's "chip" object. Kept free of SystemC so the config code, the mapping
// (tile selection) and plain unit tests can use them without the kernel; each
// SystemC module takes its struct in its constructor.
//
// Units: sizes in bytes or KiB as named, bandwidths in bytes per chip cycle
// unless named otherwise (DRAM is given in GB/s and ns because that is how
// memories are specified; ChipParams converts it to cycles).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/common/param_schema.hpp"
#include "models/energy/energy_table.hpp"

namespace lpt::core {

enum class Dataflow { kOutputStationary, kWeightStationary, kInputStationary };
const char* to_string(Dataflow dataflow);  // "os" | "ws" | "is"

// A corelet's private operand buffer between the core's scratchpad (L1) and
// its array: it keeps a tile's operands, so the array's re-reads across folds
// come from it rather than from the scratchpad ports.
struct L0Params {
  int size_kib = 0;
  std::int64_t bytes_per_cycle = 0;  // what it can feed its array
  std::uint64_t size_bytes() const { return static_cast<std::uint64_t>(size_kib) * 1024; }
  bool operator==(const L0Params&) const = default;
};

// A core's MAC arrays: `corelets` independent rows x cols systolic arrays that
// share the core's scratchpad; a tile is split across them.
struct MacArrayParams {
  int rows = 0;  // of one corelet
  int cols = 0;
  int corelets = 1;
  std::optional<L0Params> l0;  // per corelet; without it the arrays read the scratchpad directly
  Dataflow dataflow = Dataflow::kOutputStationary;
  // Double-buffered PE registers: the next fold fills while the current one drains.
  bool pipelined_folds = false;
  // MACs one PE does per cycle for a GEMM's operand format (a v-wide dot product
  // along the reduction). Format names are checked by the config code against
  // the numerics library, not here.
  std::map<std::string, int> macs_per_pe_per_cycle;

  // PEs of all corelets of the core.
  std::int64_t pes() const { return static_cast<std::int64_t>(rows) * cols * corelets; }
};

struct AccumulatorParams {
  std::vector<std::string> formats;  // accumulation formats the hardware offers
  int chunk_length = 0;              // products summed before a chunk is merged
};

struct RounderParams {
  int lanes = 0;        // elements rounded per cycle
  int random_bits = 0;  // width of the random number added before truncation
};

struct SfuOpsPerCycle {
  double alu = 0;       // per lane per cycle
  double exp = 0;
  double div_sqrt = 0;
};

// The operator fusion the SFU's place in the datapath allows (sim/fusion):
// kNone: it streams tensors from the scratchpad only; kEpilogue: it also sits
// on the MAC arrays' output path (activations, dropout); kFull: there it also
// reduces over the output stream and reads a second tensor beside it
// (batch-norm statistics, residual adds).
enum class SfuFusion { kNone, kEpilogue, kFull };

struct SfuParams {
  int lanes = 0;
  SfuOpsPerCycle ops_per_cycle;
  SfuFusion fusion = SfuFusion::kNone;
};

struct ScratchpadParams {
  std::int64_t size_kib = 0;
  // Banks do not change timing in this model (bank conflicts are not modelled);
  // the energy model uses the bank size for the SRAM access energy.
  int banks = 0;
  int ports = 0;
  std::int64_t bytes_per_cycle_per_port = 0;
  int buffer_slots = 0;  // tasks whose operands may be resident at once (2 = double buffering)

  std::uint64_t size_bytes() const { return static_cast<std::uint64_t>(size_kib) * 1024; }
  double bytes_per_cycle() const {
    return static_cast<double>(ports) * static_cast<double>(bytes_per_cycle_per_port);
  }
};

// A core's DMA engine. Transfers are split into requests of request_bytes; at
// most outstanding_requests of them are in flight, so by Little's law one
// engine moves at most outstanding_requests x request_bytes per DRAM round
// trip (latency), however wide DRAM is.
struct DmaParams {
  int max_outstanding = 0;  // transfers (tile loads and stores) in flight per core
  int request_bytes = 0;
  int outstanding_requests = 0;
  double dram_bytes_per_cycle(std::uint64_t latency_cycles) const;  // infinite at zero latency
};

struct CoreParams {
  MacArrayParams mac_array;
  AccumulatorParams accumulator;
  RounderParams rounder;
  SfuParams sfu;
  ScratchpadParams scratchpad;
  DmaParams dma;
};

struct RingParams {
  // Only "ring" exists; the key is required so a config written for another
  // topology fails loudly instead of silently simulating a ring.
  std::string topology = "ring";
  bool bidirectional = true;
  std::int64_t link_bytes_per_cycle = 0;  // per directed link
  std::int64_t hop_latency_cycles = 0;
};

struct DramParams {
  int channels = 0;
  double gb_per_s_per_channel = 0;  // 1 GB = 1e9 bytes
  double latency_ns = 0;
  // Sustained / peak bandwidth: read/write turnaround, refresh, row misses.
  double efficiency = 1;
  // What the training step may keep in DRAM (unset: not checked).
  std::optional<double> capacity_gib;
  std::optional<std::uint64_t> capacity_bytes() const;
};

// A latency in whole cycles of a `clock_ghz` clock, rounded up.
std::uint64_t latency_cycles(double ns, double clock_ghz);

// The chip's link to its host's memory (PCIe or the like), over which what
// does not fit the DRAM is moved when a config allows spilling.
struct HostLinkParams {
  double gb_per_s = 0;    // each way; 1 GB = 1e9 bytes
  double latency_ns = 0;  // added to every transfer
  double pj_per_bit = 0;  // energy of a bit crossing it
};

struct ChipParams {
  int cores = 0;
  double clock_ghz = 0;
  double voltage = 0;  // of the cores' supply at clock_ghz: the operating point of the energy model
  energy::EnergyTable energy;  // energy per action, leakage and area of its components
  CoreParams core;
  RingParams interconnect;
  DramParams dram;
  std::optional<HostLinkParams> host_link;
  std::string notes;  // optional free text: where the numbers come from

  // DRAM channels are address-interleaved at fine grain, so the model treats
  // them as one pool of their summed bandwidth.
  double dram_bytes_per_cycle() const;
  std::uint64_t dram_latency_cycles() const;  // rounded up to whole cycles
  // The host link's, per direction (requires host_link).
  double host_bytes_per_cycle() const;
  std::uint64_t host_latency_cycles() const;
};

// The chip description's keys, declared once: they read it and document it.
const param::Schema<ChipParams>& chip_schema();

void from_json(const JsonReader& reader, MacArrayParams& params);
void from_json(const JsonReader& reader, AccumulatorParams& params);
void from_json(const JsonReader& reader, RounderParams& params);
void from_json(const JsonReader& reader, SfuParams& params);
void from_json(const JsonReader& reader, ScratchpadParams& params);
void from_json(const JsonReader& reader, DmaParams& params);
void from_json(const JsonReader& reader, CoreParams& params);
void from_json(const JsonReader& reader, RingParams& params);
void from_json(const JsonReader& reader, DramParams& params);
void from_json(const JsonReader& reader, ChipParams& params);

void to_json(nlohmann::json& json, const MacArrayParams& params);
void to_json(nlohmann::json& json, const AccumulatorParams& params);
void to_json(nlohmann::json& json, const RounderParams& params);
void to_json(nlohmann::json& json, const SfuParams& params);
void to_json(nlohmann::json& json, const ScratchpadParams& params);
void to_json(nlohmann::json& json, const DmaParams& params);
void to_json(nlohmann::json& json, const CoreParams& params);
void to_json(nlohmann::json& json, const RingParams& params);
void to_json(nlohmann::json& json, const DramParams& params);
void to_json(nlohmann::json& json, const ChipParams& params);

}  // namespace lpt::core
