// The MAC array of a core. A tile occupies it for its systolic cycles
// (systolic_timing.hpp) while it reads its operands from the scratchpad as a
// flow capped at (operand bytes / systolic cycles): when the ports are shared
// with DMA traffic and cannot keep up, the tile takes longer and the excess is
// a scratchpad stall.
//
// The chunk accumulators sit inside the array's output pipeline: their adds
// happen as part of the fold's drain, so they add no time of their own and
// have no separate timing module (their energy is counted by MACs).
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "models/compute/systolic_timing.hpp"
#include "models/core/chip_params.hpp"
#include "models/interconnect/flow_network.hpp"
#include "models/memory/scratchpad.hpp"

namespace lpt::core {

struct TileRun {
  std::uint64_t systolic_cycles = 0;  // stall-free time
  std::uint64_t cycles = 0;           // actual, >= systolic_cycles
  std::uint64_t start_cycle = 0;
};

class MacArray : public sc_core::sc_module, public FlowListener {
 public:
  MacArray(sc_core::sc_module_name name, const MacArrayParams& params, Scratchpad& scratchpad,
           FlowNetwork& network);

  // Blocking: call from an SC_THREAD. Returns when the tile has finished.
  TileRun run_tile(const MacTile& tile);

  std::uint64_t tiles() const { return tiles_; }
  std::uint64_t macs() const { return macs_; }
  // MACs by MacTile::datapath.
  const std::vector<std::uint64_t>& macs_by_datapath() const { return macs_by_datapath_; }
  std::uint64_t l0_read_bytes() const { return l0_read_bytes_; }
  std::uint64_t l0_write_bytes() const { return l0_write_bytes_; }

  void on_flow_done(std::uint64_t tag, const FlowResult& result) override;

 private:
  MacArrayParams params_;
  // A core's tiles mostly repeat the previous one's shape: its timing is kept.
  MacTile last_tile_;
  SystolicTileTiming last_timing_ = systolic_tile_timing(params_, last_tile_);
  Scratchpad& scratchpad_;
  FlowNetwork& network_;
  ResourceId port_;
  bool running_ = false;
  std::uint64_t tile_end_cycle_ = 0;
  sc_core::sc_event tile_done_;
  std::uint64_t tiles_ = 0;
  std::uint64_t macs_ = 0;
  std::vector<std::uint64_t> macs_by_datapath_;
  std::uint64_t l0_read_bytes_ = 0, l0_write_bytes_ = 0;
};

}  // namespace lpt::core
