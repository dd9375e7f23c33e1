#include "models/system/system_params.hpp"

#include "models/core/chip_params.hpp"

#include <cmath>

namespace lpt::core {

const char* to_string(ChipTopologyKind kind) {
  switch (kind) {
    case ChipTopologyKind::kRing: return "ring";
    case ChipTopologyKind::kTorus2d: return "torus2d";
    case ChipTopologyKind::kSwitch: return "switch";
  }
  return "?";
}

double SystemParams::link_bytes_per_cycle(double clock_ghz) const { return link.gb_per_s / clock_ghz; }

std::uint64_t SystemParams::link_latency_cycles(double clock_ghz) const {
  return latency_cycles(link.latency_ns, clock_ghz);
}

namespace {

const param::Schema<LinkParams>& link_schema() {
  using K = param::Keys<LinkParams>;
  static const param::Schema<LinkParams> schema(
      "One chip-to-chip link (each direction of a bidirectional link is a link of its own). Its bandwidth is "
      "shared max-min fairly by the transfers crossing it, like every other resource of the flow network.",
      {K::number("gb_per_s", &LinkParams::gb_per_s, 1e-3, 1e6, "GB/s", "bandwidth of one direction"),
       K::number("latency_ns", &LinkParams::latency_ns, 0, 1e7, "ns",
                 "per hop: serialisation, wire and the receiving port; a message's latency adds one per link"),
       K::optional(K::number("pj_per_bit", &LinkParams::pj_per_bit, 0, 1e6, "pJ/bit",
                             "energy of one bit crossing one link"))});
  return schema;
}

}  // namespace

const param::Schema<SystemParams>& system_schema() {
  using K = param::Keys<SystemParams>;
  static const param::Schema<SystemParams> schema(
      "A system of identical chips (each the config's `chip`) joined by chip-to-chip links. Each chip's port sits "
      "at its memory controller's ring stop: a collective's messages go from one chip's DRAM over the links to "
      "another's. Training is data-parallel: the batch is split evenly across the chips (docs/multi-chip.md).",
      {K::integer("chips", &SystemParams::chips, 1, kMaxChips, "chips", "number of chips"),
       K::choice("topology", &SystemParams::topology,
                 {{"ring", ChipTopologyKind::kRing},
                  {"torus2d", ChipTopologyKind::kTorus2d},
                  {"switch", ChipTopologyKind::kSwitch}},
                 "`ring`: chip i linked to i ± 1; `torus2d`: a ring along every row and every column of "
                 "`torus_shape`, routed along the row first; `switch`: one link from and one to a central "
                 "switch per chip (two hops between any two chips; the switch itself never limits)"),
       K::optional(K::boolean("bidirectional", &SystemParams::bidirectional,
                              "ring and torus links in both directions (a ring collective then sends half its "
                              "data each way)")),
       K::optional(
           K::value({"torus_shape", "array of 2 integers", "chips", "each 2 … 1024", {},
                     "rows and columns of a `torus2d`; their product is `chips`"},
                    &SystemParams::torus_shape,
                    [](const JsonReader& in) {
                      std::vector<int> shape;
                      for (const JsonReader& d : in.elements(2, 2)) shape.push_back(static_cast<int>(d.integer(2, kMaxChips)));
                      return shape;
                    }),
           "required for `torus2d`, not allowed otherwise"),
       K::object("link", &SystemParams::link, link_schema(), "every chip-to-chip link")},
      [](const JsonReader& in, const SystemParams& p) {
        const bool torus = p.topology == ChipTopologyKind::kTorus2d;
        if (torus && p.torus_shape.empty())
          in.at("topology").fail("a torus2d needs \"torus_shape\": [rows, columns]");
        if (!torus && !p.torus_shape.empty())
          in.at("torus_shape").fail("only a torus2d has a shape; this topology is " +
                                    std::string(to_string(p.topology)));
        if (torus && p.torus_shape[0] * p.torus_shape[1] != p.chips)
          in.at("torus_shape").fail("rows × columns = " + std::to_string(p.torus_shape[0] * p.torus_shape[1]) +
                                    ", but the system has " + std::to_string(p.chips) + " chips");
      });
  return schema;
}

void from_json(const JsonReader& reader, SystemParams& params) { params = system_schema().read(reader); }

void to_json(nlohmann::json& json, const SystemParams& params) {
  json = {{"chips", params.chips},
          {"topology", to_string(params.topology)},
          {"bidirectional", params.bidirectional},
          {"link",
           {{"gb_per_s", params.link.gb_per_s},
            {"latency_ns", params.link.latency_ns},
            {"pj_per_bit", params.link.pj_per_bit}}}};
  if (!params.torus_shape.empty()) json["torus_shape"] = params.torus_shape;
}

}  // namespace lpt::core
