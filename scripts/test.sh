#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite through ctest, in two builds:
#  build/           the release build: unit tests (GoogleTest), system tests (the CLI);
#  build-sanitize/  clang with AddressSanitizer + UndefinedBehaviorSanitizer: the system
#                   tests again on that CLI (but the timing-model properties), and every
#                   libFuzzer harness replaying its regression corpus (tests/fuzz/regression).
# Arguments go to both ctest runs (e.g. -R cli).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"

"$repo/scripts/setup.sh" "$repo/build"
(cd "$repo/build" && ctest --output-on-failure -j "$jobs" "$@")

echo "test: sanitizer build (clang, ASan + UBSan) in build-sanitize/" >&2
"$repo/scripts/setup.sh" --sanitize "$repo/build-sanitize"
# The timing-model properties (more hardware is never slower) are checked by the
# release run; under the sanitizers they would only repeat the same CLI paths, slowly.
(cd "$repo/build-sanitize" && ctest --output-on-failure -j "$jobs" -E '^system[.]properties[.]' "$@")
