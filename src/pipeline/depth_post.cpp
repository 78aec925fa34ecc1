// DPTImageProcessor.post_process_depth_estimation (include/vtx/pipeline.hpp).
#include "kernels/interp.hpp"
#include "vtx/pipeline.hpp"

namespace vtx {

Tensor post_process_depth_estimation(const Tensor& predicted_depth, int64_t index, int64_t height, int64_t width) {
  if (predicted_depth.ndim() != 3 || predicted_depth.dtype() != DType::F32)
    throw Error("post_process_depth_estimation: predicted_depth must be F32 [B, H, W], got " + predicted_depth.shape_str());
  if (index < 0 || index >= predicted_depth.dim(0))
    throw Error("post_process_depth_estimation: image index " + std::to_string(index) + " out of range for batch " +
                std::to_string(predicted_depth.dim(0)));
  if (height <= 0 || width <= 0)
    throw Error("post_process_depth_estimation: invalid target size " + std::to_string(height) + "x" + std::to_string(width));
  const int64_t H = predicted_depth.dim(1), W = predicted_depth.dim(2);
  if (H <= 0 || W <= 0) throw Error("post_process_depth_estimation: empty depth map");
  Tensor out({height, width}, DType::F32);
  kernels::Resize r;
  r.C = 1;
  r.H = H;
  r.W = W;
  r.OH = height;
  r.OW = width;
  kernels::bicubic(predicted_depth.data<float>() + index * H * W, out.data<float>(), r);
  return out;
}

}  // namespace vtx
