"""Scale-out on a Dask ``distributed`` cluster: embed a list of image files with vtx on every worker.

    from distributed import Client, LocalCluster
    import vtx.dask

    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        result = vtx.dask.embed_images(paths, "models/facebook-dinov2-small", "out/embeddings", client=client,
                                       pool="cls", threads_per_model=1)
    embeddings, files = vtx.dask.load_embeddings("out/embeddings")

How it works:

* ``paths`` (files every worker can read: a shared file system) are cut into shards of ``shard_size`` images in
  the given order. A dask.bag of the missing shards is processed with ``map_partitions``: each partition loads
  the model once per worker process (cached in the worker, keyed by folder and precision) and runs its shards
  ``batch_size`` images at a time; vtx releases the GIL, so a worker's threads run in parallel.
* Each shard is written as ``shard-<i>.npy`` (float32 [count, ...]) and then ``shard-<i>.json`` (its rows, the
  images that failed to decode -- their rows are NaN -- and timings), each atomically (temporary file, fsync,
  rename). ``index.json`` (model, pool, precision, shard size, every path in order, the shard list) is written
  atomically before the shards and rewritten with the embedding shape when all are done.
* Resumable by shard: a rerun with the same arguments computes only the shards whose ``.json`` is missing (a
  killed worker leaves no finished shard behind). A rerun with other arguments into the same folder is refused
  unless ``overwrite=True``.
"""
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._errors import FileError, InputError

FORMAT = "vtx-embeddings/1"

_cache_lock = threading.Lock()
_models: Dict[Tuple[str, str], Any] = {}
_threads_set: Optional[int] = None


@dataclass
class EmbedResult:
    out_dir: str
    index_path: str
    num_images: int
    num_shards: int
    computed: List[int] = field(default_factory=list)   # shards computed by this call
    skipped: List[int] = field(default_factory=list)    # shards already complete (resumed)
    failed: List[Dict[str, str]] = field(default_factory=list)  # images that could not be embedded


def _write_atomic(path: str, data: bytes) -> None:
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _npy_bytes(a: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}"


def _model_for(model_dir: str, opt: str, threads: Optional[int]):
    """The worker process's copy of the model and processor (loaded once per process)."""
    global _threads_set
    from . import _vtx
    from .processing import ImageProcessor
    with _cache_lock:
        if threads is not None and _threads_set != threads:
            _vtx.set_num_threads(int(threads))
            _threads_set = threads
        key = (model_dir, opt)
        if key not in _models:
            _models[key] = (_vtx.load_model(model_dir, opt), ImageProcessor.from_pretrained(model_dir))
        return _models[key]


def _embed_shard(spec: Dict[str, Any], model_dir: str, opt: str, pool: str, batch_size: int, out_dir: str,
                 threads: Optional[int]) -> Dict[str, Any]:
    from . import _vtx
    from .processing import to_rgb_array
    t0 = time.time()
    core, proc = _model_for(model_dir, opt, threads)
    paths = spec["paths"]
    rows: List[Optional[np.ndarray]] = [None] * len(paths)
    failed = []
    for b in range(0, len(paths), batch_size):
        idx, arrays = [], []
        for j in range(b, min(b + batch_size, len(paths))):
            try:
                arrays.append(_vtx.load_image(paths[j]))
                idx.append(j)
            except Exception as e:  # a bad image is recorded and skipped (NaN row), as the CLI does
                failed.append({"path": paths[j], "error": str(e)})
        if not arrays:
            continue
        pvs = proc(arrays, return_tensors=None)["pixel_values"]
        groups = [list(range(len(pvs)))] if all(p.shape == pvs[0].shape for p in pvs) else [[k] for k in range(len(pvs))]
        for g in groups:
            e = core.embed(np.stack([pvs[k] for k in g]), pool)
            for r, k in enumerate(g):
                rows[idx[k]] = e[r]
    shape = next((r.shape for r in rows if r is not None), None)
    if shape is None:
        raise FileError(f"{_shard_name(spec['shard'])}: no image of the shard could be read "
                        f"(first: {failed[0]['path']}: {failed[0]['error']})")
    out = np.full((len(paths),) + tuple(shape), np.nan, dtype=np.float32)
    for j, r in enumerate(rows):
        if r is not None:
            if r.shape != shape:
                raise InputError(f"{paths[j]}: embedding shape {r.shape} differs from {shape} (use a pool with a "
                                 "fixed size, e.g. cls)")
            out[j] = r
    name = _shard_name(spec["shard"])
    _write_atomic(os.path.join(out_dir, name + ".npy"), _npy_bytes(out))
    meta = {"shard": spec["shard"], "start": spec["start"], "count": len(paths), "shape": list(out.shape),
            "failed": failed, "seconds": round(time.time() - t0, 3), "host": socket.gethostname(), "pid": os.getpid()}
    _write_atomic(os.path.join(out_dir, name + ".json"), json.dumps(meta, indent=1).encode())
    return meta


def _run_partition(specs, model_dir, opt, pool, batch_size, out_dir, threads):
    return [_embed_shard(s, model_dir, opt, pool, batch_size, out_dir, threads) for s in specs]


def _shard_complete(out_dir: str, i: int, count: int) -> bool:
    base = os.path.join(out_dir, _shard_name(i))
    try:
        with open(base + ".json", encoding="utf-8") as f:
            meta = json.load(f)
        return meta.get("count") == count and os.path.isfile(base + ".npy")
    except (OSError, ValueError):
        return False


def embed_images(paths: Sequence[str], model_id: str, out_dir: str, *, client=None, pool: str = "cls",
                 batch_size: int = 8, shard_size: int = 256, dtype=None, quantize=None,
                 threads_per_model: Optional[int] = None, npartitions: Optional[int] = None, overwrite: bool = False,
                 revision: Optional[str] = None, cache_dir: Optional[str] = None,
                 local_files_only: bool = False) -> EmbedResult:
    """Embeds ``paths`` with ``model_id`` on a Dask cluster, writing ``.npy`` shards + ``index.json`` to ``out_dir``.

    client: a ``distributed.Client`` (default: the current one, else a local thread pool in this process).
    pool: cls, mean, cls+mean, pooler, patch or tokens (see vtx.pipeline("image-feature-extraction")).
    threads_per_model: vtx kernel threads in each worker process (default: VTX_NUM_THREADS or all cores; with
    several workers per machine set it to cores / workers). npartitions: dask partitions (default: one per
    missing shard). Returns which shards were computed and which were already there.
    """
    from ._hub import load_options, resolve
    import dask.bag as db

    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise InputError("embed_images: no paths")
    for name, v in (("batch_size", batch_size), ("shard_size", shard_size)):
        if not isinstance(v, int) or v < 1:
            raise InputError(f"embed_images: {name} must be a positive integer, got {v!r}")
    from ._vtx import load_model  # noqa: F401  (the extension must import here too)
    opt = load_options(dtype, quantize)
    model_dir = os.path.abspath(resolve(model_id, revision, cache_dir, local_files_only))
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileError(f"{model_dir}/config.json: no such file")
    os.makedirs(out_dir, exist_ok=True)
    out_dir = os.path.abspath(out_dir)

    shards = [{"shard": i, "start": s, "count": min(shard_size, len(paths) - s), "file": _shard_name(i) + ".npy"}
              for i, s in enumerate(range(0, len(paths), shard_size))]
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    index = {"format": FORMAT, "model": model_dir, "pool": pool, "precision": opt or "checkpoint",
             "shard_size": shard_size, "num_images": len(paths), "paths_sha256": digest, "paths": paths,
             "shards": shards}
    index_path = os.path.join(out_dir, "index.json")
    identity = ("format", "model", "pool", "precision", "shard_size", "num_images", "paths_sha256")
    if os.path.exists(index_path):
        try:
            with open(index_path, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise FileError(f"{index_path}: unreadable ({e}); remove it or pass overwrite=True") from None
        same = all(old.get(k) == index[k] for k in identity)
        if not same and not overwrite:
            diff = [k for k in identity if old.get(k) != index[k]]
            raise InputError(f"{index_path}: written for other arguments ({', '.join(diff)} differ); "
                             "use another out_dir or overwrite=True")
        if not same:
            for name in os.listdir(out_dir):
                if name.startswith("shard-"):
                    os.unlink(os.path.join(out_dir, name))
    for name in os.listdir(out_dir):  # temporary files of killed writers
        if name.startswith("shard-") and name.endswith(".tmp"):
            os.unlink(os.path.join(out_dir, name))
    _write_atomic(index_path, json.dumps(index, indent=1).encode())

    done = [s["shard"] for s in shards if _shard_complete(out_dir, s["shard"], s["count"])]
    todo = [dict(s, paths=paths[s["start"]:s["start"] + s["count"]]) for s in shards if s["shard"] not in done]
    results: List[Dict[str, Any]] = []
    if todo:
        bag = db.from_sequence(todo, npartitions=min(len(todo), npartitions or len(todo)))
        job = bag.map_partitions(_run_partition, model_dir, opt, pool, batch_size, out_dir, threads_per_model)
        if client is None:
            try:
                from distributed import get_client
                client = get_client()
            except (ImportError, ValueError):
                client = None
        if client is not None:
            results = list(client.compute(job).result())
        else:
            results = list(job.compute(scheduler="threads"))
    metas = {}
    for s in shards:
        with open(os.path.join(out_dir, _shard_name(s["shard"]) + ".json"), encoding="utf-8") as f:
            metas[s["shard"]] = json.load(f)
    index["shape"] = [len(paths)] + metas[shards[0]["shard"]]["shape"][1:]
    index["complete"] = True
    _write_atomic(index_path, json.dumps(index, indent=1).encode())
    failed = [f for s in shards for f in metas[s["shard"]]["failed"]]
    return EmbedResult(out_dir=out_dir, index_path=index_path, num_images=len(paths), num_shards=len(shards),
                       computed=sorted(r["shard"] for r in results), skipped=sorted(done), failed=failed)


def load_embeddings(out_dir: str, mmap: bool = False) -> Tuple[np.ndarray, List[str]]:
    """All shards of ``out_dir`` concatenated in path order, and the paths. NaN rows: images that failed."""
    index_path = os.path.join(out_dir, "index.json")
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        raise FileError(f"{index_path}: no such file") from None
    except (OSError, ValueError) as e:
        raise FileError(f"{index_path}: {e}") from None
    if index.get("format") != FORMAT:
        raise FileError(f"{index_path}: not a {FORMAT} index")
    parts = []
    for s in index["shards"]:
        p = os.path.join(out_dir, s["file"])
        if not _shard_complete(out_dir, s["shard"], s["count"]):
            raise FileError(f"{p}: shard missing or incomplete (rerun embed_images to complete it)")
        a = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        if a.shape[0] != s["count"]:
            raise FileError(f"{p}: {a.shape[0]} rows, index says {s['count']}")
        parts.append(a)
    return np.concatenate(parts, axis=0), list(index["paths"])
