#include "models/system/collective_engine.hpp"

#include <algorithm>

#include "models/core/cycles.hpp"
#include "models/system/collective.hpp"

namespace lpt::core {

CollectiveEngine::CollectiveEngine(sc_core::sc_module_name name, int chip_index, const SystemParams& system,
                                   const Program& program, Chip& chip, const ChipTopology* topology,
                                   FlowNetwork& network, const std::vector<CollectiveEngine*>& engines,
                                   bool mirrored)
    : sc_core::sc_module(name),
      chip_index_(chip_index),
      system_(system),
      program_(program),
      chip_(chip),
      topology_(topology),
      network_(network),
      engines_(engines),
      mirrored_(mirrored),
      stats_(program.steps.size()) {
  SC_THREAD(run);
}

void CollectiveEngine::run() {
  for (std::size_t s = 0; s < program_.steps.size(); ++s) {
    if (!program_.steps[s].collective) continue;
    chip_.tracker().wait_for(program_.steps[s].depends_on);
    run_collective(s);
    chip_.tracker().finish_collective(s);
  }
}

void CollectiveEngine::start(std::vector<ResourceId> path, std::uint64_t bytes, std::uint64_t latency_cycles,
                             std::optional<std::pair<int, std::size_t>> delivers_to) {
  if (free_tags_.empty()) {
    free_tags_.push_back(in_flight_.size());
    in_flight_.emplace_back();
  }
  const std::uint64_t tag = free_tags_.back();
  free_tags_.pop_back();
  in_flight_[tag] = {delivers_to};
  ++pending_flows_;
  FlowSpec spec;
  spec.path = path;
  spec.bytes = bytes;
  spec.latency_cycles = latency_cycles;
  spec.latency_class = ResourceClass::kChipLink;
  spec.listener = this;
  spec.tag = tag;
  network_.start(spec);
}

void CollectiveEngine::on_flow_done(std::uint64_t tag, const FlowResult& result) {
  const InFlight done = in_flight_[tag];
  free_tags_.push_back(tag);
  --pending_flows_;
  if (done.delivers_to) {
    const auto [chip, step] = *done.delivers_to;
    engines_.at(static_cast<std::size_t>(chip))->deliver(step, chip_index_, {result.start_cycle, result.end_cycle});
  }
  progress_.notify(sc_core::SC_ZERO_TIME);
}

void CollectiveEngine::deliver(std::size_t step, int from, Arrival arrival) {
  inbox_[{step, from}].push_back(arrival);
  progress_.notify(sc_core::SC_ZERO_TIME);
}

std::vector<CollectiveEngine::Arrival> CollectiveEngine::wait_for_round(std::size_t step,
                                                                       const std::vector<int>& senders) {
  const auto arrived = [&] {
    if (pending_flows_ > 0) return false;
    std::map<int, std::size_t> needed;
    for (const int sender : senders) ++needed[sender];
    for (const auto& [sender, count] : needed) {
      const auto found = inbox_.find({step, sender});
      if (found == inbox_.end() || found->second.size() < count) return false;
    }
    return true;
  };
  while (!arrived()) wait(progress_);
  std::vector<Arrival> arrivals;
  for (const int sender : senders) {
    auto& queue = inbox_.at({step, sender});
    arrivals.push_back(queue.front());
    queue.pop_front();
    if (queue.empty()) inbox_.erase({step, sender});
  }
  return arrivals;
}

void CollectiveEngine::run_collective(std::size_t step) {
  const Collective& collective = *program_.steps[step].collective;
  const std::vector<Round> rounds = all_reduce_rounds(system_, collective, chip_index_);
  CollectiveStats stats;
  stats.start_cycle = now_cycles();
  stats.rounds = rounds.size();
  const ResourceId dram = chip_.dram().resource();
  const std::uint64_t dram_latency = chip_.dram().latency_cycles();
  const auto cores = static_cast<std::uint64_t>(chip_.cores());
  for (const Round& round : rounds) {
    const std::uint64_t round_start = now_cycles();
    for (const Message& send : round.sends) {
      const std::uint64_t bytes = packed_bytes(send.elements, collective.element_bits);
      std::vector<ResourceId> path{dram};
      const int hops = topology_->route(chip_index_, send.peer, send.direction, path);
      start(std::move(path), bytes, dram_latency + static_cast<std::uint64_t>(hops) * topology_->hop_latency_cycles(),
            std::pair(mirrored_ ? chip_index_ : send.peer, step));
      stats.counters[Counter::kDramReadBytes] += bytes;
      stats.counters[Counter::kLinkByteHops] += bytes * static_cast<std::uint64_t>(hops);
      stats.bytes_sent += bytes;
    }
    std::vector<int> senders;
    for (const Message& receive : round.receives) {
      senders.push_back(receive.peer);
      const std::uint64_t bytes = packed_bytes(receive.elements, collective.element_bits);
      // What arrives is written to DRAM as it comes (a sum: after adding its own values, read meanwhile).
      start({dram}, bytes, dram_latency, std::nullopt);
      stats.counters[Counter::kDramWriteBytes] += bytes;
      if (!receive.reduce) continue;
      start({dram}, bytes, dram_latency, std::nullopt);
      stats.counters[Counter::kDramReadBytes] += bytes;
    }
    // Mirrored, this chip stands for every chip: its k-th receive of a round
    // is its k-th send, as the peer that sends it does the same at the same time.
    if (mirrored_)
      for (std::size_t k = 0; k < senders.size(); ++k) senders[k] = chip_index_;
    const std::vector<Arrival> arrivals = wait_for_round(step, senders);
    std::uint64_t added = now_cycles();
    for (std::size_t i = 0; i < arrivals.size(); ++i) {
      const Message& receive = round.receives[i];
      if (!receive.reduce) continue;
      for (std::uint64_t c = 0; c < cores; ++c) {
        SfuWork work;
        work.alu = receive.elements / cores + (c < receive.elements % cores ? 1 : 0);
        Sfu& sfu = chip_.core(static_cast<int>(c)).sfu();
        // From when the message starts to arrive, but not before this chip is in the round.
        added = std::max(added, sfu.reserve_uncounted(std::max(arrivals[i].start_cycle, round_start), work));
        stats.counters[Counter::kSfuAluOps] += work.alu;
        stats.counters[Counter::kSfuBusyCycles] += sfu.cycles_for(work);
      }
    }
    if (added > now_cycles()) wait(cycles_to_time(added - now_cycles()));
  }
  stats.end_cycle = now_cycles();
  stats_[step] = stats;
}

}  // namespace lpt::core
