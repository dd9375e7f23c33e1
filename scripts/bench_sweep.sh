#!/usr/bin/env bash
# Times a sweep of ResNet-50 training steps on the default chip (RaPiD-like,
# 4 cores): DRAM bandwidth (10, log-spaced) x scratchpad size (5) x clock (4)
# x voltage (5) = 1000 points by default, of which the voltage points share
# their timing (only the energy model differs), so 200 timings. First the same
# 10*J points (DRAM bandwidth x J clocks, every one a timing of its own) with
# one worker and with J workers (J = the machine's cores), for the speed-up
# and the cost of a point; then the whole sweep with J workers. Target: 1000 points in under 2 minutes on a
# 2-core machine, and 2 workers >= 1.8x one.
# With `distinct`, the voltage axis becomes DRAM latency: every point is a
# timing of its own.
# Usage: scripts/bench_sweep.sh [points: a multiple of 200, default 1000] [distinct]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
points="${1:-1000}"
distinct="${2:-}"
"$repo/scripts/setup.sh" --target lptsim "$repo/build" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
jobs="$(nproc 2>/dev/null || echo 2)"
lptsim="$repo/build/sim/lptsim"
export SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1

# n values from FIRST by STEP, comma-separated.
values() { awk -v n="$1" -v a="$2" -v d="$3" 'BEGIN { for (i = 0; i < n; ++i) printf "%s%g", (i ? ", " : ""), a + d * i }'; }
# spec FILE SCRATCHPADS CLOCKS LAST [LAST_AXIS]: 10 DRAM bandwidths x those lists
# (the last axis: voltages, or what LAST_AXIS names).
spec() {
  cat >"$1" <<JSON
{"config": "$repo/configs/rapid-4core.json", "traces": ["$repo/traces/resnet50.json"],
 "axes": [{"set": "/chip/dram/gb_per_s_per_channel", "log_range": {"from": 6.4, "to": 102.4, "points": 10}},
          {"set": "/chip/core/scratchpad/size_kib", "values": [$2]},
          {"set": "/chip/clock_ghz", "values": [$3]},
          {"set": "${5:-/chip/voltage}", "values": [$4]}],
 "run": {"fidelity": ${fidelity:-true}}}
JSON
}
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# The speed-up is that of the points' simulations: without the fidelity pass,
# which a sweep runs once (the other points take it from its cache).
fidelity=false spec "$work/small.json" 2048 "$(values "$jobs" 1.6 -0.1)" 0.75
small=$((10 * jobs))
for j in 1 "$jobs"; do
  start=$(date +%s.%N)
  "$lptsim" sweep "$work/small.json" --out "$work/small-$j" -j "$j" --quiet || true
  end=$(date +%s.%N)
  declare "t$j=$(seconds "$start" "$end")"
done
one=$t1 many=$(eval echo "\$t$jobs")
printf 'speed-up: %d points: 1 worker %.2f s, %d workers %.2f s: %.2fx (target >= 1.8x for 2)\n' \
  "$small" "$one" "$jobs" "$many" "$(awk -v a="$one" -v b="$many" 'BEGIN { print a / b }')"

if [[ "$distinct" == distinct ]]; then
  spec "$work/full.json" "512, 1024, 2048, 3072, 4096" "1.0, 1.2, 1.4, 1.6" "$(values $((points / 200)) 80 20)" \
    /chip/dram/latency_ns
else
  spec "$work/full.json" "512, 1024, 2048, 3072, 4096" "1.0, 1.2, 1.4, 1.6" "$(values $((points / 200)) 0.55 0.075)"
fi
start=$(date +%s.%N)
"$lptsim" sweep "$work/full.json" --out "$work/full" -j "$jobs" --quiet || true
end=$(date +%s.%N)
ok=$(grep -c '"status":"ok"' "$work/full/results.jsonl" || true)
timed=$(grep -vc '"timing_of"' "$work/full/results.jsonl" || true)
total=$(wc -l <"$work/full/results.jsonl")
printf 'sweep: %d points (%d ok, %d timings simulated) with %d workers in %s s, %.3f s per point per worker (target: 1000 in < 120 s on 2 cores)\n' \
  "$total" "$ok" "$timed" "$jobs" "$(seconds "$start" "$end")" \
  "$(awk -v t="$(seconds "$start" "$end")" -v n="$total" -v j="$jobs" 'BEGIN { print t * j / n }')"
