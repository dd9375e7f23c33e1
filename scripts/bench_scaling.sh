#!/usr/bin/env bash
# Times the questions whose work once grew with the input instead of the
# answer: many cores (flow network), huge GEMMs and batches (task budget).
# Each run prints its wall time, tile tasks and simulated cycles; the default
# ResNet-50 run on 4 cores is the yardstick measured in the same session.
# Usage: scripts/bench_scaling.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh" "$repo/build" >/dev/null
lptsim="$repo/build/sim/lptsim"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$repo" "$work" <<'PY'
import json, os, sys
repo, work = sys.argv[1], sys.argv[2]
def with_cores(config_name, cores):
    with open(os.path.join(repo, "configs", config_name)) as f:
        config = json.load(f)
    with open(os.path.join(repo, "configs", config["chip"])) as f:
        config["chip"] = json.load(f)
    config["chip"]["cores"] = cores
    config["name"] += f"-{cores}core"
    with open(os.path.join(work, f"{config['name']}.json"), "w") as f:
        json.dump(config, f)
for cores in (64, 256):
    with_cores("rapid-4core.json", cores)
with_cores("tiny.json", 1000)
with open(os.path.join(work, "linear65536.json"), "w") as f:
    json.dump({"network": "linear 65536^3", "source": "bench_scaling.sh", "batch": 1,
               "layers": [{"name": "big", "type": "linear", "in_features": 65536,
                           "out_features": 65536, "tokens": 65536}]}, f)
PY

measure() {
  local what="$1"
  shift
  local start end
  start=$(date +%s.%N)
  "$lptsim" run --out "$work/out" "$@" 2>"$work/stderr" >/dev/null
  end=$(date +%s.%N)
  local tasks cycles
  tasks=$(grep -o '[0-9]* tile tasks' "$work/stderr")
  cycles=$(grep -o 'simulated [0-9]* cycles' "$work/stderr")
  printf '%-44s %7.2f s wall  %-18s %s\n' "$what" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$tasks" "$cycles"
}

measure "ResNet-50 b32, rapid 4 cores (yardstick)"
measure "ResNet-50 b32, rapid 64 cores" --config "$work/rapid-4core-64core.json"
measure "ResNet-50 b32, rapid 256 cores" --config "$work/rapid-4core-256core.json"
measure "tiny-cnn, tiny chip with 1000 cores" --config "$work/tiny-1000core.json" --trace "$repo/traces/tiny-cnn.json"
measure "tiny-cnn at batch 2^20, tiny chip" --config "$repo/configs/tiny.json" --trace "$repo/traces/tiny-cnn.json" --batch 1048576
measure "linear 65536^3, tiny chip" --config "$repo/configs/tiny.json" --trace "$work/linear65536.json"
measure "linear 65536^3, rapid 4 cores" --trace "$work/linear65536.json"
