#!/usr/bin/python3
"""vtx from Python vs `vtx bench`: forward-pass throughput at the same batch, threads and iteration counts.

    PYTHONPATH=build/python /usr/bin/python3 tools/python/bench_python.py [--models dinov2-small vit-base-patch16-224]
        [--batch 8] [--threads 2] [--warmup 2] [--iters 10] [--rounds 3] [--vtx build/vtx] [--ckpt /tmp/vtx-bench-ckpt]

The checkpoints are the random hub-layout folders of ../shared/bench/make_checkpoint.py (written when missing;
that script needs Debian's python3-onnx), the same folders scripts/bench.sh uses. Each round runs
`vtx bench MODEL --batch B --threads T --warmup W --iters N --json` in a fresh process, then the same number of
warm-up and timed calls of `model(pixel_values)` in this process (vtx.AutoModel, float32 C-contiguous input, so
no input copy; outputs are handed over without a copy); the two alternate round by round so both see the same
machine state. Reported: the median of each round and the ratio Python / CLI of the medians of the round
medians. Where torch + transformers are importable it also times transformers' eager model on the same folder
(optional; not on these machines).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def ensure_checkpoint(kit, name, ckpt_root):
    out = os.path.join(ckpt_root, name)
    if not os.path.isfile(os.path.join(out, "model.safetensors")):  # make_checkpoint.py needs python3-onnx
        subprocess.run(["/usr/bin/python3", os.path.join(kit, "make_checkpoint.py"), os.path.join(kit, name), out],
                       check=True, stdout=subprocess.DEVNULL)
    return out


def cli_bench(vtx_cli, folder, a):
    r = subprocess.run([vtx_cli, "bench", folder, "--batch", str(a.batch), "--threads", str(a.threads), "--height", "224",
                        "--width", "224", "--warmup", str(a.warmup), "--iters", str(a.iters), "--json"],
                       check=True, capture_output=True, text=True)
    line = next(l for l in r.stdout.splitlines() if l.startswith("{"))
    return json.loads(line)["median_ms"]


def python_bench(model, pv, a):
    for _ in range(a.warmup):
        model(pv)
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        model(pv)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def torch_bench(folder, pv, a):
    try:
        import torch
        import transformers
    except ImportError:
        return None
    torch.set_num_threads(a.threads)
    m = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    x = torch.from_numpy(pv)
    with torch.inference_mode():
        for _ in range(a.warmup):
            m(pixel_values=x)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            m(pixel_values=x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["dinov2-small", "vit-base-patch16-224"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--vtx", default=os.path.join(ROOT, "build", "vtx"))
    p.add_argument("--ckpt", default=os.environ.get("VTX_BENCH_CKPT", "/tmp/vtx-bench-ckpt"))
    p.add_argument("--kit", default=os.path.join(os.environ.get("VTX_SHARED_DIR", os.path.join(ROOT, "..", "shared")), "bench"))
    p.add_argument("--json", action="store_true", help="also print one JSON line per model")
    a = p.parse_args()

    # this script's folder holds the vtx sources without the extension: import the built package instead
    sys.path[:] = [q for q in sys.path if os.path.abspath(q or ".") != HERE]
    import vtx
    vtx.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    pv = rng.standard_normal((a.batch, 3, 224, 224), dtype=np.float32)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"# vtx from Python vs vtx bench: batch {a.batch}, {a.threads} threads, 224x224, {a.warmup} warm-up + "
          f"{a.iters} timed, {a.rounds} interleaved rounds; load average before: {load}")
    print("| model | round medians `vtx bench` ms | round medians Python ms | CLI img/s | Python img/s | Python / CLI time |")
    print("|---|---|---|---:|---:|---:|")
    for name in a.models:
        folder = ensure_checkpoint(a.kit, name, a.ckpt)
        model = vtx.AutoModel.from_pretrained(folder)
        cli_ms, py_ms = [], []
        for _ in range(a.rounds):
            cli_ms.append(cli_bench(a.vtx, folder, a))
            py_ms.append(python_bench(model, pv, a))
        c, q = statistics.median(cli_ms), statistics.median(py_ms)
        print(f"| {name} | {' / '.join(f'{x:.0f}' for x in cli_ms)} | {' / '.join(f'{x:.0f}' for x in py_ms)} | "
              f"{a.batch / c * 1e3:.2f} | {a.batch / q * 1e3:.2f} | **{q / c:.3f}** |")
        t = torch_bench(folder, pv, a)
        if t is not None:
            print(f"| {name} (torch eager, transformers) | | {t:.0f} | | {a.batch / t * 1e3:.2f} | {t / c:.3f} |")
        if a.json:
            print(json.dumps({"name": name, "batch": a.batch, "threads": a.threads, "cli_ms": cli_ms, "python_ms": py_ms,
                              "torch_ms": t}))
        del model
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\ntorch eager: not measured (torch / transformers not importable by this interpreter)")


if __name__ == "__main__":
    sys.exit(main())
