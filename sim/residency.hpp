// On-chip tensor residency: a step's result may stay in the scratchpads of the
// cores that computed it, beside the working sets of the steps in between,
// until steps that read it have run. Their loads of it then come from the
// scratchpads (a core's own share) or over the ring (other cores' shares), and
// if no later step reads it from DRAM it is never written there
// (docs/architecture.md, "On-chip residency").
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "models/common/json_reader.hpp"
#include "models/core/chip_params.hpp"

namespace lpt {

struct MappedProgram;  // sim/mapping.hpp, which needs the config and so this header

enum class Residency {
  kNone,      // every result goes to DRAM and is read back from there
  kLiveness,  // results stay on chip while they are live and fit
};
const char* to_string(Residency residency);
// "none" | "liveness"; nullopt for anything else.
std::optional<Residency> residency_from_string(std::string_view text);
// The names a config or spec may give, as JsonReader::choice takes them.
const std::vector<std::pair<std::string_view, Residency>>& residency_choices();
// The same from a config or spec value; anything else is an InputError at its path.
Residency read_residency(const JsonReader& in);

// Keeps results on chip, in program order of their producers (first come,
// first placed): a result stays on every core that holds a share of it for as
// long as, at each step from its producer to one of its readers, the step's
// working set, the results already kept and its own share fit that core's
// scratchpad. Readers up to the last step it stays for read it on chip; if
// that is its last reader, its stores to DRAM are dropped.
//
// A reader's load of a kept result is split over the holders in proportion
// to their shares (the layouts of producer and reader are not matched tile by
// tile): its own share is read in place, the others' come over the ring.
// Rewrites the program's transfers, adds the producer to a reader's
// dependencies, and fills each StepInfo's on_chip_read_bytes and
// avoided_write_bytes; a step's bound loses the DRAM bytes it no longer needs.
void keep_results_on_chip(MappedProgram& mapped, const core::ChipParams& chip);

}  // namespace lpt
