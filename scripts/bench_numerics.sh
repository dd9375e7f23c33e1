#!/usr/bin/env bash
# Builds and runs the GEMM emulation benchmark (tests/bench/numerics_gemm_bench.cpp):
# FP8 x FP8 -> FP16 chunked (64) GEMM, bit-exact to the reference, single-threaded.
# The benchmark target compiles the numerics sources with -march=native: a local build for
# this machine only. Usage: scripts/bench_numerics.sh [build-dir] [extra benchmark flags]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build-bench}"
shift || true
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target numerics_gemm_bench >/dev/null
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
# CPU time, not wall time: on a shared machine the wall clock counts other processes too.
"${pin[@]}" "$build/tests/bench/numerics_gemm_bench" --benchmark_min_time=1 "$@"
