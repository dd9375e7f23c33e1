#!/usr/bin/env bash
# Sets everything up (builds only the lptsim CLI), then simulates the default
# config on the default trace. Extra arguments go to `lptsim run` (e.g. --out
# DIR, --batch N, --phases fwd); relative paths in them are the caller's.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh" --target lptsim "$repo/build"
exec "$repo/build/sim/lptsim" run "$@"
