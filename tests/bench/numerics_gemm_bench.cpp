// Speed of the bit-exact GEMM emulation (models/numerics/gemm.*) with a yardstick run
// alongside: Debian's OpenBLAS float32 GEMM (cblas_sgemm) on the same shapes and thread
// counts, since absolute rates differ from machine to machine. The bit-exact case is FP8 x
// FP8 products into FP16 chunks of 64 (RNE), the HFP8/Wang'18-style datapath; another
// shows the stochastically rounded accumulation's fast path against the reference.
// Rates are per wall-clock second (the GEMMs run threads of their own); the CPU time is the
// process's, all threads, so MAC / CPU time is a rate per busy core even on a loaded machine.
// Run: scripts/bench_numerics.sh (it also derives the per-core ratio and the speed-up).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#ifdef LPTSIM_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "models/numerics/gemm.hpp"

namespace {

using namespace lpt::num;

Datapath fp8_fp16_chunked(const char* operand, int chunk, Rounding rounding = Rounding::kNearestEven,
                          int stochastic_bits = 24) {
  DatapathConfig config;
  config.operand_a = *find_format(operand);
  config.operand_b = *find_format(operand);
  config.accumulator = *find_format("fp16");
  config.chunk_length = chunk;
  config.inner_rounding = rounding;
  config.outer_rounding = rounding;
  config.stochastic_bits = stochastic_bits;
  return Datapath(config);
}

Matrix normal_values(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix values(rows, cols);
  for (double& v : values.values) v = normal(rng);
  return values;
}

// Normally distributed values quantized with RNE, as activations and weights would be.
EncodedMatrix random_operand(const Format& format, std::size_t rows, std::size_t cols, std::uint64_t seed) {
  return encode_matrix(format, normal_values(rows, cols, seed), Rounding::kNearestEven);
}

void count_macs(benchmark::State& state, std::size_t m, std::size_t k, std::size_t n) {
  const auto macs = static_cast<double>(m * k * n);
  state.counters["MAC/s"] = benchmark::Counter(macs * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["MAC"] = macs;  // per iteration: with the CPU time, the rate per busy core
}

// Args: M, K, N, threads (of the fast path; the reference is single-threaded).
void run_gemm(benchmark::State& state, const Datapath& datapath, bool reference) {
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto k = static_cast<std::size_t>(state.range(1));
  const auto n = static_cast<std::size_t>(state.range(2));
  const auto threads = static_cast<int>(state.range(3));
  const EncodedMatrix a = random_operand(datapath.operand_a(), m, k, 1);
  const EncodedMatrix b = random_operand(datapath.operand_b(), k, n, 2);
  const GemmKernel kernel = select_gemm_kernel(datapath);
  state.SetLabel(reference ? "reference" : std::string("inner ") + std::string(lane_kind_name(kernel.inner)) +
                                               " lanes, outer " + std::string(lane_kind_name(kernel.outer)));
  for (auto _ : state) {
    Matrix c = reference ? gemm_reference(datapath, a, b) : gemm(datapath, a, b, GemmOptions{threads});
    benchmark::DoNotOptimize(c.values.data());
  }
  count_macs(state, m, k, n);
}

void BM_GemmE4m3Fp16Chunk64(benchmark::State& state) { run_gemm(state, fp8_fp16_chunked("fp8_e4m3", 64), false); }
void BM_GemmHfp8Fp16Chunk64(benchmark::State& state) { run_gemm(state, fp8_fp16_chunked("hfp8_e4m3", 64), false); }
void BM_GemmReferenceE4m3Fp16Chunk64(benchmark::State& state) {
  run_gemm(state, fp8_fp16_chunked("fp8_e4m3", 64), true);
}
// Stochastic rounding (16 random bits) of every inner and outer add.
void BM_GemmSrE4m3Fp16Chunk64(benchmark::State& state) {
  run_gemm(state, fp8_fp16_chunked("fp8_e4m3", 64, Rounding::kStochastic, 16), false);
}
void BM_GemmReferenceSrE4m3Fp16Chunk64(benchmark::State& state) {
  run_gemm(state, fp8_fp16_chunked("fp8_e4m3", 64, Rounding::kStochastic, 16), true);
}

// The shapes of the comparison: a 3x3 convolution's GEMM (K = 4608 = 512 * 9) and a
// square-ish one, each on 1 and 2 threads.
void comparison_shapes(benchmark::internal::Benchmark* b) {
  for (const auto& shape : {std::vector<std::int64_t>{256, 2048, 256}, std::vector<std::int64_t>{512, 4608, 128}})
    for (std::int64_t threads : {1, 2}) b->Args({shape[0], shape[1], shape[2], threads});
  b->ArgNames({"M", "K", "N", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
}

// One shape on one thread, for the cases beside the comparison.
void single_shape(benchmark::internal::Benchmark* b, std::int64_t m, std::int64_t k, std::int64_t n) {
  b->Args({m, k, n, 1})->ArgNames({"M", "K", "N", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime()
      ->MeasureProcessCPUTime();
}

BENCHMARK(BM_GemmE4m3Fp16Chunk64)->Apply(comparison_shapes);
BENCHMARK(BM_GemmHfp8Fp16Chunk64)->Apply([](auto* b) { single_shape(b, 256, 2048, 256); });
BENCHMARK(BM_GemmReferenceE4m3Fp16Chunk64)->Apply([](auto* b) { single_shape(b, 64, 256, 64); });
BENCHMARK(BM_GemmSrE4m3Fp16Chunk64)->Apply([](auto* b) { single_shape(b, 64, 256, 64); });
BENCHMARK(BM_GemmReferenceSrE4m3Fp16Chunk64)->Apply([](auto* b) { single_shape(b, 64, 256, 64); });

#ifdef LPTSIM_HAVE_OPENBLAS
// The yardstick: float32 C = A x B, row-major, on an explicit number of OpenBLAS threads.
void BM_OpenblasSgemm(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto k = static_cast<std::size_t>(state.range(1));
  const auto n = static_cast<std::size_t>(state.range(2));
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  const auto as_float = [](const Matrix& values) {
    return std::vector<float>(values.values.begin(), values.values.end());
  };
  const std::vector<float> a = as_float(normal_values(m, k, 1)), b = as_float(normal_values(k, n, 2));
  std::vector<float> c(m * n);
  const auto mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, ni, ki, 1.0f, a.data(), ki, b.data(), ni, 0.0f,
                c.data(), ni);
    benchmark::DoNotOptimize(c.data());
  }
  count_macs(state, m, k, n);
}
BENCHMARK(BM_OpenblasSgemm)->Apply(comparison_shapes);
#endif

}  // namespace

BENCHMARK_MAIN();
