#pragma once
// BiT backbone (transformers 4.48.3 BitBackbone, models/bit/modeling_bit.py) as DPT-Hybrid uses it:
// layer_type "bottleneck" (non-pre-activation ResNet), global_padding "SAME", embedding_dynamic_padding true.
//   every conv: weight-standardised ((w - mean) / sqrt(var + 1e-8) per output channel, done once at load), no
//               bias, TF "SAME" padding (stride 1: static (k-1)/2; stride > 1: dynamic, asymmetric);
//   stem:       conv 7x7/2 -> GroupNorm + ReLU -> max pool 3x3/2 (dynamic SAME zero padding);
//   stages:     strides 1, 2, 2; bottleneck x -> relu(GN(conv1x1(relu(GN(conv3x3/s(relu(GN(conv1x1(x))))))) + sc),
//               sc = GN(conv1x1/s(x)) in the first layer of a stage (x otherwise); mid width make_div(out / 4).
// Weights under "<scope>bit.embedder.*" and "<scope>bit.encoder.stages.<s>.layers.<l>.*".
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "models/common.hpp"
#include "models/loader.hpp"

namespace vtx::models {

struct BitConfig {
  int64_t num_channels = 3, embedding_size = 64, num_groups = 32, width_factor = 1, output_stride = 32;
  std::vector<int64_t> depths, hidden_sizes;  // per stage (zip of the two, as HF)
  std::vector<int64_t> out_stages;            // stage indices (1 = stage1) of out_features, in order
  // A BitConfig as transformers completes it: the keys of `j` over BitConfig's defaults, with DPTConfig's hybrid
  // defaults when `j` is null. Throws vtx::Error (prefixed with `where`) for settings vtx does not implement.
  static BitConfig from_json(const nlohmann::json& j, const std::string& where);
  int64_t stage_channels(size_t s) const;  // make_div(hidden_sizes[s] * width_factor)
};

class BitBackbone {
 public:
  BitBackbone() = default;
  BitBackbone(const BitConfig& cfg, const Loader& vb /* the "dpt.embeddings.backbone." scope */);
  const BitConfig& config() const { return cfg_; }
  // Channels of the out_features maps.
  std::vector<int64_t> channels() const;

  struct Output {
    Tensor stem;                 // [B, embedding_size, H/4, W/4] (after the max pool)
    std::vector<Tensor> stages;  // every stage's output [B, C_s, h_s, w_s]
    std::vector<Tensor> feature_maps;  // the out_features maps (shared with `stages`)
  };
  // pixels [B, C, H, W]; temporaries in the workspace buffers "bit.*".
  Output forward(const float* pixels, int64_t B, int64_t H, int64_t W, Workspace& wsp) const;

 private:
  struct Conv {
    kernels::Conv2d conv;  // standardised weight; static padding baked in, dynamic padding done before
    int64_t k = 1, stride = 1;
    bool dynamic = false;
    int64_t out_size(int64_t n) const { return dynamic ? (n + stride - 1) / stride : (n + 2 * ((k - 1) / 2) - k) / stride + 1; }
    void operator()(const float* x, int64_t B, int64_t H, int64_t W, float* y, Workspace& wsp) const;
  };
  struct Norm {
    std::vector<float> gamma, beta;
  };
  struct Layer {
    Conv conv1, conv2, conv3, down;
    Norm norm1, norm2, norm3, down_norm;
    bool has_down = false;
    int64_t mid = 0, out = 0;
  };
  Conv load_conv(const Loader& vb, int64_t cout, int64_t cin, int64_t k, int64_t stride) const;
  Norm load_norm(const Loader& vb, int64_t c) const;

  BitConfig cfg_;
  Conv stem_conv_;
  Norm stem_norm_;
  std::vector<std::vector<Layer>> stages_;
};

}  // namespace vtx::models
