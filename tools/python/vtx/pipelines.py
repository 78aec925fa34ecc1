"""``vtx.pipeline(task, model=...)``: image-classification, image-feature-extraction, depth-estimation and
image-segmentation (semantic), as the transformers pipelines of the same names (load_image -> the folder's image processor -> model -> post-processing),
with numpy arrays instead of torch tensors."""
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ._errors import InputError
from .modeling import (AutoModel, AutoModelForDepthEstimation, AutoModelForImageClassification,
                       AutoModelForSemanticSegmentation, PreTrainedModel)
from .processing import ImageProcessor, to_rgb_array

TASKS = ("image-classification", "image-feature-extraction", "depth-estimation", "image-segmentation")


def _batches(items: list, batch_size: int):
    for i in range(0, len(items), batch_size):
        yield items[i:i + batch_size]


class Pipeline:
    task = ""

    def __init__(self, model: PreTrainedModel, image_processor: ImageProcessor, batch_size: int = 1):
        self.model = model
        self.image_processor = image_processor
        self.batch_size = self._check_batch(batch_size)

    @staticmethod
    def _check_batch(b) -> int:
        if not isinstance(b, (int, np.integer)) or isinstance(b, bool) or b < 1:
            raise InputError(f"batch_size: must be a positive integer, got {b!r}")
        return int(b)

    def _pixel_batches(self, images: list, batch_size: int):
        """(arrays, pixel_values) per batch; images of a batch that preprocess to different sizes run one by one."""
        for chunk in _batches(images, batch_size):
            arrays = [to_rgb_array(x, f"image {i}") for i, x in enumerate(chunk)]
            pvs = self.image_processor(arrays, return_tensors=None)["pixel_values"]
            if len(pvs) == 1:
                yield arrays, pvs[0][None]
            elif all(p.shape == pvs[0].shape for p in pvs):
                yield arrays, np.stack(pvs)
            else:
                for a, p in zip(arrays, pvs):
                    yield [a], p[None]

    def __call__(self, images, batch_size: Optional[int] = None, **kwargs):
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        b = self.batch_size if batch_size is None else self._check_batch(batch_size)
        results = self._run(items, b, **kwargs)
        return results[0] if single else results

    def _run(self, items: list, batch_size: int, **kwargs) -> list:
        raise NotImplementedError


class ImageClassificationPipeline(Pipeline):
    """``[{"label", "score"}]`` per image, best first: softmax over the logits (sigmoid for one label)."""
    task = "image-classification"

    def __init__(self, model, image_processor, batch_size: int = 1, top_k: int = 5):
        super().__init__(model, image_processor, batch_size)
        self.top_k = top_k

    def _run(self, items, batch_size, top_k: Optional[int] = None) -> List[List[Dict[str, Any]]]:
        k = self.top_k if top_k is None else top_k
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"top_k: must be a positive integer, got {k!r}")
        out = []
        for _, pv in self._pixel_batches(items, batch_size):
            for preds in self.model._core.classify(pv, int(k)):
                out.append([{"label": label, "score": float(score)} for label, score, _ in preds])
        return out


class ImageFeatureExtractionPipeline(Pipeline):
    """One embedding per image, with the batch dimension of transformers' output kept: ``[1, T, D]`` for the
    default ``pool=None`` (the whole last_hidden_state, transformers' default), ``[1, D]`` for ``pool=True``
    (pooler_output, transformers' pool=True) and for vtx's "cls" / "mean" / "pooler", ``[1, 2D]`` for
    "cls+mean", ``[1, N, D]`` for "patch"."""
    task = "image-feature-extraction"

    def __init__(self, model, image_processor, batch_size: int = 1, pool: Union[None, bool, str] = None):
        super().__init__(model, image_processor, batch_size)
        self.pool = pool

    @staticmethod
    def _pool_name(pool) -> str:
        if pool is None or pool is False:
            return "tokens"
        if pool is True:
            return "pooler"
        if isinstance(pool, str):
            return pool
        raise InputError(f"pool: expected None, True or one of cls, mean, cls+mean, patch, tokens, pooler; got {pool!r}")

    def _run(self, items, batch_size, pool=None) -> List[np.ndarray]:
        name = self._pool_name(self.pool if pool is None else pool)
        out = []
        for _, pv in self._pixel_batches(items, batch_size):
            e = self.model._core.embed(pv, name)
            out.extend(e[i:i + 1] for i in range(e.shape[0]))
        return out


class DepthEstimationPipeline(Pipeline):
    """``{"predicted_depth": float32 [h, w], "depth": PIL.Image}`` per image, at the image's size
    (post_process_depth_estimation); ``depth`` is min-max normalised to 0..255 ("L"), as transformers does
    (``(d - min) / (max - min) * 255`` truncated to uint8)."""
    task = "depth-estimation"

    def _run(self, items, batch_size) -> List[Dict[str, Any]]:
        from PIL import Image

        out = []
        for arrays, pv in self._pixel_batches(items, batch_size):
            res = self.model(pv)
            sizes = [a.shape[:2] for a in arrays]
            for d in self.image_processor.post_process_depth_estimation(res, target_sizes=sizes):
                depth = d["predicted_depth"]
                lo, hi = float(depth.min()), float(depth.max())
                norm = (depth - lo) / (hi - lo) if hi > lo else np.zeros_like(depth)
                out.append({"predicted_depth": depth, "depth": Image.fromarray((norm * 255).astype("uint8"))})
        return out


class ImageSegmentationPipeline(Pipeline):
    """Semantic segmentation, as transformers' ImageSegmentationPipeline with ``subtask="semantic"`` (the only
    subtask of a semantic model, and what ``subtask=None`` resolves to): per image a list of
    ``{"score": None, "label": id2label[c], "mask": PIL.Image "L"}``, one per class ``c`` present in the label map
    (post_process_semantic_segmentation at the image's size), in ascending class id (np.unique); the mask is 255
    where the label map is ``c``, else 0. ``threshold``, ``mask_threshold`` and ``overlap_mask_area_threshold``
    are accepted and, as in transformers, unused for a semantic model."""
    task = "image-segmentation"
    _IGNORED = ("threshold", "mask_threshold", "overlap_mask_area_threshold")

    def __init__(self, model, image_processor, batch_size: int = 1, subtask: Optional[str] = None, **ignored):
        super().__init__(model, image_processor, batch_size)
        self._check_subtask(subtask)
        self._check_ignored(ignored)
        self.subtask = subtask

    def _check_subtask(self, subtask) -> None:
        if subtask not in (None, "semantic"):
            raise InputError(f"subtask {subtask!r} is not supported for model {self.model.info.architecture} "
                             f"(a semantic segmentation model: subtask 'semantic' or None)")

    def _check_ignored(self, kwargs) -> None:
        bad = set(kwargs) - set(self._IGNORED)
        if bad:
            raise InputError(f"image-segmentation: unsupported argument(s) {', '.join(sorted(bad))}")

    @staticmethod
    def _label(names: List[str], c: int) -> str:
        return names[c] if 0 <= c < len(names) and names[c] else f"LABEL_{c}"

    def _run(self, items, batch_size, subtask: Optional[str] = None, **ignored) -> List[List[Dict[str, Any]]]:
        from PIL import Image

        self._check_subtask(subtask)
        self._check_ignored(ignored)
        names = self.model.info.id2label  # a copy of the list: read once
        out = []
        for arrays, pv in self._pixel_batches(items, batch_size):
            res = self.model(pv)
            sizes = [a.shape[:2] for a in arrays]
            for seg in self.image_processor.post_process_semantic_segmentation(res, target_sizes=sizes):
                out.append([{"score": None, "label": self._label(names, int(c)),
                             "mask": Image.fromarray(((seg == c) * 255).astype(np.uint8))}
                            for c in np.unique(seg)])
        return out


_CLASSES = {
    "image-classification": (ImageClassificationPipeline, AutoModelForImageClassification),
    "image-feature-extraction": (ImageFeatureExtractionPipeline, AutoModel),
    "depth-estimation": (DepthEstimationPipeline, AutoModelForDepthEstimation),
    "image-segmentation": (ImageSegmentationPipeline, AutoModelForSemanticSegmentation),
}


def pipeline(task: str, model=None, image_processor=None, *, dtype=None, quantize=None, compute=None,
             batch_size: int = 1,
             revision: Optional[str] = None, cache_dir: Optional[str] = None, local_files_only: bool = False,
             device=None, torch_dtype=None, **kwargs) -> Pipeline:
    """``vtx.pipeline("image-classification" | "image-feature-extraction" | "depth-estimation" |
    "image-segmentation", model=FOLDER)``.

    ``model`` is a folder / cached hub id or a model from ``from_pretrained``; ``image_processor`` defaults to the
    model folder's. Extra keyword arguments are the task's options (``top_k`` for classification, ``pool`` for
    feature extraction, ``subtask`` and the ignored thresholds for segmentation). The returned pipeline takes one image or a list (paths, PIL images, HWC uint8 arrays)
    and ``batch_size``.
    """
    if task not in _CLASSES:
        raise InputError(f"pipeline: unknown task {task!r} (supported: {', '.join(TASKS)})")
    if model is None:
        raise InputError(f"pipeline: {task} needs model= (a model folder; vtx has no default hub model)")
    if device not in (None, "cpu", -1):
        raise InputError(f"device: vtx runs on the CPU only, got {device!r}")
    pipe_cls, model_cls = _CLASSES[task]
    if isinstance(model, PreTrainedModel):
        m = model
        if model_cls._task is not None and m.info.task != model_cls._task:
            raise InputError(f"pipeline: {m.info.architecture} is not {model_cls._task_name} model")
    else:
        m = model_cls.from_pretrained(model, dtype=dtype, quantize=quantize, compute=compute, revision=revision,
                                      cache_dir=cache_dir,
                                      local_files_only=local_files_only, torch_dtype=torch_dtype)
    if image_processor is None:
        image_processor = ImageProcessor.from_pretrained(m.name_or_path if not isinstance(model, PreTrainedModel)
                                                         else model.name_or_path,
                                                         revision=revision, cache_dir=cache_dir,
                                                         local_files_only=local_files_only)
    elif not isinstance(image_processor, ImageProcessor):
        image_processor = ImageProcessor.from_pretrained(image_processor)
    allowed = {"image-classification": {"top_k"}, "image-feature-extraction": {"pool"}, "depth-estimation": set(),
               "image-segmentation": {"subtask", *ImageSegmentationPipeline._IGNORED}}[task]
    bad = set(kwargs) - allowed
    if bad:
        raise InputError(f"pipeline: unsupported argument(s) for {task}: {', '.join(sorted(bad))}")
    return pipe_cls(m, image_processor, batch_size=batch_size, **kwargs)
