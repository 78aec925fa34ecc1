#pragma once
// Embeddings + encoder + final LayerNorm: the trunk every model here is built on.
#include <memory>

#include "models/embeddings.hpp"
#include "models/encoder.hpp"

namespace vtx::models {

struct TrunkOutput {
  int64_t B = 0, T = 0, D = 0, grid_h = 0, grid_w = 0;
  float* x = nullptr;        // [B, T, D] encoder output before the final LayerNorm (workspace memory)
  Tensor last_hidden_state;  // [B, T, D] after the final LayerNorm (only if requested)
};

class VisionTransformer {
 public:
  VisionTransformer(const Loader& vb /* the base model's scope: "" or "vit." ... */, const EmbeddingConfig& ecfg, const EncoderConfig& cfg, const LayerKeys& keys,
                    const std::string& final_norm /* "layernorm" */);
  const Embeddings& embeddings() const { return emb_; }
  const Encoder& encoder() const { return enc_; }
  const LayerNorm& final_norm() const { return norm_; }
  // Runs embeddings and encoder; applies the final LayerNorm into last_hidden_state when final_ln is true.
  TrunkOutput forward(const Tensor& pixel_values, const ForwardOptions& opt, Workspace& wsp, EncoderRun& run,
                      bool final_ln = true) const;

 private:
  Embeddings emb_;
  Encoder enc_;
  LayerNorm norm_;
};

// Reads the encoder settings shared by ViT-like configs (hidden_size, num_attention_heads, ...).
EncoderConfig encoder_config(const Config& c, bool dinov2_style);

// Fills the trunk sizes of ModelInfo (MLP width, SwiGLU, special tokens).
void describe_trunk(ModelInfo& info, const VisionTransformer& t);

}  // namespace vtx::models
