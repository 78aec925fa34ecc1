#!/bin/bash
# Regenerates the vtx vs ONNX Runtime table of BENCHMARK.md in one run on this machine.
#   scripts/bench.sh [OUT.jsonl]
# Needs ../shared/bench (the ORT kit). Sets the kit up in $ORT_DIR (default /tmp/vtx-ort) when missing, writes
# random hub-layout checkpoints of the same four architectures for vtx (make_checkpoint.py, F32), then for each
# model and batch runs ONNX Runtime and vtx back to back: 2 threads, 224x224, same warm-up and iteration counts
# (batch 1: 5 + 30, batch 8: 2 + 10), forward pass only, median. Prints a markdown table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${VTX_SHARED_DIR:-$ROOT/../shared}/bench"
ORT_DIR="${ORT_DIR:-/tmp/vtx-ort}"
CKPT="${VTX_BENCH_CKPT:-/tmp/vtx-bench-ckpt}"
OUT="${1:-$ROOT/bench/results/bench_$(date +%Y%m%d_%H%M%S).jsonl}"
MODELS="${MODELS:-vit-base-patch16-224 dinov2-small dinov2-base dinov2-small-reg}"
BATCHES="${BATCHES:-1 8}"
mkdir -p "$(dirname "$OUT")"
[ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] || bash "$KIT/setup.sh" "$ORT_DIR"
[ -x "$ROOT/build/vtx" ] || bash "$ROOT/scripts/build.sh"
for m in $MODELS; do
  [ -f "$CKPT/$m/model.safetensors" ] || "${PYTHON:-/usr/bin/python3}" "$KIT/make_checkpoint.py" "$KIT/$m" "$CKPT/$m" >/dev/null
done
: > "$OUT"
for b in $BATCHES; do
  if [ "$b" = 1 ]; then W=5; I=30; else W=2; I=10; fi
  for m in $MODELS; do
    ORT_DIR="$ORT_DIR" node "$KIT/ort_bench.mjs" --model "$ORT_DIR/models/$m-224.onnx" --batch "$b" --threads 2 \
      --warmup $W --iters $I --json | sed 's/^/{"engine":"ort",/; s/^{"engine":"ort",{/{"engine":"ort",/' >> "$OUT"
    "$ROOT/build/vtx" bench "$CKPT/$m" --batch "$b" --threads 2 --height 224 --width 224 --warmup $W --iters $I --json \
      | sed 's/^{/{"engine":"vtx","name":"'"$m"'",/' >> "$OUT"
  done
done
node -e '
const fs=require("fs"); const rows=fs.readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse);
const ort={}, vtx={};
for (const r of rows) { if (r.engine==="ort") ort[require("path").basename(r.model).replace("-224.onnx","")+"/"+r.batch]=r;
                        else vtx[r.name+"/"+r.batch]=r; }
console.log("| model | batch | ORT median ms | vtx median ms | vtx / ORT speed-up | vtx img/s | vtx GFLOP/s | % of FMA peak |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const k of Object.keys(vtx)) { const v=vtx[k], o=ort[k]; if(!o) continue;
  console.log(`| ${v.name} | ${v.batch} | ${o.median_ms.toFixed(1)} | ${v.median_ms.toFixed(1)} | ${(o.median_ms/v.median_ms).toFixed(2)}x | ${v.images_per_s_at_median.toFixed(2)} | ${v.gflops_at_median.toFixed(0)} | ${v.pct_peak.toFixed(0)}% |`); }
' "$OUT"
echo "raw results: $OUT"
