"""vtx.dask.embed_images on a 2-worker LocalCluster over 200 shared images: equal to a single-process run, and a
rerun after a lost shard recomputes only that shard."""
import glob
import os

import numpy as np
import pytest

import vtx
import vtx.dask
from conftest import golden_dir, shared_dir


def two_hundred_images():
    s = shared_dir()
    files = []
    for sub in ("imagenet-more", "imagenet", "coco", "misc"):
        files += sorted(f for f in glob.glob(os.path.join(s, "images", sub, "*"))
                        if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp", ".bmp")))
    assert len(files) >= 200, f"only {len(files)} shared images"
    return files[:200]


def test_dask_local_cluster(tmp_path):
    from distributed import Client, LocalCluster

    model = os.path.join(golden_dir(), "models", "dinov2")
    files = two_hundred_images()
    out = str(tmp_path / "emb")
    # the single-process reference: the feature-extraction pipeline with the same batches
    ref = np.concatenate(vtx.pipeline("image-feature-extraction", model=model, pool="cls", batch_size=8)(files))

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_port=0, silence_logs=40) as cluster, Client(cluster) as client:
        r = vtx.dask.embed_images(files, model, out, client=client, pool="cls", batch_size=8, shard_size=40,
                                  threads_per_model=1)
        assert r.num_shards == 5 and r.computed == [0, 1, 2, 3, 4] and r.skipped == [] and r.failed == []
        emb, paths = vtx.dask.load_embeddings(out)
        assert paths == files and emb.shape == ref.shape
        np.testing.assert_array_equal(emb, ref)
        # both workers took part, each loaded the model once (one pid per shard file, two pids in all)
        import json
        pids = {json.load(open(os.path.join(out, f"shard-{i:05d}.json")))["pid"] for i in range(5)}
        assert len(pids) == 2

        # lose one shard (as a worker killed mid-write leaves it: no .npy, a stray temporary file)
        os.unlink(os.path.join(out, "shard-00002.npy"))
        os.unlink(os.path.join(out, "shard-00002.json"))
        open(os.path.join(out, "shard-00002.npy.x1y2.tmp"), "wb").close()
        before = {i: os.stat(os.path.join(out, f"shard-{i:05d}.npy")).st_mtime_ns for i in (0, 1, 3, 4)}
        r2 = vtx.dask.embed_images(files, model, out, client=client, pool="cls", batch_size=8, shard_size=40,
                                   threads_per_model=1)
        assert r2.computed == [2] and r2.skipped == [0, 1, 3, 4]
        assert {i: os.stat(os.path.join(out, f"shard-{i:05d}.npy")).st_mtime_ns for i in (0, 1, 3, 4)} == before
        assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
        emb2, _ = vtx.dask.load_embeddings(out)
        np.testing.assert_array_equal(emb2, ref)

        # other arguments into the same folder are refused
        with pytest.raises(vtx.InputError, match="pool"):
            vtx.dask.embed_images(files, model, out, client=client, pool="mean", shard_size=40)


def test_dask_without_cluster_and_bad_images(tmp_path):
    """No client: a thread pool in this process; an unreadable image gives a NaN row and is reported."""
    model = os.path.join(golden_dir(), "models", "dinov2")
    files = two_hundred_images()[:10]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"\0" * 10)
    out = str(tmp_path / "emb")
    r = vtx.dask.embed_images(files + [str(bad)], model, out, pool="cls", batch_size=4, shard_size=4)
    assert r.num_shards == 3 and r.computed == [0, 1, 2]
    assert len(r.failed) == 1 and r.failed[0]["path"] == str(bad) and "bad.jpg" in r.failed[0]["error"]
    emb, _ = vtx.dask.load_embeddings(out)
    assert np.isnan(emb[-1]).all() and not np.isnan(emb[:-1]).any()
    ref = np.concatenate(vtx.pipeline("image-feature-extraction", model=model, pool="cls", batch_size=4)(files))
    np.testing.assert_array_equal(emb[:-1], ref)
    with pytest.raises(vtx.FileError, match="index.json"):
        vtx.dask.load_embeddings(str(tmp_path))
