#include "sim/phase.hpp"

namespace lpt {

// The table's rows are in enum order, so that a phase indexes its row.
static_assert([] {
  for (std::size_t i = 0; i < kPhaseTable.size(); ++i)
    if (static_cast<std::size_t>(kPhaseTable[i].phase) != i) return false;
  return true;
}());

const char* to_string(Phase phase) { return info(phase).name.data(); }

std::optional<Phase> phase_named(std::string_view name) {
  for (const PhaseInfo& row : kPhaseTable)
    if (row.name == name) return row.phase;
  return std::nullopt;
}

std::set<Phase> requestable_phases() {
  std::set<Phase> out;
  for (const PhaseInfo& row : kPhaseTable)
    if (row.placement != PhasePlacement::kCollective && row.placement != PhasePlacement::kHostTraffic)
      out.insert(row.phase);
  return out;
}

std::string requestable_phase_names() {
  std::string names;
  for (const Phase phase : requestable_phases()) names += (names.empty() ? "" : ",") + std::string(to_string(phase));
  return names;
}

}  // namespace lpt
