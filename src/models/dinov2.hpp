#pragma once
// DINOv2 and DINOv2-with-registers trunk, reusable as a backbone (Dinov2Backbone, DPT, Depth Anything).
#include <memory>
#include <string>
#include <vector>

#include "models/vision_transformer.hpp"

namespace vtx::models {

class Dinov2 {
 public:
  // vb scope: "" (Dinov2Model / Dinov2Backbone checkpoints), "dinov2." (classifier), "backbone." (DPT / Depth Anything).
  Dinov2(const Config& c, const Loader& vb);
  const VisionTransformer& trunk() const { return *trunk_; }
  int64_t num_register_tokens() const { return registers_; }
  const std::vector<int64_t>& out_indices() const { return out_indices_; }  // stage indices (0 = embeddings)
  const std::vector<std::string>& out_features() const { return out_features_; }

  // Backbone maps from the encoder's hidden states (run with keep_hidden): for each out index, the final
  // LayerNorm if apply_layernorm, then (reshape_hidden_states) drop cls + registers -> [B, D, h, w];
  // otherwise [B, T, D].
  std::vector<Tensor> feature_maps(const TrunkOutput& t, const std::vector<Tensor>& hidden_states) const;
  // Asks the encoder run to keep exactly the hidden states feature_maps reads.
  void request_feature_layers(EncoderRun& run) const { run.keep_only = out_indices_; }

 private:
  std::unique_ptr<VisionTransformer> trunk_;
  int64_t registers_ = 0;
  bool apply_layernorm_ = true, reshape_ = true;
  std::vector<int64_t> out_indices_;
  std::vector<std::string> out_features_;
};

}  // namespace vtx::models
