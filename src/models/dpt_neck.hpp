#pragma once
// The DPT neck + depth heads shared by DPTForDepthEstimation and DepthAnythingForDepthEstimation
// (transformers 4.48.3): reassemble stage (readout handling, 1x1 projection, resize by transposed / strided conv),
// neck.convs (3x3, no bias), feature fusion stage (pre-activation residual units, bilinear x2 / to the next map's
// size with align_corners=True, 1x1 projection) and the DPT / Depth Anything depth heads.
//
// Weights are loaded from the HF keys ("neck.reassemble_stage.layers.0.projection.weight", "neck.convs.0.weight",
// "neck.fusion_stage.layers.0.residual_layer1.convolution1.weight", "head.conv1.weight" / "head.head.0.weight", ...)
// with the shapes the config implies; a missing key or a wrong shape throws vtx::Error naming the file and the key.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/weights.hpp"
#include "kernels/conv.hpp"
#include "kernels/gemm.hpp"
#include "models/common.hpp"
#include "vtx/tensor.hpp"

namespace vtx::models {

struct DepthNeckConfig {
  enum class Kind { Dpt, DepthAnything };
  enum class Readout { Ignore, Add, Project };
  Kind kind = Kind::Dpt;
  int64_t backbone_hidden = 0;                 // channels of the token maps handed to the neck
  std::vector<int64_t> neck_hidden_sizes;      // per stage
  std::vector<double> reassemble_factors;      // per stage: >1 transposed conv, 1 identity, <1 strided 3x3 conv
  int64_t fusion_hidden_size = 0;
  Readout readout = Readout::Ignore;           // Depth Anything always drops the cls token (Ignore)
  kernels::Act readout_act = kernels::Act::Gelu;
  bool fusion_batch_norm = false;              // use_batch_norm_in_fusion_residual (folded into the convs)
  bool fusion_bias = true;                     // use_bias_in_fusion_residual (resolved)
  int64_t head_in_index = -1;
  // DPT-Hybrid: stages whose input is already a [B, neck_hidden_sizes[i], h, w] map (the BiT stage outputs);
  // their reassemble layer is the identity (neck_ignore_stages).
  std::vector<int64_t> ignore_stages;
  // Which head follows the neck: the depth head (DPTForDepthEstimation / Depth Anything) or the segmentation
  // head + optional auxiliary head (DPTForSemanticSegmentation). Set by the model after from_json.
  enum class Head { Depth, Segmentation };
  Head head = Head::Depth;
  int64_t num_labels = 0;       // segmentation
  bool auxiliary_head = false;  // segmentation: use_auxiliary_head
  bool ignored(int64_t stage) const;
  // DPT head
  bool add_projection = false;
  // Depth Anything head
  int64_t head_hidden_size = 0;
  int64_t patch_size = 14;
  bool metric = false;                         // depth_estimation_type "metric": sigmoid * max_depth, else ReLU * max_depth
  double max_depth = 1.0;

  // From a transformers config.json of model_type "dpt" or "depth_anything" (defaults as in 4.48.3). Throws
  // vtx::Error (prefixed with `where`, e.g. the config path) for unsupported settings (hybrid DPT, ...).
  static DepthNeckConfig from_json(const nlohmann::json& config, const std::string& where);
  int64_t num_stages() const { return static_cast<int64_t>(neck_hidden_sizes.size()); }
};

struct DepthNeckOutput {
  std::vector<Tensor> reassemble;  // [B, neck_hidden_sizes[i], h_i, w_i]            (only with keep_intermediates)
  std::vector<Tensor> fusion;      // [B, fusion_hidden_size, ...], deepest stage first (only with keep_intermediates)
  Tensor predicted_depth;          // [B, H', W']              (depth head)
  Tensor logits;                   // [B, num_labels, 2h, 2w]   (segmentation head, h x w = the head's fused map)
  Tensor auxiliary_logits;         // [B, num_labels, h', w']   (auxiliary head on the last fused map)
};

class DepthNeckHead {
 public:
  DepthNeckHead() = default;
  DepthNeckHead(const DepthNeckConfig& cfg, const Loader& ws);

  const DepthNeckConfig& config() const { return cfg_; }

  // hidden[i]: [B, 1 + ph*pw, backbone_hidden] token maps (cls first, patches row-major), one per stage
  // ([B, neck_hidden_sizes[i], h, w] maps for the ignored stages of DPT-Hybrid).
  // Activations live in `wsp` (buffers "neck.*" and "head.*"), so a reused workspace allocates nothing after the first
  // call at a given size. neck_ms / head_ms (optional) receive the wall time of the two parts.
  DepthNeckOutput forward(const std::vector<Tensor>& hidden, int64_t ph, int64_t pw, Workspace& wsp,
                          bool keep_intermediates, double* neck_ms = nullptr, double* head_ms = nullptr) const;
  // Convenience: a temporary workspace, intermediates kept.
  DepthNeckOutput forward(const std::vector<Tensor>& hidden, int64_t ph, int64_t pw) const;

 private:
  struct Map {  // an NCHW view into workspace memory
    float* p = nullptr;
    int64_t B = 0, C = 0, H = 0, W = 0;
  };
  struct Reassemble {
    kernels::PackedWeight readout_w;  // [C, C]: the patch half of Linear(2C, C)
    std::vector<float> readout_wcls;  // [C, C]: the cls half (row-major [out, in])
    std::vector<float> readout_b;     // [C]
    kernels::Conv2d projection;       // 1x1, C -> channels
    int mode = 0;                     // 0 identity, 1 transposed conv (up), 2 strided conv (down)
    kernels::ConvTranspose2d up;
    kernels::Conv2d down;
  };
  struct ResidualUnit {
    kernels::Conv2d conv1, conv2;
  };
  struct FusionLayer {
    kernels::Conv2d projection;
    ResidualUnit res1, res2;
  };

  Map reassemble(int64_t i, const Tensor& hidden, int64_t ph, int64_t pw, Workspace& wsp) const;
  void fusion_layer(const FusionLayer& l, const Map& hidden, const Map* residual, const Map& out,
                    Workspace& wsp) const;
  Tensor head(const Map& x, int64_t ph, int64_t pw, Workspace& wsp) const;
  // conv3x3 (+ folded BatchNorm) -> ReLU -> conv1x1 [-> bilinear x2, align_corners=True when upsample].
  Tensor segmentation_head(const kernels::Conv2d& conv, const kernels::Conv2d& cls, const Map& x, bool upsample,
                           Workspace& wsp) const;

  DepthNeckConfig cfg_;
  std::vector<Reassemble> reassemble_;
  std::vector<kernels::Conv2d> convs_;
  std::vector<FusionLayer> fusion_;
  // heads
  kernels::Conv2d head_projection_;  // DPT add_projection
  kernels::Conv2d head1_, head2_, head3_;
  kernels::Conv2d seg_conv_, seg_cls_, aux_conv_, aux_cls_;  // segmentation (+ auxiliary) head
};

// Conv helpers shared by the depth models: conv(prefix + ".weight" [cout, cin, k, k], prefix + ".bias" [cout]).
kernels::Conv2d load_conv2d(const Loader& ws, const std::string& prefix, int64_t cout, int64_t cin, int64_t k,
                            int64_t stride, int64_t pad, bool bias);

// Bilinear resize of an NCHW tensor (torch F.interpolate(mode="bilinear")) to [B, C, oh, ow].
Tensor resize_bilinear(const Tensor& x, int64_t oh, int64_t ow, bool align_corners);

}  // namespace vtx::models
