#!/usr/bin/env bash
# Fuzzes lptsim's readers with libFuzzer (clang, ASan + UBSan): the config, chip,
# trace and SCALE-Sim readers through workload expansion and mapping, and the
# `numerics convert` parser (tests/fuzz/*_fuzz.cpp).
#
# Usage: scripts/fuzz.sh [RUNS] [HARNESS...]
#   RUNS     executions per harness (default 1000000)
#   HARNESS  any of: config chip trace scalesim numerics_convert (default: all)
#
# Seeds are the shipped files (configs with their chip inlined, chip descriptions,
# the traces of up to 8 KiB, the fuzzer's input size limit, a SCALE-Sim topology,
# format names) plus the regression corpus; the
# growing corpus stays in build-sanitize/fuzz-corpus/. An input that fails is
# written to tests/fuzz/regression/HARNESS/: fix the cause and commit the input,
# which `scripts/test.sh` then replays on every run. Prints one line per harness
# with its execution count.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-1000000}"
shift || true
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(config chip trace scalesim numerics_convert)

build="$repo/build-sanitize"
"$repo/scripts/setup.sh" --sanitize "$build" >/dev/null

seeds="$(mktemp -d)"  # per run, so that runs of different harnesses can go side by side
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{config,chip,trace,scalesim,numerics_convert}
/usr/bin/python3 - "$repo" "$seeds" <<'PY'
import json, os, sys
repo, seeds = sys.argv[1], sys.argv[2]
configs = os.path.join(repo, "configs")
for name in sorted(os.listdir(configs)):
    with open(os.path.join(configs, name)) as f:
        doc = json.load(f)
    if "chip" in doc:  # a config: inline its chip description
        if isinstance(doc["chip"], str):
            with open(os.path.join(configs, doc["chip"])) as f:
                doc["chip"] = json.load(f)
        target = "config"
    else:
        target = "chip"
    with open(os.path.join(seeds, target, name), "w") as f:
        json.dump(doc, f, indent=1)
for name in sorted(os.listdir(os.path.join(repo, "traces"))):
    with open(os.path.join(repo, "traces", name)) as src:
        text = src.read()
    if len(text) <= 8192:  # the fuzzer's -max_len: larger networks only add mapping time
        with open(os.path.join(seeds, "trace", name), "w") as dst:
            dst.write(text)
with open(os.path.join(seeds, "scalesim", "net.csv"), "w") as f:
    f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
            "Conv1, 32, 32, 3, 3, 3, 16, 1,\nConv2, 16, 16, 3, 3, 16, 32, 2, 1,\n")
with open(os.path.join(seeds, "scalesim", "gemm.csv"), "w") as f:
    f.write("Layer, M, N, K\nfc1, 64, 128, 256\nfc2, 64, 10, 128,\n")
for i, fmt in enumerate(["fp8_e4m3", "hfp8_e5m2", "fp4_radix4", "int8",
                         '{"exponent_bits": 4, "mantissa_bits": 3, "bias": 7}']):
    with open(os.path.join(seeds, "numerics_convert", f"seed{i}.txt"), "w") as f:
        f.write(fmt + "\n0.3\n-1e-5\n0x1.8p-3\n65504\nnan\n")
PY

export LPTSIM_SOURCE_DIR="$repo"
for name in "${harnesses[@]}"; do
  corpus="$build/fuzz-corpus/$name"
  regression="$repo/tests/fuzz/regression/$name"
  mkdir -p "$corpus" "$regression"
  log="$build/fuzz-$name.log"
  echo "fuzz: $name, $runs runs (log: $log)" >&2
  if "$build/tests/fuzz/${name}_fuzz" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="$regression/" "$corpus" "$seeds/$name" "$regression" \
      >"$log" 2>&1; then
    echo "fuzz: $name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') executions, no finding"
  else
    echo "fuzz: $name: FINDING (see $log; the input is in $regression)"
    exit 1
  fi
done
