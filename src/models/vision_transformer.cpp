#include "models/vision_transformer.hpp"

namespace vtx::models {

EncoderConfig encoder_config(const Config& c, bool dinov2_style) {
  EncoderConfig e;
  e.D = c.i("hidden_size");
  e.heads = c.i("num_attention_heads");
  e.layers = c.i("num_hidden_layers");
  e.eps = c.f("layer_norm_eps", dinov2_style ? 1e-6 : 1e-12);
  e.qkv_bias = c.b("qkv_bias", true);
  e.act = parse_act(c, "hidden_act", "gelu");
  if (e.D % e.heads != 0)
    throw Error(c.path + ": hidden_size " + std::to_string(e.D) + " is not a multiple of num_attention_heads " +
                std::to_string(e.heads));
  if (dinov2_style) {
    // mlp_ratio is range-checked (Config), so D * ratio fits easily in int64.
    const int64_t hidden = static_cast<int64_t>(static_cast<double>(e.D) * c.f("mlp_ratio", 4.0));
    if (hidden < 1) throw Error(c.path + ": hidden_size x mlp_ratio gives an MLP of " + std::to_string(hidden) + " units");
    e.swiglu = c.b("use_swiglu_ffn", false);
    // HF Dinov2SwiGLUFFN: hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
    e.mlp_hidden = e.swiglu ? (static_cast<int64_t>(static_cast<double>(hidden) * 2.0 / 3.0) + 7) / 8 * 8 : hidden;
    e.layer_scale = true;
  } else {
    e.mlp_hidden = c.i("intermediate_size");
  }
  return e;
}

void describe_trunk(ModelInfo& info, const VisionTransformer& t) {
  info.mlp_hidden_size = t.encoder().config().mlp_hidden;
  info.swiglu = t.encoder().config().swiglu;
  info.num_special_tokens = t.embeddings().config().special;
}

double forward_flops_impl(const ModelInfo& m, int64_t H, int64_t W) {
  const double D = static_cast<double>(m.hidden_size), p = static_cast<double>(m.patch_size);
  if (m.patch_size <= 0) return 0;
  const double n = static_cast<double>((H / m.patch_size) * (W / m.patch_size));
  const double T = n + static_cast<double>(m.num_special_tokens + m.num_register_tokens);
  const double F = static_cast<double>(m.mlp_hidden_size);
  const double mlp = m.swiglu ? T * D * 2 * F + T * F * D : 2 * T * D * F;
  const double layer = 4 * T * D * D + 2 * T * T * D + mlp;
  const double head = m.task == Task::Classification ? D * static_cast<double>(m.id2label.size()) : 0;
  return 2 * (n * D * static_cast<double>(m.num_channels) * p * p + static_cast<double>(m.num_layers) * layer + head);
}

VisionTransformer::VisionTransformer(const Loader& vb, const EmbeddingConfig& ecfg, const EncoderConfig& cfg,
                                     const LayerKeys& keys, const std::string& final_norm)
    : emb_(vb.pp("embeddings"), ecfg), enc_(vb.pp("encoder.layer"), cfg, keys) {
  if (!final_norm.empty()) norm_ = LayerNorm::load(vb.pp(final_norm), cfg.D, cfg.eps);
}

TrunkOutput VisionTransformer::forward(const Tensor& pv, const ForwardOptions& opt, Workspace& wsp, EncoderRun& run,
                                       bool final_ln) const {
  const EmbeddingConfig& ec = emb_.config();
  Tensor px = check_pixel_values(pv, ec.C, ec.patch);
  TrunkOutput o;
  o.B = px.dim(0);
  const int64_t H = px.dim(2), W = px.dim(3);
  o.grid_h = H / ec.patch;
  o.grid_w = W / ec.patch;
  o.T = emb_.tokens(H, W);
  o.D = ec.D;
  std::vector<uint8_t> mask = read_mask(opt.bool_masked_pos, o.B, o.grid_h * o.grid_w);
  run.head_mask = expand_head_mask(opt.head_mask, enc_.config().layers, enc_.config().heads);
  o.x = wsp.get("trunk.stream", static_cast<size_t>(o.B * o.T * o.D));
  emb_.forward(px.data<float>(), o.B, H, W, opt.interpolate_pos_encoding, mask, o.x, wsp);
  enc_.forward(o.x, o.B, o.T, wsp, run);
  if (final_ln && !norm_.gamma.empty()) {
    o.last_hidden_state = Tensor::uninitialized({o.B, o.T, o.D}, DType::F32);
    norm_(o.x, o.B * o.T, o.last_hidden_state.data<float>());
  }
  return o;
}

}  // namespace vtx::models
