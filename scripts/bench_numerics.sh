#!/usr/bin/env bash
# Builds and runs the GEMM emulation benchmark (tests/bench/numerics_gemm_bench.cpp): the
# bit-exact FP8 x FP8 -> FP16 chunk-64 GEMM and, in the same run, OpenBLAS's float32 GEMM
# on the same shapes with 1 and 2 threads; then derives per shape the bit-exact / OpenBLAS
# ratio per core and the bit-exact GEMM's 1 -> 2 thread speed-up, from the best of the
# repetitions (other load on a shared machine only ever slows a run down). Rates are per
# wall-clock second (both GEMMs run threads of their own) and per CPU-second of the
# process (all threads: a rate per busy core, which load on the machine barely moves).
# The benchmark target compiles the numerics sources with -march=native: a local build for
# this machine only.
# Usage: scripts/bench_numerics.sh [build-dir] [extra benchmark flags]
#   (default 5 repetitions of at least 0.5 s each; e.g. --benchmark_repetitions=10)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build-bench}"
shift || true
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target numerics_gemm_bench >/dev/null
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
"$build/tests/bench/numerics_gemm_bench" --benchmark_min_time=0.5 --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=false --benchmark_display_aggregates_only=true \
  --benchmark_out="$json" --benchmark_out_format=json "$@"
python3 - "$json" <<'PY'
import json, re, sys
seconds = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
wall, cpu = {}, {}  # (benchmark, "MxKxN", threads) -> best MAC/s
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    m = re.match(r"(\w+)/M:(\d+)/K:(\d+)/N:(\d+)/threads:(\d+)", b["name"])
    if not m or b.get("run_type") != "iteration":
        continue
    key = (m.group(1), "x".join(m.group(2, 3, 4)), int(m.group(5)))
    wall[key] = max(wall.get(key, 0), b["MAC/s"])
    cpu[key] = max(cpu.get(key, 0), b["MAC"] / (b["cpu_time"] * seconds[b["time_unit"]]))
G = lambda rate: f"{rate / 1e9:6.2f}G"
exact, blas = "BM_GemmE4m3Fp16Chunk64", "BM_OpenblasSgemm"
print("\nBest of the repetitions. MAC/s per wall-clock second / per CPU-second of all threads.")
print(f"{'shape MxKxN':14} {'threads':>7}   {'bit-exact FP8->FP16 c64':>24}   {'OpenBLAS sgemm':>19}   "
      "bit-exact/OpenBLAS per core (wall, CPU-s)")
ratio = lambda x, y: f"{x / y:.2f} = 1/{y / x:.1f}"

shapes = sorted({s for (name, s, t) in wall if name == exact})
for shape in shapes:
    for threads in (1, 2):
        e, o = (exact, shape, threads), (blas, shape, threads)
        if e not in wall:
            continue
        line = f"{shape:14} {threads:>7}   {G(wall[e])} / {G(cpu[e])}   "
        line += (f"{G(wall[o])} / {G(cpu[o])}   {ratio(wall[e], wall[o])}, {ratio(cpu[e], cpu[o])}" if o in wall
                 else "(OpenBLAS not built)")
        print(line)
for shape in shapes:
    one, two = (exact, shape, 1), (exact, shape, 2)
    if one in wall and two in wall:
        text = f"bit-exact {wall[two] / wall[one]:.2f}x"
        if (blas, shape, 2) in wall:
            text += f", OpenBLAS {wall[(blas, shape, 2)] / wall[(blas, shape, 1)]:.2f}x"
        print(f"1 -> 2 threads, {shape}: speed-up (wall) {text}; "
              f"bit-exact per CPU-second 2 threads / 1 thread {cpu[two] / cpu[one]:.2f}")
sr = {name: rate for (name, shape, threads), rate in wall.items() if "Sr" in name}
if len(sr) == 2:
    fast, ref = sr["BM_GemmSrE4m3Fp16Chunk64"], sr["BM_GemmReferenceSrE4m3Fp16Chunk64"]
    print(f"stochastic accumulation (16 random bits), 1 thread: fast path {fast / 1e6:.0f}M MAC/s, "
          f"reference {ref / 1e6:.1f}M MAC/s ({fast / ref:.1f}x)")
PY
