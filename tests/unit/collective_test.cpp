// All-reduce schedules: every message a chip sends is one its peer expects
// (same size, same kind, same order), and the data each chip moves is what
// the algorithm's textbook form says.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <stdexcept>

#include "models/numerics/gradient_reduction.hpp"
#include "models/system/collective.hpp"

namespace lpt::core {
namespace {

SystemParams system_of(int chips, ChipTopologyKind topology, bool bidirectional, std::vector<int> shape = {}) {
  SystemParams s;
  s.chips = chips;
  s.topology = topology;
  s.bidirectional = bidirectional;
  s.torus_shape = std::move(shape);
  s.link = {10, 100, 0};
  return s;
}

struct Case {
  SystemParams system;
  CollectiveAlgorithm algorithm;
  int group_chips = 0;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const bool both_ways : {false, true}) {
    for (const int chips : {2, 3, 5, 8}) {
      out.push_back({system_of(chips, ChipTopologyKind::kRing, both_ways), CollectiveAlgorithm::kRing});
      out.push_back({system_of(chips, ChipTopologyKind::kSwitch, both_ways), CollectiveAlgorithm::kTree});
    }
    out.push_back({system_of(6, ChipTopologyKind::kTorus2d, both_ways, {2, 3}), CollectiveAlgorithm::kHierarchical});
    out.push_back({system_of(6, ChipTopologyKind::kTorus2d, both_ways, {2, 3}), CollectiveAlgorithm::kRing});
    out.push_back({system_of(8, ChipTopologyKind::kRing, both_ways), CollectiveAlgorithm::kHierarchical, 4});
  }
  return out;
}

TEST(Collective, EverySendIsAReceiveOfItsPeerInTheSameOrder) {
  for (const Case& c : cases()) {
    for (const std::uint64_t elements : {1ull, 7ull, 1000ull, 1000003ull}) {
      const Collective collective{elements, 16, c.algorithm, c.group_chips};
      // (from, to) -> the messages in order, as sent and as expected.
      std::map<std::pair<int, int>, std::vector<std::pair<std::uint64_t, bool>>> sent, expected;
      for (int chip = 0; chip < c.system.chips; ++chip)
        for (const Round& round : all_reduce_rounds(c.system, collective, chip)) {
          for (const Message& m : round.sends) sent[{chip, m.peer}].emplace_back(m.elements, m.reduce);
          for (const Message& m : round.receives) expected[{m.peer, chip}].emplace_back(m.elements, m.reduce);
        }
      EXPECT_EQ(sent, expected) << to_string(c.algorithm) << " on " << c.system.chips << " chips, " << elements;
    }
  }
}

std::uint64_t sent_by(const SystemParams& system, const Collective& collective, int chip) {
  std::uint64_t total = 0;
  for (const Round& round : all_reduce_rounds(system, collective, chip))
    for (const Message& m : round.sends) total += m.elements;
  return total;
}

TEST(Collective, RingSendsTwiceTheDataLessAShareInTwiceNMinusOneRounds) {
  for (const int chips : {2, 4, 7}) {
    const SystemParams system = system_of(chips, ChipTopologyKind::kRing, false);
    const Collective collective{7000, 16, CollectiveAlgorithm::kRing};
    for (int chip = 0; chip < chips; ++chip) {
      EXPECT_EQ(all_reduce_rounds(system, collective, chip).size(), 2u * (chips - 1));
      EXPECT_NEAR(static_cast<double>(sent_by(system, collective, chip)), 2.0 * (chips - 1) / chips * 7000, 2.0 * chips);
    }
  }
}

TEST(Collective, TreeLeavesSendOnceAndTheRootNever) {
  const SystemParams system = system_of(7, ChipTopologyKind::kSwitch, false);
  const Collective collective{500, 16, CollectiveAlgorithm::kTree};
  EXPECT_EQ(sent_by(system, collective, 0), 2 * 500u);  // broadcast to its two children
  EXPECT_EQ(sent_by(system, collective, 6), 500u);      // a leaf: up only
  EXPECT_EQ(sent_by(system, collective, 1), 3 * 500u);  // up once, down twice
}

TEST(Collective, OneChipHasNothingToDo) {
  EXPECT_TRUE(all_reduce_rounds(system_of(1, ChipTopologyKind::kRing, true), {100, 16}, 0).empty());
}

TEST(Collective, HierarchicalNeedsGroups) {
  const Collective collective{100, 16, CollectiveAlgorithm::kHierarchical, 3};
  EXPECT_THROW(all_reduce_rounds(system_of(8, ChipTopologyKind::kRing, false), collective, 0), std::invalid_argument);
}

TEST(Collective, ChipsRunAlikeOnlyWhereEachMessageHasItsOwnLinks) {
  EXPECT_TRUE(chips_run_alike(system_of(8, ChipTopologyKind::kRing, true), Collective{0, 16, CollectiveAlgorithm::kRing}));
  EXPECT_TRUE(chips_run_alike(system_of(8, ChipTopologyKind::kSwitch, true), Collective{0, 16, CollectiveAlgorithm::kRing}));
  EXPECT_TRUE(chips_run_alike(system_of(6, ChipTopologyKind::kTorus2d, true, {2, 3}), Collective{0, 16, CollectiveAlgorithm::kHierarchical}));
  EXPECT_FALSE(chips_run_alike(system_of(6, ChipTopologyKind::kTorus2d, true, {2, 3}), Collective{0, 16, CollectiveAlgorithm::kRing}));
  EXPECT_FALSE(chips_run_alike(system_of(8, ChipTopologyKind::kSwitch, true), Collective{0, 16, CollectiveAlgorithm::kTree}));
  EXPECT_FALSE(chips_run_alike(system_of(8, ChipTopologyKind::kRing, true), Collective{0, 16, CollectiveAlgorithm::kHierarchical}));
}

}  // namespace
}  // namespace lpt::core

namespace lpt::core {
namespace {

TEST(Collective, CompressionSendsKOfTheElements) {
  Collective c{1000, 16, CollectiveAlgorithm::kRing};
  EXPECT_EQ(c.sent_elements(), 1000u);
  c.compression_ratio = 100;
  EXPECT_EQ(c.sent_elements(), 10u);
  c.compression_ratio = 3;
  EXPECT_EQ(c.sent_elements(), 333u);
  c.elements = 5;
  c.compression_ratio = 100;
  EXPECT_EQ(c.sent_elements(), 1u);  // never nothing
  // The timing's k is the numerics' k.
  for (const std::uint64_t elements : {1ull, 99ull, 1000ull, 123457ull})
    for (const double ratio : {1.0, 2.5, 100.0, 1000.0}) {
      c.elements = elements;
      c.compression_ratio = ratio;
      EXPECT_EQ(c.sent_elements(), num::cltk_k(elements, ratio));
    }
}

TEST(Collective, OnlyTheLeaderSelects) {
  const SystemParams system = system_of(4, ChipTopologyKind::kRing, false);
  Collective c{1000, 16, CollectiveAlgorithm::kRing, 0, 10};
  const auto stages_of = [&](int chip) {
    std::vector<std::string> names;
    for (const Stage& s : collective_stages(system, c, chip)) names.push_back(s.what);
    return names;
  };
  EXPECT_EQ(stages_of(0), (std::vector<std::string>{"accumulate", "select", "indices", "gather", "all-reduce", "memory"}));
  EXPECT_EQ(stages_of(2), (std::vector<std::string>{"accumulate", "indices", "gather", "all-reduce", "memory"}));
  // The indices: chip 0 sends, the others receive then send on, the last only receives.
  EXPECT_EQ(collective_stages(system, c, 3)[1].rounds.size(), 1u);
  EXPECT_EQ(collective_stages(system, c, 1)[1].rounds.size(), 2u);
}

}  // namespace
}  // namespace lpt::core

namespace lpt::core {
namespace {

std::uint64_t received(const std::vector<Round>& rounds) {
  std::uint64_t total = 0;
  for (const Round& r : rounds)
    for (const Message& m : r.receives) {
      EXPECT_FALSE(m.reduce);
      total += m.elements;
    }
  return total;
}

Collective all_gather(std::uint64_t elements, int group, bool across) {
  Collective c{elements, 16};
  c.op = CollectiveOp::kAllGather;
  c.gather_group = group;
  c.gather_across = across;
  return c;
}

TEST(Collective, AllGatherGivesEachMemberTheOthersParts) {
  const SystemParams ring = system_of(8, ChipTopologyKind::kRing, true);
  for (int chip = 0; chip < 8; ++chip) {
    // All 8 chips: 7 of 8 parts arrive, in 7 rounds (half each way).
    const auto all = all_gather_rounds(ring, all_gather(800, 0, false), chip);
    EXPECT_EQ(received(all), 700u);
    EXPECT_EQ(all.size(), 7u);
    // Groups of 2 consecutive chips: the partner's half, from the partner.
    const auto pairs = all_gather_rounds(ring, all_gather(800, 2, false), chip);
    EXPECT_EQ(received(pairs), 400u);
    for (const Round& r : pairs)
      for (const Message& m : r.receives) EXPECT_EQ(m.peer / 2, chip / 2);
    // Across groups of 2: the 4 chips at the same place in each pair.
    const auto across = all_gather_rounds(ring, all_gather(800, 2, true), chip);
    EXPECT_EQ(received(across), 600u);
    for (const Round& r : across)
      for (const Message& m : r.receives) EXPECT_EQ(m.peer % 2, chip % 2);
  }
  EXPECT_THROW(all_gather_rounds(ring, all_gather(800, 3, false), 0), std::invalid_argument);
  EXPECT_TRUE(chips_run_alike(ring, all_gather(800, 0, false)));
  EXPECT_FALSE(chips_run_alike(ring, all_gather(800, 2, false)));
  EXPECT_TRUE(chips_run_alike(system_of(8, ChipTopologyKind::kSwitch, true), all_gather(800, 2, true)));
}

}  // namespace
}  // namespace lpt::core
