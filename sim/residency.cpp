#include "sim/residency.hpp"

#include <algorithm>
#include <set>

#include "sim/mapping.hpp"
#include "sim/roofline.hpp"

namespace lpt {

namespace {

using core::Endpoint;
using core::Step;
using core::Transfer;

bool is_result_store(const Transfer& t) { return t.is_result && t.dst.kind == Endpoint::Kind::kDram; }

// Each core's bytes of the step's result.
std::vector<std::uint64_t> result_shares(const Step& step) {
  std::vector<std::uint64_t> shares(step.tasks_per_core.size(), 0);
  for (std::size_t c = 0; c < step.tasks_per_core.size(); ++c)
    for (const auto& task : step.tasks_per_core[c])
      for (const Transfer& store : task.stores)
        if (is_result_store(store)) shares[c] += store.bytes;
  return shares;
}

// The scratchpad bytes each core needs for each step: its working set, if it
// has tasks in the step.
std::vector<std::vector<std::uint64_t>> working_sets(const core::Program& program) {
  std::vector<std::vector<std::uint64_t>> used;
  for (const Step& step : program.steps) {
    auto& row = used.emplace_back(step.tasks_per_core.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c)
      if (!step.tasks_per_core[c].empty()) row[c] = step.working_set_bytes;
  }
  return used;
}

// `bytes` of a load split over the holders of a result in proportion to their
// shares, exactly (the parts add up to `bytes`).
std::vector<std::uint64_t> split_by_shares(std::uint64_t bytes, const std::vector<std::uint64_t>& shares,
                                           std::uint64_t total) {
  std::vector<std::uint64_t> parts(shares.size(), 0);
  std::uint64_t before = 0, given = 0;
  for (std::size_t h = 0; h < shares.size(); ++h) {
    before += shares[h];
    const std::uint64_t upto =
        before == total ? bytes
                        : static_cast<std::uint64_t>(static_cast<long double>(before) * bytes / total);
    parts[h] = upto - given;
    given = upto;
  }
  return parts;
}

}  // namespace

const char* to_string(Residency residency) {
  switch (residency) {
    case Residency::kNone: return "none";
    case Residency::kLiveness: return "liveness";
  }
  return "?";
}

std::optional<Residency> residency_from_string(std::string_view text) {
  for (const Residency r : {Residency::kNone, Residency::kLiveness})
    if (text == to_string(r)) return r;
  return std::nullopt;
}

const std::vector<std::pair<std::string_view, Residency>>& residency_choices() {
  static const std::vector<std::pair<std::string_view, Residency>> choices = {{"none", Residency::kNone},
                                                                             {"liveness", Residency::kLiveness}};
  return choices;
}

Residency read_residency(const JsonReader& in) { return in.choice(std::span(residency_choices())); }

void keep_results_on_chip(MappedProgram& mapped, const core::ChipParams& chip) {
  auto& steps = mapped.program.steps;
  const std::size_t count = steps.size();
  const std::uint64_t capacity = chip.core.scratchpad.size_bytes();

  // Who reads each step's result, and how many bytes of tagged loads each step has.
  std::vector<std::set<std::size_t>> readers(count);
  std::vector<std::uint64_t> sourced_load_bytes(count, 0);
  for (std::size_t q = 0; q < count; ++q)
    for (const auto& tasks : steps[q].tasks_per_core)
      for (const auto& task : tasks)
        for (const Transfer& load : task.loads)
          if (load.result_of && load.src.kind == Endpoint::Kind::kDram && *load.result_of < q) {
            readers[*load.result_of].insert(q);
            sourced_load_bytes[q] += load.bytes;
          }

  std::vector<std::vector<std::uint64_t>> used = working_sets(mapped.program);
  std::vector<bool> write_avoided(count, false);
  for (std::size_t s = 0; s < count; ++s) {
    if (readers[s].empty()) continue;
    const std::vector<std::uint64_t> shares = result_shares(steps[s]);
    std::uint64_t total = 0;
    for (const std::uint64_t share : shares) total += share;
    if (total == 0) continue;
    const auto fits = [&](std::size_t step) {
      for (std::size_t c = 0; c < shares.size(); ++c)
        if (shares[c] > 0 && used[step][c] + shares[c] > capacity) return false;
      return true;
    };
    // The last reader up to which the result fits everywhere.
    std::size_t checked = s;
    std::optional<std::size_t> kept_until;
    if (fits(s))
      for (const std::size_t reader : readers[s]) {
        while (checked < reader && fits(checked + 1)) ++checked;
        if (checked < reader) break;
        kept_until = reader;
      }
    if (!kept_until) continue;
    for (std::size_t step = s; step <= *kept_until; ++step)
      for (std::size_t c = 0; c < shares.size(); ++c) used[step][c] += shares[c];

    for (const std::size_t reader : readers[s]) {
      if (reader > *kept_until) break;
      Step& step = steps[reader];
      for (std::size_t c = 0; c < step.tasks_per_core.size(); ++c)
        for (auto& task : step.tasks_per_core[c]) {
          std::vector<Transfer> loads;
          for (const Transfer& load : task.loads) {
            if (load.result_of != s || load.src.kind != Endpoint::Kind::kDram) {
              loads.push_back(load);
              continue;
            }
            mapped.steps[reader].on_chip_read_bytes += load.bytes;
            const std::vector<std::uint64_t> parts = split_by_shares(load.bytes, shares, total);
            for (std::size_t h = 0; h < parts.size(); ++h)
              if (h != c && parts[h] > 0)
                loads.push_back({Endpoint::core_at(static_cast<int>(h)), load.dst, parts[h]});
          }
          task.loads = std::move(loads);
        }
      if (std::find(step.depends_on.begin(), step.depends_on.end(), s) == step.depends_on.end())
        step.depends_on.push_back(s);
    }
    if (*kept_until == *readers[s].rbegin()) {
      write_avoided[s] = true;
      for (auto& tasks : steps[s].tasks_per_core)
        for (auto& task : tasks)
          std::erase_if(task.stores, [](const Transfer& t) { return is_result_store(t); });
      mapped.steps[s].avoided_write_bytes = total;
    }
  }

  // The bounds: kept results are not DRAM traffic.
  const double bandwidth = memory_bytes_per_cycle(chip);
  for (std::size_t q = 0; q < count; ++q) {
    StepInfo& info = mapped.steps[q];
    double saved = write_avoided[q] ? info.least_result_bytes : 0;
    if (sourced_load_bytes[q] > 0)
      saved += info.least_sourced_bytes * static_cast<double>(info.on_chip_read_bytes) /
               static_cast<double>(sourced_load_bytes[q]);
    if (saved == 0) continue;
    info.bound.dram_bytes = std::max(0.0, info.bound.dram_bytes - saved);
    info.bound.dram_cycles = info.bound.dram_bytes / bandwidth;
  }
}

}  // namespace lpt
