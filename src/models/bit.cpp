// BiT backbone for DPT-Hybrid (see bit.hpp).
#include "models/bit.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "kernels/cnn.hpp"

namespace vtx::models {

namespace {

constexpr double kWsEps = 1e-8;  // WeightStandardizedConv2d(eps=1e-8) everywhere in BiT
constexpr double kGnEps = 1e-5;  // nn.GroupNorm default

// HF make_div(value, divisor=8): nearest multiple of 8 (>= 8), bumped when it falls below 90 %.
int64_t make_div(double v, int64_t divisor = 8) {
  int64_t nv = std::max<int64_t>(divisor, static_cast<int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor);
  if (static_cast<double>(nv) < 0.9 * v) nv += divisor;
  return nv;
}

std::vector<int64_t> int_list(const nlohmann::json& j, const char* key, const std::string& where) {
  std::vector<int64_t> r;
  if (!j.at(key).is_array()) throw Error(where + ": backbone_config." + key + " must be a list of integers");
  for (const auto& v : j.at(key)) {
    if (!v.is_number_integer()) throw Error(where + ": backbone_config." + key + " must be a list of integers");
    r.push_back(v.get<int64_t>());
  }
  return r;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

BitConfig BitConfig::from_json(const nlohmann::json& given, const std::string& where) {
  // BitConfig defaults, then DPTConfig's hybrid defaults when there is no backbone_config at all.
  nlohmann::json j = {{"num_channels", 3},          {"embedding_size", 64},
                      {"hidden_sizes", {256, 512, 1024, 2048}}, {"depths", {3, 4, 6, 3}},
                      {"global_padding", nullptr},  {"hidden_act", "relu"},
                      {"layer_type", "preactivation"}, {"num_groups", 32},
                      {"embedding_dynamic_padding", false}, {"output_stride", 32},
                      {"width_factor", 1},          {"out_features", nullptr},
                      {"out_indices", nullptr}};
  if (given.is_null()) {
    j["global_padding"] = "same";
    j["layer_type"] = "bottleneck";
    j["depths"] = {3, 4, 9};
    j["out_features"] = {"stage1", "stage2", "stage3"};
    j["embedding_dynamic_padding"] = true;
  } else {
    if (!given.is_object()) throw Error(where + ": backbone_config must be an object");
    for (auto it = given.begin(); it != given.end(); ++it)
      if (!it.value().is_null() || j.contains(it.key())) j[it.key()] = it.value();
  }
  BitConfig c;
  try {
    const std::string mt = j.value("model_type", std::string("bit"));
    if (mt != "bit") throw Error(where + ": backbone_config.model_type \"" + mt + "\" is not supported for is_hybrid (only bit)");
    if (j.at("layer_type") != "bottleneck")
      throw Error(where + ": backbone_config.layer_type " + j.at("layer_type").dump() +
                  " is not supported (vtx implements the DPT-Hybrid BiT: \"bottleneck\")");
    if (!j.at("global_padding").is_string() || upper(j.at("global_padding").get<std::string>()) != "SAME")
      throw Error(where + ": backbone_config.global_padding " + j.at("global_padding").dump() +
                  " is not supported (vtx implements the DPT-Hybrid BiT: \"SAME\")");
    if (j.at("hidden_act") != "relu")
      throw Error(where + ": backbone_config.hidden_act " + j.at("hidden_act").dump() + " is not supported (relu)");
    if (!j.at("embedding_dynamic_padding").is_boolean() || !j.at("embedding_dynamic_padding").get<bool>())
      throw Error(where + ": backbone_config.embedding_dynamic_padding must be true (the DPT-Hybrid BiT stem)");
    c.num_channels = j.at("num_channels").get<int64_t>();
    c.embedding_size = j.at("embedding_size").get<int64_t>();
    c.num_groups = j.at("num_groups").get<int64_t>();
    c.width_factor = j.at("width_factor").get<int64_t>();
    c.output_stride = j.at("output_stride").get<int64_t>();
    c.depths = int_list(j, "depths", where);
    c.hidden_sizes = int_list(j, "hidden_sizes", where);
    const size_t S = std::min(c.depths.size(), c.hidden_sizes.size());
    c.depths.resize(S);
    c.hidden_sizes.resize(S);
    if (S == 0) throw Error(where + ": backbone_config has no stages (depths / hidden_sizes)");
    for (size_t s = 0; s < S; ++s)
      if (c.depths[s] <= 0 || c.hidden_sizes[s] <= 0)
        throw Error(where + ": backbone_config.depths and hidden_sizes must be positive");
    if (c.num_channels <= 0 || c.embedding_size <= 0 || c.num_groups <= 0 || c.width_factor <= 0)
      throw Error(where + ": backbone_config num_channels / embedding_size / num_groups / width_factor must be positive");
    // out_features (stage names) or out_indices; default: the last stage.
    if (j.at("out_features").is_array()) {
      for (const auto& f : j.at("out_features")) {
        const std::string name = f.is_string() ? f.get<std::string>() : "";
        int64_t idx = -1;
        if (name == "stem") idx = 0;
        else if (name.rfind("stage", 0) == 0 && name.size() > 5 && std::all_of(name.begin() + 5, name.end(), ::isdigit))
          idx = std::stoll(name.substr(5));
        if (idx < 1 || idx > static_cast<int64_t>(S))
          throw Error(where + ": backbone_config.out_features entry " + f.dump() + " is not one of stage1..stage" +
                      std::to_string(S));
        c.out_stages.push_back(idx);
      }
    } else if (j.at("out_indices").is_array()) {
      for (int64_t idx : int_list(j, "out_indices", where)) {
        if (idx < 1 || idx > static_cast<int64_t>(S))
          throw Error(where + ": backbone_config.out_indices entry " + std::to_string(idx) + " is out of range 1.." +
                      std::to_string(S));
        c.out_stages.push_back(idx);
      }
    } else {
      c.out_stages.push_back(static_cast<int64_t>(S));
    }
    // Dilation (output_stride reached) is not implemented.
    int64_t stride = 4;
    for (size_t s = 0; s < S; ++s) {
      const int64_t st = s == 0 ? 1 : 2;
      if (stride >= c.output_stride && st > 1)
        throw Error(where + ": backbone_config.output_stride " + std::to_string(c.output_stride) +
                    " makes BiT dilate its convolutions (not supported)");
      stride *= st;
    }
    for (size_t s = 0; s < S; ++s) {
      if (c.stage_channels(s) % c.num_groups != 0 || make_div(static_cast<double>(c.stage_channels(s)) * 0.25) % c.num_groups != 0)
        throw Error(where + ": backbone_config.num_groups " + std::to_string(c.num_groups) +
                    " does not divide the channels of stage" + std::to_string(s + 1));
    }
    if (c.embedding_size % c.num_groups != 0)
      throw Error(where + ": backbone_config.num_groups " + std::to_string(c.num_groups) +
                  " does not divide embedding_size " + std::to_string(c.embedding_size));
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": invalid backbone_config (" + e.what() + ")");
  }
  return c;
}

int64_t BitConfig::stage_channels(size_t s) const {
  return make_div(static_cast<double>(hidden_sizes.at(s) * width_factor));
}

BitBackbone::Conv BitBackbone::load_conv(const Loader& vb, int64_t cout, int64_t cin, int64_t k, int64_t stride) const {
  Tensor w = vb.f32("weight", {cout, cin, k, k});
  std::vector<float> sw(static_cast<size_t>(w.numel()));
  kernels::standardize_weights(w.data<float>(), cout, cin * k * k, kWsEps, sw.data());
  Conv c;
  c.k = k;
  c.stride = stride;
  c.dynamic = stride > 1;  // HF get_padding_value("same"): static (k-1)/2 only for stride 1 (dilation 1)
  const int64_t pad = c.dynamic ? 0 : (k - 1) / 2;
  c.conv = kernels::Conv2d(sw.data(), nullptr, kernels::ConvGeom{cout, cin, k, k, stride, stride, pad, pad});
  return c;
}

BitBackbone::Norm BitBackbone::load_norm(const Loader& vb, int64_t c) const {
  Norm n;
  n.gamma = vb.f32_vec("weight", {c});
  n.beta = vb.f32_vec("bias", {c});
  return n;
}

BitBackbone::BitBackbone(const BitConfig& cfg, const Loader& root) : cfg_(cfg) {
  const Loader vb = root.pp("bit");
  stem_conv_ = load_conv(vb.pp("embedder.convolution"), cfg.embedding_size, cfg.num_channels, 7, 2);
  stem_norm_ = load_norm(vb.pp("embedder.norm"), cfg.embedding_size);
  int64_t in = cfg.embedding_size;
  for (size_t s = 0; s < cfg.depths.size(); ++s) {
    const int64_t out = cfg.stage_channels(s), mid = make_div(static_cast<double>(out) * 0.25);
    const int64_t stride = s == 0 ? 1 : 2;
    std::vector<Layer> layers;
    for (int64_t l = 0; l < cfg.depths[s]; ++l) {
      const Loader q = vb.pp("encoder.stages").pp(static_cast<int64_t>(s)).pp("layers").pp(l);
      Layer L;
      L.mid = mid;
      L.out = out;
      const int64_t st = l == 0 ? stride : 1;
      L.conv1 = load_conv(q.pp("conv1"), mid, in, 1, 1);
      L.norm1 = load_norm(q.pp("norm1"), mid);
      L.conv2 = load_conv(q.pp("conv2"), mid, mid, 3, st);
      L.norm2 = load_norm(q.pp("norm2"), mid);
      L.conv3 = load_conv(q.pp("conv3"), out, mid, 1, 1);
      L.norm3 = load_norm(q.pp("norm3"), out);
      if (l == 0) {  // BitStage: the first layer of every stage has the downsample shortcut
        L.has_down = true;
        L.down = load_conv(q.pp("downsample.conv"), out, in, 1, st);
        L.down_norm = load_norm(q.pp("downsample.norm"), out);
      }
      layers.push_back(std::move(L));
      in = out;
    }
    stages_.push_back(std::move(layers));
  }
}

std::vector<int64_t> BitBackbone::channels() const {
  std::vector<int64_t> r;
  for (int64_t s : cfg_.out_stages) r.push_back(cfg_.stage_channels(static_cast<size_t>(s - 1)));
  return r;
}

namespace {
// Workspace buffers of the backbone.
const char* const kPad = "bit.pad";
const char* const kA = "bit.a";
const char* const kB = "bit.b";
const char* const kC = "bit.c";
const char* const kShortcut = "bit.shortcut";
const char* const kPing = "bit.ping";
const char* const kPong = "bit.pong";
}  // namespace

void BitBackbone::Conv::operator()(const float* x, int64_t B, int64_t H, int64_t W, float* y, Workspace& wsp) const {
  if (!dynamic) {
    conv.forward(x, B, H, W, y);
    return;
  }
  const kernels::PadAmount ph = kernels::tf_same_pad(H, k, stride), pw = kernels::tf_same_pad(W, k, stride);
  if (ph.before + ph.after + pw.before + pw.after == 0) {
    conv.forward(x, B, H, W, y);
    return;
  }
  const int64_t C = conv.geom().cin, PH = H + ph.before + ph.after, PW = W + pw.before + pw.after;
  float* padded = wsp.get(kPad, static_cast<size_t>(B * C * PH * PW));
  kernels::pad2d(x, B * C, H, W, ph.before, ph.after, pw.before, pw.after, 0.f, padded);
  conv.forward(padded, B, PH, PW, y);
}

BitBackbone::Output BitBackbone::forward(const float* px, int64_t B, int64_t H, int64_t W, Workspace& wsp) const {
  Output out;
  const int64_t G = cfg_.num_groups;
  // Stem: conv 7x7/2 (SAME) -> GroupNorm + ReLU -> max pool 3x3/2 with dynamic SAME zero padding.
  const int64_t E = cfg_.embedding_size, h1 = stem_conv_.out_size(H), w1 = stem_conv_.out_size(W);
  float* a = wsp.get(kA, static_cast<size_t>(B * E * h1 * w1));
  stem_conv_(px, B, H, W, a, wsp);
  kernels::group_norm(a, B, E, h1 * w1, G, stem_norm_.gamma.data(), stem_norm_.beta.data(), kGnEps, a, nullptr, true);
  const kernels::PadAmount ph = kernels::tf_same_pad(h1, 3, 2), pw = kernels::tf_same_pad(w1, 3, 2);
  const int64_t PH = h1 + ph.before + ph.after, PW = w1 + pw.before + pw.after;
  float* padded = wsp.get(kPad, static_cast<size_t>(B * E * PH * PW));
  kernels::pad2d(a, B * E, h1, w1, ph.before, ph.after, pw.before, pw.after, 0.f, padded);
  const int64_t h = (PH - 3) / 2 + 1, w = (PW - 3) / 2 + 1;
  out.stem = Tensor::uninitialized({B, E, h, w}, DType::F32);
  kernels::max_pool2d(padded, B * E, PH, PW, 3, 2, out.stem.data<float>());

  const float* x = out.stem.data<float>();
  int64_t C = E, xh = h, xw = w;
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (size_t l = 0; l < stages_[s].size(); ++l) {
      const Layer& L = stages_[s][l];
      const int64_t oh = L.conv2.out_size(xh), ow = L.conv2.out_size(xw), M = L.mid, O = L.out;
      const float* shortcut = x;
      if (L.has_down) {
        float* sc = wsp.get(kShortcut, static_cast<size_t>(B * O * oh * ow));
        L.down(x, B, xh, xw, sc, wsp);
        kernels::group_norm(sc, B, O, oh * ow, G, L.down_norm.gamma.data(), L.down_norm.beta.data(), kGnEps, sc);
        shortcut = sc;
      } else if (O != C || oh != xh || ow != xw) {
        throw Error("BiT: internal shape mismatch in stage " + std::to_string(s + 1));
      }
      float* t1 = wsp.get(kA, static_cast<size_t>(B * M * xh * xw));
      L.conv1(x, B, xh, xw, t1, wsp);
      kernels::group_norm(t1, B, M, xh * xw, G, L.norm1.gamma.data(), L.norm1.beta.data(), kGnEps, t1, nullptr, true);
      float* t2 = wsp.get(kB, static_cast<size_t>(B * M * oh * ow));
      L.conv2(t1, B, xh, xw, t2, wsp);
      kernels::group_norm(t2, B, M, oh * ow, G, L.norm2.gamma.data(), L.norm2.beta.data(), kGnEps, t2, nullptr, true);
      float* t3 = wsp.get(kC, static_cast<size_t>(B * O * oh * ow));
      L.conv3(t2, B, oh, ow, t3, wsp);
      // The layer output: the stage's last layer writes a Tensor, the others ping-pong in the workspace.
      const bool last = l + 1 == stages_[s].size();
      Tensor st;
      float* y;
      if (last) {
        st = Tensor::uninitialized({B, O, oh, ow}, DType::F32);
        y = st.data<float>();
      } else {
        y = wsp.get(l % 2 == 0 ? kPing : kPong, static_cast<size_t>(B * O * oh * ow));
      }
      // relu(GN(conv3) + shortcut)
      kernels::group_norm(t3, B, O, oh * ow, G, L.norm3.gamma.data(), L.norm3.beta.data(), kGnEps, y, shortcut, true);
      x = y;
      C = O;
      xh = oh;
      xw = ow;
      if (last) out.stages.push_back(st);
    }
  }
  for (int64_t s : cfg_.out_stages) out.feature_maps.push_back(out.stages.at(static_cast<size_t>(s - 1)));
  return out;
}

}  // namespace vtx::models
