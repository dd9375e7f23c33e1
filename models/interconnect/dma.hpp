// A core's DMA engine: turns a task's loads and stores into flows (source
// resource, ring links, destination resource, path latency), keeps at most
// max_outstanding of them in flight and queues the rest in order. Transfers
// are grouped in batches so the controller can wait for "all loads of task i".
// A transfer to or from DRAM is a stream of requests with a bounded number
// outstanding: its flow also passes the engine's request resource, of
// outstanding_requests x request_bytes per DRAM latency (DmaParams), which
// its DRAM transfers share; so latency x bandwidth binds when it should.
// For a timeline it reports when loads and when stores are in flight.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include <systemc>

#include "models/core/chip_params.hpp"
#include "models/core/program.hpp"
#include "models/core/timeline.hpp"
#include "models/interconnect/flow_network.hpp"
#include "models/interconnect/ring.hpp"
#include "models/memory/dram.hpp"
#include "models/memory/scratchpad.hpp"

namespace lpt::core {

// Transfers the controller waits for together. `limiter` is that of the
// transfer that completed last, i.e. what the wait was spent on.
struct TransferBatch {
  int pending = 0;
  std::uint64_t last_end_cycle = 0;
  FlowLimiter limiter = FlowLimiter::kRateCap;
  sc_core::sc_event done;
  // For the timeline: loads or stores (kDmaLoad or kDmaStore), of which step.
  TimelineActivity activity = TimelineActivity::kDmaLoad;
  std::size_t step = 0;
};

class Dma : public sc_core::sc_module, public FlowListener {
 public:
  SC_HAS_PROCESS(Dma);
  // `scratchpads` (every core's, by index) is read only during simulation, so
  // it may still be filling while the cores are elaborated. `timeline` (null
  // for none) hears of core `core`'s loads and stores in flight.
  Dma(sc_core::sc_module_name name, const DmaParams& params, FlowNetwork& network,
      Ring& ring, Dram& dram, const std::vector<Scratchpad*>& scratchpads, int core,
      TimelineObserver* timeline);

  // Starts (or queues) the transfers now. They must outlive their completion.
  void issue(std::span<const Transfer> transfers, TransferBatch& batch);
  // The same at a later cycle (stores after post-processing); counts them in
  // the batch at once. Cycles must not decrease from call to call.
  void issue_at(std::uint64_t cycle, std::span<const Transfer> transfers, TransferBatch& batch);

  std::uint64_t dram_read_bytes() const { return dram_read_bytes_; }
  std::uint64_t dram_write_bytes() const { return dram_write_bytes_; }
  std::uint64_t host_read_bytes() const { return host_read_bytes_; }
  std::uint64_t host_write_bytes() const { return host_write_bytes_; }
  std::uint64_t ring_byte_hops() const { return ring_byte_hops_; }

  void on_flow_done(std::uint64_t tag, const FlowResult& result) override;

 private:
  struct Queued {
    const Transfer* transfer;
    TransferBatch* batch;
  };
  struct Deferred {
    std::uint64_t cycle;
    std::span<const Transfer> transfers;
    TransferBatch* batch;
  };
  // Counts a transfer's bytes when it is issued, so that they belong to the
  // step that issued it even if it starts later.
  void count(const Transfer& transfer);
  // Starts the transfers, or queues those beyond max_outstanding.
  void dispatch(std::span<const Transfer> transfers, TransferBatch& batch);
  void start_flow(const Transfer& transfer, TransferBatch& batch);
  void deferred_issuer();  // SC_THREAD
  // Timeline: an interval per run of time with flows of a batch's kind in
  // flight, split where a flow of another step starts.
  struct InFlight {
    int flows = 0;
    std::uint64_t since = 0;
    std::size_t step = 0;
  };
  InFlight& in_flight(const TransferBatch& batch);
  void flow_started(const TransferBatch& batch);
  void flow_ended(const TransferBatch& batch);
  void report(const InFlight& open, TimelineActivity activity) const;

  int max_outstanding_;
  FlowNetwork& network_;
  Ring& ring_;
  Dram& dram_;
  const std::vector<Scratchpad*>& scratchpads_;
  std::vector<TransferBatch*> in_flight_;  // by flow tag; null when free
  std::vector<int> free_tags_;
  std::deque<Queued> queued_;
  std::deque<Deferred> deferred_;
  std::uint64_t last_deferred_cycle_ = 0;
  sc_core::sc_event deferred_added_;
  std::optional<ResourceId> requests_;  // none at zero DRAM latency
  // The same limit for transfers to and from host memory, at its latency.
  std::optional<ResourceId> host_requests_;
  std::vector<ResourceId> path_;  // reused for every flow
  std::vector<ResourceId> route_;  // for counting ring hops
  std::uint64_t dram_read_bytes_ = 0;
  std::uint64_t dram_write_bytes_ = 0;
  std::uint64_t host_read_bytes_ = 0, host_write_bytes_ = 0;
  std::uint64_t ring_byte_hops_ = 0;
  int core_;
  TimelineObserver* timeline_;
  std::array<InFlight, 2> in_flight_by_kind_;  // loads, stores
};

}  // namespace lpt::core
