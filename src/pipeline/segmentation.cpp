// Semantic segmentation post-processing (DPTImageProcessor.post_process_semantic_segmentation) and the
// image-segmentation pipeline.
#include <string>

#include "kernels/interp.hpp"
#include "vtx/pipeline.hpp"

namespace vtx {

Tensor post_process_semantic_segmentation(const Tensor& logits, int64_t index, int64_t height, int64_t width,
                                         Tensor* resized_logits) {
  if (logits.ndim() != 4 || logits.dtype() != DType::F32)
    throw Error("post_process_semantic_segmentation: logits must be F32 [B, C, H, W], got " + logits.shape_str());
  const int64_t B = logits.dim(0), C = logits.dim(1), H = logits.dim(2), W = logits.dim(3);
  if (index < 0 || index >= B)
    throw Error("post_process_semantic_segmentation: image index " + std::to_string(index) + " out of range for batch " +
                std::to_string(B));
  if (C <= 0 || H <= 0 || W <= 0) throw Error("post_process_semantic_segmentation: empty logits " + logits.shape_str());
  if (height == 0 && width == 0) {
    height = H;
    width = W;
  }
  if (height <= 0 || width <= 0)
    throw Error("post_process_semantic_segmentation: invalid target size " + std::to_string(height) + "x" +
                std::to_string(width));
  const float* src = logits.data<float>() + index * C * H * W;
  Tensor resized;
  if (height == H && width == W) {
    resized = Tensor::from_data({C, H, W}, src);  // interpolate() to the same size is the identity
  } else {
    resized = Tensor::uninitialized({C, height, width}, DType::F32);
    kernels::Resize r;
    r.C = C;
    r.H = H;
    r.W = W;
    r.OH = height;
    r.OW = width;
    kernels::bilinear(src, resized.data<float>(), r, false);
  }
  Tensor map({height, width}, DType::I64);
  const float* p = resized.data<float>();
  int64_t* m = map.data<int64_t>();
  const int64_t P = height * width;
  for (int64_t i = 0; i < P; ++i) {
    int64_t best = 0;
    float bv = p[i];
    for (int64_t c = 1; c < C; ++c) {
      const float v = p[c * P + i];
      if (v > bv) {  // strictly greater: the first maximum wins, as torch.argmax
        bv = v;
        best = c;
      }
    }
    m[i] = best;
  }
  if (resized_logits) *resized_logits = resized;
  return map;
}

std::vector<Tensor> Pipeline::segment(const std::vector<Image>& images) {
  if (model().info().task != Task::SemanticSegmentation)
    throw Error("segment: " + model().info().architecture + " is not a semantic segmentation model");
  ModelOutput out = forward(images);
  if (out.logits.ndim() != 4) throw Error("segment: the model gave no [B, C, H, W] logits");
  std::vector<Tensor> maps;
  for (size_t i = 0; i < images.size(); ++i)
    maps.push_back(post_process_semantic_segmentation(out.logits, static_cast<int64_t>(i), images[i].height,
                                                      images[i].width));
  return maps;
}

}  // namespace vtx
