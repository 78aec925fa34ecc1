#include "models/dpt_neck.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernels/interp.hpp"
#include "vtx/error.hpp"

namespace vtx::models {

using kernels::Act;
using kernels::Conv2d;
using kernels::ConvGeom;

namespace {

// List-valued keys of a depth config (neck_hidden_sizes, reassemble_factors, neck_ignore_stages): each entry
// checked as Config checks scalars.
std::vector<int64_t> int_list(const Config& c, const std::string& key, std::vector<int64_t> def) {
  if (!c.has(key)) return def;
  if (!c.j[key].is_array()) throw Error(c.path + ": \"" + key + "\" is not a list");
  std::vector<int64_t> r;
  for (const auto& v : c.j[key]) r.push_back(checked_int(v, c.path + ": \"" + key + "\" entry", INT32_MIN, INT32_MAX));
  return r;
}
std::vector<double> float_list(const Config& c, const std::string& key, std::vector<double> def) {
  if (!c.has(key)) return def;
  if (!c.j[key].is_array()) throw Error(c.path + ": \"" + key + "\" is not a list");
  std::vector<double> r;
  for (const auto& v : c.j[key]) {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      throw Error(c.path + ": \"" + key + "\" entry " + v.dump() + " is not a finite number");
    r.push_back(v.get<double>());
  }
  return r;
}

std::string key_i(const std::string& a, int64_t i, const std::string& b) { return a + std::to_string(i) + b; }

// [n, c] row-major -> [c, n]
void transpose_to(const float* src, int64_t n, int64_t c, float* dst) {
  constexpr int64_t T = 32;
  for (int64_t n0 = 0; n0 < n; n0 += T)
    for (int64_t c0 = 0; c0 < c; c0 += T) {
      const int64_t n1 = std::min(n, n0 + T), c1 = std::min(c, c0 + T);
      for (int64_t i = n0; i < n1; ++i)
        for (int64_t k = c0; k < c1; ++k) dst[k * n + i] = src[i * c + k];
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// config

DepthNeckConfig DepthNeckConfig::from_json(const nlohmann::json& j, const std::string& where) {
  DepthNeckConfig c;
  const Config cfg{j, where};  // the shared, range-checked accessors
  try {
    const std::string mt = cfg.s("model_type", "");
    const bool has_bc = j.contains("backbone_config") && j["backbone_config"].is_object();
    const Config bc = has_bc ? cfg.sub("backbone_config") : Config{nlohmann::json::object(), where};
    if (mt == "depth_anything") {
      c.kind = Kind::DepthAnything;
      c.readout = Readout::Ignore;
      c.neck_hidden_sizes = int_list(cfg, "neck_hidden_sizes", {96, 192, 384, 768});
      c.reassemble_factors = float_list(cfg, "reassemble_factors", {4, 2, 1, 0.5});
      c.fusion_hidden_size = cfg.i("fusion_hidden_size", 64);
      c.head_in_index = cfg.i("head_in_index", -1);
      c.head_hidden_size = cfg.i("head_hidden_size", 32);
      c.patch_size = cfg.i("patch_size", 14);
      const std::string type = cfg.s("depth_estimation_type", "relative");
      if (type != "relative" && type != "metric")
        throw Error(where + ": depth_estimation_type must be 'relative' or 'metric', got '" + type + "'");
      c.metric = type == "metric";
      const double md = cfg.f("max_depth", 0.0);
      c.max_depth = md != 0.0 ? md : 1.0;  // HF: max_depth if max_depth else 1
      c.fusion_bias = true;
      c.fusion_batch_norm = false;
      int64_t hidden = cfg.i("reassemble_hidden_size", 0);
      if (hidden == 0 && has_bc) hidden = bc.i("hidden_size", 0);
      if (hidden == 0) throw Error(where + ": no reassemble_hidden_size / backbone_config.hidden_size");
      c.backbone_hidden = hidden;
    } else if (mt == "dpt") {
      c.kind = Kind::Dpt;
      const bool hybrid = cfg.b("is_hybrid", false);
      c.neck_hidden_sizes = int_list(cfg, "neck_hidden_sizes", {96, 192, 384, 768});
      c.reassemble_factors = float_list(cfg, "reassemble_factors", {4, 2, 1, 0.5});
      c.fusion_hidden_size = cfg.i("fusion_hidden_size", 256);
      c.head_in_index = cfg.i("head_in_index", -1);
      c.add_projection = cfg.b("add_projection", false);
      const std::string ro = cfg.s("readout_type", "project");
      if (ro == "ignore") c.readout = Readout::Ignore;
      else if (ro == "add") c.readout = Readout::Add;
      else if (ro == "project") c.readout = Readout::Project;
      else throw Error(where + ": readout_type must be ignore/add/project, got '" + ro + "'");
      c.readout_act = parse_act(cfg, "hidden_act", "gelu");
      c.fusion_batch_norm = cfg.b("use_batch_norm_in_fusion_residual", false);
      c.fusion_bias = cfg.b("use_bias_in_fusion_residual", !c.fusion_batch_norm);
      const auto ignore = int_list(cfg, "neck_ignore_stages", {});
      // DPT-Hybrid: reassemble layers 0 and 1 are the identity and the BiT maps skip them (neck_ignore_stages
      // [0, 1]); any other combination crashes in transformers, so it is refused here.
      if (hybrid && ignore != std::vector<int64_t>{0, 1})
        throw Error(where + ": is_hybrid needs neck_ignore_stages [0, 1] (the BiT maps feed reassemble stages 0 and 1)");
      if (!hybrid && !ignore.empty()) throw Error(where + ": neck_ignore_stages is only used by hybrid DPT (is_hybrid)");
      c.ignore_stages = ignore;
      // The ViT token width: hybrid DPT and DPT's own ViT use hidden_size (a backbone_config is the BiT then).
      int64_t hidden = (has_bc && !hybrid) ? bc.i("hidden_size", 0) : cfg.i("hidden_size", 768);
      if (hidden == 0) throw Error(where + ": backbone_config has no hidden_size");
      c.backbone_hidden = hidden;
    } else {
      throw Error(where + ": model_type '" + mt + "' is not a DPT / Depth Anything model");
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": invalid depth config (" + e.what() + ")");
  }
  if (c.neck_hidden_sizes.empty()) throw Error(where + ": neck_hidden_sizes is empty");
  // Sanity bounds (issue 16): the sizes are checked against the checkpoint's shapes before use, but they must
  // not overflow the products computed from them first.
  constexpr int64_t kMaxWidth = 1 << 16;
  auto bounded = [&](const char* key, int64_t v) {
    if (v > kMaxWidth) throw Error(where + ": " + key + " = " + std::to_string(v) + " is out of range (at most 65536)");
  };
  if (c.neck_hidden_sizes.size() > 64) throw Error(where + ": neck_hidden_sizes has more than 64 stages");
  for (int64_t v : c.neck_hidden_sizes) bounded("neck_hidden_sizes", v);
  bounded("fusion_hidden_size", c.fusion_hidden_size);
  bounded("head_hidden_size", c.head_hidden_size);
  bounded("backbone hidden_size", c.backbone_hidden);
  bounded("patch_size", c.patch_size);
  for (double f : c.reassemble_factors)
    if (!(f >= 1.0 / 64 && f <= 64)) throw Error(where + ": reassemble factor " + std::to_string(f) + " is out of range [1/64, 64]");
  if (!std::isfinite(c.max_depth) || c.max_depth <= 0) throw Error(where + ": max_depth must be a positive finite number");
  if (c.neck_hidden_sizes.size() != c.reassemble_factors.size())
    throw Error(where + ": neck_hidden_sizes and reassemble_factors differ in length");
  for (int64_t v : c.neck_hidden_sizes)
    if (v <= 0) throw Error(where + ": neck_hidden_sizes must be positive");
  for (double f : c.reassemble_factors) {
    bool ok = f == 1.0 || (f > 1.0 && f == std::floor(f)) || (f > 0.0 && f < 1.0 && std::floor(1.0 / f) >= 1.0);
    if (!ok) throw Error(where + ": unsupported reassemble factor " + std::to_string(f));
  }
  if (c.fusion_hidden_size < 2) throw Error(where + ": fusion_hidden_size must be >= 2");
  const int64_t S = c.num_stages();
  if (c.head_in_index < -S || c.head_in_index >= S) throw Error(where + ": head_in_index out of range");
  for (int64_t i : c.ignore_stages)
    if (i < 0 || i >= S) throw Error(where + ": neck_ignore_stages entry " + std::to_string(i) + " out of range");
  if (c.kind == Kind::DepthAnything && (c.head_hidden_size <= 0 || c.patch_size <= 0))
    throw Error(where + ": head_hidden_size and patch_size must be positive");
  return c;
}

bool DepthNeckConfig::ignored(int64_t stage) const {
  return std::find(ignore_stages.begin(), ignore_stages.end(), stage) != ignore_stages.end();
}

// ---------------------------------------------------------------------------------------------------------------
// loading

Conv2d load_conv2d(const Loader& ws, const std::string& prefix, int64_t cout, int64_t cin, int64_t k,
                   int64_t stride, int64_t pad, bool bias) {
  Tensor w = ws.f32(prefix + ".weight", {cout, cin, k, k});
  Tensor b;
  if (bias) b = ws.f32(prefix + ".bias", {cout});
  return Conv2d(w.data<float>(), bias ? b.data<float>() : nullptr, ConvGeom{cout, cin, k, k, stride, stride, pad, pad});
}

namespace {
// Conv (+ optional eval BatchNorm2d folded in).
Conv2d load_conv_bn(const Loader& ws, const std::string& conv, const std::string& bn, int64_t c, bool bias,
                    bool batch_norm) {
  if (!batch_norm) return load_conv2d(ws, conv, c, c, 3, 1, 1, bias);
  Tensor w = ws.f32(conv + ".weight", {c, c, 3, 3});
  std::vector<float> wv(w.data<float>(), w.data<float>() + w.numel()), bv;
  if (bias) {
    Tensor b = ws.f32(conv + ".bias", {c});
    bv.assign(b.data<float>(), b.data<float>() + c);
  }
  Tensor g = ws.f32(bn + ".weight", {c}), be = ws.f32(bn + ".bias", {c});
  Tensor mean = ws.f32(bn + ".running_mean", {c}), var = ws.f32(bn + ".running_var", {c});
  kernels::fold_batch_norm(wv, bv, c, g.data<float>(), be.data<float>(), mean.data<float>(), var.data<float>(), 1e-5);
  return Conv2d(wv.data(), bv.data(), ConvGeom{c, c, 3, 3, 1, 1, 1, 1});
}
}  // namespace

DepthNeckHead::DepthNeckHead(const DepthNeckConfig& cfg, const Loader& ws) : cfg_(cfg) {
  const int64_t S = cfg.num_stages(), C = cfg.backbone_hidden, F = cfg.fusion_hidden_size;
  reassemble_.resize(static_cast<size_t>(S));
  for (int64_t i = 0; i < S; ++i) {
    if (cfg.ignored(i)) continue;  // identity: the input is already a map
    Reassemble& r = reassemble_[i];
    const int64_t ch = cfg.neck_hidden_sizes[i];
    const double f = cfg.reassemble_factors[i];
    const std::string p = key_i("neck.reassemble_stage.layers.", i, ".");
    r.projection = load_conv2d(ws, p + "projection", ch, C, 1, 1, 0, true);
    if (f > 1.0) {
      const int64_t k = static_cast<int64_t>(f);
      Tensor w = ws.f32(p + "resize.weight", {ch, ch, k, k}), b = ws.f32(p + "resize.bias", {ch});
      r.mode = 1;
      r.up = kernels::ConvTranspose2d(w.data<float>(), b.data<float>(), ConvGeom{ch, ch, k, k, k, k, 0, 0});
    } else if (f < 1.0) {
      r.mode = 2;
      r.down = load_conv2d(ws, p + "resize", ch, ch, 3, static_cast<int64_t>(1.0 / f), 1, true);
    }
    if (cfg.kind == DepthNeckConfig::Kind::Dpt && cfg.readout == DepthNeckConfig::Readout::Project) {
      const std::string q = key_i("neck.reassemble_stage.readout_projects.", i, ".0.");
      Tensor w = ws.f32(q + "weight", {C, 2 * C}), b = ws.f32(q + "bias", {C});
      std::vector<float> wp(static_cast<size_t>(C * C));
      r.readout_wcls.resize(static_cast<size_t>(C * C));
      const float* wd = w.data<float>();
      for (int64_t o = 0; o < C; ++o)
        for (int64_t k = 0; k < C; ++k) {
          wp[o * C + k] = wd[o * 2 * C + k];
          r.readout_wcls[o * C + k] = wd[o * 2 * C + C + k];
        }
      r.readout_w = kernels::PackedWeight::pack(wp.data(), C, C);
      r.readout_b.assign(b.data<float>(), b.data<float>() + C);
    }
  }
  for (int64_t i = 0; i < S; ++i)
    convs_.push_back(load_conv2d(ws, key_i("neck.convs.", i, ""), F, cfg.neck_hidden_sizes[i], 3, 1, 1, false));
  fusion_.resize(static_cast<size_t>(S));
  for (int64_t i = 0; i < S; ++i) {
    FusionLayer& l = fusion_[i];
    const std::string p = key_i("neck.fusion_stage.layers.", i, ".");
    l.projection = load_conv2d(ws, p + "projection", F, F, 1, 1, 0, true);
    // The first fusion layer has no residual input: its residual_layer1 is never used (not loaded).
    if (i > 0) {
      l.res1.conv1 = load_conv_bn(ws, p + "residual_layer1.convolution1", p + "residual_layer1.batch_norm1", F,
                                  cfg.fusion_bias, cfg.fusion_batch_norm);
      l.res1.conv2 = load_conv_bn(ws, p + "residual_layer1.convolution2", p + "residual_layer1.batch_norm2", F,
                                  cfg.fusion_bias, cfg.fusion_batch_norm);
    }
    l.res2.conv1 = load_conv_bn(ws, p + "residual_layer2.convolution1", p + "residual_layer2.batch_norm1", F,
                                cfg.fusion_bias, cfg.fusion_batch_norm);
    l.res2.conv2 = load_conv_bn(ws, p + "residual_layer2.convolution2", p + "residual_layer2.batch_norm2", F,
                                cfg.fusion_bias, cfg.fusion_batch_norm);
  }
  if (cfg.head == DepthNeckConfig::Head::Segmentation) {
    // DPTSemanticSegmentationHead: head.0 conv3x3 (no bias), head.1 BatchNorm, ReLU, dropout, head.4 conv1x1,
    // bilinear x2; DPTAuxiliaryHead the same without the upsampling.
    if (cfg.num_labels <= 0) throw Error(ws.config_path() + ": the segmentation head needs num_labels > 0 (id2label)");
    seg_conv_ = load_conv_bn(ws, "head.head.0", "head.head.1", F, false, true);
    seg_cls_ = load_conv2d(ws, "head.head.4", cfg.num_labels, F, 1, 1, 0, true);
    if (cfg.auxiliary_head) {
      aux_conv_ = load_conv_bn(ws, "auxiliary_head.head.0", "auxiliary_head.head.1", F, false, true);
      aux_cls_ = load_conv2d(ws, "auxiliary_head.head.4", cfg.num_labels, F, 1, 1, 0, true);
    }
  } else if (cfg.kind == DepthNeckConfig::Kind::DepthAnything) {
    head1_ = load_conv2d(ws, "head.conv1", F / 2, F, 3, 1, 1, true);
    head2_ = load_conv2d(ws, "head.conv2", cfg.head_hidden_size, F / 2, 3, 1, 1, true);
    head3_ = load_conv2d(ws, "head.conv3", 1, cfg.head_hidden_size, 1, 1, 0, true);
  } else {
    if (cfg.add_projection) head_projection_ = load_conv2d(ws, "head.projection", 256, 256, 3, 1, 1, true);
    head1_ = load_conv2d(ws, "head.head.0", F / 2, F, 3, 1, 1, true);
    head2_ = load_conv2d(ws, "head.head.2", 32, F / 2, 3, 1, 1, true);
    head3_ = load_conv2d(ws, "head.head.4", 1, 32, 1, 1, 0, true);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// forward

Tensor resize_bilinear(const Tensor& x, int64_t oh, int64_t ow, bool align_corners) {
  if (x.ndim() != 4) throw Error("resize_bilinear: expected [B, C, H, W], got " + x.shape_str());
  Tensor y({x.dim(0), x.dim(1), oh, ow}, DType::F32);
  kernels::Resize r;
  r.C = x.dim(0) * x.dim(1);
  r.H = x.dim(2);
  r.W = x.dim(3);
  r.OH = oh;
  r.OW = ow;
  kernels::bilinear(x.data<float>(), y.data<float>(), r, align_corners);
  return y;
}

namespace {

// The neck's and head's workspace buffers; per-stage buffers are named "<kind>.<stage>" (stage_buffer).
enum : size_t { kReadoutTmp = 0, kTokens, kUpScratch, kResTmp, kUnitTmp, kH1, kH2, kProj, kHeadX, kHeadA, kHeadAR, kHeadB };
const char* const kBufferNames[] = {"neck.readout_tmp", "neck.tokens", "neck.up_scratch", "neck.residual_tmp",
                                    "neck.unit_tmp", "neck.h1", "neck.h2", "neck.projection", "head.x", "head.a",
                                    "head.a_relu", "head.b"};
std::string buffer(size_t b) { return kBufferNames[b]; }
std::string stage_buffer(const char* kind, int64_t stage) { return std::string("neck.") + kind + "." + std::to_string(stage); }

template <class M>
M view(Workspace& wsp, const std::string& name, int64_t B, int64_t C, int64_t H, int64_t W) {
  M m;
  m.B = B;
  m.C = C;
  m.H = H;
  m.W = W;
  m.p = wsp.get(name, static_cast<size_t>(B * C * H * W));
  return m;
}
template <class M>
M view(Workspace& wsp, size_t b, int64_t B, int64_t C, int64_t H, int64_t W) {
  return view<M>(wsp, buffer(b), B, C, H, W);
}

template <class M>
Tensor to_tensor(const M& m) {
  return Tensor::from_data({m.B, m.C, m.H, m.W}, m.p);
}

template <class M>
void conv_into(const Conv2d& c, const M& x, const M& y, const kernels::ConvEpilogue& ep = {}, bool relu_input = false) {
  if (x.C != c.geom().cin || y.C != c.geom().cout || y.H != c.out_h(x.H) || y.W != c.out_w(x.W))
    throw Error("depth neck: conv shape mismatch (internal)");
  c.forward(x.p, x.B, x.H, x.W, y.p, ep, relu_input);
}

template <class M>
void conv_act(const Conv2d& c, const M& x, const M& y, Act act) {
  kernels::ConvEpilogue ep;
  ep.act = act;
  conv_into(c, x, y, ep);
}

template <class M>
void resize_into(const M& x, const M& y, bool align_corners) {
  kernels::Resize r;
  r.C = x.B * x.C;
  r.H = x.H;
  r.W = x.W;
  r.OH = y.H;
  r.OW = y.W;
  kernels::bilinear(x.p, y.p, r, align_corners);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

DepthNeckHead::Map DepthNeckHead::reassemble(int64_t i, const Tensor& h, int64_t ph, int64_t pw,
                                             Workspace& wsp) const {
  const int64_t C = cfg_.backbone_hidden, N = ph * pw;
  if (cfg_.ignored(i)) {  // DPT-Hybrid BiT map: identity
    const int64_t ch = cfg_.neck_hidden_sizes[i];
    if (h.dtype() != DType::F32 || h.ndim() != 4 || h.dim(1) != ch)
      throw Error("depth neck: feature map " + std::to_string(i) + " has shape " + h.shape_str() + ", expected [B, " +
                  std::to_string(ch) + ", h, w] (F32)");
    Map y = view<Map>(wsp, stage_buffer("reassemble_in", i), h.dim(0), ch, h.dim(2), h.dim(3));
    std::copy(h.data<float>(), h.data<float>() + h.numel(), y.p);
    return y;
  }
  if (h.dtype() != DType::F32 || h.ndim() != 3 || h.dim(1) != 1 + N || h.dim(2) != C)
    throw Error("depth neck: feature map " + std::to_string(i) + " has shape " + h.shape_str() + ", expected [B, " +
                std::to_string(1 + N) + ", " + std::to_string(C) + "] (F32) for a " + std::to_string(ph) + "x" +
                std::to_string(pw) + " patch grid");
  const int64_t B = h.dim(0), T = h.dim(1);
  const Reassemble& r = reassemble_[i];
  Map maps = view<Map>(wsp, kTokens, B, C, ph, pw);
  for (int64_t b = 0; b < B; ++b) {
    const float* cls = h.data<float>() + b * T * C;
    const float* patches = cls + C;
    float* dst = maps.p + b * C * N;
    if (cfg_.readout == DepthNeckConfig::Readout::Project) {
      // Linear(2C, C) on [patch, cls] = W_patch * patch + (W_cls * cls + bias), then the activation.
      std::vector<float> bias(static_cast<size_t>(C));
      float* tmp = wsp.get(buffer(kReadoutTmp), static_cast<size_t>(N * C));
      for (int64_t o = 0; o < C; ++o) {
        double s = r.readout_b[o];
        for (int64_t k = 0; k < C; ++k) s += static_cast<double>(r.readout_wcls[o * C + k]) * cls[k];
        bias[o] = static_cast<float>(s);
      }
      kernels::Epilogue ep;
      ep.bias = bias.data();
      ep.act = cfg_.readout_act;
      kernels::linear(patches, N, C, r.readout_w, tmp, C, ep);
      transpose_to(tmp, N, C, dst);
    } else if (cfg_.readout == DepthNeckConfig::Readout::Add) {
      float* tmp = wsp.get(buffer(kReadoutTmp), static_cast<size_t>(N * C));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < C; ++k) tmp[n * C + k] = patches[n * C + k] + cls[k];
      transpose_to(tmp, N, C, dst);
    } else {
      transpose_to(patches, N, C, dst);
    }
  }
  const int64_t ch = r.projection.geom().cout;
  Map y = view<Map>(wsp, stage_buffer("reassemble", i), B, ch, ph, pw);
  conv_into(r.projection, maps, y);
  if (r.mode == 1) {
    Map z = view<Map>(wsp, stage_buffer("resize", i), B, ch, r.up.out_h(ph), r.up.out_w(pw));
    float* scratch = wsp.get(buffer(kUpScratch), r.up.scratch_floats(B, ph, pw));
    r.up.forward(y.p, B, ph, pw, z.p, Act::None, scratch);
    return z;
  }
  if (r.mode == 2) {
    Map z = view<Map>(wsp, stage_buffer("resize", i), B, ch, r.down.out_h(ph), r.down.out_w(pw));
    conv_into(r.down, y, z);
    return z;
  }
  return y;
}

void DepthNeckHead::fusion_layer(const FusionLayer& l, const Map& hidden, const Map* residual, const Map& out,
                                 Workspace& wsp) const {
  // Pre-activation residual unit: x + conv2(relu(conv1(relu(x)))) (batch norms folded into the convs); the
  // input ReLU is applied while gathering, the inner ReLU and the residual adds in the conv epilogues.
  const int64_t B = hidden.B, F = hidden.C, H = hidden.H, W = hidden.W;
  Map h = hidden;
  kernels::ConvEpilogue relu;
  relu.act = Act::Relu;
  if (residual) {
    Map res = *residual;
    if (res.H != H || res.W != W) {
      Map rr = view<Map>(wsp, kResTmp, B, F, H, W);
      resize_into(res, rr, false);
      res = rr;
    }
    Map t = view<Map>(wsp, kUnitTmp, B, F, H, W);
    conv_into(l.res1.conv1, res, t, relu, true);
    Map h1 = view<Map>(wsp, kH1, B, F, H, W);
    kernels::ConvEpilogue e;
    e.residual = res.p;
    e.residual2 = hidden.p;  // hidden + residual_layer1(residual)
    conv_into(l.res1.conv2, t, h1, e);
    h = h1;
  }
  Map t = view<Map>(wsp, kUnitTmp, B, F, H, W);
  conv_into(l.res2.conv1, h, t, relu, true);
  Map h2 = view<Map>(wsp, kH2, B, F, H, W);
  kernels::ConvEpilogue e;
  e.residual = h.p;
  conv_into(l.res2.conv2, t, h2, e);
  // HF upsamples then applies the 1x1 projection; the two commute exactly (bilinear weights sum to 1, the
  // projection is per pixel), and projecting first is 4x cheaper.
  Map pj = view<Map>(wsp, kProj, B, F, H, W);
  conv_into(l.projection, h2, pj);
  resize_into(pj, out, true);
}

Tensor DepthNeckHead::head(const Map& in, int64_t ph, int64_t pw, Workspace& wsp) const {
  Map x = in;
  const int64_t B = x.B;
  int64_t oh = 2 * x.H, ow = 2 * x.W;
  if (cfg_.kind == DepthNeckConfig::Kind::DepthAnything) {
    oh = ph * cfg_.patch_size;
    ow = pw * cfg_.patch_size;
  } else if (cfg_.add_projection) {
    Map xp = view<Map>(wsp, kHeadX, B, head_projection_.geom().cout, x.H, x.W);
    conv_act(head_projection_, x, xp, Act::Relu);
    x = xp;
  }
  Map a = view<Map>(wsp, kHeadA, B, head1_.geom().cout, x.H, x.W);
  conv_into(head1_, x, a);
  Map ar = view<Map>(wsp, kHeadAR, B, a.C, oh, ow);
  resize_into(a, ar, true);
  Map b = view<Map>(wsp, kHeadB, B, head2_.geom().cout, oh, ow);
  conv_act(head2_, ar, b, Act::Relu);
  Tensor d({B, oh, ow}, DType::F32);
  const bool sig = cfg_.kind == DepthNeckConfig::Kind::DepthAnything && cfg_.metric;
  Map dm{d.data<float>(), B, 1, oh, ow};
  conv_act(head3_, b, dm, sig ? Act::None : Act::Relu);
  float* p = d.data<float>();
  if (cfg_.kind == DepthNeckConfig::Kind::DepthAnything) {
    const float md = static_cast<float>(cfg_.max_depth);
    if (sig)
      for (int64_t i = 0; i < d.numel(); ++i) p[i] = md * (1.0f / (1.0f + std::exp(-p[i])));
    else if (md != 1.0f)
      for (int64_t i = 0; i < d.numel(); ++i) p[i] *= md;
  }
  return d;
}

Tensor DepthNeckHead::segmentation_head(const Conv2d& conv, const Conv2d& cls, const Map& x, bool upsample,
                                        Workspace& wsp) const {
  const int64_t B = x.B, L = cls.geom().cout;
  Map a = view<Map>(wsp, kHeadA, B, conv.geom().cout, x.H, x.W);
  conv_act(conv, x, a, Act::Relu);  // BatchNorm folded into the conv
  if (!upsample) {
    Tensor out({B, L, x.H, x.W}, DType::F32);
    Map o{out.data<float>(), B, L, x.H, x.W};
    conv_into(cls, a, o);
    return out;
  }
  Map b = view<Map>(wsp, kHeadB, B, L, x.H, x.W);
  conv_into(cls, a, b);
  Tensor out({B, L, 2 * x.H, 2 * x.W}, DType::F32);
  Map o{out.data<float>(), B, L, 2 * x.H, 2 * x.W};
  resize_into(b, o, true);
  return out;
}

DepthNeckOutput DepthNeckHead::forward(const std::vector<Tensor>& hidden, int64_t ph, int64_t pw, Workspace& wsp,
                                       bool keep, double* neck_ms, double* head_ms) const {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t S = cfg_.num_stages();
  if (static_cast<int64_t>(hidden.size()) != S)
    throw Error("depth neck: expected " + std::to_string(S) + " feature maps, got " + std::to_string(hidden.size()));
  if (ph <= 0 || pw <= 0) throw Error("depth neck: invalid patch grid");
  for (int64_t i = 0; i < S; ++i)
    if (hidden[i].ndim() != (cfg_.ignored(i) ? 4 : 3) || hidden[i].dim(0) != hidden[0].dim(0))
      throw Error("depth neck: feature maps must be [B, T, C] ([B, C, h, w] for ignored stages) with one batch size, got " +
                  hidden[i].shape_str());
  DepthNeckOutput out;
  // Reassemble (+ neck.convs).
  std::vector<Map> feats;
  for (int64_t i = 0; i < S; ++i) {
    Map r = reassemble(i, hidden[i], ph, pw, wsp);
    if (keep) out.reassemble.push_back(to_tensor(r));
    Map f = view<Map>(wsp, stage_buffer("fusion", i), r.B, cfg_.fusion_hidden_size, r.H, r.W);
    conv_into(convs_[i], r, f);
    feats.push_back(f);
  }
  // Fusion, deepest stage first. DPT: output = 2x the input; Depth Anything: the next map's size, last 2x.
  // Every fused map keeps its own slot (the head may read any of them: head_in_index).
  std::vector<Map> fused;
  for (int64_t idx = 0; idx < S; ++idx) {
    const Map& f = feats[S - 1 - idx];
    const Map& base = idx == 0 ? f : fused.back();
    int64_t oh = 2 * base.H, ow = 2 * base.W;
    if (cfg_.kind == DepthNeckConfig::Kind::DepthAnything && idx != S - 1) {
      oh = feats[S - 2 - idx].H;
      ow = feats[S - 2 - idx].W;
    }
    Map o = view<Map>(wsp, stage_buffer("fusion_out", idx), f.B, f.C, oh, ow);
    fusion_layer(fusion_[idx], base, idx == 0 ? nullptr : &f, o, wsp);
    if (keep) out.fusion.push_back(to_tensor(o));
    fused.push_back(o);
  }
  if (neck_ms) *neck_ms = ms_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  const int64_t hi = cfg_.head_in_index < 0 ? S + cfg_.head_in_index : cfg_.head_in_index;
  if (cfg_.head == DepthNeckConfig::Head::Segmentation) {
    out.logits = segmentation_head(seg_conv_, seg_cls_, fused.at(static_cast<size_t>(hi)), true, wsp);
    if (cfg_.auxiliary_head) out.auxiliary_logits = segmentation_head(aux_conv_, aux_cls_, fused.back(), false, wsp);
  } else {
    out.predicted_depth = head(fused.at(static_cast<size_t>(hi)), ph, pw, wsp);
  }
  if (head_ms) *head_ms = ms_since(t1);
  return out;
}

DepthNeckOutput DepthNeckHead::forward(const std::vector<Tensor>& hidden, int64_t ph, int64_t pw) const {
  Workspace wsp;
  return forward(hidden, ph, pw, wsp, true);
}

}  // namespace vtx::models
