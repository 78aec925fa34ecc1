// DPT's own ViT trunk, plain or hybrid (BiT embeddings); see dpt_vit.hpp.
#include "models/dpt_vit.hpp"

#include <cmath>
#include <cstring>

#include "kernels/gemm.hpp"

namespace vtx::models {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace

DptVit::DptVit(const Config& c, const Loader& vb, bool pooler) {
  hybrid_ = c.b("is_hybrid", false);
  ecfg_ = models::encoder_config(c, false);
  patch_ = c.i("patch_size", 16);
  image_size_ = c.i("image_size", 384);
  channels_ = c.i("num_channels", 3);
  if (patch_ <= 0 || image_size_ <= 0) throw Error(c.path + ": patch_size and image_size must be positive");
  const int64_t D = ecfg_.D;
  if (!hybrid_) {
    EmbeddingConfig emb;
    emb.D = D;
    emb.C = channels_;
    emb.patch = patch_;
    emb.image_size = image_size_;
    emb.interp = PosInterp::Bilinear;
    emb.always_interpolate = true;
    vit_ = std::make_unique<VisionTransformer>(vb, emb, ecfg_, LayerKeys::vit(), "layernorm");
  } else {
    if (c.s("readout_type", "project") != "project")
      throw Error(c.path + ": readout_type must be \"project\" with is_hybrid (as transformers requires)");
    const BitConfig bc = BitConfig::from_json(c.j.contains("backbone_config") ? c.j["backbone_config"] : nlohmann::json(),
                                              c.path);
    if (bc.num_channels != channels_)
      throw Error(c.path + ": backbone_config.num_channels " + std::to_string(bc.num_channels) + " differs from num_channels " +
                  std::to_string(channels_));
    bit_ = std::make_unique<BitBackbone>(bc, vb.pp("embeddings.backbone"));
    const std::vector<int64_t> ch = bit_->channels();
    if (ch.size() != 3)
      throw Error(c.path + ": the hybrid BiT backbone must have 3 out_features (stage1..stage3), got " +
                  std::to_string(ch.size()));
    // backbone_featmap_shape[1] sets the projection's input channels (DPTViTHybridEmbeddings).
    if (!c.has("backbone_featmap_shape") || !c.j["backbone_featmap_shape"].is_array() ||
        c.j["backbone_featmap_shape"].size() != 4)
      throw Error(c.path + ": is_hybrid needs backbone_featmap_shape [1, C, h, w] (the BiT stage-3 map shape)");
    std::vector<int64_t> fs;
    for (const auto& v : c.j["backbone_featmap_shape"]) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        throw Error(c.path + ": backbone_featmap_shape must hold 4 positive integers");
      fs.push_back(v.get<int64_t>());
    }
    const std::string pname = "embeddings.projection.weight", pkey = vb.key(pname);
    const std::vector<int64_t> want = {D, fs[1], 1, 1};
    if (!vb.has(pname)) throw Error(vb.store().dir() + ": missing tensor '" + pkey + "'");
    if (vb.shape(pname) != want)
      throw Error(vb.file_of(pname) + ": tensor '" + pkey + "' has shape " + shape_str(vb.shape(pname)) + ", but " +
                  c.path + " (hidden_size, backbone_featmap_shape " + shape_str(fs) + ") implies " + shape_str(want));
    if (fs[1] != ch.back())
      throw Error(c.path + ": backbone_featmap_shape " + shape_str(fs) + " has " + std::to_string(fs[1]) +
                  " channels but the BiT stage-3 map has " + std::to_string(ch.back()));
    Tensor pw = vb.f32(pname, want), pb = vb.f32("embeddings.projection.bias", {D});
    projection_.in = fs[1];
    projection_.out = D;
    projection_.w = kernels::PackedWeight::pack(pw.data<float>(), D, fs[1]);
    projection_.bias.assign(pb.data<float>(), pb.data<float>() + D);
    cls_ = vb.f32_vec("embeddings.cls_token", {1, 1, D});
    const int64_t n0 = (image_size_ / patch_) * (image_size_ / patch_);
    pos_ = vb.f32_vec("embeddings.position_embeddings", {1, 1 + n0, D});
    grid0_ = image_size_ / patch_;
    encoder_ = Encoder(vb.pp("encoder.layer"), ecfg_, LayerKeys::vit());
    norm_ = LayerNorm::load(vb.pp("layernorm"), D, ecfg_.eps);
  }
  if (pooler && vb.has("pooler.dense.weight")) pooler_ = Linear::load(vb.pp("pooler.dense"), D, D);
}

DptVit::Output DptVit::forward(const Tensor& pv, const ForwardOptions& opt, Workspace& wsp, EncoderRun& run) const {
  Output o;
  if (!hybrid_) {
    ForwardOptions fo = opt;
    fo.interpolate_pos_encoding = true;  // DPT always resizes its position grid
    o.t = vit_->forward(pv, fo, wsp, run, true);
  } else {
    Tensor px = check_pixel_values(pv, channels_, patch_);
    const int64_t B = px.dim(0), H = px.dim(2), W = px.dim(3), D = ecfg_.D;
    if (H != image_size_ || W != image_size_)
      throw Error("pixel_values: input image size (" + std::to_string(H) + "*" + std::to_string(W) +
                  ") doesn't match model (" + std::to_string(image_size_) + "*" + std::to_string(image_size_) +
                  "): DPT-Hybrid runs only at its image_size (transformers 4.48.3 refuses other sizes too)");
    if (opt.bool_masked_pos) throw Error("bool_masked_pos: DPT has no mask token");
    o.backbone = bit_->forward(px.data<float>(), B, H, W, wsp);
    const Tensor& f = o.backbone.feature_maps.back();  // [B, C3, h, w]
    const int64_t C3 = f.dim(1), gh = f.dim(2), gw = f.dim(3), N = gh * gw;
    if (gh != grid0_ || gw != grid0_)
      throw Error("pixel_values: the BiT stage-3 map is " + std::to_string(gh) + "x" + std::to_string(gw) +
                  " but the position embeddings hold a " + std::to_string(grid0_) + "x" + std::to_string(grid0_) +
                  " grid (image_size / patch_size)");
    o.t.B = B;
    o.t.T = 1 + N;
    o.t.D = D;
    o.t.grid_h = gh;
    o.t.grid_w = gw;
    run.head_mask = expand_head_mask(opt.head_mask, ecfg_.layers, ecfg_.heads);
    float* x = wsp.get("trunk.stream", static_cast<size_t>(B * o.t.T * D));
    float* tok = wsp.get("embeddings.patches", static_cast<size_t>(N * C3));  // [N, C3] of one image
    for (int64_t b = 0; b < B; ++b) {
      const float* fm = f.data<float>() + b * C3 * N;
      for (int64_t cc = 0; cc < C3; ++cc)
        for (int64_t n = 0; n < N; ++n) tok[n * C3 + cc] = fm[cc * N + n];
      float* xb = x + b * o.t.T * D;
      // patches + position embeddings (no resize: the grid is the native one), then cls + its position.
      kernels::Epilogue ep;
      ep.bias = projection_.bias.data();
      ep.residual = pos_.data() + D;
      ep.ldr = D;
      kernels::linear(tok, N, C3, projection_.w, xb + D, D, ep);
      for (int64_t d = 0; d < D; ++d) xb[d] = cls_[d] + pos_[d];
    }
    encoder_.forward(x, B, o.t.T, wsp, run);
    o.t.x = x;
    o.t.last_hidden_state = Tensor::uninitialized({B, o.t.T, D}, DType::F32);
    norm_(x, B * o.t.T, o.t.last_hidden_state.data<float>());
  }
  if (pooler_.out) {  // tanh(dense(last_hidden_state[:, 0]))
    const int64_t B = o.t.B, T = o.t.T, D = o.t.D;
    o.pooler_output = Tensor({B, D}, DType::F32);
    kernels::Epilogue ep;
    ep.bias = pooler_.bias.data();
    kernels::linear(o.t.last_hidden_state.data<float>(), B, T * D, pooler_.w, o.pooler_output.data<float>(), D, ep);
    float* p = o.pooler_output.data<float>();
    for (int64_t i = 0; i < B * D; ++i) p[i] = std::tanh(p[i]);
  }
  return o;
}

}  // namespace vtx::models
