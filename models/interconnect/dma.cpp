#include "models/interconnect/dma.hpp"

#include <stdexcept>

#include "models/core/cycles.hpp"

namespace lpt::core {

Dma::Dma(sc_core::sc_module_name name, const DmaParams& params, FlowNetwork& network,
         Ring& ring, Dram& dram, const std::vector<Scratchpad*>& scratchpads, int core,
         TimelineObserver* timeline)
    : sc_core::sc_module(name),
      max_outstanding_(params.max_outstanding),
      network_(network),
      ring_(ring),
      dram_(dram),
      scratchpads_(scratchpads),
      in_flight_(static_cast<std::size_t>(params.max_outstanding), nullptr),
      core_(core),
      timeline_(timeline) {
  for (int tag = max_outstanding_ - 1; tag >= 0; --tag) free_tags_.push_back(tag);
  if (dram.latency_cycles() > 0)
    requests_ = network.add_resource(std::string(this->name()) + ".requests", ResourceClass::kDram,
                                     params.dram_bytes_per_cycle(dram.latency_cycles()));
  if (dram.host_latency_cycles() > 0)
    host_requests_ = network.add_resource(std::string(this->name()) + ".host_requests", ResourceClass::kDram,
                                          params.dram_bytes_per_cycle(dram.host_latency_cycles()));
  SC_THREAD(deferred_issuer);
}

void Dma::issue(std::span<const Transfer> transfers, TransferBatch& batch) {
  for (const Transfer& transfer : transfers) count(transfer);
  dispatch(transfers, batch);
}

void Dma::count(const Transfer& transfer) {
  const int memory_stop = ring_.stops() - 1;
  switch (transfer.src.kind) {
    case Endpoint::Kind::kDram: dram_read_bytes_ += transfer.bytes; break;
    case Endpoint::Kind::kHost: host_read_bytes_ += transfer.bytes; break;
    case Endpoint::Kind::kCore: scratchpads_.at(transfer.src.core)->count_read(transfer.bytes); break;
  }
  switch (transfer.dst.kind) {
    case Endpoint::Kind::kDram: dram_write_bytes_ += transfer.bytes; break;
    case Endpoint::Kind::kHost: host_write_bytes_ += transfer.bytes; break;
    case Endpoint::Kind::kCore: scratchpads_.at(transfer.dst.core)->count_write(transfer.bytes); break;
  }
  route_.clear();
  const int hops = ring_.route(transfer.src.off_chip() ? memory_stop : transfer.src.core,
                               transfer.dst.off_chip() ? memory_stop : transfer.dst.core, route_);
  ring_byte_hops_ += transfer.bytes * static_cast<std::uint64_t>(hops);
}

void Dma::dispatch(std::span<const Transfer> transfers, TransferBatch& batch) {
  for (const Transfer& transfer : transfers) {
    ++batch.pending;
    if (free_tags_.empty())
      queued_.push_back({&transfer, &batch});
    else
      start_flow(transfer, batch);
  }
}

void Dma::issue_at(std::uint64_t cycle, std::span<const Transfer> transfers,
                   TransferBatch& batch) {
  if (transfers.empty()) return;
  if (cycle <= now_cycles()) {
    issue(transfers, batch);
    return;
  }
  for (const Transfer& transfer : transfers) count(transfer);
  if (cycle < last_deferred_cycle_) throw std::logic_error("Dma::issue_at: cycles must not decrease");
  last_deferred_cycle_ = cycle;
  // Count them now so a wait on the batch covers transfers not yet started.
  batch.pending += static_cast<int>(transfers.size());
  deferred_.push_back({cycle, transfers, &batch});
  deferred_added_.notify(sc_core::SC_ZERO_TIME);
}

void Dma::deferred_issuer() {
  for (;;) {
    while (deferred_.empty()) wait(deferred_added_);
    const Deferred next = deferred_.front();
    const std::uint64_t now = now_cycles();
    if (next.cycle > now) wait(cycles_to_time(next.cycle - now));
    deferred_.pop_front();
    next.batch->pending -= static_cast<int>(next.transfers.size());
    dispatch(next.transfers, *next.batch);
  }
}

void Dma::start_flow(const Transfer& transfer, TransferBatch& batch) {
  const int tag = free_tags_.back();
  free_tags_.pop_back();
  in_flight_[tag] = &batch;
  if (timeline_) flow_started(batch);

  const int memory_stop = ring_.stops() - 1;
  const bool from_off_chip = transfer.src.off_chip(), to_off_chip = transfer.dst.off_chip();
  const bool host = transfer.src.kind == Endpoint::Kind::kHost || transfer.dst.kind == Endpoint::Kind::kHost;
  path_.clear();
  // Requests in flight bound an off-chip transfer's bandwidth by its memory's latency.
  if (const auto& requests = host ? host_requests_ : requests_; requests && (from_off_chip || to_off_chip))
    path_.push_back(*requests);
  const auto add_end = [&](const Endpoint& end, bool to) {
    switch (end.kind) {
      case Endpoint::Kind::kDram: path_.push_back(dram_.resource()); break;
      case Endpoint::Kind::kHost: path_.push_back(dram_.host_resource(to)); break;
      case Endpoint::Kind::kCore: path_.push_back(scratchpads_.at(end.core)->port_resource()); break;
    }
  };
  add_end(transfer.src, false);
  const int hops = ring_.route(from_off_chip ? memory_stop : transfer.src.core,
                               to_off_chip ? memory_stop : transfer.dst.core, path_);
  add_end(transfer.dst, true);

  FlowSpec spec;
  spec.path = path_;
  spec.bytes = transfer.bytes;
  spec.latency_cycles = static_cast<std::uint64_t>(hops) * ring_.hop_latency_cycles();
  spec.latency_class = ResourceClass::kInterconnect;
  if (from_off_chip || to_off_chip) {
    spec.latency_cycles += host ? dram_.host_latency_cycles() : dram_.latency_cycles();
    spec.latency_class = ResourceClass::kDram;
  }
  spec.listener = this;
  spec.tag = static_cast<std::uint64_t>(tag);
  network_.start(spec);
}

void Dma::on_flow_done(std::uint64_t tag, const FlowResult& result) {
  TransferBatch& batch = *in_flight_[tag];
  in_flight_[tag] = nullptr;
  free_tags_.push_back(static_cast<int>(tag));
  if (timeline_) flow_ended(batch);
  if (result.end_cycle >= batch.last_end_cycle) {
    batch.last_end_cycle = result.end_cycle;
    batch.limiter = result.limiter;
  }
  if (--batch.pending == 0) batch.done.notify(sc_core::SC_ZERO_TIME);
  if (!queued_.empty()) {
    const Queued next = queued_.front();
    queued_.pop_front();
    start_flow(*next.transfer, *next.batch);
  }
}

Dma::InFlight& Dma::in_flight(const TransferBatch& batch) {
  return in_flight_by_kind_[batch.activity == TimelineActivity::kDmaStore ? 1 : 0];
}

void Dma::flow_started(const TransferBatch& batch) {
  InFlight& open = in_flight(batch);
  if (open.flows == 0) {
    open.since = now_cycles();
  } else if (open.step != batch.step) {
    report(open, batch.activity);
    open.since = now_cycles();
  }
  open.step = batch.step;
  ++open.flows;
}

void Dma::flow_ended(const TransferBatch& batch) {
  InFlight& open = in_flight(batch);
  if (--open.flows == 0) report(open, batch.activity);
}

void Dma::report(const InFlight& open, TimelineActivity activity) const {
  const std::uint64_t now = now_cycles();
  if (now > open.since) timeline_->on_interval({core_, activity, StallCause::kCount, open.step, open.since, now});
}

}  // namespace lpt::core
