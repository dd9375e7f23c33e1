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
  spec.latency_class = delivers_to ? ResourceClass::kChipLink : ResourceClass::kDram;
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

void CollectiveEngine::run_local(const LocalWork& work, CollectiveStats& stats) {
  const ResourceId dram = chip_.dram().resource();
  const std::uint64_t dram_latency = chip_.dram().latency_cycles();
  if (work.read_bytes > 0) start({dram}, work.read_bytes, dram_latency, std::nullopt);
  if (work.write_bytes > 0) start({dram}, work.write_bytes, dram_latency, std::nullopt);
  stats.counters[Counter::kDramReadBytes] += work.read_bytes;
  stats.counters[Counter::kDramWriteBytes] += work.write_bytes;
  const std::uint64_t added = add_on_sfus(work.alu_ops, now_cycles(), stats);
  wait_for_round(0, {});
  if (added > now_cycles()) wait(cycles_to_time(added - now_cycles()));
}

std::uint64_t CollectiveEngine::add_on_sfus(std::uint64_t ops, std::uint64_t from_cycle, CollectiveStats& stats) {
  const auto cores = static_cast<std::uint64_t>(chip_.cores());
  std::uint64_t done = from_cycle;
  for (std::uint64_t c = 0; c < cores && ops > 0; ++c) {
    SfuWork work;
    work.alu = ops / cores + (c < ops % cores ? 1 : 0);
    Sfu& sfu = chip_.core(static_cast<int>(c)).sfu();
    done = std::max(done, sfu.reserve_uncounted(from_cycle, work));
    stats.counters[Counter::kSfuAluOps] += work.alu;
    stats.counters[Counter::kSfuBusyCycles] += sfu.cycles_for(work);
  }
  return done;
}

void CollectiveEngine::send(std::size_t step, const Message& message, int bits, bool counted, CollectiveStats& stats) {
  const std::uint64_t bytes = packed_bytes(message.elements, bits);
  std::vector<ResourceId> path{chip_.dram().resource()};
  const int hops = topology_->route(chip_index_, message.peer, message.direction, path);
  start(std::move(path), bytes,
        chip_.dram().latency_cycles() + static_cast<std::uint64_t>(hops) * topology_->hop_latency_cycles(),
        std::pair(mirrored_ ? chip_index_ : message.peer, step));
  if (!counted) return;
  stats.counters[Counter::kDramReadBytes] += bytes;
  stats.counters[Counter::kLinkByteHops] += bytes * static_cast<std::uint64_t>(hops);
  stats.bytes_sent += bytes;
}

void CollectiveEngine::run_rounds(std::size_t step, const Stage& stage, int bits, CollectiveStats& stats) {
  const ResourceId dram = chip_.dram().resource();
  const std::uint64_t dram_latency = chip_.dram().latency_cycles();
  if (mirrored_ && stage.broadcast) {
    // Standing for every chip, the simulated chip (the leader) takes the
    // broadcast's chain of forwards, hop after hop, on its own link; the chain's
    // bytes count once, as each chip forwards them once.
    for (const Round& round : stage.rounds)
      for (const Message& message : round.sends)
        for (int hop = 0; hop + 1 < system_.chips; ++hop) {
          send(step, message, bits, hop == 0, stats);
          wait_for_round(step, {chip_index_});
        }
    for (const Round& round : stage.rounds)
      for (const Message& message : round.sends) stats.counters[Counter::kDramWriteBytes] += packed_bytes(message.elements, bits);
    return;
  }
  for (const Round& round : stage.rounds) {
    const std::uint64_t round_start = now_cycles();
    for (const Message& message : round.sends) send(step, message, bits, true, stats);
    std::vector<int> senders;
    for (const Message& receive : round.receives) {
      senders.push_back(receive.peer);
      const std::uint64_t bytes = packed_bytes(receive.elements, bits);
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
    for (std::size_t i = 0; i < arrivals.size(); ++i)
      if (round.receives[i].reduce)
        // From when the message starts to arrive, but not before this chip is in the round.
        added = std::max(added, add_on_sfus(round.receives[i].elements,
                                            std::max(arrivals[i].start_cycle, round_start), stats));
    if (added > now_cycles()) wait(cycles_to_time(added - now_cycles()));
  }
}

void CollectiveEngine::run_collective(std::size_t step) {
  const Collective& collective = *program_.steps[step].collective;
  CollectiveStats stats;
  stats.start_cycle = now_cycles();
  for (const Stage& stage : collective_stages(system_, collective, chip_index_)) {
    run_local(stage.local, stats);
    run_rounds(step, stage, stage.element_bits > 0 ? stage.element_bits : collective.element_bits, stats);
    stats.rounds += stage.rounds.size();
  }
  stats.end_cycle = now_cycles();
  stats_[step] = stats;
}

}  // namespace lpt::core
