"""The transformers-shaped API: outputs, config, tasks, errors, input conversion, zero-copy, threads."""
import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

import vtx
from conftest import golden_dir, load_case


def model_dir(name):
    return os.path.join(golden_dir(), "models", name)


@pytest.fixture(scope="module")
def vit_cls():
    return vtx.AutoModelForImageClassification.from_pretrained(model_dir("vit-cls"))


def test_output_object_and_config(vit_cls):
    spec, t = load_case("vit-cls")
    out = vit_cls(t["pixel_values"], output_hidden_states=True, output_attentions=True)
    assert isinstance(out, vtx.ImageClassifierOutput)
    assert out.logits is out["logits"] and out[0] is out.logits  # loss unset: logits first, as transformers
    assert out.loss is None and "loss" not in out
    assert isinstance(out.hidden_states, tuple) and len(out.hidden_states) == vit_cls.info.num_layers + 1
    assert isinstance(out.attentions, tuple) and out.attentions[0].shape[1] == vit_cls.info.num_heads
    with pytest.raises(AttributeError):
        out.no_such_field
    tup = vit_cls(t["pixel_values"], output_hidden_states=True, output_attentions=True, return_dict=False)
    assert isinstance(tup, tuple) and np.array_equal(tup[0], out.logits)
    cfg = vit_cls.config
    assert all(isinstance(k, int) for k in cfg["id2label"]) and cfg["model_type"] == "vit"
    labels = vit_cls.info.id2label
    assert [cfg["id2label"][i] for i in range(len(labels))] == labels
    assert vit_cls.info.task == "classification" and vit_cls.info.pipeline_task == "image-classification" and vit_cls.info.num_parameters > 0
    assert vit_cls.eval() is vit_cls


def test_wrong_task_refused():
    with pytest.raises(vtx.InputError, match="not an image-classification model") as e:
        vtx.AutoModelForImageClassification.from_pretrained(model_dir("dinov2"))
    assert isinstance(e.value, ValueError) and isinstance(e.value, vtx.Error)
    with pytest.raises(ValueError, match="not a depth-estimation model"):
        vtx.AutoModelForDepthEstimation.from_pretrained(model_dir("vit-cls"))
    assert vtx.AutoModelForDepthEstimation.from_pretrained(model_dir("dpt-vit")).info.task == "depth"
    with pytest.raises(ValueError, match="unknown task"):
        vtx.pipeline("object-detection", model=model_dir("vit-cls"))


def test_missing_and_corrupt_files(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(vtx.FileError) as e:
        vtx.AutoModel.from_pretrained(missing)
    assert isinstance(e.value, OSError) and missing in str(e.value)
    with pytest.raises(vtx.FileError, match="no-org/no-model"):
        vtx.AutoModel.from_pretrained("no-org/no-model", cache_dir=str(tmp_path), local_files_only=True)
    # corrupt safetensors: truncated file, then garbage header
    d = tmp_path / "corrupt"
    shutil.copytree(model_dir("vit-cls"), d)
    st = d / "model.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) // 2])
    with pytest.raises(vtx.FileError, match="model.safetensors") as e:
        vtx.AutoModel.from_pretrained(str(d))
    st.write_bytes(b"\xff" * 64)
    with pytest.raises(vtx.FileError, match="model.safetensors"):
        vtx.AutoModel.from_pretrained(str(d))
    (d / "config.json").write_text("{not json")
    with pytest.raises(vtx.FileError, match="config.json"):
        vtx.AutoModel.from_pretrained(str(d))
    os.unlink(d / "config.json")
    with pytest.raises(vtx.FileError, match="config.json"):
        vtx.AutoModel.from_pretrained(str(d))
    # images: missing and corrupt
    proc = vtx.AutoImageProcessor.from_pretrained(model_dir("vit-cls"))
    with pytest.raises(vtx.FileError, match="nope.jpg"):
        proc(str(tmp_path / "nope.jpg"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(vtx.FileError, match="bad.png"):
        proc(str(bad))
    with pytest.raises(vtx.FileError, match="preprocessor_config.json"):
        vtx.AutoImageProcessor.from_pretrained(str(tmp_path))


def test_hub_cache_lookup(tmp_path):
    """A hub id is found in a Hugging Face cache folder (layout of huggingface_hub), by branch and by commit."""
    cache = tmp_path / "hub"
    repo = cache / "models--some-org--tiny-vit"
    commits = {"main": "a" * 40, "v1": "b" * 40}
    for ref, commit in commits.items():
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        for f in ("config.json", "model.safetensors", "preprocessor_config.json"):
            shutil.copyfile(os.path.join(model_dir("vit-cls"), f), snap / f)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    m = vtx.AutoModelForImageClassification.from_pretrained("some-org/tiny-vit", cache_dir=str(cache),
                                                            local_files_only=True)
    assert os.path.realpath(m.info.source_dir).endswith("a" * 40)
    m1 = vtx.AutoModel.from_pretrained("some-org/tiny-vit", revision="v1", cache_dir=str(cache), local_files_only=True)
    assert os.path.realpath(m1.info.source_dir).endswith("b" * 40)
    p = vtx.AutoImageProcessor.from_pretrained("some-org/tiny-vit", cache_dir=str(cache), local_files_only=True)
    assert p.config["image_processor_type"] == "ViTImageProcessor"
    with pytest.raises(vtx.FileError, match="some-org/tiny-vit"):
        vtx.AutoModel.from_pretrained("some-org/tiny-vit", revision="v2", cache_dir=str(cache), local_files_only=True)


def test_bad_inputs(vit_cls):
    good = load_case("vit-cls")[1]["pixel_values"]
    with pytest.raises(vtx.InputError, match="4-d"):
        vit_cls(good[0])
    with pytest.raises(vtx.InputError, match="channels"):
        vit_cls(np.zeros((1, 4, 224, 224), np.float32))
    with pytest.raises(vtx.InputError, match="empty batch"):
        vit_cls(np.zeros((0, 3, 224, 224), np.float32))
    with pytest.raises(vtx.InputError, match="int64"):
        vit_cls(np.zeros((1, 3, 224, 224), np.int64))
    with pytest.raises(vtx.InputError, match="bool"):
        vit_cls(np.zeros((1, 3, 224, 224), bool))
    with pytest.raises(vtx.InputError, match="pixel_values"):
        vit_cls(np.zeros((1, 3, 5, 7), np.float32))  # not a multiple of the patch size
    with pytest.raises(vtx.InputError, match="dtype object"):
        vit_cls(object())
    with pytest.raises(vtx.InputError):
        vit_cls(good, head_mask=np.ones((7, 7), np.float32))
    with pytest.raises(vtx.InputError, match="unexpected argument"):
        vit_cls(good, labels=np.zeros(1))
    with pytest.raises(vtx.InputError, match="dtype"):
        vtx.AutoModel.from_pretrained(model_dir("vit-cls"), dtype="float8")
    with pytest.raises(vtx.InputError, match="quantize"):
        vtx.AutoModel.from_pretrained(model_dir("vit-cls"), quantize="int2")
    proc = vtx.AutoImageProcessor.from_pretrained(model_dir("vit-cls"))
    with pytest.raises(vtx.InputError, match="uint8"):
        proc(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(vtx.InputError, match="channels"):
        proc(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(vtx.InputError, match="PIL image"):
        proc(12)


def test_float64_and_noncontiguous_are_converted(vit_cls):
    pv = load_case("vit-cls")[1]["pixel_values"].copy()
    ref = vit_cls(pv).logits
    assert np.array_equal(vit_cls(pv.astype(np.float64)).logits, ref)  # exact: float32 values round-trip
    nc = np.asfortranarray(pv)
    assert not nc.flags.c_contiguous
    assert np.array_equal(vit_cls(nc).logits, ref)
    wide = np.zeros(pv.shape[:3] + (pv.shape[3] * 2,), np.float32)
    wide[..., ::2] = pv
    assert np.array_equal(vit_cls(wide[..., ::2]).logits, ref)
    assert np.array_equal(vit_cls(pv.astype(">f4")).logits, ref)
    assert np.array_equal(vit_cls(pv.tolist()).logits, ref)


def test_zero_copy(vit_cls):
    pv = load_case("vit-cls")[1]["pixel_values"].copy()
    out = vit_cls(pv)
    # outputs own vtx's storage (no numpy copy): the base is the capsule holding the vtx::Tensor
    assert out.logits.base is not None and type(out.logits.base).__name__ == "PyCapsule"
    assert out.logits.flags.c_contiguous and out.logits.flags.writeable
    # the input array is not copied: it stays referenced while vtx uses it and is released afterwards
    import sys
    before = sys.getrefcount(pv)
    vit_cls(pv)
    assert sys.getrefcount(pv) == before
    # read-only input (e.g. np.load(mmap_mode="r")) is used in place too
    ro = pv.copy()
    ro.flags.writeable = False
    assert np.array_equal(vit_cls(ro).logits, out.logits)


def test_num_threads(vit_cls):
    pv = load_case("vit-cls")[1]["pixel_values"]
    ref = vit_cls(pv).logits
    n = vtx.num_threads()
    try:
        vtx.set_num_threads(1)
        assert vtx.num_threads() == 1
        np.testing.assert_allclose(vit_cls(pv).logits, ref, rtol=0, atol=1e-5)
    finally:
        vtx.set_num_threads(n)
    assert vtx.num_threads() == n
    with pytest.raises(vtx.InputError):
        vtx.set_num_threads(-1)


def test_threads_share_one_model():
    spec, t = load_case("dinov2-features")
    m = vtx.AutoModel.from_pretrained(model_dir(spec["model"].split("/")[-1]))
    pv = t["pixel_values"]
    inputs = [pv, pv[:1], pv[1:], pv[::-1].copy()]
    ref = [m(x, output_hidden_states=True) for x in inputs]
    results = {}
    errors = []

    def work(k):
        try:
            for r in range(3):
                i = (k + r) % len(inputs)
                results[(k, r)] = (i, m(inputs[i], output_hidden_states=True))
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors and len(results) == 12
    for (i, out) in results.values():
        assert np.array_equal(out.last_hidden_state, ref[i].last_hidden_state)
        assert all(np.array_equal(a, b) for a, b in zip(out.hidden_states, ref[i].hidden_states))


def test_gil_released_during_forward():
    """A Python thread keeps running while another thread is inside the model."""
    spec, t = load_case("dinov2-518")
    m = vtx.AutoModel.from_pretrained(os.path.join(golden_dir(), spec["model"]))
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    th = threading.Thread(target=ticker)
    th.start()
    try:
        for _ in range(3):
            m(t["pixel_values"])
    finally:
        done.set()
        th.join()
    assert len(ticks) > 3


def test_processor_inputs():
    proc = vtx.AutoImageProcessor.from_pretrained(model_dir("dinov2"))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    ref = proc(rgb)["pixel_values"]
    assert ref.shape == (1, 3, 224, 224)
    assert np.array_equal(proc(Image.fromarray(rgb))["pixel_values"], ref)
    assert np.array_equal(proc(np.ascontiguousarray(rgb.transpose(2, 0, 1)))["pixel_values"], ref)  # CHW
    assert np.array_equal(proc(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]))["pixel_values"], ref)  # RGBA
    gray = rgb[:, :, 0].copy()
    assert np.array_equal(proc(gray)["pixel_values"], proc(Image.fromarray(gray))["pixel_values"])
    b = proc([rgb, rgb[::-1]])
    assert b.pixel_values.shape == (2, 3, 224, 224) and np.array_equal(b["pixel_values"][:1], ref)
    # differing output sizes: refused stacked, a list with return_tensors=None
    dpt = vtx.AutoImageProcessor.from_pretrained(model_dir("dpt-dinov2"))
    with pytest.raises(vtx.InputError):
        dpt([rgb, rgb[:100]])
    lst = dpt([rgb, rgb[:100]], return_tensors=None)["pixel_values"]
    assert len(lst) == 2 and lst[0].shape != lst[1].shape
    assert proc.config["image_processor_type"] == "BitImageProcessor"


def test_compute_bfloat16_or_a_clear_error():
    """compute="bfloat16": bf16 x bf16 encoder linears where the CPU has AVX512-BF16 (logit cosine with float32
    >= 0.999, the issue's bound; measured >= 0.99995 in tests/test_quant_models.cpp), else a vtx.InputError that
    says what the CPU lacks. Bad names are refused."""
    with pytest.raises(vtx.InputError, match="compute"):
        vtx.AutoModel.from_pretrained(model_dir("vit-cls"), compute="float8")
    f32 = vtx.AutoModelForImageClassification.from_pretrained(model_dir("vit-cls"))
    assert f32.info.compute == "f32"
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    if not vtx.bf16_compute_available():
        with pytest.raises(vtx.InputError, match="AVX512-BF16"):
            vtx.AutoModelForImageClassification.from_pretrained(model_dir("vit-cls"), compute="bfloat16")
        return
    bf = vtx.AutoModelForImageClassification.from_pretrained(model_dir("vit-cls"), compute="bfloat16")
    assert bf.info.compute == "bf16" and bf.info.weights == "bf16"
    a, b = f32(x).logits.ravel().astype(np.float64), bf(x).logits.ravel().astype(np.float64)
    assert a.shape == b.shape
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert cos >= 0.999, cos
    pipe = vtx.pipeline("image-classification", model=model_dir("vit-cls"), compute="bf16")
    assert pipe.model.info.compute == "bf16"
