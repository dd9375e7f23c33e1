// The schedule of an all-reduce: for one chip, the rounds of messages it sends
// and receives. Plain data, no SystemC; the collective engine
// (models/system/collective_engine) runs it on the flow network.
//
// - ring: reduce-scatter then all-gather around a ring of all chips
//   (Patarasuk & Yuan, JPDC 2009): 2(N−1) rounds, each moving 1/N of the data
//   to the next chip; with bidirectional links half the data goes each way.
// - tree: reduce up a binary tree over the same order, then broadcast down,
//   whole buckets at a time (not pipelined).
// - hierarchical: reduce-scatter within groups (a torus's rows, or groups of
//   consecutive chips), a ring all-reduce of each chip's share across the
//   groups (a torus's columns), an all-gather within groups.
// An all-gather (Collective::op) is a ring pass of its members without the
// reduction: each member ends with every member's part.
#pragma once

#include <cstdint>
#include <vector>

#include "models/core/program.hpp"
#include "models/system/system_params.hpp"

namespace lpt::core {

struct Message {
  int peer = 0;  // the chip it goes to (a send) or comes from (a receive)
  std::uint64_t elements = 0;
  // The receiver adds it to its own values (a reduction), rather than keeping
  // it (a gather or broadcast).
  bool reduce = false;
  // Which way round a ring it travels (+1: to higher positions), for a route
  // between two chips that are neighbours both ways (a ring of two); 0: any.
  int direction = 0;
  bool operator==(const Message&) const = default;
};

// A chip issues a round's sends, then waits for its receives; the next round
// starts when they have arrived and been added.
struct Round {
  std::vector<Message> sends, receives;
  bool operator==(const Round&) const = default;
};

// The chips in the order a ring algorithm visits them: 0 … N−1, except on a
// torus, where rows are walked alternately left to right and right to left so
// that consecutive chips are neighbours (over bidirectional links; one way
// only, a reversed row goes the long way round its ring).
std::vector<int> ring_order(const SystemParams& system);

// Work a chip does on its own, streamed: DRAM bytes read and written, and SFU
// ALU operations spread over its cores.
struct LocalWork {
  std::uint64_t read_bytes = 0, write_bytes = 0, alu_ops = 0;
  bool operator==(const LocalWork&) const = default;
};

// One stage of a collective on one chip: its local work, then its rounds of
// messages, of `element_bits` each (0: the collective's).
struct Stage {
  const char* what = "all-reduce";
  LocalWork local;
  std::vector<Round> rounds;
  int element_bits = 0;
  // A broadcast from chip 0 forwarded chip to chip round the ring order.
  bool broadcast = false;
};

// Chip `chip`'s stages of `collective`: a dense all-reduce is one stage of
// all_reduce_rounds. With compression, ScaleCom's cyclic local top-k (CLT-k;
// Chen et al., NeurIPS 2020), chip 0 leading (each step has one leader, the
// chip with the most work): every chip adds its gradient to its
// error-feedback memory (read both, write the sum: one add per element); the
// leader selects the k largest magnitudes (one more read, two ops per element:
// magnitude and compare against a threshold estimated on the way — our
// assumption of the selection's cost) and writes their 32-bit indices; it
// broadcasts them round the ring order, each chip forwarding them once; every
// chip gathers its k values at those indices; the k values are all-reduced by
// the collective's algorithm; every chip updates its memory with what it did
// not send (read the sum and the k reduced values, write the memory and the
// reduced values; two ops per element). Memories are kept in the gradient
// format.
std::vector<Stage> collective_stages(const SystemParams& system, const Collective& collective, int chip);

// Whether every chip's part of an all-reduce is chip 0's moved round the
// system, with each message on links of its own: then all chips of a
// data-parallel system (the same program on identical chips) run alike, and
// simulating one stands for all. So for a ring all-reduce on a ring or a
// switch, and a hierarchical one on a torus or a switch; not for a tree
// (the root's part is not a leaf's) nor for rings whose messages cross
// several links (a ring through a torus, groups on a ring).
// An all-gather runs alike on a switch, and on a ring when its members are
// all the chips.
bool chips_run_alike(const SystemParams& system, const Collective& collective);

// Chip `chip`'s rounds of an all-gather of `collective` on `system`: one pass
// round its members (both ways over bidirectional links), each round moving
// one member's part. Throws std::invalid_argument when gather_group does not
// divide the chips.
std::vector<Round> all_gather_rounds(const SystemParams& system, const Collective& collective, int chip);

// Chip `chip`'s rounds of an all-reduce of `collective` on `system`. Throws
// std::invalid_argument for a hierarchical all-reduce without groups (a torus,
// or group_chips dividing the chips).
std::vector<Round> all_reduce_rounds(const SystemParams& system, const Collective& collective, int chip);

}  // namespace lpt::core
