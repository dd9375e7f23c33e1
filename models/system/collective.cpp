#include "models/system/collective.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace lpt::core {

std::uint64_t Collective::sent_elements() const {
  if (compression_ratio <= 0 || elements == 0) return elements;
  const auto k = static_cast<std::uint64_t>(std::floor(static_cast<double>(elements) / compression_ratio));
  return std::clamp<std::uint64_t>(k, 1, elements);
}

const char* to_string(CollectiveAlgorithm algorithm) {
  switch (algorithm) {
    case CollectiveAlgorithm::kRing: return "ring";
    case CollectiveAlgorithm::kTree: return "tree";
    case CollectiveAlgorithm::kHierarchical: return "hierarchical";
  }
  return "?";
}

namespace {

int wrap(int index, int size) { return ((index % size) + size) % size; }

// Chunk `index` of `elements` split into `parts` as evenly as possible.
std::uint64_t chunk_elements(std::uint64_t elements, int parts, int index) {
  const auto n = static_cast<std::uint64_t>(parts);
  return elements / n + (static_cast<std::uint64_t>(index) < elements % n ? 1 : 0);
}

// One pass around a ring of `members` (this chip at `position`), in
// `direction`, from rounds[first] on: a reduce-scatter of `elements` (after it
// this chip holds the sum of chunk position + direction) or the all-gather
// that follows it.
void add_ring_pass(const std::vector<int>& members, int position, std::uint64_t elements, int direction,
                   bool reduce_scatter, std::vector<Round>& rounds, std::size_t first) {
  const int size = static_cast<int>(members.size());
  if (size < 2 || elements == 0) return;
  rounds.resize(std::max(rounds.size(), first + static_cast<std::size_t>(size - 1)));
  const int next = members[static_cast<std::size_t>(wrap(position + direction, size))];
  const int previous = members[static_cast<std::size_t>(wrap(position - direction, size))];
  for (int r = 0; r < size - 1; ++r) {
    const int sent = reduce_scatter ? position - direction * r : position + direction * (1 - r);
    const int received = reduce_scatter ? position - direction * (r + 1) : position - direction * r;
    Round& round = rounds[first + static_cast<std::size_t>(r)];
    round.sends.push_back({next, chunk_elements(elements, size, wrap(sent, size)), reduce_scatter, direction});
    round.receives.push_back(
        {previous, chunk_elements(elements, size, wrap(received, size)), reduce_scatter, -direction});
  }
}

// The parts of the data each direction carries: all of it one way, or half
// each way over bidirectional links.
std::vector<std::pair<int, std::uint64_t>> directions(const SystemParams& system, std::uint64_t elements) {
  if (system.bidirectional && system.topology != ChipTopologyKind::kSwitch)
    return {{+1, (elements + 1) / 2}, {-1, elements / 2}};
  return {{+1, elements}};
}

// Reduce-scatter then all-gather of `elements` around `members`.
void add_ring_all_reduce(const SystemParams& system, const std::vector<int>& members, int position,
                         std::uint64_t elements, std::vector<Round>& rounds, std::size_t first) {
  const std::size_t steps = members.size() - 1;
  for (const auto& [direction, part] : directions(system, elements)) {
    add_ring_pass(members, position, part, direction, true, rounds, first);
    add_ring_pass(members, position, part, direction, false, rounds, first + steps);
  }
}

std::vector<Round> tree_rounds(const std::vector<int>& order, int position, std::uint64_t elements) {
  const auto size = static_cast<int>(order.size());
  std::vector<int> children;
  for (const int child : {2 * position + 1, 2 * position + 2})
    if (child < size) children.push_back(order[static_cast<std::size_t>(child)]);
  std::vector<Round> rounds(4);
  for (const int child : children) rounds[0].receives.push_back({child, elements, true});
  if (position > 0) {
    const int parent = order[static_cast<std::size_t>((position - 1) / 2)];
    rounds[1].sends.push_back({parent, elements, true});
    rounds[2].receives.push_back({parent, elements, false});
  }
  for (const int child : children) rounds[3].sends.push_back({child, elements, false});
  std::erase_if(rounds, [](const Round& r) { return r.sends.empty() && r.receives.empty(); });
  return rounds;
}

std::vector<Round> hierarchical_rounds(const SystemParams& system, const Collective& collective, int chip) {
  int columns = 0;  // chips per group
  if (system.topology == ChipTopologyKind::kTorus2d) {
    columns = system.torus_columns();
  } else {
    columns = collective.group_chips;
    if (columns < 1 || system.chips % columns != 0)
      throw std::invalid_argument("a hierarchical all-reduce needs groups of chips that divide the " +
                                  std::to_string(system.chips) + " chips");
  }
  const int rows = system.chips / columns;
  const int row = chip / columns, column = chip % columns;
  std::vector<int> row_members, column_members;
  for (int c = 0; c < columns; ++c) row_members.push_back(row * columns + c);
  for (int r = 0; r < rows; ++r) column_members.push_back(r * columns + column);

  std::vector<Round> rounds;
  const auto row_steps = static_cast<std::size_t>(columns - 1);
  const auto column_steps = static_cast<std::size_t>(rows - 1);
  std::uint64_t held = 0;  // this chip's share of the sum after the groups' reduce-scatter
  for (const auto& [direction, part] : directions(system, collective.elements)) {
    add_ring_pass(row_members, column, part, direction, true, rounds, 0);
    add_ring_pass(row_members, column, part, direction, false, rounds, row_steps + 2 * column_steps);
    held += chunk_elements(part, columns, wrap(column + direction, columns));
  }
  add_ring_all_reduce(system, column_members, row, held, rounds, row_steps);
  return rounds;
}

// The leader's indices forwarded round the ring order: chip 0 sends, every
// other chip receives and then sends on, but the last.
std::vector<Round> broadcast_rounds(const SystemParams& system, int chip, std::uint64_t elements) {
  const std::vector<int> order = ring_order(system);
  const auto position = static_cast<std::size_t>(std::find(order.begin(), order.end(), chip) - order.begin());
  std::vector<Round> rounds;
  if (position > 0) rounds.push_back({{}, {{order[position - 1], elements, false, +1}}});
  if (position + 1 < order.size()) rounds.push_back({{{order[position + 1], elements, false, +1}}, {}});
  return rounds;
}

}  // namespace

std::vector<int> ring_order(const SystemParams& system) {
  std::vector<int> order;
  if (system.topology != ChipTopologyKind::kTorus2d) {
    for (int c = 0; c < system.chips; ++c) order.push_back(c);
    return order;
  }
  const int columns = system.torus_columns();
  for (int r = 0; r < system.torus_rows(); ++r)
    for (int i = 0; i < columns; ++i) order.push_back(r * columns + (r % 2 == 0 ? i : columns - 1 - i));
  return order;
}

std::vector<Stage> collective_stages(const SystemParams& system, const Collective& collective, int chip) {
  if (collective.op == CollectiveOp::kAllGather)
    return {Stage{"all-gather", {}, all_gather_rounds(system, collective, chip)}};
  if (collective.compression_ratio <= 0) return {Stage{"all-reduce", {}, all_reduce_rounds(system, collective, chip)}};
  const std::uint64_t elements = collective.elements, k = collective.sent_elements();
  const std::uint64_t all = packed_bytes(elements, collective.element_bits);
  const std::uint64_t sent = packed_bytes(k, collective.element_bits);
  constexpr int kIndexBits = 32;
  const std::uint64_t indices = packed_bytes(k, kIndexBits);
  const bool leader = chip == 0;
  Collective sparse = collective;
  sparse.elements = k;
  sparse.compression_ratio = 0;
  std::vector<Stage> stages;
  stages.push_back({"accumulate", {2 * all, all, elements}, {}});
  if (leader) stages.push_back({"select", {all, indices, 2 * elements}, {}});
  if (system.chips > 1) stages.push_back({"indices", {}, broadcast_rounds(system, chip, k), kIndexBits, true});
  stages.push_back({"gather", {indices + sent, 0, 0}, {}});
  stages.push_back({"all-reduce", {}, all_reduce_rounds(system, sparse, chip)});
  stages.push_back({"memory", {all + sent, all + sent, 2 * elements}, {}});
  return stages;
}

bool chips_run_alike(const SystemParams& system, const Collective& collective) {
  if (collective.op == CollectiveOp::kAllGather) {
    const int group = collective.gather_group == 0 ? system.chips : collective.gather_group;
    const bool all_chips = collective.gather_across ? group == 1 : group == system.chips;
    return system.topology == ChipTopologyKind::kSwitch || (system.topology == ChipTopologyKind::kRing && all_chips);
  }
  switch (collective.algorithm) {
    case CollectiveAlgorithm::kRing: return system.topology != ChipTopologyKind::kTorus2d;
    case CollectiveAlgorithm::kTree: return false;
    case CollectiveAlgorithm::kHierarchical: return system.topology != ChipTopologyKind::kRing;
  }
  return false;
}

std::vector<Round> all_gather_rounds(const SystemParams& system, const Collective& collective, int chip) {
  const int group = collective.gather_group == 0 ? system.chips : collective.gather_group;
  if (group < 1 || system.chips % group != 0)
    throw std::invalid_argument("an all-gather needs groups of chips that divide the " +
                                std::to_string(system.chips) + " chips");
  if (system.chips < 2 || collective.elements == 0) return {};
  const std::vector<int> order = ring_order(system);
  const auto position = static_cast<int>(std::find(order.begin(), order.end(), chip) - order.begin());
  std::vector<int> members;
  int place = 0;
  if (collective.gather_across) {
    for (int p = position % group; p < system.chips; p += group) members.push_back(order[static_cast<std::size_t>(p)]);
    place = position / group;
  } else {
    for (int p = position / group * group; p < (position / group + 1) * group; ++p)
      members.push_back(order[static_cast<std::size_t>(p)]);
    place = position % group;
  }
  std::vector<Round> rounds;
  for (const auto& [direction, part] : directions(system, collective.elements))
    add_ring_pass(members, place, part, direction, false, rounds, 0);
  return rounds;
}

std::vector<Round> all_reduce_rounds(const SystemParams& system, const Collective& collective, int chip) {
  if (system.chips < 2 || collective.elements == 0) return {};
  const std::vector<int> order = ring_order(system);
  const auto position = static_cast<int>(std::find(order.begin(), order.end(), chip) - order.begin());
  switch (collective.algorithm) {
    case CollectiveAlgorithm::kRing: {
      std::vector<Round> rounds;
      add_ring_all_reduce(system, order, position, collective.elements, rounds, 0);
      return rounds;
    }
    case CollectiveAlgorithm::kTree: return tree_rounds(order, position, collective.elements);
    case CollectiveAlgorithm::kHierarchical: return hierarchical_rounds(system, collective, chip);
  }
  return {};
}

}  // namespace lpt::core
