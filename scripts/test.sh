#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite through ctest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh" "$repo/build"
jobs="$(nproc 2>/dev/null || echo 2)"
cd "$repo/build"
ctest --output-on-failure -j "$jobs" "$@"
