#!/bin/bash
# `vtx serve` throughput and latency (issue 12), regenerating the "HTTP server" section of BENCHMARK.md.
#   scripts/bench_serve.sh [OUT.jsonl]
# For each model (a golden-sized one and the ViT-B/16 and DINOv2-S bench checkpoints of ../shared/bench, made by
# make_checkpoint.py): starts `vtx serve MODEL --threads 2`, drives POST /predict with 640x480 JPEGs through wrk
# at concurrency 1, 8 and 32 (DUR seconds each, after a warm-up), reads the server's /metrics around each run
# (mean decode+preprocess time, mean batch size), then runs `vtx bench` on the same model at batch 1 and 8.
# ROUNDS (3) rounds are interleaved per model (all concurrencies, then `vtx bench` b1 and b8, then again), and the
# table gives the median of each number over the rounds, so that a noisy neighbour moves both sides of a ratio.
# Env: MODELS, CONC ("1 8 32"), DUR (20), ROUNDS (3), VTX_BENCH_CKPT (/tmp/vtx-bench-ckpt), WORK (/tmp/vtx-serve-bench),
#   RENDER_ONLY=1 (no measurement: rewrite the BENCHMARK.md section from an existing OUT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${VTX_SHARED_DIR:-$ROOT/../shared}"
KIT="$SHARED/bench"
CKPT="${VTX_BENCH_CKPT:-/tmp/vtx-bench-ckpt}"
WORK="${WORK:-/tmp/vtx-serve-bench}"
OUT="${1:-$ROOT/bench/results/serve_$(date +%Y%m%d_%H%M%S).jsonl}"
MODELS="${MODELS:-golden/vit-cls golden/dinov2 vit-base-patch16-224 dinov2-small}"
CONC="${CONC:-1 8 32}"
DUR="${DUR:-20}"
ROUNDS="${ROUNDS:-3}"
PY=/usr/bin/python3   # Debian's python3 (python3-pil)
VTX="$ROOT/build/vtx"
[ -x "$VTX" ] || bash "$ROOT/scripts/build.sh"
mkdir -p "$WORK" "$(dirname "$OUT")"
command -v wrk >/dev/null || { echo "bench_serve.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# 640x480 JPEGs (quality 90) from the two COCO photos, plus a 640x480 ImageNet JPEG as it is.
$PY - "$SHARED/images" "$WORK" <<'PYEOF'
import sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
for stem in ["000000039769", "000000004016"]:
    Image.open(f"{src}/coco/{stem}.png").convert("RGB").save(f"{out}/{stem}.jpg", quality=90)
PYEOF
cp "$SHARED/images/imagenet-more/n01983481_American_lobster.JPEG" "$WORK/lobster.jpg"
IMGS=("$WORK/000000039769.jpg" "$WORK/000000004016.jpg" "$WORK/lobster.jpg")

model_dir() {
  case "$1" in
    golden/*) echo "$SHARED/golden/models/${1#golden/}" ;;
    *) [ -f "$CKPT/$1/model.safetensors" ] || $PY "$KIT/make_checkpoint.py" "$KIT/$1" "$CKPT/$1" >/dev/null
       echo "$CKPT/$1" ;;
  esac
}
metric() {  # metrics-text name -> value
  awk -v n="$2" '$1 == n { print $2; exit }' <<< "$1"
}

if [ -z "${RENDER_ONLY:-}" ]; then  # RENDER_ONLY=1: only (re)write the table from an existing OUT
: > "$OUT"
for m in $MODELS; do
  dir="$(model_dir "$m")"
  log="$WORK/serve.log"
  "$VTX" serve "$dir" --name model --port 0 --threads 2 --max-queue 4096 --log-format none > "$WORK/ready" 2> "$log" &
  pid=$!
  for _ in $(seq 600); do grep -q listening "$WORK/ready" 2>/dev/null && break; sleep 0.1; done
  port="$(sed -n 's/.*:\([0-9]*\) (models.*/\1/p' "$WORK/ready")"
  [ -n "$port" ] || { echo "bench_serve.sh: vtx serve did not start; log:" >&2; cat "$log" >&2; kill $pid; exit 1; }
  url="http://127.0.0.1:$port"
  wrk -t2 -c8 -d3s --timeout 60s -s "$ROOT/bench/serve_wrk.lua" "$url" -- "${IMGS[@]}" > /dev/null  # warm-up
  for round in $(seq "$ROUNDS"); do
  for c in $CONC; do
    before="$(curl -s "$url/metrics")"
    t=$(( c < 2 ? 1 : 2 ))
    res="$(wrk -t$t -c$c -d${DUR}s --timeout 60s -s "$ROOT/bench/serve_wrk.lua" "$url" -- "${IMGS[@]}" | grep '^{')"
    after="$(curl -s "$url/metrics")"
    pre_s=$(awk -v a="$(metric "$after" 'vtx_request_duration_seconds_sum{stage="preprocess"}')" -v b="$(metric "$before" 'vtx_request_duration_seconds_sum{stage="preprocess"}')" 'BEGIN{print a-b}')
    pre_n=$(awk -v a="$(metric "$after" 'vtx_request_duration_seconds_count{stage="preprocess"}')" -v b="$(metric "$before" 'vtx_request_duration_seconds_count{stage="preprocess"}')" 'BEGIN{print a-b}')
    inf_s=$(awk -v a="$(metric "$after" 'vtx_request_duration_seconds_sum{stage="inference"}')" -v b="$(metric "$before" 'vtx_request_duration_seconds_sum{stage="inference"}')" 'BEGIN{print a-b}')
    bs_s=$(awk -v a="$(metric "$after" vtx_batch_size_sum)" -v b="$(metric "$before" vtx_batch_size_sum)" 'BEGIN{print a-b}')
    bs_n=$(awk -v a="$(metric "$after" vtx_batch_size_count)" -v b="$(metric "$before" vtx_batch_size_count)" 'BEGIN{print a-b}')
    load="$(cut -d' ' -f1 /proc/loadavg)"
    echo "${res%\}},\"kind\":\"serve\",\"round\":$round,\"model\":\"$m\",\"concurrency\":$c,\"preprocess_ms\":$(awk -v s="$pre_s" -v n="$pre_n" 'BEGIN{printf "%.3f", (n>0 ? 1000*s/n : 0)}'),\"inference_ms_per_batch\":$(awk -v s="$inf_s" -v n="$bs_n" 'BEGIN{printf "%.3f", (n>0 ? 1000*s/n : 0)}'),\"mean_batch\":$(awk -v s="$bs_s" -v n="$bs_n" 'BEGIN{printf "%.2f", (n>0 ? s/n : 0)}'),\"load1\":$load}" >> "$OUT"
    tail -1 "$OUT"
  done
  # The engine alone on the same model, while the (idle) server keeps its memory: the anchor of this round.
  for b in 1 8; do
    if [ "$b" = 1 ]; then it="--warmup 3 --iters 20"; else it="--warmup 1 --iters 6"; fi
    "$VTX" bench "$dir" --batch $b --threads 2 $it --json 2>/dev/null \
      | sed 's/^{/{"kind":"engine","round":'"$round"',"name":"'"${m//\//\\/}"'","load1":'"$(cut -d' ' -f1 /proc/loadavg)"',/' >> "$OUT"
    tail -1 "$OUT"
  done
  done
  kill -TERM $pid
  wait $pid || true
done

fi

# The BENCHMARK.md section (between the serve:begin / serve:end markers).
$PY - "$OUT" "$ROOT/BENCHMARK.md" <<'PYEOF'
import json, re, subprocess, sys
raw = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
def merge(group):  # the median of every number over the rounds; the other fields from the first round
    r = dict(group[0])
    for k, v in r.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "round":
            r[k] = median([g[k] for g in group])
    r["rounds"] = len(group)
    return r
groups = {}
for r in raw:
    key = ("serve", r["model"], r["concurrency"]) if r["kind"] == "serve" else ("engine", r["name"], r["batch"])
    groups.setdefault(key, []).append(r)
rows = [merge(g) for g in groups.values()]
for r in rows:  # requests/s as the median over the rounds (not requests over the median duration)
    if r["kind"] == "serve":
        r["rps"] = median([g["requests"] / g["duration_s"] for g in groups[("serve", r["model"], r["concurrency"])]])
eng = {(r["name"], r["batch"]): r for r in rows if r["kind"] == "engine"}  # ("model" is vtx bench's path)
nrounds = max(r["rounds"] for r in rows)
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
flags = open("/proc/cpuinfo").read()
isa = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "portable"
out = [f"Run of `scripts/bench_serve.sh` ({sys.argv[1].split('/')[-1]}): {cpu}, {isa}, "
       f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} vCPUs; `vtx serve --threads 2`, "
       f"wrk POSTing 640x480 JPEGs to /predict; median of {nrounds} interleaved round(s) (wrk at each concurrency, then "
       "`vtx bench` b1 and b8, per round); load1 is the 1-minute load average at the end of a run.", "",
       "| model | concurrency | requests/s | p50 ms | p99 ms | mean batch | decode+preprocess ms | vtx bench b8 images/s | ratio | load1 |",
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    if r["kind"] != "serve": continue
    e8 = eng.get((r["model"], 8))
    ips = r["rps"]
    b8 = e8["images_per_s_at_median"] if e8 else float("nan")
    bad = f" ({r['non2xx']} non-2xx, {r['socket_errors']} socket errors)" if r["non2xx"] or r["socket_errors"] else ""
    out.append(f"| {r['model']} | {r['concurrency']} | {ips:.1f}{bad} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_batch']:.2f} | "
               f"{r['preprocess_ms']:.1f} | {b8:.1f} | {ips / b8:.2f} | {r['load1']} |")
out += ["", "Latency target at concurrency 1: p50 <= batch-1 engine latency + decode/preprocess + 5 ms.", "",
        "| model | p50 ms (c=1) | vtx bench b1 median ms | decode+preprocess ms | bound ms | met |", "|---|---:|---:|---:|---:|---|"]
for r in rows:
    if r["kind"] != "serve" or r["concurrency"] != 1: continue
    e1 = eng.get((r["model"], 1))
    if not e1: continue
    bound = e1["median_ms"] + r["preprocess_ms"] + 5
    out.append(f"| {r['model']} | {r['p50_ms']:.1f} | {e1['median_ms']:.1f} | {r['preprocess_ms']:.1f} | {bound:.1f} | "
               f"{'yes' if r['p50_ms'] <= bound else 'no'} |")
text = open(sys.argv[2]).read()
block = "<!-- serve:begin -->\n" + "\n".join(out) + "\n<!-- serve:end -->"
if "<!-- serve:begin -->" in text:
    text = re.sub(r"<!-- serve:begin -->.*?<!-- serve:end -->", lambda _: block, text, flags=re.S)
else:
    text += "\n## HTTP server (`vtx serve`, issue 12)\n\n" + block + "\n"
open(sys.argv[2], "w").write(text)
print("\n".join(out))
PYEOF
