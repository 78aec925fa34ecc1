#!/bin/bash
# Regenerates the vtx vs ONNX Runtime table of BENCHMARK.md in one run on this machine.
#   scripts/bench.sh [OUT.jsonl]
# Needs ../shared/bench (the ORT kit). Sets the kit up in $ORT_DIR (default /tmp/vtx-ort) when missing, writes
# random hub-layout checkpoints of the same four architectures for vtx (make_checkpoint.py, F32), then for each
# model and batch runs ONNX Runtime and vtx back to back: 2 threads, 224x224, same warm-up and iteration counts
# (batch 1: 5 + 30, batch 8: 2 + 10), forward pass only, median. Reduced-precision vtx rows (int8 at batch 8,
# int4 / f16 / int8 at batch 1) are compared with the ORT fp32 run of the same model and batch; int8 rows also
# with ORT's own dynamic int8 graph (<name>-224-int8.onnx, per-tensor: the quantize_dynamic default) run in the
# same loop. On an AVX-512 machine the "f32 avx2" / "int8 avx2" rows are vtx with VTX_DISABLE_AVX512=1 (its AVX2
# path) against ORT as it runs here (with AVX-512); where the CPU has AVX512-BF16 and `vtx bench` has
# --compute, "bf16c" rows run the encoder linears in bf16 (--compute bf16). Then the attention kernel
# (bench_attention at 197/257/1370 tokens, % of the FMA peak).
# ROUNDS (default 3) repeats the whole loop; each row is the median over the rounds. The table replaces the part of
# BENCHMARK.md between the bench:begin / bench:end markers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${VTX_SHARED_DIR:-$ROOT/../shared}/bench"
ORT_DIR="${ORT_DIR:-/tmp/vtx-ort}"
CKPT="${VTX_BENCH_CKPT:-/tmp/vtx-bench-ckpt}"
OUT="${1:-$ROOT/bench/results/bench_$(date +%Y%m%d_%H%M%S).jsonl}"
MODELS="${MODELS:-vit-base-patch16-224 dinov2-small dinov2-base dinov2-small-reg}"
BATCHES="${BATCHES:-1 8}"
QUANT="${QUANT:-vit-base-patch16-224:8:int8 dinov2-small:8:int8 vit-base-patch16-224:1:int8 dinov2-small:1:int8 vit-base-patch16-224:1:int4 dinov2-small:1:int4 vit-base-patch16-224:1:f16 dinov2-small:1:f16}"
ORT_INT8="${ORT_INT8:-vit-base-patch16-224 dinov2-small}"   # models whose ORT dynamic-int8 graph is run too
HAS_AVX512=0; grep -qw avx512f /proc/cpuinfo && HAS_AVX512=1
HAS_BF16C=0
# (vtx bench without a model prints its usage and exits 1: capture it first, as pipefail would fail the pipeline)
BENCH_USAGE="$("$ROOT/build/vtx" bench 2>&1 || true)"
if grep -qw avx512_bf16 /proc/cpuinfo && [[ "$BENCH_USAGE" == *--compute* ]]; then HAS_BF16C=1; fi
ISA="$(if [ $HAS_AVX512 = 1 ]; then echo "AVX-512 ($(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | sed 's/avx512_\?//' | tr '\n' ' ' | sed 's/ $//'))"; else echo "AVX2 (no AVX-512)"; fi)"
mkdir -p "$(dirname "$OUT")"
[ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] || bash "$KIT/setup.sh" "$ORT_DIR"
[ -x "$ROOT/build/vtx" ] || bash "$ROOT/scripts/build.sh"
for m in $MODELS; do
  [ -f "$CKPT/$m/model.safetensors" ] || "${PYTHON:-/usr/bin/python3}" "$KIT/make_checkpoint.py" "$KIT/$m" "$CKPT/$m" >/dev/null
done
iters() { if [ "$1" = 1 ]; then echo "--warmup 5 --iters 30"; else echo "--warmup 2 --iters 10"; fi; }
vtx_run() {  # model batch precision [avx2]
  local flags="" env=() label="$3"
  case "$3" in f32) ;; f16|bf16) flags="--dtype $3" ;; bf16c) flags="--compute bf16" ;; *) flags="--quantize $3" ;; esac
  if [ "${4:-}" = avx2 ]; then env=(VTX_DISABLE_AVX512=1); label="$3 avx2"; fi
  env "${env[@]}" "$ROOT/build/vtx" bench "$CKPT/$1" --batch "$2" --threads 2 --height 224 --width 224 $(iters "$2") $flags --json \
    | sed 's/^{/{"engine":"vtx","name":"'"$1"'","precision":"'"$label"'",/' >> "$OUT"
}
ort_run() {  # model batch engine-label graph-suffix
  ORT_DIR="$ORT_DIR" node "$KIT/ort_bench.mjs" --model "$ORT_DIR/models/$1-224$4.onnx" --batch "$2" --threads 2 $(iters "$2") \
    --json | grep '^{' | sed 's/^{/{"engine":"'"$3"'","name":"'"$1"'",/' >> "$OUT"
}
ROUNDS="${ROUNDS:-3}"  # the whole loop this many times; the table shows the median over the rounds
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
: > "$OUT"
for round in $(seq "$ROUNDS"); do
for b in $BATCHES; do
  for m in $MODELS; do
    ort_run "$m" "$b" ort ""
    vtx_run "$m" "$b" f32
    [ $HAS_AVX512 = 0 ] || vtx_run "$m" "$b" f32 avx2
    [ $HAS_BF16C = 0 ] || vtx_run "$m" "$b" bf16c
    for q in $QUANT; do
      IFS=: read -r qm qb qp <<< "$q"
      if [ "$qm" = "$m" ] && [ "$qb" = "$b" ]; then
        vtx_run "$m" "$b" "$qp"
        if [ "$qp" = int8 ] && [ $HAS_AVX512 = 1 ]; then vtx_run "$m" "$b" int8 avx2; fi
      fi
    done
    if [[ " $ORT_INT8 " == *" $m "* ]] && [ -f "$ORT_DIR/models/$m-224-int8.onnx" ]; then ort_run "$m" "$b" ort-int8 -int8; fi
  done
done
done
TABLE=$(node -e '
const fs=require("fs"); const all=fs.readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse);
// One row per engine/model/batch/precision: the round whose median is the median over the rounds.
const med=a=>{const s=[...a].sort((x,y)=>x.median_ms-y.median_ms); return s[(s.length-1)>>1];};
const groups=new Map(); for (const r of all) { const k=[r.engine,r.name,r.batch,r.precision||""].join("/");
  if (!groups.has(k)) groups.set(k,[]); groups.get(k).push(r); }
const rows=[...groups.values()].map(g=>Object.assign({}, med(g), {rounds:g.length}));
const ort={}, q8={}; for (const r of rows) { if (r.engine==="ort") ort[r.name+"/"+r.batch]=r; if (r.engine==="ort-int8") q8[r.name+"/"+r.batch]=r; }
const out=[];
out.push("| model | batch | vtx precision | ORT fp32 median ms | vtx median ms | speed-up vs ORT fp32 | ORT int8 median ms | speed-up vs ORT int8 | vtx img/s | vtx GFLOP/s | % of FMA peak | vtx peak RSS MB |");
out.push("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const v of rows) { if (v.engine!=="vtx") continue; const k=v.name+"/"+v.batch, o=ort[k]; if(!o) continue;
  const i8=v.precision.startsWith("int8")?q8[k]:null;
  out.push(`| ${v.name} | ${v.batch} | ${v.precision} | ${o.median_ms.toFixed(1)} | ${v.median_ms.toFixed(1)} | **${(o.median_ms/v.median_ms).toFixed(2)}x** | ${i8?i8.median_ms.toFixed(1):""} | ${i8?"**"+(i8.median_ms/v.median_ms).toFixed(2)+"x**":""} | ${v.images_per_s_at_median.toFixed(2)} | ${v.gflops_at_median.toFixed(0)} | ${v.pct_peak.toFixed(0)}% | ${v.peak_rss_mb.toFixed(0)} |`); }
console.log(out.join("\n"));' "$OUT")
STAMP="Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p' | head -1), ISA $ISA, $(nproc) vCPUs, median over $ROUNDS rounds of the whole loop (interleaved), load average before: $LOAD_BEFORE; raw: \`${OUT#$ROOT/}\`"
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
  ATT_JSON="${OUT%.jsonl}_attention.json"
  if [ -x "$ROOT/build/bench/bench_attention" ]; then
    "$ROOT/build/bench/bench_attention" --benchmark_filter='BM_attention/B:1/T:(197|257|1370)/H:[0-9]+/dh:64/probs:0/thr:[12]' \
      --benchmark_format=json --benchmark_out="$ATT_JSON" --benchmark_out_format=json > /dev/null 2>&1 || true
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
try { const g=JSON.parse(fs.readFileSync(process.argv[3],"utf8"));
  for (const b of g.benchmarks) { const m=b.name.match(/T:(\d+)\/H:(\d+)\/dh:\d+\/probs:0\/thr:(\d)/); if (!m) continue;
    out.push(`| attention T=${m[1]} H=${m[2]} dh=64, ${m[3]} thread${m[3]==="1"?"":"s"} | ${b.pct_peak.toFixed(0)}% of FMA peak (${b.GFLOPS.toFixed(0)} GFLOP/s) | ${m[1]==="197"?"":">= 80%"} |`); } } catch (e) {}
console.log(out.join("\n"));' "$TOUT" "$GEMM_JSON" "$ATT_JSON")
  echo "$TTABLE"
  if [ -f "$MD" ] && grep -q '<!-- targets:begin -->' "$MD"; then
    node -e '
const fs=require("fs"); const [md, stamp, table]=process.argv.slice(1); const s=fs.readFileSync(md,"utf8");
const a=s.indexOf("<!-- targets:begin -->"), b=s.indexOf("<!-- targets:end -->");
fs.writeFileSync(md, s.slice(0,a)+"<!-- targets:begin -->\n"+stamp+"\n\n"+table+"\n"+s.slice(b));' "$MD" "$STAMP; raw: \`${TOUT#$ROOT/}\`" "$TTABLE"
  fi
fi
