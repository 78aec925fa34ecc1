#!/bin/bash
# Sets up and runs the main job on a fresh Debian 12 machine: installs dependencies, builds vtx, then runs a
# golden checkpoint (hub layout) end to end: model info and one forward pass written to safetensors.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${VTX_SHARED_DIR:-$ROOT/../shared}"
bash "$ROOT/scripts/deps.sh"
bash "$ROOT/scripts/build.sh"
VTX="$ROOT/build/vtx"
OUT="${TMPDIR:-/tmp}/vtx-demo"
mkdir -p "$OUT"
"$VTX" info "$SHARED/golden/models/dinov2-reg-cls"
"$VTX" run "$SHARED/golden/models/dinov2-reg-cls" --pixel-values "$SHARED/golden/cases/reg-cls.safetensors:pixel_values" \
  --out "$OUT/reg-cls-out.safetensors" --hidden-states
echo "demo: outputs written to $OUT/reg-cls-out.safetensors"
