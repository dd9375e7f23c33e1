#!/usr/bin/env bash
# Sets everything up, then simulates the default config on the default trace.
# Extra arguments go to `lptsim run` (e.g. --out DIR, --batch N, --phases fwd).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh" "$repo/build"
cd "$repo"
exec "$repo/build/sim/lptsim" run "$@"
