// DepthAnythingForDepthEstimation and DPTForDepthEstimation (Dinov2 backbone or DPT's own ViT) + post-processing.
#include "models/depth.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernels/interp.hpp"
#include "models/dinov2.hpp"
#include "models/dpt_vit.hpp"
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
    std::string arch = architecture_of(c);
    if (arch.empty()) arch = type == "dpt" ? "DPTForDepthEstimation" : "DepthAnythingForDepthEstimation";
    const bool ok = arch == "DepthAnythingForDepthEstimation" ? type == "depth_anything"
                    : (arch == "DPTForDepthEstimation" || arch == "DPTForSemanticSegmentation" || arch == "DPTModel") &&
                          type == "dpt";
    if (!ok) throw Error(cpath + ": unsupported architecture \"" + arch + "\" for model_type " + type);
    Task task = Task::DepthEstimation;
    if (arch == "DPTForSemanticSegmentation") task = Task::SemanticSegmentation;
    if (arch == "DPTModel") task = Task::Features;
    const bool hybrid = type == "dpt" && c.b("is_hybrid", false);
    const bool has_bc = j.contains("backbone_config") && j["backbone_config"].is_object();
    if (type == "depth_anything" && !has_bc) throw Error(cpath + ": depth_anything needs a backbone_config");
    if (type == "depth_anything" && c.b("use_timm_backbone", false))
      throw Error(cpath + ": timm backbones are not supported");
    // transformers: a Dinov2 backbone_config only replaces DPT's own ViT in DPTForDepthEstimation (non-hybrid);
    // DPTModel and DPTForSemanticSegmentation always build DPT's ViT (hybrid: BiT embeddings).
    const bool dino = has_bc && !hybrid && (type == "depth_anything" || task == Task::DepthEstimation);
    if (task != Task::Features) neck_cfg_ = DepthNeckConfig::from_json(j, cpath);
    if (dino) {
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
      // DPT's own ViT (DPTModel): bilinear position resize, ViT encoder, final LayerNorm (+ pooler).
      const Loader base = task == Task::Features ? base_scope(vb, "dpt") : vb.pp("dpt");
      vit_ = std::make_unique<DptVit>(c, base, task == Task::Features);
      patch_ = vit_->patch_size();
      bcfg_ = c;
      if (task != Task::Features) {
        const int64_t L = vit_->encoder_config().layers;
        std::vector<int64_t> idx = {2, 5, 8, 11};
        if (j.contains("backbone_out_indices") && !j["backbone_out_indices"].is_null()) {
          if (!j["backbone_out_indices"].is_array()) throw Error(cpath + ": backbone_out_indices must be a list");
          idx.clear();
          for (const auto& v : j["backbone_out_indices"]) {
            if (!v.is_number_integer()) throw Error(cpath + ": backbone_out_indices must be integers");
            idx.push_back(v.get<int64_t>());
          }
        }
        // Hybrid: the first two neck inputs are the BiT stage1/stage2 maps, the rest come from
        // backbone_out_indices[2:] (HF ignores the first two entries).
        const size_t skip = hybrid ? 2 : 0;
        if (idx.size() < skip) throw Error(cpath + ": backbone_out_indices needs at least 2 entries with is_hybrid");
        std::vector<int64_t> used(idx.begin() + static_cast<std::ptrdiff_t>(skip), idx.end());
        for (int64_t i : used)
          if (i < 0 || i >= L)
            throw Error(cpath + ": backbone_out_indices entry " + std::to_string(i) + " out of range for " +
                        std::to_string(L) + " layers");
        // HF keeps hidden_states[1:][i] for i in backbone_out_indices, in layer order.
        for (int64_t l = 0; l < L; ++l)
          if (std::find(used.begin(), used.end(), l) != used.end()) out_layers_.push_back(l + 1);
        const int64_t n_in = static_cast<int64_t>(skip + out_layers_.size());
        if (n_in != neck_cfg_.num_stages())
          throw Error(cpath + ": backbone_out_indices select " + std::to_string(n_in) + " neck inputs but the neck has " +
                      std::to_string(neck_cfg_.num_stages()) + " stages");
        if (vit_->encoder_config().D != neck_cfg_.backbone_hidden) throw Error(cpath + ": hidden_size mismatch");
        if (hybrid) {
          const std::vector<int64_t> ch = vit_->bit()->channels();
          for (size_t s = 0; s < 2; ++s)
            if (neck_cfg_.neck_hidden_sizes[s] != ch[s])
              throw Error(cpath + ": neck_hidden_sizes[" + std::to_string(s) + "] = " +
                          std::to_string(neck_cfg_.neck_hidden_sizes[s]) + " must equal the BiT stage" +
                          std::to_string(s + 1) + " width " + std::to_string(ch[s]) + " (is_hybrid)");
        }
      }
    }
    info_ = common_info(c, vb.store(), arch, task);
    if (task == Task::SemanticSegmentation) {
      neck_cfg_.head = DepthNeckConfig::Head::Segmentation;
      neck_cfg_.num_labels = static_cast<int64_t>(info_.id2label.size());
      if (neck_cfg_.num_labels == 0) neck_cfg_.num_labels = c.i("num_labels", 2);
      neck_cfg_.auxiliary_head = c.b("use_auxiliary_head", true);
    }
    if (task != Task::Features) neck_ = DepthNeckHead(neck_cfg_, vb);
    info_.hidden_size = bcfg_.i("hidden_size", 0);
    info_.num_layers = bcfg_.i("num_hidden_layers", 0);
    info_.num_heads = bcfg_.i("num_attention_heads", 0);
    info_.image_size = bcfg_.i("image_size", 0);
    info_.patch_size = patch_;
    info_.num_channels = bcfg_.i("num_channels", 3);
    if (dino_) info_.out_features = dino_->out_features();
    info_.metric_depth = neck_cfg_.metric;
    info_.max_depth = neck_cfg_.max_depth;
    info_.metric_depth = neck_cfg_.metric;
    info_.max_depth = neck_cfg_.max_depth;
    if (vit_) info_.mlp_hidden_size = vit_->mlp_hidden();
    if (vit_ && vit_->hybrid())  // DPT-Hybrid: the BiT backbone's out_features
      for (int64_t st : vit_->bit()->config().out_stages) info_.out_features.push_back("stage" + std::to_string(st));
    task_ = task;
  }

  ModelOutput run_timed(Workspace& wsp, const Tensor& pv, const ForwardOptions& opt, DepthTiming* timing) const {
    auto t0 = Clock::now();
    // Only the hidden states the neck reads are kept, unless the caller asked for all of them.
    EncoderRun er = EncoderRun::for_outputs(opt);
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
      DptVit::Output v = vit_->forward(pv, o, wsp, er);
      out.last_hidden_state = v.t.last_hidden_state;
      out.pooler_output = v.pooler_output;
      if (vit_->hybrid() && opt.output_hidden_states) {
        out.extra["backbone.embeddings"] = v.backbone.stem;
        for (size_t i = 0; i < v.backbone.stages.size(); ++i)
          out.extra["backbone.feature_maps." + std::to_string(i)] = v.backbone.stages[i];
      }
      if (task_ == Task::Features) {
        if (opt.output_hidden_states) out.hidden_states = std::move(er.hidden_states);
        out.attentions = std::move(er.attentions);
        return out;
      }
      // The neck infers its grid as sqrt(N) (transformers passes no patch grid): square grids only.
      if (v.t.grid_h != v.t.grid_w)
        throw Error("pixel_values: DPT-ViT infers its patch grid as sqrt(N) and needs a square grid, got " +
                    std::to_string(v.t.grid_h) + "x" + std::to_string(v.t.grid_w) + " patches");
      if (vit_->hybrid())
        for (size_t i = 0; i < 2; ++i) out.feature_maps.push_back(v.backbone.feature_maps.at(i));
      for (int64_t l : out_layers_) out.feature_maps.push_back(er.hidden_states.at(static_cast<size_t>(l)));
      ph = pw = v.t.grid_h;
    }
    if (opt.output_hidden_states) out.hidden_states = std::move(er.hidden_states);
    out.attentions = std::move(er.attentions);
    if (timing) timing->backbone_ms = ms_since(t0);

    // Neck intermediates are returned (as "neck.reassemble.<i>" / "neck.fusion.<i>") with output_hidden_states.
    DepthNeckOutput n = neck_.forward(out.feature_maps, ph, pw, wsp, opt.output_hidden_states,
                                      timing ? &timing->neck_ms : nullptr, timing ? &timing->head_ms : nullptr);
    out.predicted_depth = n.predicted_depth;
    out.logits = n.logits;
    // transformers 4.48.3 computes the auxiliary head but does not return it; vtx does (golden name).
    if (!n.auxiliary_logits.empty()) out.extra["auxiliary_logits"] = n.auxiliary_logits;
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
  std::unique_ptr<DptVit> vit_;
  std::vector<int64_t> out_layers_;  // DPT-ViT: indices into hidden_states (1 = after layer 0)
  Task task_ = Task::DepthEstimation;
  int64_t patch_ = 0;
  DepthNeckHead neck_;
};

}  // namespace

ModelOutput depth_forward_timed(Session& session, const Tensor& pixel_values, DepthTiming& timing,
                                const ForwardOptions& opt) {
  const auto* m = dynamic_cast<const DepthModel*>(&session.model());
  if (!m || m->info().task != Task::DepthEstimation)
    throw Error("depth_forward_timed: not a depth model (" + session.model().info().model_type + ")");
  return m->run_timed(SessionAccess::workspace(session), pixel_values, opt, &timing);
}

std::shared_ptr<Model> make_depth_model(const nlohmann::json& config, const Loader& vb, const std::string& dir) {
  return std::make_shared<DepthModel>(config, vb, dir);
}

}  // namespace vtx::models
