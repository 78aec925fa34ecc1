#!/bin/bash
# The whole test suite: installs dependencies, builds (Release) and runs every test with ctest.
#   scripts/test.sh            Release build in build/
#   scripts/test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
# Golden data: $VTX_SHARED_DIR, default ../shared next to the repository (tests fail if it is missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/deps.sh"
if [ "${1:-}" = "--asan" ]; then
  BUILD="$ROOT/build-asan"
  bash "$ROOT/scripts/build.sh" "$BUILD" -DVTX_SANITIZE=ON -DVTX_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
  BUILD="$ROOT/build"
  bash "$ROOT/scripts/build.sh" "$BUILD" -DVTX_PYTHON=ON
fi
cd "$BUILD"
rm -rf tests/trained_accuracy
status=0
ctest --output-on-failure -j2 --timeout 900 || status=$?
# The accuracy tables of the trained models (tests/test_trained_accuracy.cpp), so that the log shows them.
if compgen -G "tests/trained_accuracy/*.txt" > /dev/null; then
  echo "== accuracy on the Fashion-MNIST test images, every model and precision (TrainedAccuracy) =="
  cat tests/trained_accuracy/*.txt
fi
exit $status
