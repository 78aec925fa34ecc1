"""vtx: Hugging Face vision transformers (ViT, DeiT, DINOv2, DINOv2 with registers, DPT, Depth Anything) on the
vtx C++ engine, with the transformers calls and numpy arrays instead of torch tensors.

    import vtx
    model = vtx.AutoModel.from_pretrained("path/to/facebook-dinov2-small")
    processor = vtx.AutoImageProcessor.from_pretrained("path/to/facebook-dinov2-small")
    out = model(**processor(PIL.Image.open("cat.jpg")))
    out.last_hidden_state          # numpy float32 [1, 257, 384]

    classify = vtx.pipeline("image-classification", model="path/to/vit")
    classify("cat.jpg", top_k=3)   # [{"label": ..., "score": ...}, ...]

    segment = vtx.pipeline("image-segmentation", model="path/to/dpt-large-ade")
    segment("room.jpg")            # [{"score": None, "label": ..., "mask": PIL.Image "L"}, ...]

Errors are vtx.Error: vtx.FileError (an OSError) for missing or corrupt files, vtx.InputError (a ValueError)
for bad arguments. Scale-out on a Dask cluster: vtx.dask.embed_images.
"""
from ._errors import Error, FileError, InputError  # noqa: F401  (first: the extension imports them)
from . import _vtx
from ._vtx import ModelInfo, bf16_compute_available, load_image, num_threads, set_num_threads  # noqa: F401
from .modeling import (  # noqa: F401
    AutoModel, AutoModelForDepthEstimation, AutoModelForImageClassification, AutoModelForSemanticSegmentation,
    BackboneOutput, BaseModelOutputWithPooling, DeiTForImageClassificationWithTeacherOutput, DepthEstimatorOutput,
    ImageClassifierOutput, MaskedImageModelingOutput, ModelOutput, PreTrainedModel, SemanticSegmenterOutput)
from .pipelines import (  # noqa: F401
    DepthEstimationPipeline, ImageClassificationPipeline, ImageFeatureExtractionPipeline, ImageSegmentationPipeline,
    Pipeline, pipeline)
from .processing import AutoImageProcessor, BatchFeature, ImageProcessor  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "Error", "FileError", "InputError", "AutoModel", "AutoModelForImageClassification", "AutoModelForDepthEstimation",
    "AutoModelForSemanticSegmentation", "PreTrainedModel", "ModelOutput", "BaseModelOutputWithPooling", "ImageClassifierOutput",
    "DeiTForImageClassificationWithTeacherOutput", "BackboneOutput", "MaskedImageModelingOutput",
    "DepthEstimatorOutput", "SemanticSegmenterOutput", "AutoImageProcessor", "ImageProcessor", "BatchFeature", "pipeline", "Pipeline",
    "ImageClassificationPipeline", "ImageFeatureExtractionPipeline", "DepthEstimationPipeline",
    "ImageSegmentationPipeline", "ModelInfo",
    "load_image", "set_num_threads", "num_threads", "bf16_compute_available",
]
