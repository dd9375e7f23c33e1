#!/usr/bin/env bash
# Times `lptsim run` of the default config (RaPiD-like, 4 cores) on a full
# ResNet-50 training step, pinned to one core. Target: under 1 s wall.
# Usage: scripts/bench.sh [runs]   (default 5; prints each wall time and the best)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
"$repo/scripts/setup.sh" "$repo/build" >/dev/null
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
best=""
for ((i = 1; i <= runs; i++)); do
  start=$(date +%s.%N)
  SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1 "${pin[@]}" "$repo/build/sim/lptsim" run \
    --config "$repo/configs/rapid-4core.json" --trace "$repo/traces/resnet50.json" \
    --out "$out" >/dev/null 2>"$out/stderr"
  end=$(date +%s.%N)
  t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
  printf 'run %d: %.3f s\n' "$i" "$t"
  if [[ -z "$best" ]] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
done
grep -h "simulated" "$out/stderr" || true
printf 'best of %d: %.3f s wall (target < 1 s)\n' "$runs" "$best"
