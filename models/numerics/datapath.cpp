#include "models/numerics/datapath.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace lpt::num {

int significand_width(const FormatSpec& spec) {
  if (spec.is_integer) return spec.mantissa_bits;
  return spec.mantissa_bits + 1;
}

bool is_representable(const Format& format, double value) {
  if (std::isnan(value)) return format.has_nan();
  if (std::isinf(value)) return format.has_infinity();
  return format.round(value, Rounding::kTowardZero) == value;
}

namespace {

void fail(const std::string& message) { throw std::invalid_argument("datapath: " + message); }

void check_operand(const char* which, const Format& format) {
  const double smallest = format.min_positive();
  if (smallest * smallest < std::numeric_limits<double>::min() ||
      format.max_finite() * format.max_finite() > std::numeric_limits<double>::max())
    fail(std::string("operand ") + which + " format \"" + format.name() +
         "\" has a range whose products leave the normal range of double (products must be exact)");
}

// Hardware-style SR sees the sum through add_round_to_odd, whose top 52 - p bits below
// the accumulator's last kept bit are exact (p = accumulator precision): a wider rounder
// would read bits the reference does not have. (sr_exact works on the exact sum.)
StageRounding stage(const char* which, Rounding rounding, const DatapathConfig& config) {
  if (rounding == Rounding::kStochastic) {
    const int limit = 52 - significand_width(config.accumulator);
    if (config.stochastic_bits < 1 || config.stochastic_bits > limit)
      fail(std::string(which) + " stochastic rounding into \"" + config.accumulator.name + "\" needs 1.." +
           std::to_string(limit) + " random bits, got " + std::to_string(config.stochastic_bits));
  }
  return {rounding, config.stochastic_bits};
}

}  // namespace

Datapath::Datapath(const DatapathConfig& config)
    : config_(config), operand_a_(config.operand_a), operand_b_(config.operand_b), accumulator_(config.accumulator) {
  if (significand_width(config.operand_a) + significand_width(config.operand_b) > 53)
    fail("operands \"" + config.operand_a.name + "\" x \"" + config.operand_b.name +
         "\" have products wider than double's 53 bits");
  check_operand("a", operand_a_);
  check_operand("b", operand_b_);
  if (config.accumulator.radix != 2)
    fail("accumulator \"" + config.accumulator.name + "\" must have radix 2");
  if (significand_width(config.accumulator) > 50)
    fail("accumulator \"" + config.accumulator.name + "\" is too wide: at most 50 significant bits "
         "(rounding via a round-to-odd double needs two spare bits)");
  if (config.chunk_length < 0) fail("chunk_length must be >= 0, got " + std::to_string(config.chunk_length));
  inner_ = stage("inner", config.inner_rounding.value_or(config.accumulator.default_rounding), config);
  outer_ = stage("outer", config.outer_rounding.value_or(config.accumulator.default_rounding), config);
  if (config.output) {
    output_.emplace(*config.output);
    output_rounding_ = config.output_rounding.value_or(config.output->default_rounding);
    if (output_rounding_ == Rounding::kStochastic &&
        (config.stochastic_bits < 1 || config.stochastic_bits > kMaxStochasticBits))
      fail("output stochastic rounding needs 1.." + std::to_string(kMaxStochasticBits) + " random bits, got " +
           std::to_string(config.stochastic_bits));
  } else if (config.output_rounding) {
    fail("output_rounding is set but there is no output format");
  }
}

ChunkedAccumulator Datapath::make_accumulator(std::uint64_t output_index) const {
  return ChunkedAccumulator(accumulator_, config_.chunk_length, inner_, outer_, config_.seed, output_index);
}

double Datapath::finish(double accumulated, std::uint64_t output_index) const {
  if (!output_) return accumulated;
  const std::uint64_t random =
      is_stochastic(output_rounding_)
          ? stage_random(config_.seed, output_index, AccumulationStage::kOutput).bits(0)
          : 0;
  return output_->round(accumulated, output_rounding_, random, config_.stochastic_bits);
}

double Datapath::dot(std::span<const double> a, std::span<const double> b, std::uint64_t output_index) const {
  if (a.size() != b.size())
    fail("dot product of lengths " + std::to_string(a.size()) + " and " + std::to_string(b.size()));
  ChunkedAccumulator sum = make_accumulator(output_index);
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (!is_representable(operand_a_, a[k]))
      fail("a[" + std::to_string(k) + "] = " + std::to_string(a[k]) + " is not a value of \"" +
           operand_a_.name() + "\"");
    if (!is_representable(operand_b_, b[k]))
      fail("b[" + std::to_string(k) + "] = " + std::to_string(b[k]) + " is not a value of \"" +
           operand_b_.name() + "\"");
    sum.add(a[k] * b[k]);  // exact: the operands' significands fit together in 53 bits
  }
  return finish(sum.value(), output_index);
}

}  // namespace lpt::num
