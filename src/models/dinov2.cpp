// Dinov2Model, Dinov2ForImageClassification, Dinov2Backbone and their *WithRegisters* twins.
#include "models/dinov2.hpp"

#include "models/registry.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::models {

Dinov2::Dinov2(const Config& c, const Loader& vb) {
  EncoderConfig ec = encoder_config(c, true);
  EmbeddingConfig emb;
  emb.D = ec.D;
  emb.C = c.i("num_channels", 3);
  emb.patch = c.i("patch_size");
  emb.image_size = c.i("image_size", 518);
  emb.registers = registers_ = c.i("num_register_tokens", 0);
  emb.always_interpolate = true;
  emb.mask_token_2d = true;
  emb.interp = c.s("model_type", "dinov2") == "dinov2_with_registers" ? PosInterp::BicubicAA : PosInterp::Bicubic;
  trunk_ = std::make_unique<VisionTransformer>(vb, emb, ec, LayerKeys::dinov2(), "layernorm");
  apply_layernorm_ = c.b("apply_layernorm", true);
  reshape_ = c.b("reshape_hidden_states", true);
  // Stage names are "stem", "stage1".."stageL"; out_features wins over out_indices; default: last stage.
  const int64_t L = ec.layers;
  auto stage_index = [&](const std::string& s) -> int64_t {
    if (s == "stem") return 0;
    if (s.rfind("stage", 0) == 0) {
      try {
        int64_t i = std::stoll(s.substr(5));
        if (i >= 1 && i <= L && "stage" + std::to_string(i) == s) return i;
      } catch (const std::exception&) {
      }
    }
    throw Error(c.path + ": out_features entry \"" + s + "\" is not a stage of this model (stem, stage1..stage" +
                std::to_string(L) + ")");
  };
  // As transformers' get_aligned_output_features_output_indices: either list alone defines the other; when both
  // are given they must name the same stages. Stages are unique and in model order.
  std::vector<int64_t> from_features, from_indices;
  if (c.has("out_features")) {
    if (!c.j["out_features"].is_array()) throw Error(c.path + ": out_features must be a list of stage names");
    for (const auto& f : c.j["out_features"]) {
      if (!f.is_string()) throw Error(c.path + ": out_features must be strings");
      from_features.push_back(stage_index(f.get<std::string>()));
    }
  }
  if (c.has("out_indices")) {
    if (!c.j["out_indices"].is_array()) throw Error(c.path + ": out_indices must be a list of integers");
    for (const auto& f : c.j["out_indices"]) {
      int64_t i = checked_int(f, c.path + ": out_indices entry", -(L + 1), L);
      if (i < 0) i += L + 1;
      from_indices.push_back(i);
    }
  }
  if (!from_features.empty() && !from_indices.empty() && from_features != from_indices)
    throw Error(c.path + ": out_features and out_indices disagree (out_features " + c.j["out_features"].dump() +
                " are stages of out_indices " + [&] {
                  std::string r = "[";
                  for (size_t k = 0; k < from_features.size(); ++k) r += (k ? ", " : "") + std::to_string(from_features[k]);
                  return r + "]";
                }() + ", out_indices " + c.j["out_indices"].dump() + ")");
  out_indices_ = !from_features.empty() ? from_features : from_indices;
  if (out_indices_.empty()) out_indices_.push_back(L);
  for (size_t k = 1; k < out_indices_.size(); ++k)
    if (out_indices_[k] <= out_indices_[k - 1])
      throw Error(c.path + ": out_features / out_indices must be unique and in stage order");
  for (int64_t i : out_indices_) out_features_.push_back(i == 0 ? "stem" : "stage" + std::to_string(i));
}

std::vector<Tensor> Dinov2::feature_maps(const TrunkOutput& t, const std::vector<Tensor>& hs) const {
  std::vector<Tensor> maps;
  const int64_t B = t.B, T = t.T, D = t.D, skip = 1 + registers_, h = t.grid_h, w = t.grid_w;
  for (int64_t idx : out_indices_) {
    const Tensor& src = hs.at(static_cast<size_t>(idx));
    Tensor x = src;
    if (apply_layernorm_) {
      x = Tensor({B, T, D}, DType::F32);
      trunk_->final_norm()(src.data<float>(), B * T, x.data<float>());
    }
    if (!reshape_) {
      maps.push_back(x.clone());
      continue;
    }
    Tensor m({B, D, h, w}, DType::F32);
    const float* xs = x.data<float>();
    float* md = m.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < h * w; ++n)
        for (int64_t d = 0; d < D; ++d) md[(b * D + d) * h * w + n] = xs[(b * T + skip + n) * D + d];
    maps.push_back(m);
  }
  return maps;
}

namespace {

class Dinov2Model final : public Model {
 public:
  Dinov2Model(const Config& c, const Loader& vb) {
    const bool reg = c.s("model_type", "") == "dinov2_with_registers";
    const std::string base = reg ? "dinov2_with_registers" : "dinov2";
    arch_ = architecture_of(c);
    const std::string cls = reg ? "Dinov2WithRegisters" : "Dinov2";
    if (arch_.empty()) arch_ = cls + "Model";
    Task task = Task::Features;
    Loader scope = vb;
    if (arch_ == cls + "Model") {
      task = Task::Features;
      scope = base_scope(vb, base);
    } else if (arch_ == cls + "ForImageClassification") {
      task = Task::Classification;
      scope = base_scope(vb, base);
    } else if (arch_ == cls + "Backbone") {
      task = Task::Backbone;
    } else {
      throw Error(c.path + ": unsupported architecture \"" + arch_ + "\" for model_type " + c.s("model_type", ""));
    }
    net_ = std::make_unique<Dinov2>(c, scope);
    if (task == Task::Classification) {
      const int64_t D = net_->trunk().encoder().config().D;
      head_ = Linear::load(vb.pp("classifier"), vb.shape("classifier.weight").at(0), 2 * D);
    }
    info_ = common_info(c, vb.store(), arch_, task);
    describe_trunk(info_, net_->trunk());
    if (task == Task::Backbone) info_.out_features = net_->out_features();
  }

 protected:
  ModelOutput run(Session& s, const Tensor& pv, const ForwardOptions& opt) const override {
    const bool backbone = info_.task == Task::Backbone;
    EncoderRun er = EncoderRun::for_outputs(opt);
    if (backbone && !er.keep_hidden) net_->request_feature_layers(er);
    ForwardOptions o = opt;
    o.interpolate_pos_encoding = true;  // DINOv2 always resizes its position embeddings
    TrunkOutput t = net_->trunk().forward(pv, o, SessionAccess::workspace(s), er, !backbone);
    ModelOutput out;
    if (backbone) out.feature_maps = net_->feature_maps(t, er.hidden_states);
    if (opt.output_hidden_states) out.hidden_states = std::move(er.hidden_states);
    out.attentions = std::move(er.attentions);
    if (backbone) return out;
    out.last_hidden_state = t.last_hidden_state;
    const int64_t B = t.B, T = t.T, D = t.D;
    const float* lhs = t.last_hidden_state.data<float>();
    out.pooler_output = Tensor({B, D}, DType::F32);
    for (int64_t b = 0; b < B; ++b)
      std::copy(lhs + b * T * D, lhs + b * T * D + D, out.pooler_output.data<float>() + b * D);
    if (head_.out) {
      // classifier(concat(cls, mean(patch tokens))); registers are excluded from the mean (transformers >= 4.52).
      // That is the pipelines' cls+mean pooling, shared with vtx embed.
      const Tensor feat = pool_embeddings(out, info_, Pool::ClsMean);
      out.logits = Tensor({B, head_.out}, DType::F32);
      head_(feat.data<float>(), B, out.logits.data<float>());
    }
    return out;
  }

 private:
  std::string arch_;
  std::unique_ptr<Dinov2> net_;
  Linear head_;
};

}  // namespace

std::shared_ptr<Model> make_dinov2(const Config& c, const Loader& vb) {
  return std::make_shared<Dinov2Model>(c, vb);
}

}  // namespace vtx::models
