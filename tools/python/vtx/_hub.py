"""Resolving ``from_pretrained`` names: local folders, or hub ids.

With a vtx library that has hub support (vtx/hub.hpp), a hub id "org/name" is resolved by it: the Hugging Face
cache first, a download when allowed (``local_files_only=False`` and not HF_HUB_OFFLINE), ``revision`` and
``cache_dir`` as in transformers. Without it, the id is looked up in the local Hugging Face cache only
(``cache_dir``, else ``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ``~/.cache/huggingface/hub``), as transformers does with
``local_files_only=True``: ``models--<org>--<name>/refs/<revision>`` names the snapshot ``snapshots/<commit>``.
"""
import os
import re
from typing import Optional

from ._errors import FileError, InputError


def default_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return os.environ["HUGGINGFACE_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def resolve(name_or_path, revision: Optional[str] = None, cache_dir: Optional[str] = None,
            local_files_only: bool = False) -> str:
    """Returns the local folder holding config.json etc. for a path or a cached hub id."""
    path = os.fspath(name_or_path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if os.path.isdir(path):
        return path
    from . import _vtx
    if hasattr(_vtx, "resolve_model") and not os.path.exists(path) and re.fullmatch(r"[\w.\-]+/[\w.\-]+(@[\w.\-/]+)?", path):
        return _vtx.resolve_model(path, revision or "", os.fspath(cache_dir) if cache_dir is not None else "",
                                  bool(local_files_only))
    if os.path.exists(path):
        raise FileError(f"{path}: not a model folder (expected a directory with config.json)")
    if not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", path) or path.startswith((".", "/")):
        raise FileError(f"{path}: no such model folder")
    cache = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    repo = os.path.join(cache, "models--" + path.replace("/", "--"))
    rev = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", rev):
        commit = rev
    else:
        ref = os.path.join(repo, "refs", rev)
        try:
            with open(ref, encoding="utf-8") as f:
                commit = f.read().strip()
        except OSError:
            raise FileError(
                f"{path}: no such model folder, and revision '{rev}' of the hub id is not in the Hugging Face cache "
                f"{cache} (vtx cannot download; fetch it with huggingface-cli or pass a local folder)") from None
    snap = os.path.join(repo, "snapshots", commit)
    if not os.path.isdir(snap):
        raise FileError(f"{path}: snapshot {commit} missing from the Hugging Face cache ({snap})")
    return snap


def load_options(dtype=None, quantize=None) -> str:
    """The vtx LoadOptions.dtype string for from_pretrained's dtype= / quantize= arguments."""
    names = {"float32": "f32", "f32": "f32", "fp32": "f32", "float16": "f16", "f16": "f16", "fp16": "f16",
             "half": "f16", "bfloat16": "bf16", "bf16": "bf16"}
    d = ""
    if dtype is not None and not (isinstance(dtype, str) and dtype == "auto"):
        key = getattr(dtype, "__name__", None) or str(dtype)
        key = key.replace("torch.", "").replace("numpy.", "").lower()
        if key not in names:
            raise InputError(f"dtype: unknown dtype {dtype!r} (float32, float16, bfloat16 or 'auto'; "
                             "use quantize= for int8/int4)")
        d = names[key]
    if quantize is not None:
        if d:
            raise InputError("dtype and quantize are mutually exclusive")
        if quantize not in ("int8", "int4"):
            raise InputError(f"quantize: must be 'int8' or 'int4', got {quantize!r}")
        d = quantize
    return d


def compute_option(compute=None) -> str:
    """The vtx LoadOptions.compute string for from_pretrained's compute= argument ("" keeps the default, f32)."""
    if compute is None:
        return ""
    names = {"float32": "f32", "f32": "f32", "fp32": "f32", "bfloat16": "bf16", "bf16": "bf16"}
    key = (getattr(compute, "__name__", None) or str(compute)).replace("torch.", "").lower()
    if key not in names:
        raise InputError(f"compute: must be 'float32' or 'bfloat16', got {compute!r}")
    return names[key]
