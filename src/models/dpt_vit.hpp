#pragma once
// DPT's own ViT (transformers 4.48.3 DPTModel): the trunk of DPTModel, DPTForDepthEstimation without a Dinov2
// backbone and DPTForSemanticSegmentation.
//   plain:  DPTViTEmbeddings      [cls, patches] + position grid bilinearly resized to (H/p, W/p) on every call
//   hybrid: DPTViTHybridEmbeddings [cls, conv1x1(BiT stage-3 map) flattened] + position embeddings; only the
//           native image_size runs (4.48.3 raises for any other size); the first two BiT maps feed the neck.
// Then the ViT encoder, the final LayerNorm and the optional pooler (tanh(dense(cls))).
#include <memory>
#include <string>
#include <vector>

#include "models/bit.hpp"
#include "models/vision_transformer.hpp"

namespace vtx::models {

class DptVit {
 public:
  // vb: the base model's scope ("dpt." for the task models, "" or "dpt." for DPTModel). pooler: load "pooler.dense".
  DptVit(const Config& c, const Loader& vb, bool pooler);

  bool hybrid() const { return hybrid_; }
  const EncoderConfig& encoder_config() const { return ecfg_; }
  const BitBackbone* bit() const { return bit_.get(); }
  int64_t patch_size() const { return patch_; }
  int64_t image_size() const { return image_size_; }
  int64_t mlp_hidden() const { return ecfg_.mlp_hidden; }

  struct Output {
    TrunkOutput t;                // x = encoder output (workspace), last_hidden_state after the final LayerNorm
    Tensor pooler_output;         // [B, D] when the pooler is loaded
    BitBackbone::Output backbone; // hybrid only
  };
  // Runs with run.keep_hidden as the caller sets it (the neck needs the layer outputs).
  Output forward(const Tensor& pixel_values, const ForwardOptions& opt, Workspace& wsp, EncoderRun& run) const;

 private:
  bool hybrid_ = false;
  int64_t patch_ = 16, image_size_ = 384, channels_ = 3;
  EncoderConfig ecfg_;
  std::unique_ptr<VisionTransformer> vit_;  // plain
  // hybrid
  std::unique_ptr<BitBackbone> bit_;
  Linear projection_;             // 1x1 conv [D, C3] on the stage-3 map
  std::vector<float> cls_, pos_;  // [D], [1 + n0, D]
  int64_t grid0_ = 0;
  Encoder encoder_;
  LayerNorm norm_;
  Linear pooler_;
};

}  // namespace vtx::models
