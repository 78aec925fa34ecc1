"""Image processors: ``AutoImageProcessor.from_pretrained(folder)(images)`` -> ``{"pixel_values": ndarray}``."""
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _vtx
from ._errors import InputError
from ._hub import resolve


class BatchFeature(dict):
    """A dict of arrays (``pixel_values``) that also allows attribute access, like transformers' BatchFeature."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _is_path(x) -> bool:
    return isinstance(x, (str, bytes, os.PathLike))


def to_rgb_array(image, what: str = "image") -> np.ndarray:
    """An HWC uint8 RGB array for a PIL image, a numpy array (HWC, HW, or CHW) or a path (vtx's decoder:
    EXIF orientation applied, then converted to RGB as PIL's convert("RGB"))."""
    if _is_path(image):
        return _vtx.load_image(image)
    if isinstance(image, np.ndarray):
        a = image
    elif hasattr(image, "convert") and hasattr(image, "mode") and hasattr(image, "size"):  # PIL.Image.Image
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image)
    else:
        raise InputError(f"{what}: expected a path, a PIL image or an HWC uint8 numpy array, "
                         f"got {type(image).__name__}")
    if a.dtype != np.uint8:
        raise InputError(f"{what}: dtype {a.dtype} is not supported; pass uint8 pixels (0..255)")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3:
        if a.shape[2] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):  # CHW, as transformers infers it
            a = np.moveaxis(a, 0, 2)
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        elif a.shape[2] == 4:  # RGBA: alpha dropped, as PIL convert("RGB")
            a = a[:, :, :3]
        elif a.shape[2] != 3:
            raise InputError(f"{what}: expected 1, 3 or 4 channels, got shape {a.shape}")
    else:
        raise InputError(f"{what}: expected an HWC (or HW) image array, got shape {a.shape}")
    return a


def _batch_output(outputs, field: str, dims: str, fn: str, target_sizes) -> np.ndarray:
    """``outputs.<field>`` (a ModelOutput, a dict or the array itself) as an array shaped ``[dims]``, with as many
    ``target_sizes`` (when given) as its batch."""
    x = outputs[field] if isinstance(outputs, dict) else getattr(outputs, field, outputs)
    if x is None:
        raise InputError(f"{fn}: outputs have no {field}")
    x = np.asarray(x)
    if x.ndim != len(dims.split(",")):
        raise InputError(f"{fn}: {field} must be [{dims}], got shape {x.shape}")
    if target_sizes is not None and len(target_sizes) != x.shape[0]:
        raise InputError(f"{fn}: {len(target_sizes)} target sizes for a batch of {x.shape[0]}")
    return x


class ImageProcessor:
    """The model folder's image processor (ViT, DeiT, Bit, DPT), bit-exact with transformers' slow PIL processors
    and with the vtx C++ processor. Thread-safe; the GIL is released while images are decoded and processed."""

    def __init__(self, core: "_vtx.ImageProcessor", name_or_path: str = ""):
        self._core = core
        self.name_or_path = name_or_path

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, revision: Optional[str] = None,
                        cache_dir: Optional[str] = None, local_files_only: bool = False, **kwargs) -> "ImageProcessor":
        """Reads ``preprocessor_config.json`` of a model folder (or that .json file itself)."""
        unsupported = {k: v for k, v in kwargs.items() if k not in ("use_fast", "trust_remote_code")}
        if unsupported:
            raise InputError(f"from_pretrained: unsupported argument(s) {', '.join(sorted(unsupported))}")
        p = os.fspath(pretrained_model_name_or_path)
        folder = p if (os.path.isfile(p) and p.endswith(".json")) else resolve(p, revision, cache_dir, local_files_only)
        return cls(_vtx.ImageProcessor.from_pretrained(folder), p)

    @property
    def config(self) -> Dict[str, Any]:
        """The effective settings (preprocessor_config.json completed with the class defaults)."""
        return self._core.config

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.config)

    def __call__(self, images, return_tensors: Optional[str] = "np", **kwargs) -> BatchFeature:
        """Preprocesses one image or a list: PIL images (converted to RGB), HWC uint8 arrays or paths.

        Returns ``{"pixel_values": float32 [B, 3, H, W]}``. When the images end with different sizes (DPT
        processors keep the aspect ratio), pass ``return_tensors=None`` to get a list of [3, H, W] arrays.
        """
        if kwargs:
            raise InputError(f"image processor: per-call overrides are not supported ({', '.join(sorted(kwargs))}); "
                             "edit preprocessor_config.json instead")
        if return_tensors not in (None, "np", "numpy"):
            raise InputError(f"return_tensors: only 'np' is supported (no torch), got {return_tensors!r}")
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if not items:
            raise InputError("images: empty list")
        arrays = [x if _is_path(x) else to_rgb_array(x, f"image {i}") for i, x in enumerate(items)]
        pv = self._core(arrays, stack=return_tensors is not None)
        return BatchFeature(pixel_values=pv)

    preprocess = __call__

    def post_process_depth_estimation(self, outputs, target_sizes: Optional[Sequence] = None) -> List[Dict[str, np.ndarray]]:
        """``DPTImageProcessor.post_process_depth_estimation``: per image ``{"predicted_depth": [h, w]}``, resized
        (torch bicubic, align_corners=False) to ``target_sizes[i] = (h, w)``, or as predicted when None."""
        depth = _batch_output(outputs, "predicted_depth", "batch, height, width", "post_process_depth_estimation",
                              target_sizes)
        out = []
        for i in range(depth.shape[0]):
            if target_sizes is None or target_sizes[i] is None:
                out.append({"predicted_depth": depth[i]})
                continue
            h, w = (int(v) for v in target_sizes[i])
            out.append({"predicted_depth": _vtx.resize_predicted_depth(depth, i, h, w)})
        return out

    def post_process_semantic_segmentation(self, outputs, target_sizes: Optional[Sequence] = None) -> List[np.ndarray]:
        """``DPTImageProcessor.post_process_semantic_segmentation``: one int64 ``[h, w]`` label map per image, the
        argmax over the classes of ``outputs.logits`` [B, C, H, W] (the first maximum wins, as torch.argmax) after
        a bilinear resize (torch, align_corners=False) to ``target_sizes[i] = (h, w)``; at the logits' size when
        ``target_sizes`` is None."""
        logits = _batch_output(outputs, "logits", "batch, classes, height, width", "post_process_semantic_segmentation",
                               target_sizes)
        out = []
        for i in range(logits.shape[0]):
            if target_sizes is None:
                out.append(_vtx.post_process_semantic_segmentation(logits, i))
                continue
            size = target_sizes[i]
            if size is None or len(size) != 2:
                raise InputError(f"post_process_semantic_segmentation: target_sizes[{i}] must be (height, width), "
                                 f"got {size!r}")
            h, w = (int(v) for v in size)
            if h < 1 or w < 1:
                raise InputError(f"post_process_semantic_segmentation: target_sizes[{i}] = {(h, w)} is not a size")
            out.append(_vtx.post_process_semantic_segmentation(logits, i, h, w))
        return out

    def __repr__(self) -> str:
        return f"{self.config.get('image_processor_type', 'ImageProcessor')}({self.name_or_path!r})"


class AutoImageProcessor(ImageProcessor):
    """``AutoImageProcessor.from_pretrained(folder)``: the processor named in preprocessor_config.json."""
