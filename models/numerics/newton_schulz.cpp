#include "models/numerics/newton_schulz.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "models/numerics/gemm.hpp"
#include "models/numerics/random.hpp"

namespace lpt::num {

namespace {

Matrix identity(std::size_t d, double scale = 1) {
  Matrix m(d, d);
  for (std::size_t i = 0; i < d; ++i) m(i, i) = scale;
  return m;
}

double residual_norm(const Matrix& f, const Matrix& x) {
  const Matrix t = gemm_fp64(f, x);
  double sum = 0;
  for (std::size_t i = 0; i < t.rows; ++i)
    for (std::size_t j = 0; j < t.cols; ++j) {
      const double e = (i == j ? 1.0 : 0.0) - t(i, j);
      sum += e * e;
    }
  return std::sqrt(sum / static_cast<double>(t.rows));
}

// 2I − T.
Matrix two_minus(const Matrix& t) {
  Matrix r = t;
  for (std::size_t i = 0; i < r.values.size(); ++i) r.values[i] = -r.values[i];
  for (std::size_t i = 0; i < r.rows; ++i) r(i, i) += 2;
  return r;
}

Matrix round_to(const Format& format, const Matrix& m) {
  Matrix out = m;
  for (double& v : out.values) v = format.round(v, Rounding::kNearestEven);
  return out;
}

// The synthetic damped factor (see the header).
Matrix synthetic_factor(const NewtonSchulzParams& p) {
  const auto d = static_cast<std::size_t>(p.dimension), rows = 2 * d;
  const CounterRandom random(p.seed, 0x4e53);  // "NS"
  Matrix a(rows, d);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < d; ++j) {
      const std::uint64_t index = 2 * (i * d + j);
      // Box–Muller from two uniforms (the first kept off zero).
      const double u1 = 1 - random.uniform(index), u2 = random.uniform(index + 1);
      const double normal = std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
      a(i, j) = normal * std::exp2(-p.spread_binades * static_cast<double>(j) / static_cast<double>(d - 1));
    }
  Matrix at(d, rows);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < d; ++j) at(j, i) = a(i, j);
  Matrix f = gemm_fp64(at, a);
  double trace = 0;
  for (double& v : f.values) v /= static_cast<double>(rows);
  for (std::size_t i = 0; i < d; ++i) trace += f(i, i);
  for (std::size_t i = 0; i < d; ++i) f(i, i) += p.damping * trace / static_cast<double>(d);
  return f;
}

double frobenius(const Matrix& m) {
  double sum = 0;
  for (const double v : m.values) sum += v * v;
  return std::sqrt(sum);
}

// Largest eigenvalue of a symmetric positive matrix by power iteration.
double largest_eigenvalue(const Matrix& m) {
  Matrix v(m.rows, 1, 1.0);
  double lambda = 0;
  for (int k = 0; k < 200; ++k) {
    const Matrix w = gemm_fp64(m, v);
    lambda = frobenius(w) / frobenius(v);
    v = w;
    const double norm = frobenius(v);
    for (double& x : v.values) x /= norm;
  }
  return lambda;
}

}  // namespace

NewtonSchulzResult measure_newton_schulz(const Datapath& datapath, const NewtonSchulzParams& p) {
  if (p.dimension < 2) throw std::invalid_argument("Newton–Schulz: the dimension must be at least 2");
  if (p.iterations < 1) throw std::invalid_argument("Newton–Schulz: at least one iteration");
  const auto d = static_cast<std::size_t>(p.dimension);
  const Matrix f = synthetic_factor(p);
  const Matrix x0 = identity(d, 1 / frobenius(f));
  const Format& a_format = datapath.operand_a();
  const Format& b_format = datapath.operand_b();
  const Format& result = datapath.result_format();
  const auto encoded = [](const Format& format, const Matrix& m) {
    return encode_matrix(format, m, Rounding::kNearestEven);
  };
  const GemmOptions one_thread{1};

  NewtonSchulzResult out;
  Matrix x = x0, x64 = x0;
  const EncodedMatrix f_a = encoded(a_format, f);
  for (int k = 0; k < p.iterations; ++k) {
    const Matrix t = gemm(datapath, f_a, encoded(b_format, x), one_thread);
    const Matrix r = round_to(result, two_minus(t));
    x = gemm(datapath, encoded(a_format, x), encoded(b_format, r), one_thread);
    x64 = gemm_fp64(x64, two_minus(gemm_fp64(f, x64)));
    out.residual.push_back(residual_norm(f, x));
    out.fp64_residual.push_back(residual_norm(f, x64));
  }
  // The exact inverse: FP64 iterations until they stop improving.
  Matrix exact = x64;
  for (int k = 0; k < 200 && residual_norm(f, exact) > 1e-13; ++k) exact = gemm_fp64(exact, two_minus(gemm_fp64(f, exact)));
  out.inverse = measure(exact.values, x.values, result);
  const double largest = largest_eigenvalue(f);
  out.condition = largest * largest_eigenvalue(exact);
  return out;
}

}  // namespace lpt::num
