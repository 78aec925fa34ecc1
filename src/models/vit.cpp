// ViT and DeiT: ViTModel (+pooler), ViTForImageClassification, ViTForMaskedImageModeling,
// DeiTModel, DeiTForImageClassification(WithTeacher), DeiTForMaskedImageModeling.
#include <cmath>

#include "models/registry.hpp"
#include "models/vision_transformer.hpp"

namespace vtx::models {
namespace {

class VitModel final : public Model {
 public:
  VitModel(const Config& c, const Loader& vb) {
    const bool deit = c.s("model_type", "") == "deit";
    arch_ = architecture_of(c);
    if (arch_.empty()) arch_ = deit ? "DeiTModel" : "ViTModel";
    const std::string base = deit ? "deit" : "vit";
    Task task = Task::Features;
    if (arch_.find("ForImageClassification") != std::string::npos) task = Task::Classification;
    else if (arch_.find("ForMaskedImageModeling") != std::string::npos) task = Task::MaskedImageModeling;
    else if (arch_ != "ViTModel" && arch_ != "DeiTModel")
      throw Error(c.path + ": unsupported architecture \"" + arch_ + "\" for model_type " + c.s("model_type", ""));
    const Loader base_vb = base_scope(vb, base);
    EncoderConfig ec = encoder_config(c, false);
    EmbeddingConfig emb;
    emb.D = ec.D;
    emb.C = c.i("num_channels", 3);
    emb.patch = c.i("patch_size");
    emb.image_size = c.i("image_size");
    emb.special = (deit && base_vb.has("embeddings.distillation_token")) ? 2 : 1;
    trunk_ = std::make_unique<VisionTransformer>(base_vb, emb, ec, LayerKeys::vit(), "layernorm");
    const int64_t D = ec.D;
    if (base_vb.has("pooler.dense.weight")) pooler_ = Linear::load(base_vb.pp("pooler.dense"), D, D);
    if (task == Task::Classification) {
      if (arch_ == "DeiTForImageClassificationWithTeacher") {
        cls_head_ = Linear::load(vb.pp("cls_classifier"), vb.shape("cls_classifier.weight").at(0), D);
        dist_head_ = Linear::load(vb.pp("distillation_classifier"), vb.shape("distillation_classifier.weight").at(0), D);
      } else {
        head_ = Linear::load(vb.pp("classifier"), vb.shape("classifier.weight").at(0), D);
      }
    }
    if (task == Task::MaskedImageModeling) {
      stride_ = c.i("encoder_stride", emb.patch);
      const int64_t out = stride_ * stride_ * emb.C;
      Tensor w = vb.f32("decoder.0.weight", {out, D, 1, 1});
      decoder_.in = D;
      decoder_.out = out;
      decoder_.w = kernels::PackedWeight::pack(w.data<float>(), out, D);
      decoder_.bias = vb.f32_vec("decoder.0.bias", {out});
    }
    info_ = common_info(c, vb.store(), arch_, task);
    describe_trunk(info_, *trunk_);
  }

 protected:
  ModelOutput run(Session& s, const Tensor& pv, const ForwardOptions& opt) const override {
    Workspace& wsp = SessionAccess::workspace(s);
    EncoderRun er = EncoderRun::for_outputs(opt);
    TrunkOutput t = trunk_->forward(pv, opt, wsp, er);
    ModelOutput out;
    out.hidden_states = std::move(er.hidden_states);
    out.attentions = std::move(er.attentions);
    out.last_hidden_state = t.last_hidden_state;
    const int64_t B = t.B, T = t.T, D = t.D;
    const float* lhs = t.last_hidden_state.data<float>();
    if (pooler_.out) {  // tanh(dense(lhs[:, 0]))
      out.pooler_output = Tensor({B, D}, DType::F32);
      kernels::linear(lhs, B, T * D, pooler_.w, out.pooler_output.data<float>(), D,
                      kernels::Epilogue{pooler_.bias.data(), kernels::Act::None, nullptr, nullptr, 0});
      for (int64_t i = 0; i < B * D; ++i) out.pooler_output.data<float>()[i] = std::tanh(out.pooler_output.data<float>()[i]);
    }
    if (head_.out) out.logits = apply_head(head_, lhs, B, T * D);
    if (cls_head_.out) {
      out.cls_logits = apply_head(cls_head_, lhs, B, T * D);
      out.distillation_logits = apply_head(dist_head_, lhs + D, B, T * D);
      out.logits = Tensor(out.cls_logits.shape(), DType::F32);
      for (int64_t i = 0; i < out.logits.numel(); ++i)
        out.logits.data<float>()[i] = (out.cls_logits.data<float>()[i] + out.distillation_logits.data<float>()[i]) / 2;
    }
    if (decoder_.out) mim(out, pv, opt, t);
    return out;
  }

 private:
  static Tensor apply_head(const Linear& h, const float* first_token, int64_t B, int64_t ld) {
    Tensor r({B, h.out}, DType::F32);
    kernels::linear(first_token, B, ld, h.w, r.data<float>(), h.out,
                    kernels::Epilogue{h.bias.empty() ? nullptr : h.bias.data(), kernels::Act::None, nullptr, nullptr, 0});
    return r;
  }

  // SimMIM decoder: 1x1 conv on the patch grid, PixelShuffle(encoder_stride); L1 loss on masked pixels.
  void mim(ModelOutput& out, const Tensor& pv, const ForwardOptions& opt, const TrunkOutput& t) const {
    // HF takes sequence_output[:, 1:] (ViT) or [:, 1:-1] (DeiT): N tokens starting at index 1.
    const int64_t B = t.B, T = t.T, D = t.D, S = 1, Np = t.grid_h * t.grid_w;
    const int64_t g = static_cast<int64_t>(std::floor(std::sqrt(static_cast<double>(Np))));
    if (g * g != Np) throw Error("ViTForMaskedImageModeling: the decoder needs a square patch grid");
    const int64_t C = info_.num_channels, r = stride_, N = g * g, Cout = decoder_.out;
    std::vector<float> conv(static_cast<size_t>(B * N * Cout));
    const float* lhs = t.last_hidden_state.data<float>();
    for (int64_t b = 0; b < B; ++b)
      kernels::linear(lhs + (b * T + S) * D, N, D, decoder_.w, conv.data() + b * N * Cout, Cout,
                      kernels::Epilogue{decoder_.bias.data(), kernels::Act::None, nullptr, nullptr, 0});
    const int64_t OH = g * r, OW = g * r;
    out.reconstruction = Tensor({B, C, OH, OW}, DType::F32);
    float* rec = out.reconstruction.data<float>();
    // PixelShuffle: out[b, c, y*r+i, x*r+j] = in[b, c*r*r + i*r + j, y, x]
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < g; ++y)
          for (int64_t i = 0; i < r; ++i)
            for (int64_t x = 0; x < g; ++x)
              for (int64_t j = 0; j < r; ++j)
                rec[((b * C + c) * OH + y * r + i) * OW + x * r + j] = conv[(b * N + y * g + x) * Cout + c * r * r + i * r + j];
    if (!opt.bool_masked_pos) return;
    const int64_t size = info_.image_size / info_.patch_size, ps = info_.patch_size;
    Tensor px = pv.to_f32();
    if (px.dim(2) != OH || px.dim(3) != OW || size * ps != OH)
      throw Error("ViTForMaskedImageModeling: loss needs pixel_values of the model's image_size");
    std::vector<uint8_t> m = read_mask(opt.bool_masked_pos, B, size * size);
    double num = 0, den = 0;
    const float* p = px.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x) {
          if (!m[b * size * size + (y / ps) * size + x / ps]) continue;
          den += 1;
          for (int64_t c = 0; c < C; ++c) {
            const int64_t k = ((b * C + c) * OH + y) * OW + x;
            num += std::fabs(static_cast<double>(p[k]) - rec[k]);
          }
        }
    out.loss = Tensor({1}, DType::F32);
    out.loss.data<float>()[0] = static_cast<float>(num / (den + 1e-5) / static_cast<double>(C));
  }

  std::string arch_;
  std::unique_ptr<VisionTransformer> trunk_;
  Linear pooler_, head_, cls_head_, dist_head_, decoder_;
  int64_t stride_ = 0;
};

}  // namespace

std::shared_ptr<Model> make_vit(const Config& c, const Loader& vb) {
  return std::make_shared<VitModel>(c, vb);
}

}  // namespace vtx::models
