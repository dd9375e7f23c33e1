// Energy = Σ activity × energy per action + leakage power × time, per
// component, at an operating point: dynamic energy scales with (V / Vref)²
// (E = C·V² per transition; Weste & Harris, CMOS VLSI Design, 4th ed., §5.1)
// and leakage power with V / Vref (P = V·I_leak, the leakage current taken as
// fixed over the range; a first-order rule that overstates leakage at low V).
// DRAM is on its own supply and is not scaled. Plain C++, no SystemC.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/core/chip_params.hpp"
#include "models/core/counters.hpp"
#include "models/core/program.hpp"
#include "models/energy/energy_table.hpp"

namespace lpt::energy {

enum class Component {
  kMultipliers,   // the MACs' multiplies, by operand formats
  kAccumulators,  // the MACs' adds and chunk spills, by accumulator format
  kPeRegisters,   // operands latched in the PEs
  kArrayPipeline, // clock, pipeline registers and control of the arrays (and the PEs' leakage)
  kL0,
  kScratchpad,
  kSfu,
  kRounders,
  kRing,
  kCoreOther,     // controller, DMA engines: leakage only
  kDram,          // accesses and background power
  kLinks,         // chip-to-chip links of a system (models/system): bits × links crossed
  kCount
};
inline constexpr std::size_t kComponents = static_cast<std::size_t>(Component::kCount);
const char* to_string(Component component);

struct OperatingPoint {
  double clock_ghz = 0;
  double voltage = 0;
};

struct EnergyBreakdown {
  std::array<double, kComponents> dynamic_pj{};
  std::array<double, kComponents> leakage_pj{};  // static power × time (DRAM: background)

  double component_pj(Component c) const {
    return dynamic_pj[static_cast<std::size_t>(c)] + leakage_pj[static_cast<std::size_t>(c)];
  }
  double dynamic_total_pj() const;
  double leakage_total_pj() const;
  double total_pj() const { return dynamic_total_pj() + leakage_total_pj(); }
  // Without DRAM and chip-to-chip links: what a chip's own power measurement covers.
  double chip_pj() const { return total_pj() - component_pj(Component::kDram) - component_pj(Component::kLinks); }
  EnergyBreakdown& operator+=(const EnergyBreakdown& other);
};

// A group's activity: every counter summed over the group's cores (cycle
// counters too, not their mean), MACs by datapath, and its duration.
struct ActivityTotals {
  std::array<double, core::kCounters> counters{};
  std::vector<std::uint64_t> macs_by_datapath;
  double seconds = 0;

  double operator[](core::Counter c) const { return counters[static_cast<std::size_t>(c)]; }
};

class EnergyModel {
 public:
  // Throws std::invalid_argument if the table lacks an entry a datapath needs
  // (the config's validation reports it to the user first).
  // `link_pj_per_bit`: of a system's chip-to-chip links (on their own supply, not scaled).
  EnergyModel(const core::ChipParams& chip, std::vector<core::Datapath> datapaths, OperatingPoint point,
              double link_pj_per_bit = 0);

  EnergyBreakdown energy(const ActivityTotals& activity) const;
  // Static power of the whole chip, mW, at the operating point.
  double leakage_mw() const;
  // Area by block (mm²) and in all.
  const std::map<std::string, double>& area_mm2() const { return area_; }
  double total_area_mm2() const;

 private:
  const core::ChipParams& chip_;
  const EnergyTable& table_;
  std::vector<core::Datapath> datapaths_;
  OperatingPoint point_;
  double link_pj_per_bit_ = 0;
  double dynamic_scale_ = 1, leakage_scale_ = 1;
  // Per datapath: multiply, accumulate (with chunk spills) and register
  // energy per MAC, at the reference voltage.
  std::vector<double> multiply_pj_, accumulate_pj_, register_pj_, pipeline_pj_;
  std::array<double, kComponents> leakage_mw_{};
  std::map<std::string, double> area_;
};

}  // namespace lpt::energy
