#!/usr/bin/env bash
# Runs a libFuzzer harness once on every file of a corpus directory; fails if
# any input crashes, trips a sanitizer or times out (10 s), or if the
# directory holds no input (a replay of nothing would prove nothing).
# Usage: replay.sh HARNESS DIR
set -euo pipefail
harness="$1" dir="$2"
mapfile -t inputs < <(find "$dir" -type f ! -name '*.md' | sort)
if ((${#inputs[@]} == 0)); then
  echo "replay: no inputs in $dir" >&2
  exit 1
fi
"$harness" -timeout=10 -rss_limit_mb=2048 "${inputs[@]}" 2>&1 | grep -v '^Running: \|^Executed ' || true
status=${PIPESTATUS[0]}
echo "replay: ${#inputs[@]} inputs of $(basename "$dir"), exit $status"
exit "$status"
