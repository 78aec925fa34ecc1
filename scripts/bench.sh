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

# ---- The issue's other targets, same run: load time and memory, resolution scaling, GEMM microbenchmark ----
if [ "${TARGETS:-1}" = 1 ]; then
  TOUT="${OUT%.jsonl}_targets.jsonl"
  : > "$TOUT"
  for i in 1 2 3 4 5; do  # load: a fresh process each time (warm page cache), forward barely run
    "$ROOT/build/vtx" bench "$CKPT/vit-base-patch16-224" --iters 1 --warmup 0 --no-peak --json \
      | sed 's/^{/{"kind":"load","name":"vit-base-patch16-224",/' >> "$TOUT"
  done
  for q in int8 int4; do
    "$ROOT/build/vtx" bench "$CKPT/vit-base-patch16-224" --iters 1 --warmup 0 --no-peak --quantize $q --json \
      | sed 's/^{/{"kind":"load","name":"vit-base-patch16-224 ('$q' at load)",/' >> "$TOUT"
  done
  for hw in 224 518; do
    "$ROOT/build/vtx" bench "$CKPT/dinov2-small" --height $hw --width $hw --threads 2 --warmup 2 --iters 10 --json \
      | sed 's/^{/{"kind":"resolution","name":"dinov2-small",/' >> "$TOUT"
  done
  GEMM_JSON="${OUT%.jsonl}_gemm.json"
  if [ -x "$ROOT/build/bench/bench_gemm" ]; then
    "$ROOT/build/bench/bench_gemm" --benchmark_filter='BM_vtx/M:(197|257|1576|2056)/N:[0-9]+/K:[0-9]+/thr:[12]/ep:0' \
      --benchmark_format=json --benchmark_out="$GEMM_JSON" --benchmark_out_format=json > /dev/null 2>&1 || true
  fi
  TTABLE=$(node -e '
const fs=require("fs"); const rows=fs.readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse);
const med=a=>{const s=[...a].sort((x,y)=>x-y); return s.length%2?s[(s.length-1)/2]:(s[s.length/2-1]+s[s.length/2])/2;};
const out=[];
const f32=rows.filter(r=>r.kind==="load"&&r.quantization==="none");
out.push("| target | measured | goal |","|---|---:|---:|");
out.push(`| ViT-B/16 load (open, mmap, validate, pack), median of ${f32.length} processes | ${med(f32.map(r=>r.load_ms)).toFixed(0)} ms | <= 300 ms |`);
const r0=f32[0]; out.push(`| ViT-B/16 f32 peak RSS / steady RSS (weights + activations after a forward pass) | ${r0.peak_rss_mb.toFixed(0)} / ${r0.rss_steady_mb.toFixed(0)} MB = ${(r0.peak_rss_mb/r0.rss_steady_mb).toFixed(2)}x | <= 1.2x |`);
for (const r of rows.filter(r=>r.kind==="load"&&r.quantization!=="none"))
  out.push(`| ${r.name}: load, peak / steady RSS | ${r.load_ms.toFixed(0)} ms, ${r.peak_rss_mb.toFixed(0)} / ${r.rss_steady_mb.toFixed(0)} MB = ${(r.peak_rss_mb/r.rss_steady_mb).toFixed(2)}x | |`);
for (const r of rows.filter(r=>r.kind==="resolution"))
  out.push(`| DINOv2-S ${r.height}x${r.width} batch 1 (${(r.height/14)**2+1} tokens): median ${r.median_ms.toFixed(1)} ms | ${r.pct_peak.toFixed(0)}% of FMA peak | ${r.height===518?">= 75%":""} |`);
try { const g=JSON.parse(fs.readFileSync(process.argv[2],"utf8"));
  for (const b of g.benchmarks) { const m=b.name.match(/M:(\d+)\/N:(\d+)\/K:(\d+)\/thr:(\d)/);
    out.push(`| GEMM M=${m[1]} N=${m[2]} K=${m[3]}, ${m[4]} thread${m[4]==="1"?"":"s"} | ${b.pct_peak.toFixed(0)}% of FMA peak (${b.GFLOPS.toFixed(0)} GFLOP/s) | >= 85% |`); } } catch (e) {}
console.log(out.join("\n"));' "$TOUT" "$GEMM_JSON")
  echo "$TTABLE"
  if [ -f "$MD" ] && grep -q '<!-- targets:begin -->' "$MD"; then
    node -e '
const fs=require("fs"); const [md, stamp, table]=process.argv.slice(1); const s=fs.readFileSync(md,"utf8");
const a=s.indexOf("<!-- targets:begin -->"), b=s.indexOf("<!-- targets:end -->");
fs.writeFileSync(md, s.slice(0,a)+"<!-- targets:begin -->\n"+stamp+"\n\n"+table+"\n"+s.slice(b));' "$MD" "$STAMP; raw: \`${TOUT#$ROOT/}\`" "$TTABLE"
  fi
fi
