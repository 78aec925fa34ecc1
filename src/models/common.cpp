#include "models/common.hpp"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>

#include "core/threadpool.hpp"
#include "kernels/elementwise.hpp"

namespace vtx::models {

namespace {

// Sanity ranges of the config keys of the supported families. Products used for buffer sizes (tokens x
// hidden, hidden x intermediate, ...) stay far below 2^63 with these bounds.
const std::map<std::string, ConfigRange>& range_table() {
  static const std::map<std::string, ConfigRange> t = {
      {"hidden_size", {1, 1 << 16}},          {"num_hidden_layers", {0, 1 << 10}},
      {"num_attention_heads", {1, 1 << 12}},  {"intermediate_size", {1, 1 << 20}},
      {"image_size", {1, 1 << 16}},           {"patch_size", {1, 1 << 12}},
      {"num_channels", {1, 1 << 10}},         {"num_register_tokens", {0, 1 << 12}},
      {"encoder_stride", {1, 1 << 12}},       {"group_size", {1, 1 << 20}},
      {"num_labels", {1, 1 << 24}},           {"fusion_hidden_size", {1, 1 << 16}},
      {"head_hidden_size", {1, 1 << 16}},     {"reassemble_hidden_size", {0, 1 << 16}},
      {"layer_norm_eps", {0, 1}},             {"mlp_ratio", {1.0 / 1024, 1024}},
      {"drop_path_rate", {0, 1}},             {"hidden_dropout_prob", {0, 1}},
      {"attention_probs_dropout_prob", {0, 1}}, {"layerscale_value", {-1e6, 1e6}},
      {"initializer_range", {0, 1e6}},        {"max_depth", {0, 1e9}},
  };
  return t;
}

std::string num_str(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return std::to_string(static_cast<int64_t>(v));
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

ConfigRange config_range(const std::string& key) {
  auto it = range_table().find(key);
  if (it != range_table().end()) return it->second;
  return {static_cast<double>(INT32_MIN), static_cast<double>(INT32_MAX)};
}

int64_t checked_int(const json& v, const std::string& where, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw Error(where + " = " + v.dump() + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  if (!v.is_number_integer()) throw Error(where + " is not an integer (got " + v.dump() + ")");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw Error(where + " = " + std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

int64_t Config::i_required(const std::string& key, int64_t lo, int64_t hi) const {
  if (!has(key)) throw Error(path + ": missing integer \"" + key + "\"");
  return checked_int(j[key], path + ": \"" + key + "\"", lo, hi);
}
int64_t Config::i(const std::string& key) const {
  const ConfigRange r = config_range(key);
  return i_required(key, static_cast<int64_t>(r.lo), static_cast<int64_t>(r.hi));
}
int64_t Config::i(const std::string& key, int64_t def, int64_t lo, int64_t hi) const {
  if (!has(key)) return def;
  return checked_int(j[key], path + ": \"" + key + "\"", lo, hi);
}
int64_t Config::i(const std::string& key, int64_t def) const {
  const ConfigRange r = config_range(key);
  return i(key, def, static_cast<int64_t>(r.lo), static_cast<int64_t>(r.hi));
}
double Config::f(const std::string& key, double def, double lo, double hi) const {
  if (!has(key)) return def;
  if (!j[key].is_number()) throw Error(path + ": \"" + key + "\" is not a number (got " + j[key].dump() + ")");
  const double v = j[key].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    throw Error(path + ": \"" + key + "\" = " + j[key].dump() + " is out of range [" + num_str(lo) + ", " + num_str(hi) + "]");
  return v;
}
double Config::f(const std::string& key, double def) const {
  const ConfigRange r = config_range(key);
  return f(key, def, r.lo, r.hi);
}
bool Config::b(const std::string& key, bool def) const {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw Error(path + ": \"" + key + "\" is not a boolean");
  return j[key].get<bool>();
}
std::string Config::s(const std::string& key, const std::string& def) const {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_string()) throw Error(path + ": \"" + key + "\" is not a string");
  return j[key].get<std::string>();
}
Config Config::sub(const std::string& key) const {
  if (!j.contains(key) || !j[key].is_object()) throw Error(path + ": missing object \"" + key + "\"");
  return Config{j[key], path + " (" + key + ")"};
}

kernels::Act parse_act(const Config& c, const std::string& key, const std::string& def) {
  std::string a = c.s(key, def);
  if (a == "gelu") return kernels::Act::Gelu;
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") return kernels::Act::GeluTanh;
  if (a == "relu") return kernels::Act::Relu;
  if (a == "quick_gelu") return kernels::Act::QuickGelu;
  throw Error(c.path + ": unsupported " + key + " \"" + a + "\"");
}

bool is_quantizable_linear(const std::string& prefix) {
  static const char* names[] = {"attention.attention.query", "attention.attention.key", "attention.attention.value",
                                "attention.output.dense",    "intermediate.dense",      "output.dense",
                                "mlp.fc1",                   "mlp.fc2",                 "mlp.weights_in",
                                "mlp.weights_out"};
  // "<...>layer.<digits>.<name>" (the prefix may start with "layer." itself)
  for (const char* n : names) {
    const std::string name(n);
    if (prefix.size() <= name.size() + 1 || prefix.compare(prefix.size() - name.size(), name.size(), name) != 0 ||
        prefix[prefix.size() - name.size() - 1] != '.')
      continue;
    size_t e = prefix.size() - name.size() - 1, b = e;  // digits in [b, e)
    while (b > 0 && std::isdigit(static_cast<unsigned char>(prefix[b - 1]))) --b;
    if (b == e || b < 6 || prefix.compare(b - 6, 6, "layer.") != 0) continue;
    if (b > 6 && prefix[b - 7] != '.') continue;
    return true;
  }
  return false;
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// The precision a float-stored linear weight is kept in: layers vtx may quantize follow the policy
// (LoadOptions / quantization_config; nullopt keeps F16/BF16 checkpoints in half precision), every other layer is f32.
static kernels::WType wanted_wtype(const Loader& vb, DType stored) {
  using kernels::WType;
  if (!is_quantizable_linear(vb.name())) return WType::F32;
  const auto& want = vb.policy().dtype;
  if (!want) return stored == DType::F16 ? WType::F16 : stored == DType::BF16 ? WType::BF16 : WType::F32;
  return *want;
}

bool load_linear_weight(const Loader& vb, int64_t out, int64_t in, kernels::QuantData* q, std::vector<float>* f32) {
  using kernels::WType;
  const std::string key = vb.key("weight");
  const DType stored = vb.dtype("weight");
  const io::WeightStore& ws = vb.store();
  auto raw_checked = [&](const std::string& k, DType dt, const std::vector<int64_t>& shape) {
    if (ws.dtype(k) != dt)
      throw Error(ws.file_of(k) + ": tensor '" + k + "' has dtype " + dtype_name(ws.dtype(k)) + ", expected " +
                  dtype_name(dt));
    if (ws.shape(k) != shape)
      throw Error(ws.file_of(k) + ": tensor '" + k + "' has shape " + shape_str(ws.shape(k)) + ", expected " +
                  shape_str(shape));
    return ws.raw(k);
  };
  auto f32_checked = [&](const std::string& k, const std::vector<int64_t>& shape) {
    if (ws.dtype(k) != DType::F32)
      throw Error(ws.file_of(k) + ": tensor '" + k + "' has dtype " + dtype_name(ws.dtype(k)) + ", expected F32");
    return ws.f32(k, shape);
  };
  if (stored == DType::I8 || stored == DType::U8) {  // written by `vtx quantize`
    if (!is_quantizable_linear(vb.name()))
      throw Error(ws.file_of(key) + ": tensor '" + key + "' is quantized, but vtx keeps this layer in f32");
    q->N = out;
    q->K = in;
    if (stored == DType::I8) {
      q->type = WType::Int8;
      Tensor w = raw_checked(key, DType::I8, {out, in});
      q->i8.assign(w.data<int8_t>(), w.data<int8_t>() + w.numel());
      Tensor s = f32_checked(vb.key("weight_scale"), {out});
      q->scale.assign(s.data<float>(), s.data<float>() + out);
    } else {
      q->type = WType::Int4;
      q->group = vb.policy().group_size;
      const int64_t G = q->groups();
      Tensor w = raw_checked(key, DType::U8, {out, (in + 1) / 2});
      q->u4.assign(w.data<uint8_t>(), w.data<uint8_t>() + w.numel());
      Tensor s = f32_checked(vb.key("weight_scale"), {out, G});
      Tensor z = f32_checked(vb.key("weight_zero_point"), {out, G});
      q->scale.assign(s.data<float>(), s.data<float>() + out * G);
      q->zero.assign(z.data<float>(), z.data<float>() + out * G);
    }
    const std::string err = kernels::validate(*q);
    if (!err.empty()) throw Error(ws.file_of(key) + ": tensor '" + key + "': " + err);
    return true;
  }
  const WType t = wanted_wtype(vb, stored);
  if ((t == WType::F16 && stored == DType::F16) || (t == WType::BF16 && stored == DType::BF16)) {
    // Half precision kept as stored: the 16-bit words are copied from the mapping, no f32 round trip.
    const io::WeightStore::View v = vb.view("weight", {out, in});
    q->type = t;
    q->N = out;
    q->K = in;
    const uint16_t* h = static_cast<const uint16_t*>(v.data);
    q->half.assign(h, h + out * in);
    return true;
  }
  Tensor w = vb.f32("weight", {out, in});
  if (t == WType::F32) {
    f32->assign(w.data<float>(), w.data<float>() + w.numel());
    return false;
  }
  *q = kernels::quantize(w.data<float>(), out, in, t, vb.policy().group_size, vb.policy().int4_method);
  return true;
}

Linear Linear::load(const Loader& vb, int64_t out, int64_t in, bool has_bias) {
  return load_stacked({vb}, out, in, has_bias);
}

Linear Linear::load_stacked(const std::vector<Loader>& parts, int64_t out_each, int64_t in, bool has_bias) {
  std::vector<bool> each;
  for (const auto& p : parts) each.push_back(has_bias || p.has("bias"));
  return load_stacked(parts, out_each, in, each);
}

Linear Linear::load_stacked(const std::vector<Loader>& parts, int64_t out_each, int64_t in,
                            const std::vector<bool>& has_bias) {
  Linear l;
  l.in = in;
  l.out = out_each * static_cast<int64_t>(parts.size());
  // Shapes first (they come from the config): nothing is allocated from out / in before the checkpoint agrees.
  for (size_t i = 0; i < parts.size(); ++i) {
    const Loader& p = parts[i];
    const DType dt = p.dtype("weight");
    const std::vector<int64_t> want = dt == DType::U8 ? std::vector<int64_t>{out_each, (in + 1) / 2}
                                                      : std::vector<int64_t>{out_each, in};
    if (p.shape("weight") != want)
      throw Error(p.file_of("weight") + ": tensor '" + p.key("weight") + "' has shape " + shape_str(p.shape("weight")) +
                  ", config.json implies " + shape_str(want));
    if (has_bias.at(i) && p.shape("bias") != std::vector<int64_t>{out_each})
      throw Error(p.file_of("bias") + ": tensor '" + p.key("bias") + "' has shape " + shape_str(p.shape("bias")) +
                  ", config.json implies [" + std::to_string(out_each) + "]");
  }
  std::vector<float> b(static_cast<size_t>(l.out), 0.f);
  bool any_bias = false;
  for (size_t i = 0; i < parts.size(); ++i)
    if (has_bias.at(i)) {
      Tensor bi = parts[i].f32("bias", {out_each});
      std::copy(bi.data<float>(), bi.data<float>() + out_each, b.begin() + static_cast<int64_t>(i) * out_each);
      any_bias = true;
    }
  if (any_bias) l.bias = std::move(b);
  // f32 kernels on float-stored weights (the common case), and bf16 compute on F32 / F16 / BF16 storage: packed
  // straight from the mapped file, no copies.
  bool direct = true, bf16 = true;
  for (const auto& p : parts) {
    const DType stored = p.dtype("weight");
    const bool fp = stored != DType::I8 && stored != DType::U8;
    direct = direct && fp && wanted_wtype(p, stored) == kernels::WType::F32;
    bf16 = bf16 && fp && p.policy().bf16_compute && is_quantizable_linear(p.name());
  }
  if (direct || bf16) {
    std::vector<kernels::WeightRows> rows;
    for (const auto& p : parts) {
      const io::WeightStore::View v = p.view("weight", {out_each, in});
      rows.push_back({v.data, v.dtype, out_each});
    }
    if (bf16) l.bw = kernels::Bf16Weight::pack_rows(rows, in);
    else l.w = kernels::PackedWeight::pack_rows(rows, in);
    for (const auto& p : parts) p.release("weight");
    return l;
  }
  std::vector<kernels::QuantData> qs(parts.size());
  std::vector<float> wf, part;
  bool any_q = false, any_f = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    part.clear();
    const bool isq = load_linear_weight(parts[i], out_each, in, &qs[i], &part);
    parts[i].release("weight");
    any_q |= isq;
    any_f |= !isq;
    wf.insert(wf.end(), part.begin(), part.end());
  }
  auto mixed = [&] {
    return Error(parts[0].file_of("weight") + ": '" + parts[0].name() +
                 "' and the layers fused with it are stored in different precisions");
  };
  if (any_q && any_f) throw mixed();
  if (any_q) {
    std::vector<const kernels::QuantData*> ptrs;
    for (const auto& q : qs) ptrs.push_back(&q);
    for (const auto* q : ptrs)
      if (q->type != ptrs[0]->type) throw mixed();
    l.qw = kernels::QuantWeight::pack(ptrs.size() == 1 ? *ptrs[0] : kernels::concat_rows(ptrs));
  } else {
    l.w = kernels::PackedWeight::pack(wf.data(), l.out, in);
  }
  return l;
}

void Linear::operator()(const float* x, int64_t M, float* y, kernels::Epilogue ep) const {
  ep.bias = bias.empty() ? nullptr : bias.data();
  if (!bw.empty()) return kernels::linear_bf16(x, M, in, bw, y, out, ep);
  if (!qw.empty()) return kernels::linear_q(x, M, in, qw, y, out, ep);
  kernels::linear(x, M, in, w, y, out, ep);
}

LayerNorm LayerNorm::load(const Loader& vb, int64_t D, double eps) {
  LayerNorm n;
  n.gamma = vb.f32_vec("weight", {D});
  n.beta = vb.f32_vec("bias", {D});
  n.eps = static_cast<float>(eps);
  return n;
}

void LayerNorm::operator()(const float* x, int64_t rows, float* y) const {
  const int64_t D = static_cast<int64_t>(gamma.size());
  kernels::layer_norm(x, rows, D, D, gamma.data(), beta.data(), eps, y, D);
}

PatchEmbedding PatchEmbedding::load(const Loader& vb, int64_t C, int64_t D, int64_t p) {
  PatchEmbedding pe;
  pe.C = C;
  pe.p = p;
  pe.D = D;
  Tensor w = vb.f32("weight", {D, C, p, p});  // [D, C*p*p] row-major, matches im2col order (c, ky, kx)
  pe.proj.in = C * p * p;
  pe.proj.out = D;
  pe.proj.w = kernels::PackedWeight::pack(w.data<float>(), D, C * p * p);
  pe.proj.bias = vb.f32_vec("bias", {D});
  return pe;
}

void PatchEmbedding::operator()(const float* px, int64_t B, int64_t H, int64_t W, float* out, Workspace& wsp,
                                const std::string& buffer) const {
  const int64_t gh = H / p, gw = W / p, N = gh * gw, K = C * p * p;
  float* cols = wsp.get(buffer, static_cast<size_t>(B * N * K));
  global_pool().parallel_for(B * gh, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / gh, y = r % gh;
      for (int64_t x = 0; x < gw; ++x) {
        float* dst = cols + ((b * gh + y) * gw + x) * K;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t ky = 0; ky < p; ++ky) {
            const float* src = px + ((b * C + c) * H + y * p + ky) * W + x * p;
            std::memcpy(dst + (c * p + ky) * p, src, static_cast<size_t>(p) * sizeof(float));
          }
      }
    }
  });
  proj(cols, B * N, out);
}

Tensor check_pixel_values(const Tensor& pv, int64_t channels, int64_t patch) {
  if (pv.empty()) throw Error("pixel_values: empty tensor");
  if (pv.ndim() != 4)
    throw Error("pixel_values: expected shape [batch, " + std::to_string(channels) + ", height, width], got " + pv.shape_str());
  if (pv.dim(1) != channels)
    throw Error("pixel_values: expected " + std::to_string(channels) + " channels (config num_channels), got " +
                std::to_string(pv.dim(1)) + " in " + pv.shape_str());
  if (pv.dim(0) < 1 || pv.dim(2) < patch || pv.dim(3) < patch)
    throw Error("pixel_values: image " + pv.shape_str() + " is smaller than one " + std::to_string(patch) + "x" +
                std::to_string(patch) + " patch");
  if (pv.dtype() != DType::F32 && pv.dtype() != DType::F16 && pv.dtype() != DType::BF16)
    throw Error(std::string("pixel_values: expected a float tensor, got ") + dtype_name(pv.dtype()));
  return pv.to_f32();
}

std::vector<std::vector<float>> expand_head_mask(const std::optional<Tensor>& hm, int64_t L, int64_t H) {
  std::vector<std::vector<float>> r;
  if (!hm) return r;
  Tensor t = hm->to_f32();
  const float* d = t.data<float>();
  if (t.ndim() == 1 && t.dim(0) == H) {
    r.assign(static_cast<size_t>(L), std::vector<float>(d, d + H));
  } else if (t.ndim() == 2 && t.dim(0) == L && t.dim(1) == H) {
    for (int64_t l = 0; l < L; ++l) r.emplace_back(d + l * H, d + (l + 1) * H);
  } else {
    throw Error("head_mask: expected shape [" + std::to_string(H) + "] or [" + std::to_string(L) + ", " +
                std::to_string(H) + "], got " + t.shape_str());
  }
  return r;
}

std::vector<uint8_t> read_mask(const std::optional<Tensor>& m, int64_t B, int64_t N) {
  std::vector<uint8_t> r;
  if (!m) return r;
  Tensor t = m->to_f32();
  if (!(t.ndim() == 2 && t.dim(0) == B && t.dim(1) == N))
    throw Error("bool_masked_pos: expected shape [" + std::to_string(B) + ", " + std::to_string(N) + "], got " + t.shape_str());
  r.resize(static_cast<size_t>(B * N));
  for (int64_t i = 0; i < B * N; ++i) r[i] = t.data<float>()[i] != 0.f;
  return r;
}

Tensor tensor_from(const float* data, std::vector<int64_t> shape) { return Tensor::from_data(std::move(shape), data); }

}  // namespace vtx::models
