"""vtx.pipeline on shared images equals the CLI (vtx classify / embed / depth) on the same files."""
import glob
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

import vtx
from conftest import golden_dir, shared_dir


def images(n=6):
    s = shared_dir()
    files = sorted(glob.glob(os.path.join(s, "images", "imagenet", "*.JPEG")))[:4]
    files += [os.path.join(s, "images", "coco", "000000039769.png"),
              os.path.join(s, "images", "misc", "grayscale_L_from_canyon.png")]
    assert len(files) == 6 and all(os.path.isfile(f) for f in files)
    return files[-n:]


def run_cli(cli, *args):
    r = subprocess.run([cli, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"vtx {' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.mark.parametrize("name", ["vit-cls", "dinov2-cls", "deit-distilled"])
def test_classification_equals_cli(cli, name):
    model = os.path.join(golden_dir(), "models", name)
    files = images()
    ref = json.loads(run_cli(cli, "classify", model, *files, "--top-k", "3", "--batch", "4", "--json"))
    clf = vtx.pipeline("image-classification", model=model, top_k=3, batch_size=4)
    got = clf(files)
    assert len(got) == len(ref) == len(files)
    for g, r in zip(got, ref):
        assert [p["label"] for p in g] == [p["label"] for p in r["predictions"]]
        assert [np.float32(p["score"]) for p in g] == [np.float32(p["score"]) for p in r["predictions"]]
    # one image in -> one list out; PIL and numpy inputs give the same as the path
    one = clf(files[0])
    assert one == got[0]
    assert clf(Image.open(files[0]), top_k=3) == got[0]
    assert clf(vtx.load_image(files[0]))[0]["label"] == got[0][0]["label"]


@pytest.mark.parametrize("pool", ["cls", "mean", "tokens"])
def test_feature_extraction_equals_cli(cli, tmp_path, pool):
    model = os.path.join(golden_dir(), "models", "dinov2-reg")
    files = images()
    out = str(tmp_path / "e.npy")
    run_cli(cli, "embed", model, *files, "--pool", pool, "--batch", "3", "--out", out)
    ref = np.load(out)
    fe = vtx.pipeline("image-feature-extraction", model=model, pool=None if pool == "tokens" else pool, batch_size=3)
    got = fe(files)
    assert len(got) == len(files) and got[0].shape == (1,) + ref.shape[1:]  # transformers keeps the batch dim
    assert np.array_equal(np.concatenate(got), ref)


def test_feature_extraction_pooler(cli, tmp_path):
    model = os.path.join(golden_dir(), "models", "vit-pooler")
    files = images(3)
    out = str(tmp_path / "p.npy")
    run_cli(cli, "embed", model, *files, "--pool", "pooler", "--out", out)
    got = vtx.pipeline("image-feature-extraction", model=model, pool=True)(files)
    assert np.array_equal(np.concatenate(got), np.load(out))


@pytest.mark.parametrize("name", ["depth-anything", "dpt-dinov2"])
def test_depth_equals_cli(cli, tmp_path, name):
    model = os.path.join(golden_dir(), "models", name)
    # small images: dpt-dinov2's processor does not resize
    files = [os.path.join(shared_dir(), "images", "misc", f) for f in
             ("vitcpp_polars_286x176.jpeg", "tiny_7x5_from_apple.png", "vitcpp_apple_256.jpg")]
    run_cli(cli, "depth", model, *files, "--out", str(tmp_path), "--format", "npy")
    depth = vtx.pipeline("depth-estimation", model=model, batch_size=2)
    got = depth(files)
    for f, g in zip(files, got):
        ref = np.load(tmp_path / (os.path.splitext(os.path.basename(f))[0] + ".npy"))
        w, h = Image.open(f).size
        assert g["predicted_depth"].shape == ref.shape == (h, w)
        assert np.array_equal(g["predicted_depth"], ref)
        img = g["depth"]
        assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (w, h)
        # transformers: (d - min) / (max - min) * 255, truncated to uint8 (computed here independently)
        d = ref.astype(np.float32)
        expect = ((d - d.min()) / (d.max() - d.min()) * 255).astype(np.uint8)
        assert np.array_equal(np.asarray(img), expect)
    single = depth(files[0])
    assert isinstance(single, dict) and np.array_equal(single["predicted_depth"], got[0]["predicted_depth"])


def test_pipeline_errors(tmp_path):
    model = os.path.join(golden_dir(), "models", "vit-cls")
    clf = vtx.pipeline("image-classification", model=model)
    with pytest.raises(vtx.FileError, match="missing.jpg"):
        clf(str(tmp_path / "missing.jpg"))
    with pytest.raises(vtx.InputError, match="batch_size"):
        clf(images(1)[0], batch_size=0)
    with pytest.raises(vtx.InputError, match="not an image-classification"):
        vtx.pipeline("image-classification", model=os.path.join(golden_dir(), "models", "dinov2"))
    with pytest.raises(vtx.InputError, match="pool"):
        vtx.pipeline("image-feature-extraction", model=model, pool="max")(images(1)[0])
