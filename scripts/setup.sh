#!/usr/bin/env bash
# Installs lptsim's Debian packages (only those missing) and builds it.
# Usage: scripts/setup.sh [--sanitize] [build-dir]   (default: build/, or build-sanitize/)
#   --sanitize: clang with ASan + UBSan; builds the CLI, the system tests and the
#               libFuzzer harnesses (no GoogleTest executables, no benchmarks).
# Idempotent: with everything installed and built, it only runs an incremental build.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sanitize=0
if [[ "${1:-}" == "--sanitize" ]]; then
  sanitize=1
  shift
fi
build="${1:-$repo/build$( ((sanitize)) && echo -sanitize)}"

packages=(
  build-essential cmake pkg-config
  libsystemc-dev nlohmann-json3-dev libboost-dev libboost-program-options-dev
  libgtest-dev libbenchmark-dev libmpfr-dev librandom123-dev
  python3 python3-matplotlib python3-numpy
)
((sanitize)) && packages+=(clang libclang-rt-dev)

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
if ((sanitize)); then
  CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLPTSIM_SANITIZE=ON -DLPTSIM_BUILD_FUZZERS=ON -DLPTSIM_BUILD_UNIT_TESTS=OFF \
    -DLPTSIM_BUILD_BENCHMARKS=OFF >/dev/null
else
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j "$jobs"
