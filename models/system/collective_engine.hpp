// A chip's collective engine: one SC_THREAD that runs the chip's part of each
// collective step (a gradient all-reduce) in program order, beside the cores,
// once the steps it depends on are complete on this chip.
//
// Per round of its schedule (models/system/collective) it sends its messages
// as flows from its DRAM over the chip-to-chip links into the receiving chip's
// scratchpads. It writes each message it receives to its DRAM, and for one it
// adds to its own values, it also reads those from DRAM; the additions (one
// SFU ALU op per element, spread over the chip's cores) take the SFU lanes
// from the compute of the cores from the moment the message starts to arrive.
// So a message is taken as received in small pieces: the reads, adds and
// writes overlap its transfer (they run as flows of their own from the start
// of the round). The next round starts when its messages have arrived and
// been added.
//
// Mirrored, the engine stands for every chip of a system whose chips all do
// the same at the same time (models/system/system): its own sends are also
// what it receives.
//
// Its DRAM bytes, link bytes and SFU work count in the collective step's
// stats; the cores' waits for the collective, in their stall counters.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <systemc>

#include "models/core/chip.hpp"
#include "models/core/program.hpp"
#include "models/core/stats.hpp"
#include "models/interconnect/flow_network.hpp"
#include "models/system/chip_topology.hpp"
#include "models/system/collective.hpp"
#include "models/system/system_params.hpp"

namespace lpt::core {

class CollectiveEngine : public sc_core::sc_module, public FlowListener {
 public:
  SC_HAS_PROCESS(CollectiveEngine);
  // `engines` (every chip's, by index) is read only during simulation;
  // `topology` is null for a system of one chip.
  CollectiveEngine(sc_core::sc_module_name name, int chip_index, const SystemParams& system,
                   const Program& program, Chip& chip, const ChipTopology* topology, FlowNetwork& network,
                   const std::vector<CollectiveEngine*>& engines, bool mirrored = false);

  // Per program step: this chip's part of each collective step, once run.
  const std::vector<std::optional<CollectiveStats>>& stats() const { return stats_; }

  void on_flow_done(std::uint64_t tag, const FlowResult& result) override;

 private:
  struct Arrival {
    std::uint64_t start_cycle = 0;
    std::uint64_t end_cycle = 0;
  };
  struct InFlight {
    std::optional<std::pair<int, std::size_t>> delivers_to;  // (chip, step) of a message; none: a local transfer
  };

  void run();  // SC_THREAD
  void run_collective(std::size_t step);
  void run_local(const LocalWork& work, CollectiveStats& stats);
  void run_rounds(std::size_t step, const Stage& stage, int bits, CollectiveStats& stats);
  // Starts a message's flow; `counted`: its bytes count in `stats`.
  void send(std::size_t step, const Message& message, int bits, bool counted, CollectiveStats& stats);
  // Reserves `ops` adds on the cores' SFUs from `from_cycle`; returns when they are done.
  std::uint64_t add_on_sfus(std::uint64_t ops, std::uint64_t from_cycle, CollectiveStats& stats);
  void start(std::vector<ResourceId> path, std::uint64_t bytes, std::uint64_t latency_cycles,
             std::optional<std::pair<int, std::size_t>> delivers_to);
  void deliver(std::size_t step, int from, Arrival arrival);
  // Blocks until this chip's flows are done and a message from each of
  // `senders` in `step` has arrived; returns those arrivals, in order.
  std::vector<Arrival> wait_for_round(std::size_t step, const std::vector<int>& senders);

  int chip_index_;
  const SystemParams& system_;
  const Program& program_;
  Chip& chip_;
  const ChipTopology* topology_;
  FlowNetwork& network_;
  const std::vector<CollectiveEngine*>& engines_;
  bool mirrored_;
  std::vector<InFlight> in_flight_;  // by flow tag
  std::vector<std::uint64_t> free_tags_;
  int pending_flows_ = 0;
  std::map<std::pair<std::size_t, int>, std::deque<Arrival>> inbox_;  // by (step, sender)
  sc_core::sc_event progress_;  // a flow of this chip's finished or a message arrived
  std::vector<std::optional<CollectiveStats>> stats_;
};

}  // namespace lpt::core
