#pragma once
// Pipelines: images in, answers out, as transformers' image-classification and image-feature-extraction
// pipelines do (load_image -> the model folder's image processor -> model -> post-processing).
//
//   auto p = vtx::Pipeline::load("google-vit-base-patch16-224");
//   auto top = p.classify({vtx::load_image("cat.jpg")}, 5);           // softmax scores, best first
//   vtx::Tensor e = p.embed({img}, vtx::Pool::Cls);                    // [1, D]
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vtx/export.hpp"
#include "vtx/image.hpp"
#include "vtx/model.hpp"
#include "vtx/processor.hpp"

namespace vtx {

struct Prediction {
  int64_t index = 0;
  std::string label;  // id2label[index], or "LABEL_<index>"
  float score = 0;
};

enum class Pool {
  Cls,      // last_hidden_state[:, 0] (= DINOv2 pooler_output)
  Mean,     // mean of the patch tokens (cls and registers excluded)
  ClsMean,  // concat(cls, mean): the DINOv2 linear-probe feature
  Patch,    // the patch tokens [N, D] (cls and registers dropped)
  Tokens,   // the whole last_hidden_state [T, D] (transformers' pipeline default)
  Pooler,   // pooler_output (transformers' pipeline with pool=True)
};
VTX_API Pool parse_pool(const std::string& s);  // "cls", "mean", "cls+mean", "patch", "tokens", "pooler"

class VTX_API Pipeline {
 public:
  // Loads the model and the image processor (preprocessor_config.json) of a folder.
  static Pipeline load(const std::string& dir, const LoadOptions& opt = {});
  Pipeline(std::shared_ptr<const Model> model, ImageProcessor proc);

  const Model& model() const { return *model_; }
  const ImageProcessor& processor() const { return proc_; }

  // pixel_values of a batch (all images must preprocess to the same size).
  Tensor preprocess(const std::vector<Image>& images) const;
  // Top-k predictions per image: softmax over the logits (sigmoid when there is one label), as the HF pipeline.
  std::vector<std::vector<Prediction>> classify(const std::vector<Image>& images, int top_k = 5);
  // One embedding per image: [B, D], [B, 2D] (ClsMean), [B, N, D] (Patch) or [B, T, D] (Tokens).
  Tensor embed(const std::vector<Image>& images, Pool pool);
  // Depth at each image's original size (post_process_depth_estimation): one [height, width] F32 per image.
  std::vector<Tensor> depth(const std::vector<Image>& images);
  // The batch through the processor and the model. As the transformers pipelines, this passes the caller's
  // ForwardOptions unchanged (no interpolate_pos_encoding unless asked): the processor resizes to the size the
  // model was trained at, and DINOv2-family models always interpolate their position embeddings.
  ModelOutput forward(const std::vector<Image>& images, const ForwardOptions& opt = {});
  // --- semantic segmentation (issue 14) ---
  // image-segmentation (semantic) for DPTForSemanticSegmentation: one I64 [height, width] label map per image
  // at the image's own size (post_process_semantic_segmentation below).
  std::vector<Tensor> segment(const std::vector<Image>& images);
  // --- end semantic segmentation ---

 private:
  std::shared_ptr<const Model> model_;
  ImageProcessor proc_;
  std::unique_ptr<Session> session_;
};

// Post-processing, usable on outputs computed elsewhere.
VTX_API std::vector<std::vector<Prediction>> top_k_predictions(const Tensor& logits,
                                                               const std::vector<std::string>& id2label, int top_k);
VTX_API Tensor pool_embeddings(const ModelOutput& out, const ModelInfo& info, Pool pool);

// DPTImageProcessor.post_process_depth_estimation(outputs, target_sizes=[(height, width)]) for image `index`:
// torch bicubic (a = -0.75, align_corners=False, no antialias) resize of predicted_depth[index] ([B, H', W'])
// to [height, width]. Throws vtx::Error on a bad index / shape / size.
VTX_API Tensor post_process_depth_estimation(const Tensor& predicted_depth, int64_t index, int64_t height,
                                             int64_t width);

// Depth pictures, from a [height, width] F32 depth map.
enum class DepthPicture {
  Gray8,    // uint8((d - min) / (max - min) * 255), truncated: the "depth" image of the transformers pipeline
  Inferno,  // round((d - min) / (max - min) * 255) through matplotlib's inferno colormap (RGB)
  Gray16,   // 16-bit data PNG: relative depth (d - min) / (max - min) * 65535; metric depth d * 256 (KITTI)
};
struct DepthPng {
  std::string png;          // the encoded file
  float min = 0, max = 0;   // range of the depth map
  std::string scale;        // how to read the values back (also stored in the PNG's "vtx-depth-scale" tEXt)
};
VTX_API DepthPng encode_depth_png(const Tensor& depth, DepthPicture kind, bool metric);
// The pipeline's 8-bit "depth" picture as an image (gray replicated to RGB).
VTX_API Image depth_to_image(const Tensor& depth);

// Image files: arguments as given, folders walked recursively for image files (.jpg .jpeg .png .webp .bmp,
// case-insensitive), sorted within each folder. A path that does not exist is kept, so that it is reported.
VTX_API bool is_image_file_name(const std::string& path);
VTX_API std::vector<std::string> find_image_files(const std::vector<std::string>& args);

// Batches over image files with per-image error reporting: loads `batch_size` images at a time and calls
// fn(paths, images) for each batch of successfully loaded images. A file that fails to load, or a batch whose
// fn throws vtx::Error (retried image by image, so that one odd image does not sink the others), is recorded
// and skipped. progress(done, total), when given, is called after each batch.
struct ImageFailure {
  std::string path, error;
};
using ImageBatchFn = std::function<void(const std::vector<std::string>& paths, const std::vector<Image>& images)>;
VTX_API std::vector<ImageFailure> for_each_image_batch(const std::vector<std::string>& paths, int batch_size,
                                                       const ImageLoadOptions& opt, const ImageBatchFn& fn,
                                                       const std::function<void(size_t, size_t)>& progress = {});

// --- semantic segmentation (issue 14) ---
// DPTImageProcessor.post_process_semantic_segmentation(outputs, target_sizes=[(height, width)]) for image `index`
// of the batch: logits [B, C, h, w] bilinearly resized (torch, align_corners=False, no antialias) to
// [height, width], then the argmax over the C classes (the first maximum wins). Returns I64 [height, width]
// class ids; `resized_logits`, when given, receives the resized F32 [C, height, width].
// height = width = 0: no resize (transformers' target_sizes=None). Throws vtx::Error on bad shapes / sizes.
VTX_API Tensor post_process_semantic_segmentation(const Tensor& logits, int64_t index, int64_t height, int64_t width,
                                                 Tensor* resized_logits = nullptr);
// --- end semantic segmentation ---

}  // namespace vtx
