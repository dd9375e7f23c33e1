#!/usr/bin/env bash
# Builds and runs the GEMM emulation benchmark (tests/bench/numerics_gemm_bench.cpp): the
# bit-exact FP8 x FP8 -> FP16 chunk-64 GEMM and, in the same run, OpenBLAS's float32 GEMM
# on the same shapes with 1 and 2 threads; then derives per shape the bit-exact / OpenBLAS
# rate ratio per core (1 thread each, and 2 threads each) and the bit-exact GEMM's 1 -> 2
# thread speed-up. Rates are per wall-clock second (both GEMMs run threads of their own),
# so other load on the machine lowers them: run it on an idle machine.
# The benchmark target compiles the numerics sources with -march=native: a local build for
# this machine only. Usage: scripts/bench_numerics.sh [build-dir] [extra benchmark flags]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build-bench}"
shift || true
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target numerics_gemm_bench >/dev/null
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
"$build/tests/bench/numerics_gemm_bench" --benchmark_min_time=1 --benchmark_out="$json" \
  --benchmark_out_format=json "$@"
python3 - "$json" <<'PY'
import json, re, sys
rates = {}  # (benchmark, M, K, N) -> {threads: MAC/s}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    m = re.match(r"(\w+)/M:(\d+)/K:(\d+)/N:(\d+)/threads:(\d+)", b["name"])
    if m and "MAC/s" in b and b.get("run_type", "iteration") == "iteration":
        rates.setdefault(m.group(1, 2, 3, 4), {})[int(m.group(5))] = b["MAC/s"]
print("\nshape (MxKxN)    bit-exact MAC/s 1t / 2t    OpenBLAS MAC/s 1t / 2t    "
      "ratio per core 1t / 2t    bit-exact speed-up 1->2")
for (name, *shape), exact in sorted(rates.items()):
    blas = rates.get(("BM_OpenblasSgemm", *shape))
    if name != "BM_GemmE4m3Fp16Chunk64" or 1 not in exact or 2 not in exact:
        continue
    label = "x".join(shape)
    if blas is None:
        print(f"{label:16} {exact[1]/1e9:6.2f}G / {exact[2]/1e9:6.2f}G    (OpenBLAS not built)"
              f"{'':40}{exact[2]/exact[1]:.2f}x")
        continue
    print(f"{label:16} {exact[1]/1e9:6.2f}G / {exact[2]/1e9:6.2f}G        "
          f"{blas[1]/1e9:6.2f}G / {blas[2]/1e9:6.2f}G        "
          f"1/{blas[1]/exact[1]:4.1f} / 1/{blas[2]/exact[2]:4.1f}          {exact[2]/exact[1]:.2f}x")
sr = {name: r[1] for (name, *shape), r in rates.items() if "Sr" in name and 1 in r}
if "BM_GemmSrE4m3Fp16Chunk64" in sr and "BM_GemmReferenceSrE4m3Fp16Chunk64" in sr:
    fast, ref = sr["BM_GemmSrE4m3Fp16Chunk64"], sr["BM_GemmReferenceSrE4m3Fp16Chunk64"]
    print(f"\nstochastic accumulation (16 random bits), 1 thread: fast {fast/1e6:.0f}M MAC/s, "
          f"reference {ref/1e6:.1f}M MAC/s ({fast/ref:.1f}x)")
PY
