#!/bin/bash
# Configures and builds vtx. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
#   BUILD_DIR defaults to build/ (Release). build-asan/ style dirs: pass -DVTX_SANITIZE=ON.
#   Tests and benchmarks are on unless the extra args turn them off (scripts/demo.sh configures a fresh
#   build dir with -DVTX_BUILD_TESTS=OFF -DVTX_BUILD_BENCH=OFF; this turns them back on).
#   VTX_TARGETS="vtx_cli ..." builds only those ninja targets (default: all).
#   ccache is used when it is installed (CCACHE_BASEDIR makes hits work across checkouts).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"; shift || true
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$ROOT")}"
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVTX_BUILD_TESTS=ON -DVTX_BUILD_BENCH=ON "${LAUNCHER[@]}" "$@" >/dev/null
ninja -C "$BUILD" -j"$(nproc)" ${VTX_TARGETS:-}
