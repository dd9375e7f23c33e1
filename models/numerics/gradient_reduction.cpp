#include "models/numerics/gradient_reduction.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "models/numerics/random.hpp"

namespace lpt::num {
namespace {

constexpr std::size_t kTile = 4096;
constexpr int kMaxWorkers = 1 << 24;  // the worker field of a stream id
constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 40;  // the element field of a normal's counter

// Stream ids: what is drawn, for which worker, at which step.
enum class StreamKind : std::uint64_t {
  kScale = 1, kSharedFresh, kSharedPersistent, kOwnFresh, kOwnPersistent,  // gradients
  kQuantize, kAdd, kHopRound,                                               // roundings
};
std::uint64_t stream_id(StreamKind kind, std::uint64_t worker, std::uint64_t step) {
  return (static_cast<std::uint64_t>(kind) << 56) | (worker << 32) | (step & 0xffffffffu);
}

std::string number_text(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

[[noreturn]] void fail(const std::string& parameter, const std::string& what) {
  throw std::invalid_argument(parameter + ": " + what);
}

void check_unit_interval(const std::string& parameter, double x) {
  if (!(x >= 0 && x <= 1)) fail(parameter, "must be in [0, 1] (got " + number_text(x) + ")");
}

bool is_power_of_two(double x) {
  int exponent = 0;
  return std::isfinite(x) && x > 0 && std::frexp(x, &exponent) == 0.5;
}

Format resolve_format(const std::string& parameter, const std::string& name) {
  const auto spec = find_format(name);
  if (!spec) fail(parameter, "unknown format \"" + name + "\"; expected one of " + preset_format_names());
  return Format(*spec);
}

void check_stage(const std::string& parameter, const StageRounding& rounding) {
  if (rounding.stochastic_bits < 1 || rounding.stochastic_bits > kMaxStochasticBits)
    fail(parameter + ".stochastic_bits", "must be in [1, " + std::to_string(kMaxStochasticBits) + "] (got " +
                                             std::to_string(rounding.stochastic_bits) + ")");
}

// Standard normals by Marsaglia's polar method (Marsaglia and Bray, SIAM Review 1964: no
// trigonometry), from 32-bit uniforms: one Philox block holds the draws of two pairs of
// elements (4q, 4q + 1) and (4q + 2, 4q + 3). A rejected pair retries with the next counter
// of its block (attempt a in bits 40 and up), so element e's value does not depend on
// where a tile starts.
void fill_normals(const CounterRandom& random, std::uint64_t first, std::span<double> out) {
  const std::uint64_t end = first + out.size();
  // The odd multiples of 2^-32 in (-1, 1): symmetric, never 0.
  const auto uniform = [](std::uint64_t word) {
    return static_cast<double>(2 * static_cast<std::int64_t>(word & 0xffffffffu) + 1 - (std::int64_t{1} << 32)) * 0x1p-32;
  };
  // Pairs in batches: the draws first, then the logs and roots, which then overlap in the
  // pipeline instead of waiting on each other.
  constexpr std::size_t kBatch = 64;
  std::array<double, kBatch> us, vs, ss;
  std::array<std::uint64_t, kBatch> evens;
  std::size_t count = 0;
  const auto flush = [&] {
    for (std::size_t i = 0; i < count; ++i) {
      const double factor = std::sqrt(-2 * std::log(ss[i]) / ss[i]);
      const std::uint64_t even = evens[i];
      if (even >= first) out[even - first] = us[i] * factor;
      if (even + 1 >= first && even + 1 < end) out[even + 1 - first] = vs[i] * factor;
    }
    count = 0;
  };
  for (std::uint64_t quad = first / 4; 4 * quad < end; ++quad) {
    const auto block = random.block(quad);
    for (std::uint64_t half = 0; half < 2; ++half) {
      const std::uint64_t even = 4 * quad + 2 * half;
      if (even + 1 < first || even >= end) continue;
      std::uint64_t word = block[half];
      double u = 0, v = 0, s = 0;
      for (std::uint64_t attempt = 1;; ++attempt) {
        u = uniform(word);
        v = uniform(word >> 32);
        s = u * u + v * v;
        if (s < 1) break;
        word = random.block(quad | (attempt << 40))[half];
      }
      us[count] = u;
      vs[count] = v;
      ss[count] = s;
      evens[count] = even;
      if (++count == kBatch) flush();
    }
  }
  flush();
}

// sum of parts weighted sqrt(w) and sqrt(1 - w), drawing only the parts that count.
void fill_mixture(const CounterRandom& persistent, const CounterRandom& fresh, double persistent_weight,
                  std::uint64_t first, std::span<double> out, std::span<double> scratch) {
  if (persistent_weight == 0) return fill_normals(fresh, first, out);
  if (persistent_weight == 1) return fill_normals(persistent, first, out);
  fill_normals(persistent, first, out);
  fill_normals(fresh, first, scratch.first(out.size()));
  const double a = std::sqrt(persistent_weight), b = std::sqrt(1 - persistent_weight);
  for (std::size_t e = 0; e < out.size(); ++e) out[e] = a * out[e] + b * scratch[e];
}

// Every worker's gradient for one tile: out[w * n + e].
class TileGenerator {
 public:
  explicit TileGenerator(const SyntheticGradientParams& p)
      : p_(p), scale_(kTile), shared_(kTile), own_(kTile), scratch_(kTile) {}

  // Workers [begin, end) (all by default) into consecutive rows of `out`.
  void generate(std::uint64_t step, std::uint64_t first, std::size_t n, std::span<double> out, int begin = 0,
                int end = -1) {
    if (end < 0) end = p_.workers;
    const std::span<double> scale(scale_.data(), n), shared(shared_.data(), n), own(own_.data(), n);
    fill_scale(first, scale);
    const double rho = p_.correlation;
    if (rho > 0) mixture(StreamKind::kSharedPersistent, StreamKind::kSharedFresh, 0, step, first, shared);
    const double a = std::sqrt(rho), b = std::sqrt(1 - rho);
    for (int w = begin; w < end; ++w) {
      double* row = out.data() + static_cast<std::size_t>(w - begin) * n;
      if (rho < 1) mixture(StreamKind::kOwnPersistent, StreamKind::kOwnFresh, static_cast<std::uint64_t>(w), step,
                           first, own);
      for (std::size_t e = 0; e < n; ++e)
        row[e] = scale[e] * ((rho > 0 ? a * shared[e] : 0.0) + (rho < 1 ? b * own[e] : 0.0));
    }
  }

  void fill_scale(std::uint64_t first, std::span<double> out) const {
    if (p_.spread_binades == 0) {
      std::fill(out.begin(), out.end(), std::exp2(p_.log2_median));
      return;
    }
    fill_normals(CounterRandom(p_.seed, stream_id(StreamKind::kScale, 0, 0)), first, out);
    for (double& x : out) x = std::exp2(p_.log2_median + p_.spread_binades * x);
  }

 private:
  void mixture(StreamKind persistent, StreamKind fresh, std::uint64_t worker, std::uint64_t step,
               std::uint64_t first, std::span<double> out) {
    fill_mixture(CounterRandom(p_.seed, stream_id(persistent, worker, 0)),
                 CounterRandom(p_.seed, stream_id(fresh, worker, step)), p_.temporal_correlation, first, out,
                 scratch_);
  }

  SyntheticGradientParams p_;
  std::vector<double> scale_, shared_, own_, scratch_;
};

// Neumaier's compensated sum, for the FP64 references: its error is about 2^-53 of the sum
// plus N 2^-106 of the sum of magnitudes, far below any format's here.
class CompensatedSum {
 public:
  void add(double x) {
    const double t = sum_ + x;
    compensation_ += std::fabs(sum_) >= std::fabs(x) ? (sum_ - t) + x : (x - t) + sum_;
    sum_ = t;
  }
  double value() const { return sum_ + compensation_; }

 private:
  double sum_ = 0, compensation_ = 0;
};

// Format::round and add_rounded, with the compiler's conversions where they are the same
// rounding: double to float (and to _Float16 where the compiler has it) rounds to nearest
// even (in the default floating-point environment) with gradual underflow and overflow to
// Inf, which is the fp32 (fp16) preset exactly.
// The codec costs ~20 ns a call; the tests hold both paths to it.
class Rounder {
 public:
  Rounder(const Format& format, const StageRounding& rounding) : format_(format), rounding_(rounding) {
    if (rounding.rounding != Rounding::kNearestEven) return;
    if (format.spec() == *find_format("fp32")) path_ = Path::kFloat;
#if defined(__FLT16_MAX__)
    if (format.spec() == *find_format("fp16")) path_ = Path::kHalf;
#endif
  }

  const Format& format() const { return format_; }
  bool stochastic() const { return is_stochastic(rounding_.rounding); }

  double round(double x, std::uint64_t random) const {
    switch (path_) {
      case Path::kFloat: return static_cast<float>(x);
#if defined(__FLT16_MAX__)
      case Path::kHalf: return static_cast<double>(static_cast<_Float16>(x));
#endif
      default: return format_.round(x, rounding_.rounding, random, rounding_.stochastic_bits);
    }
  }

  // round(sum + addend) from the exact sum, as add_rounded.
  double add(double sum, double addend, const std::array<std::uint64_t, 2>& random) const {
    if (path_ == Path::kCodec) return add_rounded(format_, sum, addend, rounding_, random);
    return round(add_round_to_odd(sum, addend), 0);  // Boldo and Melquiond: see accumulate.hpp
  }

 private:
  enum class Path { kCodec, kFloat, kHalf };
  Format format_;
  StageRounding rounding_;
  Path path_ = Path::kCodec;
};

// One rounded reduction of N values already in the communication format (and scaled).
class Reducer {
 public:
  Reducer(const AllReduceParams& p, int workers)
      : p_(p),
        communication_(resolve_format("communication_format", p.communication_format), p.communication_rounding),
        accumulator_(resolve_format("accumulator_format", p.accumulator_format), p.accumulator_rounding),
        workers_(workers), level_(static_cast<std::size_t>(workers)),
        // A sum already in the communication format rounds to itself.
        sums_in_communication_format_(communication_.format().spec() == accumulator_.format().spec()) {
    set_step(0);
  }

  void set_step(std::uint64_t step) {
    quantize_random_.clear();
    for (int w = 0; w < workers_; ++w)
      quantize_random_.emplace_back(p_.rounding_seed, stream_id(StreamKind::kQuantize, static_cast<std::uint64_t>(w), step));
    add_random_ = CounterRandom(p_.rounding_seed, stream_id(StreamKind::kAdd, 0, step));
    hop_random_ = CounterRandom(p_.rounding_seed, stream_id(StreamKind::kHopRound, 0, step));
  }

  const Format& communication() const { return communication_.format(); }

  // x (tensor units) as worker `worker` sends element `element`, in the scaled domain.
  double quantize(int worker, std::uint64_t element, double x) const {
    const std::uint64_t random =
        communication_.stochastic() ? quantize_random_[static_cast<std::size_t>(worker)].bits(element) : 0;
    return communication_.round(x * p_.scale, random);
  }

  // `values` in worker order; `chunk` picks the ring's start (worker chunk + 1).
  double reduce(std::span<const double> values, std::uint64_t element, std::uint64_t chunk) {
    const auto n = static_cast<std::uint64_t>(workers_);
    if (p_.order == ReductionOrder::kRing) {
      std::uint64_t worker = (chunk + 1) % n;
      double sum = values[worker];
      for (std::uint64_t hop = 1; hop < n; ++hop) {
        worker = worker + 1 == n ? 0 : worker + 1;
        sum = add(sum, values[worker], element, hop);
      }
      return sum;
    }
    // Pairwise, level by level; an odd one out moves up unchanged.
    std::copy(values.begin(), values.end(), level_.begin());
    std::uint64_t count = n, addition = 0;
    while (count > 1) {
      const std::uint64_t pairs = count / 2;
      for (std::uint64_t i = 0; i < pairs; ++i) level_[i] = add(level_[2 * i], level_[2 * i + 1], element, ++addition);
      if (count % 2 != 0) level_[pairs] = level_[count - 1];
      count = pairs + count % 2;
    }
    return level_[0];
  }

 private:
  // One hop: the addition rounded in the accumulator, the result in the communication format.
  double add(double sum, double addend, std::uint64_t element, std::uint64_t hop) const {
    const std::uint64_t index = element * static_cast<std::uint64_t>(workers_) + hop;
    const std::array<std::uint64_t, 2> add_random =
        accumulator_.stochastic() ? add_random_.block(index) : std::array<std::uint64_t, 2>{};
    const double accumulated = accumulator_.add(sum, addend, add_random);
    if (sums_in_communication_format_) return accumulated;
    return communication_.round(accumulated, communication_.stochastic() ? hop_random_.bits(index) : 0);
  }

  AllReduceParams p_;
  Rounder communication_, accumulator_;
  int workers_;
  std::vector<CounterRandom> quantize_random_;
  CounterRandom add_random_{0, 0}, hop_random_{0, 0};
  std::vector<double> level_;
  bool sums_in_communication_format_;
};

// The chunk of a ring's reduce-scatter that holds `position` of `count` elements: the
// buffer split into `workers` chunks of ceil(count / workers) (the last ones shorter).
std::uint64_t chunk_of(std::uint64_t position, std::uint64_t count, int workers) {
  const auto n = static_cast<std::uint64_t>(workers);
  return position / ((count + n - 1) / n);
}

struct Tallies {
  ErrorTally total, quantization, reduction;
};

AllReduceResult finish(const Tallies& t) {
  AllReduceResult r;
  r.total_tally = t.total;
  r.quantization_tally = t.quantization;
  r.reduction_tally = t.reduction;
  r.total = t.total.stats();
  r.quantization = t.quantization.stats();
  r.reduction = t.reduction.stats();
  return r;
}

// Reduces elements [first, first + n) of `count`, given every worker's gradient as rows of
// `tile` (N x n; overwritten with the rounded values), into `reduced` (when not empty) and
// `tallies` (when given). Row by row where it can, so each loop does one thing.
class TileReducer {
 public:
  TileReducer(const AllReduceParams& p, int workers)
      : p_(p), reducer_(p, workers), workers_(static_cast<std::size_t>(workers)), column_(workers_),
        reference_(kTile), reference_error_(kTile), quantized_sum_(kTile), quantized_error_(kTile) {}

  void reduce(std::uint64_t first, std::uint64_t count, std::size_t n, std::span<double> tile,
              std::span<double> reduced, Tallies* tallies) {
    const double unscale = 1 / p_.scale;  // exact: a power of two
    for (auto* v : {&reference_, &reference_error_, &quantized_sum_, &quantized_error_}) std::fill_n(v->begin(), n, 0.0);
    for (std::size_t w = 0; w < workers_; ++w) {
      double* row = tile.data() + w * n;
      add_row(row, 1, n, reference_, reference_error_);
      for (std::size_t e = 0; e < n; ++e) row[e] = reducer_.quantize(static_cast<int>(w), first + e, row[e]);
      add_row(row, unscale, n, quantized_sum_, quantized_error_);
    }
    const Format& format = reducer_.communication();
    for (std::size_t e = 0; e < n; ++e) {
      for (std::size_t w = 0; w < workers_; ++w) column_[w] = tile[w * n + e];
      const std::uint64_t element = first + e;
      const double sum = reducer_.reduce(column_, element, chunk_of(element, count, static_cast<int>(workers_))) * unscale;
      if (!reduced.empty()) reduced[e] = sum;
      if (tallies) {
        const double reference = reference_[e] + reference_error_[e];
        const double quantized = quantized_sum_[e] + quantized_error_[e];
        tallies->total.add(reference, sum, format, p_.scale);
        tallies->quantization.add(reference, quantized, format, p_.scale);
        tallies->reduction.add(quantized, sum, format, p_.scale);
      }
    }
  }

 private:
  // sum += factor * row with TwoSum's exact error kept apart (Ogita, Rump and Oishi, SIAM
  // J. Sci. Comput. 2005, "Accurate sum and dot product", Sum2): the FP64 references.
  // Branch-free, so the loop vectorises.
  static void add_row(const double* row, double factor, std::size_t n, std::vector<double>& sum,
                      std::vector<double>& error) {
    for (std::size_t e = 0; e < n; ++e) {
      const double x = row[e] * factor, total = sum[e] + x;
      const double x_part = total - sum[e];
      error[e] += (sum[e] - (total - x_part)) + (x - x_part);
      sum[e] = total;
    }
  }

  AllReduceParams p_;
  Reducer reducer_;
  std::size_t workers_;
  std::vector<double> column_;
  std::vector<double> reference_, reference_error_, quantized_sum_, quantized_error_;
};

void check_gradient_spans(std::span<const std::span<const double>> gradients) {
  if (gradients.empty()) fail("workers", "must be at least 1 (got 0 gradients)");
  if (gradients.size() > static_cast<std::size_t>(kMaxWorkers))
    fail("workers", "must be at most " + std::to_string(kMaxWorkers));
  const std::size_t n = gradients[0].size();
  if (n == 0) fail("elements", "must be at least 1 (got empty gradients)");
  for (std::size_t w = 1; w < gradients.size(); ++w)
    if (gradients[w].size() != n)
      fail("gradients", "worker " + std::to_string(w) + " has " + std::to_string(gradients[w].size()) +
                            " elements, worker 0 has " + std::to_string(n));
}

}  // namespace

void validate(const SyntheticGradientParams& p) {
  if (p.workers < 1) fail("workers", "must be at least 1 (got " + std::to_string(p.workers) + ")");
  if (p.workers > kMaxWorkers) fail("workers", "must be at most " + std::to_string(kMaxWorkers));
  if (p.elements == 0) fail("elements", "must be at least 1 (got 0)");
  if (p.elements > kMaxElements) fail("elements", "must be at most 2^40 (got " + std::to_string(p.elements) + ")");
  check_unit_interval("correlation", p.correlation);
  check_unit_interval("temporal_correlation", p.temporal_correlation);
  if (!std::isfinite(p.log2_median)) fail("log2_median", "must be finite (got " + number_text(p.log2_median) + ")");
  if (!(p.spread_binades >= 0 && std::isfinite(p.spread_binades)))
    fail("spread_binades", "must be finite and >= 0 (got " + number_text(p.spread_binades) + ")");
}

SyntheticGradients::SyntheticGradients(const SyntheticGradientParams& params) : params_(params) { validate(params_); }

void SyntheticGradients::fill_scale(std::uint64_t first, std::span<double> out) const {
  TileGenerator(params_).fill_scale(first, out);
}

void SyntheticGradients::fill(int worker, std::uint64_t step, std::uint64_t first, std::span<double> out) const {
  if (worker < 0 || worker >= params_.workers)
    fail("worker", std::to_string(worker) + " is not in [0, " + std::to_string(params_.workers) + ")");
  if (first > params_.elements || out.size() > params_.elements - first)
    fail("elements", "[" + std::to_string(first) + ", " + std::to_string(first + out.size()) + ") is beyond the " +
                         std::to_string(params_.elements) + " elements");
  TileGenerator generator(params_);
  for (std::size_t done = 0; done < out.size(); done += kTile) {
    const std::size_t n = std::min(kTile, out.size() - done);
    generator.generate(step, first + done, n, out.subspan(done, n), worker, worker + 1);
  }
}

std::vector<double> SyntheticGradients::worker_gradient(int worker, std::uint64_t step) const {
  std::vector<double> out(params_.elements);
  fill(worker, step, 0, out);
  return out;
}

void validate(const AllReduceParams& p) {
  resolve_format("communication_format", p.communication_format);
  resolve_format("accumulator_format", p.accumulator_format);
  check_stage("communication_rounding", p.communication_rounding);
  check_stage("accumulator_rounding", p.accumulator_rounding);
  if (!is_power_of_two(p.scale) || p.scale < 0x1p-64 || p.scale > 0x1p64)
    fail("scale", "must be a power of two in [2^-64, 2^64] (got " + number_text(p.scale) + ")");
}

namespace {

// Every tile of the given gradients through `reducer`.
void reduce_spans(std::span<const std::span<const double>> gradients, const AllReduceParams& params,
                  std::span<double> reduced, Tallies* tallies) {
  check_gradient_spans(gradients);
  validate(params);
  const std::size_t workers = gradients.size(), count = gradients[0].size();
  TileReducer reducer(params, static_cast<int>(workers));
  std::vector<double> tile(kTile * workers);
  for (std::size_t first = 0; first < count; first += kTile) {
    const std::size_t n = std::min(kTile, count - first);
    for (std::size_t w = 0; w < workers; ++w) std::copy_n(gradients[w].begin() + static_cast<std::ptrdiff_t>(first), n, tile.begin() + static_cast<std::ptrdiff_t>(w * n));
    reducer.reduce(first, count, n, tile, reduced.empty() ? reduced : reduced.subspan(first, n), tallies);
  }
}

}  // namespace

std::vector<double> allreduce(std::span<const std::span<const double>> gradients, const AllReduceParams& params) {
  std::vector<double> out(gradients.empty() ? 0 : gradients[0].size());
  reduce_spans(gradients, params, out, nullptr);
  return out;
}

AllReduceResult measure_allreduce(std::span<const std::span<const double>> gradients, const AllReduceParams& params) {
  Tallies tallies;
  reduce_spans(gradients, params, {}, &tallies);
  return finish(tallies);
}

AllReduceResult measure_allreduce(const SyntheticGradientParams& gradients, const AllReduceParams& params) {
  validate(gradients);
  validate(params);
  TileReducer reducer(params, gradients.workers);
  TileGenerator generator(gradients);
  std::vector<double> tile(kTile * static_cast<std::size_t>(gradients.workers));
  Tallies tallies;
  for (std::uint64_t first = 0; first < gradients.elements; first += kTile) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kTile, gradients.elements - first));
    generator.generate(0, first, n, tile);
    reducer.reduce(first, gradients.elements, n, tile, {}, &tallies);
  }
  return finish(tallies);
}

void validate(const CltkParams& p) {
  if (!(p.compression_ratio >= 1 && std::isfinite(p.compression_ratio)))
    fail("compression_ratio", "must be finite and at least 1 (got " + number_text(p.compression_ratio) + ")");
  if (p.steps < 1) fail("steps", "must be at least 1 (got " + std::to_string(p.steps) + ")");
  if (!(p.memory_beta > 0 && p.memory_beta <= 1))
    fail("memory_beta", "must be in (0, 1] (got " + number_text(p.memory_beta) + ")");
}

std::uint64_t cltk_k(std::uint64_t elements, double compression_ratio) {
  if (elements == 0) fail("elements", "must be at least 1 (got 0)");
  if (!(compression_ratio >= 1 && std::isfinite(compression_ratio)))
    fail("compression_ratio", "must be finite and at least 1 (got " + number_text(compression_ratio) + ")");
  const auto k = static_cast<std::uint64_t>(std::floor(static_cast<double>(elements) / compression_ratio));
  return std::clamp<std::uint64_t>(k, 1, elements);
}

std::uint64_t compressed_bytes(std::uint64_t elements, double compression_ratio, const Format& format) {
  if (elements > (std::uint64_t{1} << 32)) fail("elements", "must fit 32-bit indices (got " + std::to_string(elements) + ")");
  const std::uint64_t k = cltk_k(elements, compression_ratio);
  const auto bits = static_cast<std::uint64_t>(format.total_bits());
  return (k * bits + 7) / 8 + k * 4;
}

std::uint64_t compressed_bytes(std::uint64_t elements, double compression_ratio, const std::string& format) {
  return compressed_bytes(elements, compression_ratio, resolve_format("format", format));
}

namespace {

// Indices of the k largest |values| in ascending order; ties at the threshold go to the
// lower indices, so the set is well defined.
void top_k_indices(std::span<const double> values, std::uint64_t k, std::vector<double>& scratch,
                   std::vector<std::uint32_t>& out) {
  const std::size_t n = values.size();
  scratch.resize(n);
  for (std::size_t e = 0; e < n; ++e) scratch[e] = std::fabs(values[e]);
  const auto kth = scratch.begin() + static_cast<std::ptrdiff_t>(n - k);
  std::nth_element(scratch.begin(), kth, scratch.end());
  const double threshold = *kth;
  out.clear();
  std::uint64_t above = 0;
  for (std::size_t e = 0; e < n; ++e) above += std::fabs(values[e]) > threshold;
  std::uint64_t ties_allowed = k - above;
  for (std::size_t e = 0; e < n; ++e) {
    const double m = std::fabs(values[e]);
    if (m > threshold || (m == threshold && ties_allowed > 0)) {
      if (m == threshold) --ties_allowed;
      out.push_back(static_cast<std::uint32_t>(e));
    }
  }
}

// The k-th largest |values|: a worker's own top-k is everything at or above it.
double kth_largest_magnitude(std::span<const double> values, std::uint64_t k, std::vector<double>& scratch) {
  const std::size_t n = values.size();
  scratch.resize(n);
  for (std::size_t e = 0; e < n; ++e) scratch[e] = std::fabs(values[e]);
  const auto kth = scratch.begin() + static_cast<std::ptrdiff_t>(n - k);
  std::nth_element(scratch.begin(), kth, scratch.end());
  return *kth;
}

// `generate(step, accumulated)` writes every worker's gradient of the step into its row of
// `accumulated` (N x elements).
template <class Generate>
CltkResult run_cltk(int workers, std::uint64_t elements, const AllReduceParams& reduction, const CltkParams& params,
                    Generate generate) {
  validate(reduction);
  validate(params);
  if (elements > (std::uint64_t{1} << 32)) fail("elements", "must fit 32-bit indices (got " + std::to_string(elements) + ")");
  const auto n_workers = static_cast<std::size_t>(workers);
  const auto n = static_cast<std::size_t>(elements);
  const std::uint64_t k = cltk_k(elements, params.compression_ratio);
  const double beta = params.memory_beta;
  const double unscale = 1 / reduction.scale;  // exact: a power of two

  Reducer reducer(reduction, workers);
  CltkResult result;
  result.k = k;
  result.bytes_per_worker_per_step = compressed_bytes(elements, params.compression_ratio, reducer.communication());

  std::vector<double> memory(params.error_feedback ? n_workers * n : 0), accumulated(n_workers * n);
  std::vector<double> step_reference(n), step_reduced(n), cumulative_reference(n), cumulative_reduced(n);
  std::vector<double> quantized(n_workers), scratch;
  std::vector<std::uint32_t> selected;
  ErrorTally pooled;
  const auto row = [&](std::vector<double>& v, std::size_t w) { return std::span<double>(v.data() + w * n, n); };

  for (int t = 0; t < params.steps; ++t) {
    const auto step = static_cast<std::uint64_t>(t);
    reducer.set_step(step);
    generate(step, std::span<double>(accumulated));
    for (std::size_t e = 0; e < n; ++e) {
      CompensatedSum reference;
      for (std::size_t w = 0; w < n_workers; ++w) reference.add(accumulated[w * n + e]);
      step_reference[e] = reference.value();
    }
    if (params.error_feedback)
      for (std::size_t i = 0; i < memory.size(); ++i) accumulated[i] += memory[i];

    CltkStep record;
    record.leader = t % workers;
    top_k_indices(row(accumulated, static_cast<std::size_t>(record.leader)), k, scratch, selected);

    double overlap = 0;
    for (std::size_t w = 0; w < n_workers; ++w) {
      if (static_cast<int>(w) == record.leader) continue;
      const std::span<const double> a = row(accumulated, w);
      const double threshold = kth_largest_magnitude(a, k, scratch);
      std::uint64_t shared = 0;
      for (const std::uint32_t e : selected) shared += std::fabs(a[e]) >= threshold;
      overlap += static_cast<double>(std::min(shared, k)) / static_cast<double>(k);
    }
    record.topk_overlap = workers > 1 ? overlap / static_cast<double>(workers - 1) : 1.0;

    // Low-pass filtered error feedback (the assumed rule of the header); `sent` at the
    // selected indices is subtracted below.
    if (params.error_feedback)
      for (std::size_t i = 0; i < memory.size(); ++i) memory[i] = (1 - beta) * memory[i] + beta * accumulated[i];

    std::fill(step_reduced.begin(), step_reduced.end(), 0.0);
    for (std::uint64_t position = 0; position < k; ++position) {
      const std::uint32_t e = selected[static_cast<std::size_t>(position)];
      for (std::size_t w = 0; w < n_workers; ++w) {
        quantized[w] = reducer.quantize(static_cast<int>(w), e, accumulated[w * n + e]);
        // An overflowed value delivers nothing: it stays in the memory.
        if (params.error_feedback && std::isfinite(quantized[w])) memory[w * n + e] -= beta * (quantized[w] * unscale);
      }
      step_reduced[e] = reducer.reduce(quantized, e, chunk_of(position, k, workers)) * unscale;
    }

    ErrorTally step_tally, cumulative_tally;
    for (std::size_t e = 0; e < n; ++e) {
      step_tally.add(step_reference[e], step_reduced[e], reducer.communication(), reduction.scale);
      cumulative_reference[e] += step_reference[e];
      cumulative_reduced[e] += step_reduced[e];
      cumulative_tally.add(cumulative_reference[e], cumulative_reduced[e], reducer.communication(), reduction.scale);
    }
    pooled.merge(step_tally);
    record.step = step_tally.stats();
    record.cumulative = cumulative_tally.stats();
    result.topk_overlap += record.topk_overlap / params.steps;
    result.steps.push_back(record);
  }
  result.per_step = pooled.stats();
  result.cumulative = result.steps.back().cumulative;
  return result;
}

}  // namespace

CltkResult measure_cltk(const SyntheticGradientParams& gradients, const AllReduceParams& reduction,
                        const CltkParams& params) {
  validate(gradients);
  const auto n_workers = static_cast<std::size_t>(gradients.workers);
  const auto n = static_cast<std::size_t>(gradients.elements);
  TileGenerator generator(gradients);
  std::vector<double> tile(kTile * n_workers);
  return run_cltk(gradients.workers, gradients.elements, reduction, params,
                  [&](std::uint64_t step, std::span<double> rows) {
                    for (std::uint64_t first = 0; first < gradients.elements; first += kTile) {
                      const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(kTile, gradients.elements - first));
                      generator.generate(step, first, m, tile);
                      for (std::size_t w = 0; w < n_workers; ++w)
                        std::copy_n(tile.begin() + static_cast<std::ptrdiff_t>(w * m), m,
                                    rows.begin() + static_cast<std::ptrdiff_t>(w * n + first));
                    }
                  });
}

CltkResult measure_cltk(int workers, std::uint64_t elements, const GradientSource& gradients,
                        const AllReduceParams& reduction, const CltkParams& params) {
  if (workers < 1) fail("workers", "must be at least 1 (got " + std::to_string(workers) + ")");
  if (workers > kMaxWorkers) fail("workers", "must be at most " + std::to_string(kMaxWorkers));
  if (elements == 0) fail("elements", "must be at least 1 (got 0)");
  if (!gradients) fail("gradients", "no gradient source given");
  const auto n = static_cast<std::size_t>(elements);
  return run_cltk(workers, elements, reduction, params, [&](std::uint64_t step, std::span<double> rows) {
    for (int w = 0; w < workers; ++w) gradients(w, step, rows.subspan(static_cast<std::size_t>(w) * n, n));
  });
}

}  // namespace lpt::num
