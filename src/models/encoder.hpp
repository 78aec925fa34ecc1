#pragma once
// The pre-norm transformer encoder shared by ViT, DeiT, DINOv2 (+registers) and DPT's ViT:
//   x = x + ls1 * O(attn(LN1(x)));  x = x + ls2 * MLP(LN2(x))
// Only the key names differ between families (LayerKeys); layer scale and SwiGLU are DINOv2 options; BEiT adds
// layer scale (lambda_1/2), a key projection without bias and an additive attention-score bias per layer.
#include <string>
#include <vector>

#include "models/common.hpp"

namespace vtx::models {

struct LayerKeys {
  std::string norm1, norm2, q, k, v, o, fc1, fc2, ls1, ls2, swiglu_in, swiglu_out;
  static LayerKeys vit();     // layernorm_before, attention.attention.query, intermediate.dense, output.dense
  static LayerKeys dinov2();  // norm1, mlp.fc1 / mlp.weights_in, layer_scale1.lambda1
  static LayerKeys beit();    // vit() + lambda_1 / lambda_2
};

struct EncoderConfig {
  int64_t D = 0, heads = 0, layers = 0, mlp_hidden = 0;
  double eps = 1e-12;
  kernels::Act act = kernels::Act::Gelu;
  bool qkv_bias = true, layer_scale = false, swiglu = false;
  bool key_bias = true;  // false: the key projection has no bias (BEiT); query/value follow qkv_bias
};

struct EncoderLayer {
  LayerNorm norm1, norm2;
  Linear qkv, o, fc1, fc2;  // fc1/fc2 = weights_in/weights_out for SwiGLU (fc1 has 2*hidden outputs)
  std::vector<float> ls1, ls2;
};

// What the caller wants back from a forward pass of the encoder.
struct EncoderRun {
  bool keep_hidden = false;   // collect hidden_states (L+1, index 0 = input)
  // When keep_hidden is false: only these hidden-state indices are kept (the others stay empty Tensors, so indices
  // are stable), e.g. the layers a backbone or a depth neck reads.
  std::vector<int64_t> keep_only;
  bool keep_attn = false;     // collect attentions
  std::vector<std::vector<float>> head_mask;  // [L][H] or empty
  std::vector<const float*> attn_bias;        // [L] x [H, T, T] added to the attention scores (BEiT), or empty
  std::vector<Tensor> hidden_states, attentions;  // filled as [B, T, D] / [B, H, T, T]

  // What the caller asked for: every hidden state / attention map when the options say so.
  static EncoderRun for_outputs(const ForwardOptions& opt) {
    EncoderRun r;
    r.keep_hidden = opt.output_hidden_states;
    r.keep_attn = opt.output_attentions;
    return r;
  }
};

class Encoder {
 public:
  Encoder() = default;
  Encoder(const Loader& vb /* "...encoder.layer." */, const EncoderConfig& cfg, const LayerKeys& keys);
  const EncoderConfig& config() const { return cfg_; }
  // x: [B*T, D] residual stream, updated in place.
  void forward(float* x, int64_t B, int64_t T, Workspace& wsp, EncoderRun& run) const;

 private:
  EncoderConfig cfg_;
  std::vector<EncoderLayer> layers_;
};


}  // namespace vtx::models
