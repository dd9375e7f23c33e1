#include "models/compute/mac_array.hpp"

#include <stdexcept>

#include "models/core/cycles.hpp"

namespace lpt::core {

MacArray::MacArray(sc_core::sc_module_name name, const MacArrayParams& params,
                   Scratchpad& scratchpad, FlowNetwork& network)
    : sc_core::sc_module(name),
      params_(params),
      scratchpad_(scratchpad),
      network_(network),
      port_(scratchpad.port_resource()) {}

TileRun MacArray::run_tile(const MacTile& tile) {
  if (running_) throw std::logic_error(std::string(name()) + ": tile started while busy");
  if (!(tile == last_tile_)) {
    last_timing_ = systolic_tile_timing(params_, tile);
    last_tile_ = tile;
  }
  const SystolicTileTiming timing = last_timing_;
  TileRun run{timing.cycles, 0};
  if (tile.empty()) return run;
  const std::uint64_t start = now_cycles();
  run.start_cycle = start;
  const std::uint64_t bytes = timing.scratchpad_read_bytes();
  scratchpad_.count_read(bytes);
  if (params_.l0) {
    l0_write_bytes_ += bytes;
    l0_read_bytes_ += timing.l0_read_bytes;
  }
  FlowSpec spec;
  spec.path = std::span<const ResourceId>(&port_, 1);
  spec.bytes = bytes;
  spec.rate_cap = static_cast<double>(bytes) / static_cast<double>(timing.cycles);
  spec.listener = this;
  running_ = true;
  network_.start(spec);
  while (running_) wait(tile_done_);
  run.cycles = tile_end_cycle_ - start;
  // Rounding to whole cycles may not make a tile faster than its schedule.
  if (run.cycles < run.systolic_cycles) {
    wait(cycles_to_time(run.systolic_cycles - run.cycles));
    run.cycles = run.systolic_cycles;
  }
  ++tiles_;
  macs_ += tile.macs();
  if (tile.datapath >= macs_by_datapath_.size()) macs_by_datapath_.resize(tile.datapath + 1, 0);
  macs_by_datapath_[tile.datapath] += tile.macs();
  return run;
}

void MacArray::on_flow_done(std::uint64_t, const FlowResult& result) {
  running_ = false;
  tile_end_cycle_ = result.end_cycle;
  tile_done_.notify(sc_core::SC_ZERO_TIME);
}

}  // namespace lpt::core
