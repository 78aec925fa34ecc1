#!/bin/bash
# Installs vtx's build and test dependencies on Debian 12 (apt-get; sudo when not root). Idempotent.
#   scripts/deps.sh --core   without the test / benchmark / Python-module packages (what scripts/demo.sh installs)
set -euo pipefail
PKGS="g++ cmake ninja-build pkg-config nlohmann-json3-dev libjpeg62-turbo-dev libpng-dev libwebp-dev"
PKGS="$PKGS libcurl4-openssl-dev"   # hub downloads (src/io/hub_http.cpp)
PKGS="$PKGS libboost-dev"  # vtx serve: Boost.Beast/Asio (header-only)
# Only the tests, the benchmarks and optional targets need these (add a library / CLI / configure dependency to
# PKGS above):
TEST_PKGS="libgtest-dev libgmock-dev libbenchmark-dev"
TEST_PKGS="$TEST_PKGS clang libclang-rt-14-dev"  # libFuzzer targets (scripts/fuzz.sh, VTX_FUZZ)
TEST_PKGS="$TEST_PKGS pybind11-dev python3-dev python3-numpy python3-pil python3-pytest python3-dask python3-distributed python3-setuptools python3-wheel python3-pip python3-venv"  # Python module (tools/python)
[ "${1:-}" = "--core" ] || PKGS="$PKGS $TEST_PKGS"
missing=()
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "deps.sh: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
