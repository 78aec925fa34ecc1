// DepthAnythingForDepthEstimation and DPTForDepthEstimation (Dinov2 backbone or DPT's own ViT) + post-processing.
#include "models/depth.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernels/interp.hpp"
#include "models/dinov2.hpp"
#include "models/registry.hpp"
#include "models/vision_transformer.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::models {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A Dinov2Config as transformers completes it (defaults for the keys a hub backbone_config may omit).
nlohmann::json dinov2_backbone_config(const nlohmann::json& given) {
  nlohmann::json j = {{"model_type", "dinov2"}, {"hidden_size", 768},     {"num_hidden_layers", 12},
                      {"num_attention_heads", 12}, {"mlp_ratio", 4},     {"hidden_act", "gelu"},
                      {"layer_norm_eps", 1e-6},    {"image_size", 224},   {"patch_size", 14},
                      {"num_channels", 3},         {"qkv_bias", true},    {"use_swiglu_ffn", false},
                      {"apply_layernorm", true},   {"reshape_hidden_states", true}};
  for (auto it = given.begin(); it != given.end(); ++it)
    if (!it.value().is_null()) j[it.key()] = it.value();
  return j;
}

class DepthModel final : public Model {
 public:
  DepthModel(const nlohmann::json& j, const Loader& vb, const std::string& dir) {
    const std::string cpath = dir + "/config.json";
    Config c{j, cpath};
    const std::string type = c.s("model_type", "");
    neck_cfg_ = DepthNeckConfig::from_json(j, cpath);
    const bool has_bc = j.contains("backbone_config") && j["backbone_config"].is_object();
    if (type == "depth_anything" && !has_bc) throw Error(cpath + ": depth_anything needs a backbone_config");
    if (type == "depth_anything" && c.b("use_timm_backbone", false))
      throw Error(cpath + ": timm backbones are not supported");
    if (has_bc) {
      Config bc{dinov2_backbone_config(j["backbone_config"]), cpath + " (backbone_config)"};
      const std::string bt = bc.s("model_type", "");
      if (bt != "dinov2")
        throw Error(cpath + ": backbone_config.model_type \"" + bt + "\" is not supported (only dinov2)");
      if (bc.b("reshape_hidden_states", true))
        throw Error(cpath + ": backbone_config.reshape_hidden_states must be false for a DPT / Depth Anything neck");
      dino_ = std::make_unique<Dinov2>(bc, vb.pp("backbone"));
      patch_ = bc.i("patch_size");
      if (type == "depth_anything" && c.i("patch_size", 14) != patch_)
        throw Error(cpath + ": patch_size differs from backbone_config.patch_size");
      if (static_cast<int64_t>(dino_->out_indices().size()) != neck_cfg_.num_stages())
        throw Error(cpath + ": the backbone has " + std::to_string(dino_->out_indices().size()) +
                    " out_features but the neck " + std::to_string(neck_cfg_.num_stages()) + " stages");
      if (bc.i("hidden_size") != neck_cfg_.backbone_hidden)
        throw Error(cpath + ": reassemble_hidden_size differs from backbone_config.hidden_size");
      bcfg_ = bc;
    } else {
      // DPTModel: ViT embeddings with bilinear position resize, ViT encoder, final LayerNorm.
      EncoderConfig ec = encoder_config(c, false);
      EmbeddingConfig emb;
      emb.D = ec.D;
      emb.C = c.i("num_channels", 3);
      emb.patch = patch_ = c.i("patch_size", 16);
      emb.image_size = c.i("image_size", 384);
      emb.interp = PosInterp::Bilinear;
      emb.always_interpolate = true;
      vit_ = std::make_unique<VisionTransformer>(vb.pp("dpt"), emb, ec, LayerKeys::vit(), "layernorm");
      std::vector<int64_t> idx = {2, 5, 8, 11};
      if (j.contains("backbone_out_indices") && !j["backbone_out_indices"].is_null()) {
        if (!j["backbone_out_indices"].is_array()) throw Error(cpath + ": backbone_out_indices must be a list");
        idx.clear();
        for (const auto& v : j["backbone_out_indices"]) {
          if (!v.is_number_integer()) throw Error(cpath + ": backbone_out_indices must be integers");
          idx.push_back(v.get<int64_t>());
        }
      }
      for (int64_t i : idx)
        if (i < 0 || i >= ec.layers) throw Error(cpath + ": backbone_out_indices entry out of range");
      // HF keeps hidden_states[1:][i] for i in backbone_out_indices, in layer order.
      for (int64_t l = 0; l < ec.layers; ++l)
        if (std::find(idx.begin(), idx.end(), l) != idx.end()) out_layers_.push_back(l + 1);
      if (static_cast<int64_t>(out_layers_.size()) != neck_cfg_.num_stages())
        throw Error(cpath + ": backbone_out_indices select " + std::to_string(out_layers_.size()) +
                    " layers but the neck has " + std::to_string(neck_cfg_.num_stages()) + " stages");
      if (ec.D != neck_cfg_.backbone_hidden) throw Error(cpath + ": hidden_size mismatch");
      bcfg_ = c;
    }
    neck_ = DepthNeckHead(neck_cfg_, vb);
    std::string arch = architecture_of(c);
    if (arch.empty()) arch = type == "dpt" ? "DPTForDepthEstimation" : "DepthAnythingForDepthEstimation";
    if (arch != "DPTForDepthEstimation" && arch != "DepthAnythingForDepthEstimation")
      throw Error(cpath + ": unsupported architecture \"" + arch + "\" for model_type " + type);
    info_ = common_info(c, vb.store(), arch, Task::DepthEstimation);
    info_.hidden_size = bcfg_.i("hidden_size", 0);
    info_.num_layers = bcfg_.i("num_hidden_layers", 0);
    info_.num_heads = bcfg_.i("num_attention_heads", 0);
    info_.image_size = bcfg_.i("image_size", 0);
    info_.patch_size = patch_;
    info_.num_channels = bcfg_.i("num_channels", 3);
    if (dino_) info_.out_features = dino_->out_features();
    info_.metric_depth = neck_cfg_.metric;
    info_.max_depth = neck_cfg_.max_depth;
  }

  ModelOutput run_timed(Workspace& wsp, const Tensor& pv, const ForwardOptions& opt, DepthTiming* timing) const {
    auto t0 = Clock::now();
    EncoderRun er;
    // Only the hidden states the neck reads are kept, unless the caller asked for all of them.
    er.keep_hidden = opt.output_hidden_states;
    er.keep_attn = opt.output_attentions;
    if (!er.keep_hidden) {
      if (dino_) dino_->request_feature_layers(er);
      else er.keep_only = out_layers_;
    }
    ForwardOptions o = opt;
    o.interpolate_pos_encoding = true;  // DINOv2 and DPT-ViT always resize their position embeddings
    ModelOutput out;
    int64_t ph = 0, pw = 0;
    if (dino_) {
      TrunkOutput t = dino_->trunk().forward(pv, o, wsp, er, false);
      out.feature_maps = dino_->feature_maps(t, er.hidden_states);
      ph = t.grid_h;
      pw = t.grid_w;
    } else {
      TrunkOutput t = vit_->forward(pv, o, wsp, er, true);
      if (t.grid_h != t.grid_w)
        throw Error("pixel_values: DPT-ViT infers its patch grid as sqrt(N) and needs a square grid, got " +
                    std::to_string(t.grid_h) + "x" + std::to_string(t.grid_w) + " patches");
      for (int64_t l : out_layers_) out.feature_maps.push_back(er.hidden_states.at(static_cast<size_t>(l)));
      out.last_hidden_state = t.last_hidden_state;
      ph = pw = t.grid_h;
    }
    if (opt.output_hidden_states) out.hidden_states = std::move(er.hidden_states);
    out.attentions = std::move(er.attentions);
    if (timing) timing->backbone_ms = ms_since(t0);

    // Neck intermediates are returned (as "neck.reassemble.<i>" / "neck.fusion.<i>") with output_hidden_states.
    DepthNeckOutput n = neck_.forward(out.feature_maps, ph, pw, wsp, opt.output_hidden_states,
                                      timing ? &timing->neck_ms : nullptr, timing ? &timing->head_ms : nullptr);
    out.predicted_depth = n.predicted_depth;
    for (size_t i = 0; i < n.reassemble.size(); ++i) out.extra["neck.reassemble." + std::to_string(i)] = n.reassemble[i];
    for (size_t i = 0; i < n.fusion.size(); ++i) out.extra["neck.fusion." + std::to_string(i)] = n.fusion[i];
    return out;
  }

 protected:
  ModelOutput run(Session& s, const Tensor& pv, const ForwardOptions& opt) const override {
    return run_timed(SessionAccess::workspace(s), pv, opt, nullptr);
  }

 private:
  DepthNeckConfig neck_cfg_;
  Config bcfg_;
  std::unique_ptr<Dinov2> dino_;
  std::unique_ptr<VisionTransformer> vit_;
  std::vector<int64_t> out_layers_;  // DPT-ViT: indices into hidden_states (1 = after layer 0)
  int64_t patch_ = 0;
  DepthNeckHead neck_;
};

}  // namespace

ModelOutput depth_forward_timed(Session& session, const Tensor& pixel_values, DepthTiming& timing,
                                const ForwardOptions& opt) {
  const auto* m = dynamic_cast<const DepthModel*>(&session.model());
  if (!m) throw Error("depth_forward_timed: not a depth model (" + session.model().info().model_type + ")");
  return m->run_timed(SessionAccess::workspace(session), pixel_values, opt, &timing);
}

std::shared_ptr<Model> make_depth_model(const nlohmann::json& config, const Loader& vb, const std::string& dir) {
  return std::make_shared<DepthModel>(config, vb, dir);
}

}  // namespace vtx::models
