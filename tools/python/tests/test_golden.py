"""Golden parity from Python: every golden model case fed its stored pixel_values (within the case tolerances),
and the processor goldens bit-exact through AutoImageProcessor on PIL images."""
import hashlib
import os

import numpy as np
import pytest
from PIL import Image, ImageOps

import vtx
from conftest import case_names, golden_dir, load_case

SKIP_NAMES = {"pixel_values", "head_mask", "bool_masked_pos", "depth_at_original_size"}


def flat_outputs(out):
    got = {}
    for k, v in out.items():
        if isinstance(v, tuple):
            for i, t in enumerate(v):
                got[f"{k}.{i}"] = t
        else:
            got[k] = v
    got.update(out.extra)
    if "hidden_states.0" in got:
        got["embeddings"] = got["hidden_states.0"]
    return got


@pytest.mark.parametrize("name", case_names(lambda t: t != "preprocess"))
def test_model_case(name):
    spec, tensors = load_case(name)
    model = vtx.AutoModel.from_pretrained(os.path.join(golden_dir(), spec["model"]))
    assert model.info.architecture == spec["class"]
    op = spec["options"]
    kwargs = dict(output_hidden_states=op.get("output_hidden_states", False),
                  output_attentions=op.get("output_attentions", False),
                  interpolate_pos_encoding=bool(op.get("interpolate_pos_encoding")))
    if op.get("head_mask"):
        kwargs["head_mask"] = tensors[op["head_mask"]]
    if op.get("bool_masked_pos"):
        kwargs["bool_masked_pos"] = tensors[op["bool_masked_pos"]].astype(bool)
    pv = tensors["pixel_values"]
    out = model(pv, **kwargs)
    got = flat_outputs(out)
    compared = 0
    for tname in spec["stats"]:
        if tname in SKIP_NAMES or tname.startswith("pixel_values."):
            continue
        assert tname in got, f"{name}: no output {tname!r} (have {sorted(got)})"
        ref = tensors[tname]
        g = np.asarray(got[tname]).reshape(ref.shape) if tname == "loss" else got[tname]
        assert g.dtype == np.float32 and g.shape == ref.shape, f"{name}:{tname}: {g.dtype} {g.shape} vs {ref.shape}"
        atol = spec["tolerance"][tname]["atol"]
        err = np.abs(g.astype(np.float64) - ref)
        assert (err <= atol).all(), f"{name}:{tname}: max |diff| {err.max()} > atol {atol}"
        compared += 1
    assert compared >= 2
    if "depth_at_original_size" in tensors:
        ref = tensors["depth_at_original_size"]
        proc = vtx.AutoImageProcessor.from_pretrained(os.path.join(golden_dir(), spec["model"]))
        d = proc.post_process_depth_estimation(out, target_sizes=[ref.shape])[0]["predicted_depth"]
        atol = spec["tolerance"]["depth_at_original_size"]["atol"]
        assert d.shape == ref.shape and (np.abs(d - ref) <= atol).all()


_pil_cache = {}


def pil_load(path):
    """transformers.image_utils.load_image: PIL.Image.open -> ImageOps.exif_transpose -> convert("RGB")."""
    if path not in _pil_cache:
        im = Image.open(path)
        im = ImageOps.exif_transpose(im)
        _pil_cache[path] = im.convert("RGB")
    return _pil_cache[path]


@pytest.mark.parametrize("name", case_names(lambda t: t == "preprocess"))
def test_processor_case(name):
    spec, tensors = load_case(name)
    g = golden_dir()
    proc = vtx.AutoImageProcessor.from_pretrained(os.path.join(g, spec["model"]))
    assert len(spec["per_image"]) == len(spec["inputs"]["images"]) >= 60
    for stem, e in spec["per_image"].items():
        img = pil_load(os.path.join(g, e["image"]))
        pv = proc(img)["pixel_values"]
        assert pv.dtype == np.float32 and list(pv.shape) == [1] + e["pixel_values_shape"], stem
        assert hashlib.sha256(pv[0].tobytes()).hexdigest() == e["pixel_values_sha256"], f"{name}: {stem} differs"
        key = "pixel_values." + stem
        if key in tensors:
            assert np.array_equal(pv[0], tensors[key])
    # a batch of PIL images equals the images one by one; paths and arrays give the same as PIL
    stems = [s for s, e in spec["per_image"].items() if e["pixel_values_shape"] == spec["per_image"][s]["pixel_values_shape"]][:3]
    imgs = [pil_load(os.path.join(g, spec["per_image"][s]["image"])) for s in stems]
    one = [proc(im)["pixel_values"][0] for im in imgs]
    if all(o.shape == one[0].shape for o in one):
        batch = proc(imgs)["pixel_values"]
        assert all(np.array_equal(batch[i], one[i]) for i in range(len(one)))
    arr = proc(np.asarray(imgs[0]))["pixel_values"][0]
    path = proc(os.path.join(g, spec["per_image"][stems[0]]["image"]))["pixel_values"][0]
    assert np.array_equal(arr, one[0]) and np.array_equal(path, one[0])
