#include "vtx/pipeline.hpp"

#include "vtx/hub.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vtx {

Pool parse_pool(const std::string& s) {
  if (s == "cls") return Pool::Cls;
  if (s == "mean") return Pool::Mean;
  if (s == "cls+mean") return Pool::ClsMean;
  if (s == "patch") return Pool::Patch;
  if (s == "tokens") return Pool::Tokens;
  if (s == "pooler") return Pool::Pooler;
  throw Error("unknown pooling \"" + s + "\" (cls, mean, cls+mean, patch, tokens, pooler)");
}

Pipeline Pipeline::load(const std::string& dir_or_id, const LoadOptions& opt) {
  const std::string dir = resolve_model(dir_or_id, hub_options(opt)).dir;  // a folder, or a hub id (vtx/hub.hpp)
  return Pipeline(Model::load(dir, opt), ImageProcessor::from_pretrained(dir));
}

Pipeline::Pipeline(std::shared_ptr<const Model> model, ImageProcessor proc)
    : model_(std::move(model)), proc_(std::move(proc)), session_(std::make_unique<Session>(model_)) {}

Tensor Pipeline::preprocess(const std::vector<Image>& images) const { return proc_.preprocess(images); }

ModelOutput Pipeline::forward(const std::vector<Image>& images, const ForwardOptions& opt) {
  // transformers' image-classification / image-feature-extraction / depth-estimation pipelines call the model
  // with the processor's pixel_values and nothing else: no interpolate_pos_encoding. The processor resizes to
  // the size the checkpoint expects; a ViT whose processor disagrees with config.image_size fails there as it
  // does here, and DINOv2-family and DPT models always interpolate their position embeddings.
  return session_->forward(preprocess(images), opt);
}

std::vector<Tensor> Pipeline::depth(const std::vector<Image>& images) {
  if (model_->info().task != Task::DepthEstimation)
    throw Error("depth: " + model_->info().architecture + " is not a depth-estimation model");
  const ModelOutput out = forward(images);
  std::vector<Tensor> r;
  for (size_t i = 0; i < images.size(); ++i)
    r.push_back(post_process_depth_estimation(out.predicted_depth, static_cast<int64_t>(i), images[i].height,
                                              images[i].width));
  return r;
}

std::vector<std::vector<Prediction>> top_k_predictions(const Tensor& logits, const std::vector<std::string>& id2label,
                                                       int top_k) {
  if (logits.ndim() != 2) throw Error("classify: logits must be [batch, labels], got " + logits.shape_str());
  const int64_t B = logits.dim(0), C = logits.dim(1);
  Tensor l = logits.to_f32();
  std::vector<std::vector<Prediction>> r(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const float* x = l.data<float>() + b * C;
    std::vector<float> p(static_cast<size_t>(C));
    if (C == 1) {
      p[0] = 1.0f / (1.0f + std::exp(-x[0]));
    } else {
      const float mx = *std::max_element(x, x + C);
      double sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += p[c] = std::exp(x[c] - mx);
      for (auto& v : p) v = static_cast<float>(v / sum);
    }
    std::vector<int64_t> idx(static_cast<size_t>(C));
    std::iota(idx.begin(), idx.end(), 0);
    const int64_t k = std::clamp<int64_t>(top_k, 1, C);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t c) { return p[a] > p[c]; });
    for (int64_t i = 0; i < k; ++i) {
      const int64_t c = idx[i];
      std::string label = c < static_cast<int64_t>(id2label.size()) && !id2label[c].empty() ? id2label[c] : "LABEL_" + std::to_string(c);
      r[b].push_back({c, label, p[c]});
    }
  }
  return r;
}

std::vector<std::vector<Prediction>> Pipeline::classify(const std::vector<Image>& images, int top_k) {
  if (model_->info().task != Task::Classification)
    throw Error("classify: " + model_->info().architecture + " has no classification head");
  return top_k_predictions(forward(images).logits, model_->info().id2label, top_k);
}

Tensor pool_embeddings(const ModelOutput& out, const ModelInfo& info, Pool pool) {
  if (pool == Pool::Pooler) {
    if (out.pooler_output.empty()) throw Error("embed: " + info.architecture + " has no pooler_output");
    return out.pooler_output;
  }
  const Tensor& h = out.last_hidden_state;
  if (h.empty() || h.ndim() != 3) throw Error("embed: " + info.architecture + " gives no last_hidden_state");
  if (pool == Pool::Tokens) return h;
  const int64_t B = h.dim(0), T = h.dim(1), D = h.dim(2);
  const int64_t first = info.num_special_tokens + info.num_register_tokens, N = T - first;
  const float* x = h.data<float>();
  if (pool == Pool::Patch) {
    Tensor r({B, N, D}, DType::F32);
    for (int64_t b = 0; b < B; ++b) std::copy_n(x + (b * T + first) * D, N * D, r.data<float>() + b * N * D);
    return r;
  }
  const int64_t width = pool == Pool::ClsMean ? 2 * D : D;
  Tensor r({B, width}, DType::F32);
  for (int64_t b = 0; b < B; ++b) {
    float* o = r.data<float>() + b * width;
    if (pool == Pool::Cls || pool == Pool::ClsMean) std::copy_n(x + b * T * D, D, o);
    if (pool == Pool::Mean || pool == Pool::ClsMean) {
      float* m = pool == Pool::ClsMean ? o + D : o;
      for (int64_t d = 0; d < D; ++d) {
        float acc = 0;
        for (int64_t n = 0; n < N; ++n) acc += x[(b * T + first + n) * D + d];
        m[d] = acc / static_cast<float>(N);
      }
    }
  }
  return r;
}

Tensor Pipeline::embed(const std::vector<Image>& images, Pool pool) {
  return pool_embeddings(forward(images), model_->info(), pool);
}

}  // namespace vtx
