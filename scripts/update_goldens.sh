#!/usr/bin/env bash
# Regenerates the golden reports the system tests compare against exactly.
# Run after an intended change of the timing model or mapping, and say in the
# commit message why the numbers moved. Without the fidelity pass: its figures
# depend on the C library's transcendental functions (tested with tolerances).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lptsim="${1:-$repo/build/sim/lptsim}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for golden in tiny-cnn tiny-cnn-fused; do
  extra=()
  [[ "$golden" == tiny-cnn-fused ]] && extra=(--fusion full)
  "$lptsim" run --quiet --config "$repo/configs/tiny.json" --trace "$repo/traces/tiny-cnn.json" \
    --no-fidelity --out "$out" "${extra[@]}" >/dev/null
  cp "$out/layers.csv" "$repo/tests/system/golden/$golden.layers.csv"
  cp "$out/phases.csv" "$repo/tests/system/golden/$golden.phases.csv"
  echo "updated tests/system/golden/$golden.{layers,phases}.csv"
done
