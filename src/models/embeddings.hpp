#pragma once
// Token embeddings of the ViT family: patch embedding, optional mask token, [cls, (distillation)] tokens,
// position embeddings (resized to the input grid when needed), then optional register tokens.
//   ViT:    [cls, patches] + pos                       (bicubic resize only with interpolate_pos_encoding)
//   DeiT:   [cls, dist, patches] + pos
//   DINOv2: [cls, patches] + pos (always resized to the grid, bicubic a=-0.75)
//   +reg:   [cls, registers, patches] (antialiased bicubic resize)
//   DPT-ViT: [cls, patches] + pos (bilinear resize, grid inferred as sqrt(N))
//   BEiT:   [cls, patches] without position embeddings (relative position bias in the encoder), or (DiT)
//           [cls, patches + pos] with pos always bicubic-resized; the mask token replaces patch + pos
#include "models/common.hpp"

namespace vtx::models {

enum class PosInterp { Bicubic, BicubicAA, Bilinear };

struct EmbeddingConfig {
  int64_t D = 0, C = 3, patch = 16, image_size = 224;
  int64_t special = 1;        // cls (+ distillation)
  int64_t registers = 0;
  PosInterp interp = PosInterp::Bicubic;
  bool always_interpolate = false;   // DINOv2 / DPT: no interpolate_pos_encoding switch
  bool mask_token_2d = false;        // DINOv2 stores mask_token as [1, D], ViT as [1, 1, D]
  bool position_embeddings = true;   // false: none (BEiT with relative position bias)
  bool mask_after_position = false;  // BEiT: pos is added to the patches first, masked patches = bare mask token
};

class Embeddings {
 public:
  Embeddings() = default;
  Embeddings(const Loader& vb /* "...embeddings." */, const EmbeddingConfig& cfg);
  const EmbeddingConfig& config() const { return cfg_; }
  int64_t tokens(int64_t H, int64_t W) const { return cfg_.special + cfg_.registers + (H / cfg_.patch) * (W / cfg_.patch); }
  bool has_mask_token() const { return !mask_token_.empty(); }
  // pixels [B, C, H, W] -> x [B, T, D]. mask: B*N bytes or empty.
  void forward(const float* pixels, int64_t B, int64_t H, int64_t W, bool interpolate, const std::vector<uint8_t>& mask,
               float* x, Workspace& wsp) const;

 private:
  EmbeddingConfig cfg_;
  PatchEmbedding patch_;
  std::vector<float> special_;    // [special, D]
  std::vector<float> mask_token_; // [D] or empty
  std::vector<float> registers_;  // [registers, D]
  std::vector<float> pos_;        // [special + N0, D] (empty without position embeddings)
  int64_t grid0_ = 0;             // sqrt(N0)
};

}  // namespace vtx::models
