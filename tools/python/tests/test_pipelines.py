"""vtx.pipeline on shared images equals the CLI (vtx classify / embed / depth / segment) on the same files."""
import glob
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

import vtx
from conftest import golden_dir, read_safetensors, shared_dir


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


def seg_case():
    """The DPT semantic segmentation golden case (shared/golden-beit-dpt/cases/dpt-vit-seg): spec, tensors, model."""
    suite = os.path.join(shared_dir(), "golden-beit-dpt")
    with open(os.path.join(suite, "cases", "dpt-vit-seg.json"), encoding="utf-8") as f:
        spec = json.load(f)
    tensors = read_safetensors(os.path.join(suite, spec["tensors"]))
    image = os.path.normpath(os.path.join(suite, spec["inputs"]["images"][0]))
    return spec, tensors, os.path.join(suite, spec["model"]), image


def test_segmentation_equals_cli(cli, tmp_path):
    spec, tensors, model, golden_image = seg_case()
    files = [golden_image, os.path.join(shared_dir(), "images", "coco", "000000039769.png"),
             os.path.join(shared_dir(), "images", "misc", "grayscale_L_from_canyon.png")]
    run_cli(cli, "segment", model, *files, "--out", str(tmp_path))
    with open(os.path.join(model, "config.json"), encoding="utf-8") as f:
        id2label = json.load(f)["id2label"]
    seg = vtx.pipeline("image-segmentation", model=model)
    got = seg(files)
    assert len(got) == len(files)
    refs = []
    for f, g in zip(files, got):
        stem = os.path.splitext(os.path.basename(f))[0]
        ref = np.load(tmp_path / (stem + ".npy"))
        assert np.array_equal(np.asarray(Image.open(tmp_path / (stem + ".png"))), ref)  # the CLI's PNG is its npy
        h, w = vtx.load_image(f).shape[:2]
        assert ref.shape == (h, w)
        classes = np.unique(ref)
        assert [e["label"] for e in g] == [id2label[str(c)] for c in classes]  # ascending class id
        for e, c in zip(g, classes):
            assert e["score"] is None
            m = e["mask"]
            assert isinstance(m, Image.Image) and m.mode == "L" and m.size == (w, h)
            assert np.array_equal(np.asarray(m), np.where(ref == c, 255, 0).astype(np.uint8))
        refs.append(ref)
    assert len(got[0]) >= 2, "the golden image shows several classes"

    # The golden label map (transformers): equal except at the near-ties the case lists, where either of the two
    # best classes is accepted.
    gold = tensors["semantic_segmentation_at_original_size"].astype(np.int64)
    resized = tensors["logits_at_original_size"]
    tie = 2 * spec["tolerance"]["logits_at_original_size"]["atol"]
    off = refs[0] != gold
    assert not (off & (tensors["semantic_segmentation_margin"] > tie)).any()
    top2 = np.argsort(-resized, axis=0, kind="stable")[:2]
    assert ((refs[0] == top2[0]) | (refs[0] == top2[1]))[off].all()
    assert off.sum() <= spec["label_map_ambiguous_pixels"]

    # One image -> one list; a PIL image, batches, subtask "semantic" and the (ignored) thresholds change nothing.
    def same(a, b):
        return [(e["label"], e["score"], np.asarray(e["mask"]).tobytes()) for e in a] == \
               [(e["label"], e["score"], np.asarray(e["mask"]).tobytes()) for e in b]
    assert same(seg(files[0]), got[0])
    assert same(seg(Image.open(files[1])), got[1])
    batched = vtx.pipeline("image-segmentation", model=model, batch_size=3, subtask="semantic")(files)
    assert all(same(a, b) for a, b in zip(batched, got))
    assert same(seg(files[0], subtask="semantic", threshold=0.99, mask_threshold=0.01,
                    overlap_mask_area_threshold=0.7), got[0])


def test_post_process_semantic_segmentation(cli, tmp_path):
    spec, tensors, model, image = seg_case()
    m = vtx.AutoModelForSemanticSegmentation.from_pretrained(model)
    assert m.info.task == "segmentation"
    proc = vtx.AutoImageProcessor.from_pretrained(model)
    out = m(**proc(image))
    assert isinstance(out, vtx.SemanticSegmenterOutput)
    assert np.abs(out.logits - tensors["logits"]).max() <= spec["tolerance"]["logits"]["atol"]
    h, w = vtx.load_image(image).shape[:2]
    maps = proc.post_process_semantic_segmentation(out, target_sizes=[(h, w)])
    run_cli(cli, "segment", model, image, "--out", str(tmp_path))
    ref = np.load(tmp_path / (os.path.splitext(os.path.basename(image))[0] + ".npy"))
    assert len(maps) == 1 and maps[0].dtype == np.int64 and np.array_equal(maps[0], ref)
    # target_sizes=None: the argmax at the logits' size (numpy's argmax, also first maximum wins)
    two = np.concatenate([out.logits, out.logits[:, ::-1]])
    plain = proc.post_process_semantic_segmentation({"logits": two})
    assert [p.shape for p in plain] == [two.shape[2:]] * 2
    assert all(np.array_equal(p, two[i].argmax(axis=0)) for i, p in enumerate(plain))
    with pytest.raises(vtx.InputError, match="2 target sizes for a batch of 1"):
        proc.post_process_semantic_segmentation(out, target_sizes=[(h, w), (h, w)])
    with pytest.raises(vtx.InputError, match="target_sizes"):
        proc.post_process_semantic_segmentation(out, target_sizes=[(0, w)])
    with pytest.raises(vtx.InputError, match="logits"):
        proc.post_process_semantic_segmentation({"logits": out.logits[0]})


def test_segmentation_errors():
    _, _, model, image = seg_case()
    with pytest.raises(vtx.InputError, match="not a semantic segmentation"):
        vtx.AutoModelForSemanticSegmentation.from_pretrained(os.path.join(golden_dir(), "models", "vit-cls"))
    with pytest.raises(vtx.InputError, match="not a semantic segmentation"):
        vtx.pipeline("image-segmentation", model=os.path.join(golden_dir(), "models", "vit-cls"))
    for sub in ("panoptic", "instance"):
        with pytest.raises(vtx.InputError, match=f"subtask '{sub}' is not supported"):
            vtx.pipeline("image-segmentation", model=model, subtask=sub)
    seg = vtx.pipeline("image-segmentation", model=model)
    with pytest.raises(vtx.InputError, match="subtask 'panoptic' is not supported"):
        seg(image, subtask="panoptic")
    with pytest.raises(vtx.InputError, match="top_k"):
        seg(image, top_k=3)
    with pytest.raises(vtx.InputError, match="top_k"):
        vtx.pipeline("image-segmentation", model=model, top_k=3)
