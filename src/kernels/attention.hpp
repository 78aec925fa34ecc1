#pragma once
// Multi-head self-attention core: out = softmax(Q K^T / sqrt(dh) + bias) V per (batch, head).
#include <cstdint>

namespace vtx::kernels {

struct AttentionArgs {
  const float* qkv = nullptr;  // [B, T, 3*D]: row = [q (H*dh) | k (H*dh) | v (H*dh)], heads contiguous dh-blocks
  int64_t B = 0, T = 0, H = 0, dh = 0;
  float* out = nullptr;            // [B, T, D] context (heads concatenated, as HF's context_layer)
  float* probs = nullptr;          // optional [B, H, T, T]: softmax probabilities (after head_mask) - output_attentions
  const float* head_mask = nullptr;  // optional [H]: multiplies the probabilities of head h (after softmax)
  const float* bias = nullptr;       // optional [H, T, T]: added to the scaled scores (BEiT relative position
                                     // bias), the same for every batch item
};

void attention(const AttentionArgs& a);      // optimized, multi-threaded
void attention_ref(const AttentionArgs& a);  // scalar reference

}  // namespace vtx::kernels
