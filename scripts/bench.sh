#!/bin/bash
# Regenerates the vtx vs ONNX Runtime table of BENCHMARK.md in one run on this machine.
#   scripts/bench.sh [OUT.jsonl]
# Needs ../shared/bench (the ORT kit). Sets the kit up in $ORT_DIR (default /tmp/vtx-ort) when missing, writes
# random hub-layout checkpoints of the same four architectures for vtx (make_checkpoint.py, F32), then for each
# model and batch runs ONNX Runtime and vtx back to back: 2 threads, 224x224, same warm-up and iteration counts
# (batch 1: 5 + 30, batch 8: 2 + 10), forward pass only, median. Reduced-precision vtx rows (int8 at batch 8,
# int4 / f16 / int8 at batch 1) are compared with the ORT fp32 run of the same model and batch.
# The table replaces the part of BENCHMARK.md between the bench:begin / bench:end markers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${VTX_SHARED_DIR:-$ROOT/../shared}/bench"
ORT_DIR="${ORT_DIR:-/tmp/vtx-ort}"
CKPT="${VTX_BENCH_CKPT:-/tmp/vtx-bench-ckpt}"
OUT="${1:-$ROOT/bench/results/bench_$(date +%Y%m%d_%H%M%S).jsonl}"
MODELS="${MODELS:-vit-base-patch16-224 dinov2-small dinov2-base dinov2-small-reg}"
BATCHES="${BATCHES:-1 8}"
QUANT="${QUANT:-vit-base-patch16-224:8:int8 dinov2-small:8:int8 vit-base-patch16-224:1:int8 dinov2-small:1:int8 vit-base-patch16-224:1:int4 dinov2-small:1:int4 vit-base-patch16-224:1:f16 dinov2-small:1:f16}"
mkdir -p "$(dirname "$OUT")"
[ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] || bash "$KIT/setup.sh" "$ORT_DIR"
[ -x "$ROOT/build/vtx" ] || bash "$ROOT/scripts/build.sh"
for m in $MODELS; do
  [ -f "$CKPT/$m/model.safetensors" ] || "${PYTHON:-/usr/bin/python3}" "$KIT/make_checkpoint.py" "$KIT/$m" "$CKPT/$m" >/dev/null
done
iters() { if [ "$1" = 1 ]; then echo "--warmup 5 --iters 30"; else echo "--warmup 2 --iters 10"; fi; }
vtx_run() {  # model batch precision
  local flags=""
  case "$3" in f32) ;; f16|bf16) flags="--dtype $3" ;; *) flags="--quantize $3" ;; esac
  "$ROOT/build/vtx" bench "$CKPT/$1" --batch "$2" --threads 2 --height 224 --width 224 $(iters "$2") $flags --json \
    | sed 's/^{/{"engine":"vtx","name":"'"$1"'","precision":"'"$3"'",/' >> "$OUT"
}
: > "$OUT"
for b in $BATCHES; do
  for m in $MODELS; do
    ORT_DIR="$ORT_DIR" node "$KIT/ort_bench.mjs" --model "$ORT_DIR/models/$m-224.onnx" --batch "$b" --threads 2 $(iters "$b") \
      --json | grep '^{' | sed 's/^{/{"engine":"ort","name":"'"$m"'",/' >> "$OUT"
    vtx_run "$m" "$b" f32
    for q in $QUANT; do
      IFS=: read -r qm qb qp <<< "$q"
      if [ "$qm" = "$m" ] && [ "$qb" = "$b" ]; then vtx_run "$m" "$b" "$qp"; fi
    done
  done
done
TABLE=$(node -e '
const fs=require("fs"); const rows=fs.readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse);
const ort={}; for (const r of rows) if (r.engine==="ort") ort[r.name+"/"+r.batch]=r;
const out=[];
out.push("| model | batch | vtx precision | ORT fp32 median ms | vtx median ms | speed-up vs ORT | vtx img/s | vtx GFLOP/s | % of FMA peak | vtx peak RSS MB |");
out.push("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
for (const v of rows) { if (v.engine!=="vtx") continue; const o=ort[v.name+"/"+v.batch]; if(!o) continue;
  out.push(`| ${v.name} | ${v.batch} | ${v.precision} | ${o.median_ms.toFixed(1)} | ${v.median_ms.toFixed(1)} | **${(o.median_ms/v.median_ms).toFixed(2)}x** | ${v.images_per_s_at_median.toFixed(2)} | ${v.gflops_at_median.toFixed(0)} | ${v.pct_peak.toFixed(0)}% | ${v.peak_rss_mb.toFixed(0)} |`); }
console.log(out.join("\n"));' "$OUT")
STAMP="Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg); raw: \`${OUT#$ROOT/}\`"
echo "$STAMP"; echo "$TABLE"
MD="$ROOT/BENCHMARK.md"
if [ -f "$MD" ] && grep -q '<!-- bench:begin -->' "$MD"; then
  node -e '
const fs=require("fs"); const [md, stamp, table]=process.argv.slice(1); const s=fs.readFileSync(md,"utf8");
const a=s.indexOf("<!-- bench:begin -->"), b=s.indexOf("<!-- bench:end -->");
fs.writeFileSync(md, s.slice(0,a)+"<!-- bench:begin -->\n"+stamp+"\n\n"+table+"\n"+s.slice(b));' "$MD" "$STAMP" "$TABLE"
  echo "updated $MD"
fi
