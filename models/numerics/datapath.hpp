// The MAC datapath of a low-precision training accelerator: products of two low-precision
// operands formed exactly, summed in an accumulator format with optional chunk-based
// accumulation (Wang et al., NeurIPS 2018), a rounding per stage, and an optional final
// conversion (e.g. stochastic rounding of a result to FP16).
//
// DatapathConfig is a plain struct whose fields are the chip config's MAC-array operand
// formats, AccumulatorParams (format, chunk_length) and RounderParams (random_bits);
// Datapath validates it once and holds the codecs.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "models/numerics/accumulate.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/rounding.hpp"

namespace lpt::num {

struct DatapathConfig {
  FormatSpec operand_a;
  FormatSpec operand_b;
  FormatSpec accumulator;
  // Products per chunk; 0 or 1 is plain accumulation (one running sum).
  int chunk_length = 0;
  // Rounding of the adds inside a chunk (or of the plain sum) and of the adds that merge
  // chunk sums; unset: the accumulator format's default rounding.
  std::optional<Rounding> inner_rounding;
  std::optional<Rounding> outer_rounding;
  // Final conversion of each result; unset: results stay in the accumulator format.
  std::optional<FormatSpec> output;
  std::optional<Rounding> output_rounding;  // unset: the output format's default rounding
  // Random bits a kStochastic rounder adds below the kept bits (the rounder's width).
  // The papers do not state it; 24 makes the rounder's bias (< 2^-24 of a gap) negligible
  // and is within the exactness limit of every preset accumulator (see Datapath).
  int stochastic_bits = 24;
  std::uint64_t seed = 0;  // keys the counter-based random numbers of every stochastic stage
};

class Datapath {
 public:
  // Throws std::invalid_argument naming the problem (formats, chunk length, rounding).
  explicit Datapath(const DatapathConfig& config);

  const DatapathConfig& config() const { return config_; }
  const Format& operand_a() const { return operand_a_; }
  const Format& operand_b() const { return operand_b_; }
  const Format& accumulator() const { return accumulator_; }
  // The format results are delivered in (the output format, else the accumulator).
  const Format& result_format() const { return output_ ? *output_ : accumulator_; }
  bool chunked() const { return config_.chunk_length > 1; }
  const StageRounding& inner() const { return inner_; }
  const StageRounding& outer() const { return outer_; }
  Rounding output_rounding() const { return output_rounding_; }

  // A running reduction for result element `output_index` (which keys its random numbers).
  ChunkedAccumulator make_accumulator(std::uint64_t output_index) const;
  // The final conversion of a reduction's value (identity without an output format).
  double finish(double accumulated, std::uint64_t output_index) const;

  // Reference dot product of operand values (each must be a value of its operand format;
  // throws std::invalid_argument otherwise): exact products, every add rounded.
  double dot(std::span<const double> a, std::span<const double> b, std::uint64_t output_index = 0) const;

 private:
  DatapathConfig config_;
  Format operand_a_, operand_b_, accumulator_;
  std::optional<Format> output_;
  StageRounding inner_, outer_;
  Rounding output_rounding_ = Rounding::kNearestEven;
};

// Significant bits of the largest significand of a format (hidden bit included): products
// of two operands are exact in double while the two widths sum to at most 53.
int significand_width(const FormatSpec& spec);

// Whether `value` is a value of `format` (NaN and infinities count when it has them).
bool is_representable(const Format& format, double value);

}  // namespace lpt::num
