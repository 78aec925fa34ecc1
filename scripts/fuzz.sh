#!/bin/bash
# libFuzzer campaign over tests/fuzz (issue 16): builds the targets with clang and
# -fsanitize=fuzzer,address,undefined in build-fuzz/, seeds each corpus from tests/fuzz/seeds and the ../shared
# golden files and images (copied into build-fuzz/corpus at run time, never into the repository), runs every
# target with memory and time limits, and prints executions, coverage and crashes per target.
#   scripts/fuzz.sh [--smoke] [SECONDS_PER_TARGET] [TARGET...]
#     --smoke      CI: the default 60 s per target
#     SECONDS      time per target (default 60)
#     TARGET       safetensors config processor jpeg png webp bmp (default: all)
# A crash leaves its input in build-fuzz/artifacts/<target>/ and makes the script exit 1; fix it, then keep the
# input under tests/fuzz/regressions/<target>/ (the normal suite replays it: test_fuzz_regressions).
# Environment: VTX_SHARED_DIR (default ../shared), VTX_FUZZ_BUILD (default build-fuzz), VTX_FUZZ_RSS_MB (2048),
#   VTX_FUZZ_RUNS (stop a target after this many executions, or at SECONDS, whichever comes first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${VTX_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
BUILD="${VTX_FUZZ_BUILD:-$ROOT/build-fuzz}"
RSS_MB="${VTX_FUZZ_RSS_MB:-2048}"
RUNS=()
if [ -n "${VTX_FUZZ_RUNS:-}" ]; then
  [[ "$VTX_FUZZ_RUNS" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: VTX_FUZZ_RUNS must be a number, got '$VTX_FUZZ_RUNS'" >&2; exit 2; }
  RUNS=(-runs="$VTX_FUZZ_RUNS")
fi
SECS=60
[ "${1:-}" = "--smoke" ] && shift
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then SECS="$1"; shift; fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(safetensors config processor jpeg png webp bmp)
bash "$ROOT/scripts/deps.sh"
[ -d "$SHARED/golden" ] || { echo "fuzz.sh: $SHARED/golden not found (set VTX_SHARED_DIR)" >&2; exit 1; }

LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$ROOT")}"
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER=clang -DVTX_FUZZ=ON -DVTX_SANITIZE=ON -DVTX_BUILD_TESTS=OFF -DVTX_BUILD_BENCH=OFF \
  -DVTX_BUILD_CLI=OFF -DVTX_INSTALL=OFF -DVTX_SHARED_DIR="$SHARED" "${LAUNCHER[@]}" >/dev/null
ninja -C "$BUILD" $(printf 'fuzz_%s ' "${TARGETS[@]}")

# Seeds: committed small ones, plus (at run time) the shared files of each kind up to max_len bytes.
seed() {  # seed TARGET MAX_BYTES FIND_ARGS...
  local t="$1" max="$2"; shift 2
  local dir="$BUILD/corpus/$t"
  mkdir -p "$dir"
  cp -f "$ROOT/tests/fuzz/seeds/$t/"* "$dir/" 2>/dev/null || true
  # The list first, then the first 400 of it: `find | sort | head` would end sort with SIGPIPE, which pipefail
  # turns into the script's exit once there are more than 400 files (the trained PNGs).
  local files
  files="$(find "$@" -type f -size -"$((max / 1024 + 1))"k 2>/dev/null | sort)" || true
  [ -n "$files" ] || return 0
  local n=0
  while read -r f && [ $n -lt 400 ]; do
    cp -f "$f" "$dir/$(echo "$f" | md5sum | cut -c1-12)-$(basename "$f")"
    n=$((n + 1))
  done <<< "$files"
}
declare -A MAXLEN=([safetensors]=65536 [config]=8192 [processor]=4096 [jpeg]=131072 [png]=131072 [webp]=131072 [bmp]=65536)
for t in "${TARGETS[@]}"; do
  case "$t" in
    safetensors) seed "$t" 65536 "$SHARED/golden/models" -name '*.safetensors' ;;
    config) seed "$t" 8192 "$SHARED/golden/models" "$SHARED/golden-beit-dpt" -name config.json ;;
    processor) seed "$t" 4096 "$SHARED/golden" "$SHARED/golden-beit-dpt" "$SHARED/trained" -name preprocessor_config.json ;;
    jpeg) seed "$t" 131072 "$SHARED/images" \( -iname '*.jpg' -o -iname '*.jpeg' \) ;;
    png) seed "$t" 131072 "$SHARED/images" "$SHARED/trained" -maxdepth 3 -iname '*.png' ;;
    webp) seed "$t" 131072 "$SHARED/images" -iname '*.webp' ;;
    bmp) seed "$t" 65536 "$SHARED/images" -iname '*.bmp' ;;
    *) echo "fuzz.sh: unknown target $t" >&2; exit 2 ;;
  esac
done

export VTX_SHARED_DIR="$SHARED" VTX_NUM_THREADS=1
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
printf '%-12s %12s %10s %10s %8s %s\n' target executions exec/s coverage crashes corpus >"$BUILD/fuzz-summary.txt"
for t in "${TARGETS[@]}"; do
  art="$BUILD/artifacts/$t"
  mkdir -p "$art"
  log="$BUILD/fuzz-$t.log"
  set +e
  "$BUILD/tests/fuzz/fuzz_$t" "$BUILD/corpus/$t" -max_total_time="$SECS" -timeout=20 -rss_limit_mb="$RSS_MB" \
    -malloc_limit_mb="$RSS_MB" -max_len="${MAXLEN[$t]}" -print_final_stats=1 -artifact_prefix="$art/" "${RUNS[@]}" \
    >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  crashes=$(find "$art" -type f | wc -l)
  printf '%-12s %12s %10s %10s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$crashes" \
    "$(find "$BUILD/corpus/$t" -type f | wc -l)" | tee -a "$BUILD/fuzz-summary.txt"
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    echo "fuzz.sh: $t FAILED (exit $rc); log $log, inputs in $art" >&2
    grep -m5 -E 'ERROR|SUMMARY|runtime error|deadly|out-of-memory|timeout' "$log" >&2 || true
    status=1
  fi
done
cat "$BUILD/fuzz-summary.txt"
exit $status
