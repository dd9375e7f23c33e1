#!/usr/bin/env bash
# Installs lptsim's Debian packages (only those missing) and builds it.
# Usage: scripts/setup.sh [build-dir]   (default: build/)
# Idempotent: with everything installed and built, it only runs an incremental build.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"

packages=(
  build-essential cmake pkg-config
  libsystemc-dev nlohmann-json3-dev libboost-dev libboost-program-options-dev
  libgtest-dev libbenchmark-dev libmpfr-dev librandom123-dev
  python3 python3-matplotlib python3-numpy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$jobs"
