#!/usr/bin/env bash
# Installs lptsim's Debian packages (only those missing) and builds it.
# Usage: scripts/setup.sh [--sanitize] [--target T]... [build-dir]   (default: build/, or build-sanitize/)
#   --sanitize: clang with ASan + UBSan; builds the CLI, the system tests and the
#               libFuzzer harnesses (no GoogleTest executables, no benchmarks).
#   --target T: build only T (e.g. lptsim) instead of everything.
# Idempotent: with everything installed and built it checks the packages with
# one dpkg query and runs a no-op incremental build, printing nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sanitize=0
targets=()
while (($#)); do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --target) targets+=(--target "$2"); shift ;;
    *) break ;;
  esac
  shift
done
suffix=""
((sanitize)) && suffix=-sanitize
build="${1:-$repo/build$suffix}"

packages=(
  build-essential cmake pkg-config
  libsystemc-dev nlohmann-json3-dev libboost-dev libboost-program-options-dev
  libboost-mpi-dev libopenmpi-dev openmpi-bin
  libgtest-dev libbenchmark-dev libopenblas-dev libmpfr-dev librandom123-dev
  python3 python3-matplotlib python3-numpy
  python3-dev pybind11-dev python3-torch python3-sklearn
)
((sanitize)) && packages+=(clang libclang-rt-dev)

installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)"
missing=()
for p in "${packages[@]}"; do
  grep -q "^$p install ok installed$" <<<"$installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Configured once; later builds re-run CMake by themselves when a CMakeLists changes.
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  if ((sanitize)); then
    CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLPTSIM_SANITIZE=ON -DLPTSIM_BUILD_FUZZERS=ON -DLPTSIM_BUILD_UNIT_TESTS=OFF \
      -DLPTSIM_BUILD_BENCHMARKS=OFF >/dev/null
  else
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
fi
jobs="$(nproc 2>/dev/null || echo 2)"
# What is compiled shows as it goes; targets already up to date say nothing
# (pipefail, set above, keeps a failed build's status).
cmake --build "$build" -j "$jobs" "${targets[@]}" | { grep --line-buffered -v -e '] Built target ' -e '^Consolidate compiler' || true; }
