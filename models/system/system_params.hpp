// A system of identical chips joined by chip-to-chip links, parsed from a
// config's "system" object. Plain data, no SystemC: the config code checks it
// and the system model (models/system/system) builds the links from it.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/common/param_schema.hpp"

namespace lpt::core {

// How the chips are joined. A ring (RaPiD's on-chip rings opened to the
// neighbouring chips), a 2-D torus (a ring along every row and every column,
// dimension-order routing) or a switch (every chip has a link to and from one
// central switch, which never limits).
enum class ChipTopologyKind { kRing, kTorus2d, kSwitch };
const char* to_string(ChipTopologyKind kind);

struct LinkParams {
  double gb_per_s = 0;    // per direction of one link; 1 GB = 1e9 bytes
  double latency_ns = 0;  // per hop: serialisation, wire and the far end's port
  double pj_per_bit = 0;  // energy of a bit crossing one link
  bool operator==(const LinkParams&) const = default;
};

struct SystemParams {
  int chips = 1;
  ChipTopologyKind topology = ChipTopologyKind::kRing;
  bool bidirectional = true;        // ring and torus links: both directions
  std::vector<int> torus_shape;     // rows, columns (torus2d only); their product is `chips`
  LinkParams link;
  bool operator==(const SystemParams&) const = default;

  int torus_rows() const { return torus_shape.empty() ? 1 : torus_shape[0]; }
  int torus_columns() const { return torus_shape.empty() ? chips : torus_shape[1]; }
  // Per chip clock cycle (the chips' clock), and whole cycles of latency.
  double link_bytes_per_cycle(double clock_ghz) const;
  std::uint64_t link_latency_cycles(double clock_ghz) const;
};

// Bounds the system's size: the model simulates every chip.
inline constexpr int kMaxChips = 1024;

// The "system" object's keys, declared once: they read it and document it.
const param::Schema<SystemParams>& system_schema();

void from_json(const JsonReader& reader, SystemParams& params);
void to_json(nlohmann::json& json, const SystemParams& params);

}  // namespace lpt::core
