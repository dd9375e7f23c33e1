// Speed of the bit-exact GEMM emulation (models/numerics/gemm.*): FP8 x FP8 products into
// FP16 chunks of 64 (RNE), the HFP8/Wang'18-style datapath. Reports MAC/s per core
// (single-threaded). Run: scripts/bench_numerics.sh
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>

#include "models/numerics/gemm.hpp"

namespace {

using namespace lpt::num;

Datapath fp8_fp16_chunked(const char* operand, int chunk) {
  DatapathConfig config;
  config.operand_a = *find_format(operand);
  config.operand_b = *find_format(operand);
  config.accumulator = *find_format("fp16");
  config.chunk_length = chunk;
  return Datapath(config);
}

// Normally distributed values quantized with RNE, as activations and weights would be.
EncodedMatrix random_operand(const Format& format, std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix values(rows, cols);
  for (double& v : values.values) v = normal(rng);
  return encode_matrix(format, values, Rounding::kNearestEven);
}

void run_gemm(benchmark::State& state, const char* operand, bool reference) {
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto k = static_cast<std::size_t>(state.range(1));
  const auto n = static_cast<std::size_t>(state.range(2));
  const Datapath datapath = fp8_fp16_chunked(operand, 64);
  const EncodedMatrix a = random_operand(datapath.operand_a(), m, k, 1);
  const EncodedMatrix b = random_operand(datapath.operand_b(), k, n, 2);
  const GemmKernel kernel = select_gemm_kernel(datapath);
  state.SetLabel(reference ? "reference" : std::string("inner ") + std::string(lane_kind_name(kernel.inner)) +
                                               " lanes, outer " + std::string(lane_kind_name(kernel.outer)));
  for (auto _ : state) {
    Matrix c = reference ? gemm_reference(datapath, a, b) : gemm(datapath, a, b);
    benchmark::DoNotOptimize(c.values.data());
  }
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(m * k * n) * state.iterations(),
                                               benchmark::Counter::kIsRate);
}

void BM_GemmE4m3Fp16Chunk64(benchmark::State& state) { run_gemm(state, "fp8_e4m3", false); }
void BM_GemmE5m2Fp16Chunk64(benchmark::State& state) { run_gemm(state, "fp8_e5m2", false); }
void BM_GemmReferenceE4m3Fp16Chunk64(benchmark::State& state) { run_gemm(state, "fp8_e4m3", true); }

BENCHMARK(BM_GemmE4m3Fp16Chunk64)->Args({256, 256, 256})->Args({512, 512, 512})->Args({1024, 1024, 1024})
    ->Args({64, 4608, 512})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GemmE5m2Fp16Chunk64)->Args({256, 256, 256})->Args({512, 512, 512})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GemmReferenceE4m3Fp16Chunk64)->Args({64, 64, 64})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
