"""Shared helpers of the vtx Python tests: locating ../shared (missing => the tests FAIL, never skip), reading
golden case files (safetensors, with numpy only), the CLI binary."""
import json
import os
import struct
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def shared_dir() -> str:
    d = os.environ.get("VTX_SHARED_DIR") or os.environ.get("VTX_SHARED_DIR_DEFAULT") or os.path.join(REPO, "..", "shared")
    if not os.path.isdir(os.path.join(d, "golden")):
        pytest.fail(f"golden data not found: {d}/golden (set VTX_SHARED_DIR)", pytrace=False)
    return os.path.abspath(d)


def golden_dir() -> str:
    return os.path.join(shared_dir(), "golden")


def cli_path() -> str:
    p = os.environ.get("VTX_CLI") or os.path.join(REPO, "build", "vtx")
    if not os.access(p, os.X_OK):
        pytest.fail(f"vtx CLI not found at {p} (set VTX_CLI)", pytrace=False)
    return p


_DT = {"F32": "<f4", "F16": "<f2", "U8": "u1", "I8": "i1", "I32": "<i4", "I64": "<i8", "BOOL": "?"}


def read_safetensors(path: str):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[b:e], dtype=_DT[v["dtype"]]).reshape(v["shape"])
    return out


def load_case(name: str):
    g = golden_dir()
    with open(os.path.join(g, "cases", name + ".json"), encoding="utf-8") as f:
        spec = json.load(f)
    return spec, read_safetensors(os.path.join(g, spec["tensors"]))


def case_names(task_filter):
    # Collected at import time: a missing shared/ gives one failing placeholder case instead of none.
    d = os.environ.get("VTX_SHARED_DIR") or os.environ.get("VTX_SHARED_DIR_DEFAULT") or os.path.join(REPO, "..", "shared")
    cases = os.path.join(d, "golden", "cases")
    if not os.path.isdir(cases):
        return ["<golden data missing>"]
    names = []
    for fn in sorted(os.listdir(cases)):
        if fn.endswith(".json"):
            with open(os.path.join(cases, fn), encoding="utf-8") as f:
                if task_filter(json.load(f)["task"]):
                    names.append(fn[:-5])
    return names


@pytest.fixture(scope="session")
def shared():
    return shared_dir()


@pytest.fixture(scope="session")
def golden():
    return golden_dir()


@pytest.fixture(scope="session")
def cli():
    return cli_path()


# Loopback only: hub ids never reach the network in tests.
os.environ["HF_HUB_OFFLINE"] = "1"

# Dask workers are separate processes: they find the package through PYTHONPATH.
_pkg = os.path.dirname(os.path.dirname(__import__("vtx").__file__))
if _pkg not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_pkg, os.environ.get("PYTHONPATH")]))
sys.path.insert(0, HERE)
