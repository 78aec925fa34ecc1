#include "models/embeddings.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/interp.hpp"

namespace vtx::models {

Embeddings::Embeddings(const Loader& vb, const EmbeddingConfig& cfg) : cfg_(cfg) {
  const int64_t D = cfg.D;
  patch_ = PatchEmbedding::load(vb.pp("patch_embeddings.projection"), cfg.C, D, cfg.patch);
  special_ = vb.f32_vec("cls_token", {1, 1, D});
  if (cfg.special == 2) {
    auto d = vb.f32_vec("distillation_token", {1, 1, D});
    special_.insert(special_.end(), d.begin(), d.end());
  }
  if (vb.has("mask_token"))
    mask_token_ = vb.f32_vec("mask_token", cfg.mask_token_2d ? std::vector<int64_t>{1, D} : std::vector<int64_t>{1, 1, D});
  if (cfg.registers > 0) registers_ = vb.f32_vec("register_tokens", {1, cfg.registers, D});
  if (!cfg.position_embeddings) return;
  auto pshape = vb.shape("position_embeddings");
  if (pshape.size() != 3 || pshape[0] != 1 || pshape[2] != D || pshape[1] <= cfg.special)
    throw Error(vb.file_of("position_embeddings") + ": tensor '" + vb.key("position_embeddings") +
                "' has an unexpected shape for hidden_size " + std::to_string(D));
  const int64_t n0 = pshape[1] - cfg.special;
  grid0_ = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n0))));
  if (grid0_ * grid0_ != n0)
    throw Error(vb.file_of("position_embeddings") + ": position_embeddings hold " + std::to_string(n0) +
                " patch positions, not a square grid");
  pos_ = vb.f32_vec("position_embeddings", pshape);
}

void Embeddings::forward(const float* pixels, int64_t B, int64_t H, int64_t W, bool interpolate,
                         const std::vector<uint8_t>& mask, float* x, Workspace& wsp) const {
  const int64_t D = cfg_.D, S = cfg_.special, R = cfg_.registers, p = cfg_.patch;
  const int64_t gh = H / p, gw = W / p, N = gh * gw, T = S + R + N, n0 = grid0_ * grid0_;
  const bool interp = cfg_.always_interpolate || interpolate;
  if (!interp && (H != cfg_.image_size || W != cfg_.image_size))
    throw Error("pixel_values: input image size (" + std::to_string(H) + "*" + std::to_string(W) + ") doesn't match model (" +
                std::to_string(cfg_.image_size) + "*" + std::to_string(cfg_.image_size) +
                "); pass interpolate_pos_encoding to run at another size");
  if (!mask.empty() && mask_token_.empty())
    throw Error("bool_masked_pos: this checkpoint has no embeddings.mask_token");

  // Patch embeddings go to a scratch buffer, then are scattered into x after the special (+register) tokens.
  float* pe = wsp.get("embeddings.patches", static_cast<size_t>(B * N * D));
  patch_(pixels, B, H, W, pe, wsp, "embeddings.im2col");

  // Position embeddings for this grid ([S + N, D]).
  const float* pos = pos_.empty() ? nullptr : pos_.data();
  const bool resize = pos && interp && !(N == n0 && H == W);
  if (resize) {
    // Computed once per grid size and Session (the same numbers on every call) instead of on every forward pass:
    // at batch 1 the transposes and the interpolation took ~5 % of an int8 DINOv2-S forward.
    const std::string key = std::to_string(reinterpret_cast<uintptr_t>(this)) + ":" + std::to_string(gh) + "x" +
                            std::to_string(gw);
    pos = wsp.memo("embeddings.position", static_cast<size_t>((S + N) * D + (D * n0) + D * N), key, [&](float* p2) {
      float* src = p2 + (S + N) * D;  // [D, g0, g0]
      float* dst = src + D * n0;      // [D, gh, gw]
      for (int64_t i = 0; i < n0; ++i)
        for (int64_t d = 0; d < D; ++d) src[d * n0 + i] = pos_[(S + i) * D + d];
      kernels::Resize r{D, grid0_, grid0_, gh, gw, 0, 0};
      switch (cfg_.interp) {
        case PosInterp::Bicubic: kernels::bicubic(src, dst, r); break;
        case PosInterp::BicubicAA: kernels::bicubic_aa(src, dst, r); break;
        case PosInterp::Bilinear: kernels::bilinear(src, dst, r, false); break;
      }
      std::memcpy(p2, pos_.data(), static_cast<size_t>(S * D) * sizeof(float));
      for (int64_t i = 0; i < N; ++i)
        for (int64_t d = 0; d < D; ++d) p2[(S + i) * D + d] = dst[d * N + i];
    });
  } else if (pos && N != n0) {
    throw Error("pixel_values: " + std::to_string(N) + " patches but the position embeddings hold " + std::to_string(n0));
  }

  for (int64_t b = 0; b < B; ++b) {
    float* xb = x + b * T * D;
    for (int64_t s = 0; s < S; ++s)
      for (int64_t d = 0; d < D; ++d) xb[s * D + d] = special_[s * D + d] + (pos ? pos[s * D + d] : 0.f);
    for (int64_t i = 0; i < N; ++i) {
      const bool masked = !mask.empty() && mask[b * N + i];
      const float* src = masked ? mask_token_.data() : pe + (b * N + i) * D;
      float* dst = xb + (S + R + i) * D;
      if (!pos || (masked && cfg_.mask_after_position)) {
        std::memcpy(dst, src, static_cast<size_t>(D) * sizeof(float));
        continue;
      }
      const float* pp = pos + (S + i) * D;
      for (int64_t d = 0; d < D; ++d) dst[d] = src[d] + pp[d];
    }
    if (R) std::memcpy(xb + S * D, registers_.data(), static_cast<size_t>(R * D) * sizeof(float));
  }
}

}  // namespace vtx::models
