"""Models: ``AutoModel`` and friends, returning numpy arrays under the transformers output names."""
import json
import os
from collections import OrderedDict
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _vtx
from ._errors import FileError, InputError
from ._hub import compute_option, load_options, resolve


class ModelOutput(OrderedDict):
    """Like ``transformers.utils.ModelOutput``: a dict of the outputs that are set, also readable as attributes
    (``None`` for a field of the class that is not set) and by position (``out[0]``, ``to_tuple()``).

    Values are numpy arrays (tuples of arrays for ``hidden_states``, ``attentions``, ``feature_maps``).
    ``extra`` holds further named intermediates vtx computed (depth models: ``neck.reassemble.<i>``,
    ``neck.fusion.<i>``); it is not one of the keys.
    """

    _fields: Tuple[str, ...] = ()

    def __init__(self, *args, extra: Optional[Dict[str, np.ndarray]] = None, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "extra", dict(extra or {}))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self:
            return self[name]
        if name in type(self)._fields or name in _ALL_FIELDS:
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        return self.to_tuple()[key]

    def to_tuple(self) -> tuple:
        return tuple(self.values())

    def __repr__(self) -> str:
        def r(v):
            if isinstance(v, np.ndarray):
                return f"array(shape={v.shape}, dtype={v.dtype})"
            if isinstance(v, tuple):
                return "(" + ", ".join(r(x) for x in v) + ")"
            return repr(v)
        return f"{type(self).__name__}(" + ", ".join(f"{k}={r(v)}" for k, v in self.items()) + ")"


class BaseModelOutputWithPooling(ModelOutput):
    _fields = ("last_hidden_state", "pooler_output", "hidden_states", "attentions")


class ImageClassifierOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")


class DeiTForImageClassificationWithTeacherOutput(ModelOutput):
    _fields = ("logits", "cls_logits", "distillation_logits", "hidden_states", "attentions")


class BackboneOutput(ModelOutput):
    _fields = ("feature_maps", "hidden_states", "attentions")


class MaskedImageModelingOutput(ModelOutput):
    _fields = ("loss", "reconstruction", "hidden_states", "attentions")


class DepthEstimatorOutput(ModelOutput):
    _fields = ("loss", "predicted_depth", "hidden_states", "attentions")


class SemanticSegmenterOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")


_ALL_FIELDS = ("last_hidden_state", "pooler_output", "hidden_states", "attentions", "logits", "cls_logits",
               "distillation_logits", "feature_maps", "reconstruction", "loss", "predicted_depth")


def _output_class(info) -> type:
    if info.task == "classification":
        if info.architecture.endswith("WithTeacher"):
            return DeiTForImageClassificationWithTeacherOutput
        return ImageClassifierOutput
    return {"features": BaseModelOutputWithPooling, "backbone": BackboneOutput, "mim": MaskedImageModelingOutput,
            "depth": DepthEstimatorOutput, "segmentation": SemanticSegmenterOutput}.get(info.task, ModelOutput)


def _read_config(folder: str) -> Dict[str, Any]:
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise FileError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise FileError(f"{path}: {e}") from None
    if not isinstance(cfg, dict):
        raise FileError(f"{path}: not a JSON object")
    for key in ("id2label",):
        if isinstance(cfg.get(key), dict):
            try:
                cfg[key] = {int(k): v for k, v in cfg[key].items()}
            except ValueError:
                raise FileError(f"{path}: id2label keys must be integers") from None
    if isinstance(cfg.get("label2id"), dict):
        cfg["label2id"] = {k: int(v) for k, v in cfg["label2id"].items()}
    return cfg


class PreTrainedModel:
    """A vtx model loaded by ``from_pretrained``. Calling it runs the forward pass.

    Thread-safe: one model may be called from any number of Python threads at once (each call uses its own
    vtx Session; the GIL is released while the model runs).
    """

    #: the vtx task (``ModelInfo.task``) this class accepts; ``None`` accepts any model
    _task: Optional[str] = None
    _task_name = ""

    def __init__(self, core: "_vtx.Model", config: Dict[str, Any], name_or_path: str):
        self._core = core
        self.config = config
        self.name_or_path = name_or_path
        self._output_class = _output_class(core.info)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, dtype=None, quantize=None, compute=None,
                        revision: Optional[str] = None, cache_dir: Optional[str] = None,
                        local_files_only: bool = False, torch_dtype=None, **kwargs) -> "PreTrainedModel":
        """Loads a hub-layout folder (config.json + model.safetensors or sharded index), or a hub id found in the
        local Hugging Face cache.

        dtype: None / "auto" keeps the checkpoint's precision (F16/BF16 weights stay half), "float32", "float16",
        "bfloat16" convert the encoder linears at load. quantize: "int8" or "int4". ``torch_dtype`` is accepted as
        an alias of ``dtype``. compute: None / "float32", or "bfloat16" to run the encoder linears as bf16 x bf16
        with float32 accumulation where the CPU has AVX512-BF16 (vtx.bf16_compute_available(); elsewhere
        vtx.InputError says why); about 1.8x faster, not bit-exact with float32. Raises vtx.FileError for a missing or corrupt folder, vtx.InputError for a model of
        another task (as transformers refuses it).
        """
        unsupported = {k: v for k, v in kwargs.items() if k not in ("attn_implementation", "trust_remote_code")}
        if unsupported:
            raise InputError(f"from_pretrained: unsupported argument(s) {', '.join(sorted(unsupported))}")
        if dtype is not None and torch_dtype is not None:
            raise InputError("from_pretrained: give dtype or torch_dtype, not both")
        opt = load_options(dtype if dtype is not None else torch_dtype, quantize)
        compute = compute_option(compute)
        if compute == "bf16" and not _vtx.bf16_compute_available():
            raise InputError("compute='bfloat16' needs a CPU with AVX512-BF16 (Zen 4 and later, Sapphire Rapids and "
                             "later) and VTX_DISABLE_BF16 unset; this one cannot: load with compute=None")
        folder = resolve(pretrained_model_name_or_path, revision, cache_dir, local_files_only)
        config = _read_config(folder)
        core = _vtx.load_model(folder, opt, compute)
        info = core.info
        if cls._task is not None and info.task != cls._task:
            raise InputError(
                f"{folder}: {info.architecture} ({info.model_type}) is not {cls._task_name} model; "
                f"{cls.__name__} needs one (use vtx.AutoModel for any model)")
        return cls(core, config, os.fspath(pretrained_model_name_or_path))

    @property
    def info(self) -> "_vtx.ModelInfo":
        """What vtx read from the checkpoint: architecture, task, sizes, parameter count, dtypes, labels."""
        return self._core.info

    def eval(self) -> "PreTrainedModel":
        """No-op (vtx is always in inference mode); returns self, as in transformers."""
        return self

    def __call__(self, pixel_values=None, output_hidden_states: bool = False, output_attentions: bool = False,
                 head_mask=None, bool_masked_pos=None, interpolate_pos_encoding: bool = False,
                 return_dict: bool = True, **kwargs) -> ModelOutput:
        """Forward pass on ``pixel_values`` [batch, channels, height, width].

        float32 C-contiguous arrays are used in place; other float dtypes (float64, float16) and non-contiguous
        arrays are converted to a float32 copy; integer or bool arrays are refused (vtx.InputError).
        Returns a ModelOutput of numpy arrays (a tuple when return_dict=False).
        """
        if kwargs:
            raise InputError(f"forward: unexpected argument(s) {', '.join(sorted(kwargs))}")
        if pixel_values is None:
            raise InputError("pixel_values: required")
        d = self._core.forward(pixel_values, output_hidden_states=bool(output_hidden_states),
                               output_attentions=bool(output_attentions), head_mask=head_mask,
                               bool_masked_pos=bool_masked_pos,
                               interpolate_pos_encoding=bool(interpolate_pos_encoding))
        extra = d.pop("extra", None)
        if "loss" in d:
            d["loss"] = d["loss"].reshape(())  # a scalar, as torch's loss
        fields = self._output_class._fields
        ordered = [(k, d.pop(k)) for k in fields if k in d]
        ordered += [(k, d[k]) for k in _ALL_FIELDS if k in d]
        out = self._output_class(ordered, extra=extra)
        return out if return_dict else out.to_tuple()

    forward = __call__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name_or_path!r}, {self.info!r})"


class AutoModel(PreTrainedModel):
    """Any supported checkpoint; outputs are those of the checkpoint's architecture (``config.architectures``)."""


class AutoModelForImageClassification(PreTrainedModel):
    """``*ForImageClassification`` checkpoints (ViT, DeiT, DINOv2, DINOv2 with registers); others are refused."""
    _task = "classification"
    _task_name = "an image-classification"


class AutoModelForDepthEstimation(PreTrainedModel):
    """``DPTForDepthEstimation`` / ``DepthAnythingForDepthEstimation`` checkpoints; others are refused."""
    _task = "depth"
    _task_name = "a depth-estimation"


class AutoModelForSemanticSegmentation(PreTrainedModel):
    """``DPTForSemanticSegmentation`` checkpoints (logits [B, num_labels, H, W]); others are refused."""
    _task = "segmentation"
    _task_name = "a semantic segmentation"
