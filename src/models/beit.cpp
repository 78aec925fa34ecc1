// BEiT and DiT (model_type "beit"): BeitModel, BeitForImageClassification, BeitForMaskedImageModeling.
#include "models/beit.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/interp.hpp"
#include "models/registry.hpp"
#include "models/vision_transformer.hpp"

namespace vtx::models {

std::vector<float> relative_position_bias(const float* table, int64_t heads, int64_t Wh, int64_t Ww, int64_t h,
                                          int64_t w) {
  const int64_t old_a = 2 * Ww - 1, old_b = 2 * Wh - 1, R0 = old_a * old_b;  // torch: (old_width, old_height)
  const int64_t nh = 2 * h - 1, nw = 2 * w - 1, R1 = nh * nw;
  // [R0, heads] -> planar [heads, old_a, old_b]
  std::vector<float> src(static_cast<size_t>(heads * R0)), dst(static_cast<size_t>(heads * R1));
  for (int64_t r = 0; r < R0; ++r)
    for (int64_t k = 0; k < heads; ++k) src[k * R0 + r] = table[r * heads + k];
  kernels::Resize rs{heads, old_a, old_b, nh, nw, 0, 0};
  kernels::bilinear(src.data(), dst.data(), rs, false);
  const int64_t N = h * w, T = N + 1;
  std::vector<float> bias(static_cast<size_t>(heads * T * T));
  for (int64_t k = 0; k < heads; ++k) {
    float* bk = bias.data() + k * T * T;
    const float* rk = dst.data() + k * R1;
    const float cls_to_tok = table[(R0 + 0) * heads + k], tok_to_cls = table[(R0 + 1) * heads + k],
                cls_to_cls = table[(R0 + 2) * heads + k];
    bk[0] = cls_to_cls;
    for (int64_t j = 1; j < T; ++j) bk[j] = cls_to_tok;
    for (int64_t a = 0; a < N; ++a) {
      float* row = bk + (1 + a) * T;
      row[0] = tok_to_cls;
      const int64_t ya = a / w, xa = a % w;
      for (int64_t yb = 0; yb < h; ++yb) {
        const float* src_row = rk + (ya - yb + h - 1) * nw + (xa + w - 1);  // column index decreases with xb
        float* out = row + 1 + yb * w;
        for (int64_t xb = 0; xb < w; ++xb) out[xb] = src_row[-xb];
      }
    }
  }
  return bias;
}

RelativePositionBias::RelativePositionBias(const Loader& vb, int64_t heads, int64_t Wh, int64_t Ww,
                                           const std::string& config_key)
    : heads_(heads), Wh_(Wh), Ww_(Ww) {
  const std::string name = "relative_position_bias_table", key = vb.key(name);
  const int64_t rows = (2 * Wh - 1) * (2 * Ww - 1) + 3;
  if (!vb.has(name))
    throw Error(vb.file_of(name) + ": missing tensor '" + key + "' (" + vb.config_path() + " has " + config_key + " true)");
  const std::vector<int64_t> s = vb.shape(name);
  if (s.size() != 2 || s[0] != rows || s[1] != heads) {
    std::string got = "[";
    for (size_t i = 0; i < s.size(); ++i) got += (i ? ", " : "") + std::to_string(s[i]);
    throw Error(vb.file_of(name) + ": tensor '" + key + "' has shape " + got + "], expected [" + std::to_string(rows) +
                ", " + std::to_string(heads) + "] ((2*" + std::to_string(Wh) + "-1)*(2*" + std::to_string(Ww) +
                "-1)+3 rows for the " + std::to_string(Wh) + "x" + std::to_string(Ww) +
                " patch window of image_size/patch_size in " + vb.config_path() + ", one column per attention head)");
  }
  table_ = vb.f32_vec(name, s);
}

std::shared_ptr<const std::vector<float>> RelativePositionBias::get(int64_t h, int64_t w) const {
  const std::pair<int64_t, int64_t> k{h, w};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(k);
    if (it != cache_.end()) return it->second;
  }
  // Computed outside the lock; if two threads race on a new size, the first insertion wins.
  auto b = std::make_shared<const std::vector<float>>(relative_position_bias(table_.data(), heads_, Wh_, Ww_, h, w));
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = cache_.emplace(k, b);
  std::shared_ptr<const std::vector<float>> r = it->second;
  if (inserted) {
    order_.push_back(k);
    bytes_ += r->size() * sizeof(float);
    while (order_.size() > 1 && (order_.size() > kMaxWindows || bytes_ > kMaxBytes)) {
      auto old = cache_.find(order_.front());
      bytes_ -= old->second->size() * sizeof(float);
      cache_.erase(old);
      order_.erase(order_.begin());
    }
  }
  return r;
}

namespace {

class BeitModel final : public Model {
 public:
  BeitModel(const Config& c, const Loader& vb) {
    arch_ = architecture_of(c);
    if (arch_.empty()) arch_ = "BeitModel";
    Task task;
    if (arch_ == "BeitModel") task = Task::Features;
    else if (arch_ == "BeitForImageClassification") task = Task::Classification;
    else if (arch_ == "BeitForMaskedImageModeling") task = Task::MaskedImageModeling;
    else
      throw Error(c.path + ": unsupported architecture \"" + arch_ +
                  "\" for model_type beit (supported: BeitModel, BeitForImageClassification, BeitForMaskedImageModeling)");
    const Loader base = base_scope(vb, "beit");
    EncoderConfig ec = encoder_config(c, false);
    ec.key_bias = false;
    const double ls = c.f("layer_scale_init_value", 0.1);
    ec.layer_scale = ls > 0;
    EmbeddingConfig emb;
    emb.D = ec.D;
    emb.C = c.i("num_channels", 3);
    emb.patch = c.i("patch_size", 16);
    emb.image_size = c.i("image_size", 224);
    if (emb.patch <= 0 || emb.image_size < emb.patch)
      throw Error(c.path + ": patch_size " + std::to_string(emb.patch) + " does not fit image_size " +
                  std::to_string(emb.image_size));
    emb.position_embeddings = c.b("use_absolute_position_embeddings", false);
    emb.interp = PosInterp::Bicubic;  // DiT: BeitPatchEmbeddings always resizes the grid (identity at image_size)
    emb.always_interpolate = true;    // the relative bias is resized to any window too
    emb.mask_after_position = true;
    const bool use_mask_token = c.b("use_mask_token", false);
    if (use_mask_token && !base.has("embeddings.mask_token"))
      throw Error(base.file_of("embeddings.mask_token") + ": missing tensor '" + base.key("embeddings.mask_token") +
                  "' (" + c.path + " has use_mask_token true)");
    if (task == Task::MaskedImageModeling && !use_mask_token)
      throw Error(c.path + ": BeitForMaskedImageModeling needs use_mask_token true");
    mean_pooling_ = c.b("use_mean_pooling", true);
    // BeitModel.layernorm is Identity with mean pooling.
    trunk_ = std::make_unique<VisionTransformer>(base, emb, ec, LayerKeys::beit(), mean_pooling_ ? "" : "layernorm");
    if (!use_mask_token) no_mask_token_ = true;

    // Relative position bias: per layer and/or shared (both are added when both are set, as transformers does).
    window_ = emb.image_size / emb.patch;
    const int64_t H = ec.heads, L = ec.layers;
    if (c.b("use_relative_position_bias", false))
      for (int64_t l = 0; l < L; ++l)
        per_layer_.push_back(std::make_unique<RelativePositionBias>(
            base.pp("encoder.layer").pp(l).pp("attention.attention.relative_position_bias"), H, window_, window_,
            "use_relative_position_bias"));
    if (c.b("use_shared_relative_position_bias", false))
      shared_ = std::make_unique<RelativePositionBias>(base.pp("encoder.relative_position_bias"), H, window_, window_,
                                                       "use_shared_relative_position_bias");

    const int64_t D = ec.D;
    if (task != Task::MaskedImageModeling && mean_pooling_) pool_norm_ = LayerNorm::load(base.pp("pooler.layernorm"), D, ec.eps);
    if (task == Task::Classification) head_ = Linear::load(vb.pp("classifier"), vb.shape("classifier.weight").at(0), D);
    if (task == Task::MaskedImageModeling) {
      mim_norm_ = LayerNorm::load(vb.pp("layernorm"), D, ec.eps);
      lm_head_ = Linear::load(vb.pp("lm_head"), c.i("vocab_size", 8192), D);
    }
    info_ = common_info(c, vb.store(), arch_, task);
    describe_trunk(info_, *trunk_);
  }

 protected:
  ModelOutput run(Session& s, const Tensor& pv, const ForwardOptions& opt) const override {
    Workspace& wsp = SessionAccess::workspace(s);
    EncoderRun er = EncoderRun::for_outputs(opt);
    if (opt.bool_masked_pos && no_mask_token_)
      throw Error("bool_masked_pos: this model has no mask token (config use_mask_token is false)");
    // The biases of this input window (cached in the model; kept alive for the call).
    std::vector<std::shared_ptr<const std::vector<float>>> keep;
    std::shared_ptr<const std::vector<float>> shared;
    const int64_t p = trunk_->embeddings().config().patch;
    const bool shaped = pv.ndim() == 4 && pv.dim(2) >= p && pv.dim(3) >= p;
    const int64_t h = shaped ? pv.dim(2) / p : 0, w = shaped ? pv.dim(3) / p : 0, T = 1 + h * w;
    const int64_t L = trunk_->encoder().config().layers, H = trunk_->encoder().config().heads;
    if (shaped && (!per_layer_.empty() || shared_)) {
      if (shared_) shared = shared_->get(h, w);
      for (const auto& r : per_layer_) keep.push_back(r->get(h, w));
      if (!keep.empty() && shared) {  // both: the per-layer sum (not cached; unusual configuration)
        for (auto& k : keep) {
          auto sum = std::make_shared<std::vector<float>>(*k);
          for (size_t i = 0; i < sum->size(); ++i) (*sum)[i] += (*shared)[i];
          k = sum;
        }
      }
      for (int64_t l = 0; l < L; ++l) er.attn_bias.push_back(keep.empty() ? shared->data() : keep[l]->data());
    }
    TrunkOutput t = trunk_->forward(pv, opt, wsp, er, true);
    ModelOutput out;
    out.hidden_states = std::move(er.hidden_states);
    out.attentions = std::move(er.attentions);
    const int64_t B = t.B, D = t.D;
    out.last_hidden_state = t.last_hidden_state.empty() ? tensor_from(t.x, {B, t.T, D}) : t.last_hidden_state;
    if (opt.output_attentions) {  // the biases added to the scores, under the golden names
      for (size_t l = 0; l < per_layer_.size(); ++l)
        out.extra["relative_position_bias." + std::to_string(l)] = tensor_from(per_layer_[l]->get(h, w)->data(), {1, H, T, T});
      if (shared) out.extra["relative_position_bias"] = tensor_from(shared->data(), {1, H, T, T});
    }
    const float* lhs = out.last_hidden_state.data<float>();
    if (info_.task != Task::MaskedImageModeling) {
      out.pooler_output = Tensor({B, D}, DType::F32);
      float* po = out.pooler_output.data<float>();
      if (mean_pooling_) {  // pooler.layernorm(mean(last_hidden_state[:, 1:]))
        std::vector<double> acc(static_cast<size_t>(D));
        std::vector<float> mean(static_cast<size_t>(B * D));
        for (int64_t b = 0; b < B; ++b) {
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t n = 1; n < t.T; ++n)
            for (int64_t d = 0; d < D; ++d) acc[d] += lhs[(b * t.T + n) * D + d];
          for (int64_t d = 0; d < D; ++d) mean[b * D + d] = static_cast<float>(acc[d] / static_cast<double>(t.T - 1));
        }
        pool_norm_(mean.data(), B, po);
      } else {
        for (int64_t b = 0; b < B; ++b) std::memcpy(po + b * D, lhs + b * t.T * D, static_cast<size_t>(D) * sizeof(float));
      }
      if (head_.out) {
        out.logits = Tensor({B, head_.out}, DType::F32);
        head_(po, B, out.logits.data<float>());
      }
    } else {  // lm_head(layernorm(last_hidden_state)[:, 1:]) over the visual-token vocabulary
      const int64_t N = t.T - 1, V = lm_head_.out;
      std::vector<float> normed(static_cast<size_t>(B * t.T * D));
      mim_norm_(lhs, B * t.T, normed.data());
      out.logits = Tensor({B, N, V}, DType::F32);
      for (int64_t b = 0; b < B; ++b)
        lm_head_(normed.data() + (b * t.T + 1) * D, N, out.logits.data<float>() + b * N * V);
    }
    return out;
  }

 private:
  std::string arch_;
  std::unique_ptr<VisionTransformer> trunk_;
  bool mean_pooling_ = true, no_mask_token_ = false;
  int64_t window_ = 0;
  std::vector<std::unique_ptr<RelativePositionBias>> per_layer_;
  std::unique_ptr<RelativePositionBias> shared_;
  LayerNorm pool_norm_, mim_norm_;
  Linear head_, lm_head_;
};

}  // namespace

std::shared_ptr<Model> make_beit(const Config& c, const Loader& vb) {
  return std::make_shared<BeitModel>(c, vb);
}

}  // namespace vtx::models
