#pragma once
// Pipelines: images in, answers out, as transformers' image-classification and image-feature-extraction
// pipelines do (load_image -> the model folder's image processor -> model -> post-processing).
//
//   auto p = vtx::Pipeline::load("google-vit-base-patch16-224");
//   auto top = p.classify({vtx::load_image("cat.jpg")}, 5);           // softmax scores, best first
//   vtx::Tensor e = p.embed({img}, vtx::Pool::Cls);                    // [1, D]
#include <memory>
#include <string>
#include <vector>

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
Pool parse_pool(const std::string& s);  // "cls", "mean", "cls+mean", "patch", "tokens", "pooler"

class Pipeline {
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
  ModelOutput forward(const std::vector<Image>& images, const ForwardOptions& opt = {});

 private:
  std::shared_ptr<const Model> model_;
  ImageProcessor proc_;
  std::unique_ptr<Session> session_;
};

// Post-processing, usable on outputs computed elsewhere.
std::vector<std::vector<Prediction>> top_k_predictions(const Tensor& logits, const std::vector<std::string>& id2label,
                                                       int top_k);
Tensor pool_embeddings(const ModelOutput& out, const ModelInfo& info, Pool pool);

}  // namespace vtx
