#include "models/encoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/threadpool.hpp"
#include "kernels/attention.hpp"

namespace vtx::models {

LayerKeys LayerKeys::vit() {
  LayerKeys k;
  k.norm1 = "layernorm_before";
  k.norm2 = "layernorm_after";
  k.q = "attention.attention.query";
  k.k = "attention.attention.key";
  k.v = "attention.attention.value";
  k.o = "attention.output.dense";
  k.fc1 = "intermediate.dense";
  k.fc2 = "output.dense";
  return k;
}

LayerKeys LayerKeys::dinov2() {
  LayerKeys k;
  k.norm1 = "norm1";
  k.norm2 = "norm2";
  k.q = "attention.attention.query";
  k.k = "attention.attention.key";
  k.v = "attention.attention.value";
  k.o = "attention.output.dense";
  k.fc1 = "mlp.fc1";
  k.fc2 = "mlp.fc2";
  k.swiglu_in = "mlp.weights_in";
  k.swiglu_out = "mlp.weights_out";
  k.ls1 = "layer_scale1.lambda1";
  k.ls2 = "layer_scale2.lambda1";
  return k;
}

LayerKeys LayerKeys::beit() {
  LayerKeys k = vit();
  k.ls1 = "lambda_1";
  k.ls2 = "lambda_2";
  return k;
}

Encoder::Encoder(const Loader& vb, const EncoderConfig& cfg, const LayerKeys& keys) : cfg_(cfg) {
  const int64_t D = cfg.D;
  if (cfg.heads <= 0 || D % cfg.heads != 0)
    throw Error(vb.config_path() + ": hidden_size " + std::to_string(D) + " is not a multiple of num_attention_heads " +
                std::to_string(cfg.heads));
  // num_hidden_layers must match the checkpoint before anything is allocated per layer: the last layer must be
  // there, and no layer after it (a config with fewer layers than the checkpoint would silently drop some).
  const std::string probe = keys.norm1 + ".weight";
  auto layer_key = [&](int64_t l) { return vb.pp(l).key(probe); };
  if (cfg.layers > 0 && !vb.pp(cfg.layers - 1).has(probe))
    throw Error(vb.pp(cfg.layers - 1).file_of(probe) + ": missing tensor '" + layer_key(cfg.layers - 1) +
                "' (config.json num_hidden_layers is " + std::to_string(cfg.layers) + ")");
  if (vb.pp(cfg.layers).has(probe)) {
    int64_t n = cfg.layers;
    while (n < (int64_t{1} << 20) && vb.pp(n).has(probe)) ++n;
    throw Error(vb.config_path() + ": num_hidden_layers is " + std::to_string(cfg.layers) + " but the checkpoint has " +
                std::to_string(n) + " layers ('" + layer_key(cfg.layers) + "' is not used)");
  }
  // Layers are independent: read and pack them on all pool threads.
  layers_.resize(static_cast<size_t>(cfg.layers));
  global_pool().parallel_for(cfg.layers, [&](int64_t l0, int64_t l1) {
  for (int64_t l = l0; l < l1; ++l) {
    const Loader p = vb.pp(l);
    EncoderLayer& L = layers_[static_cast<size_t>(l)];
    L.norm1 = LayerNorm::load(p.pp(keys.norm1), D, cfg.eps);
    L.norm2 = LayerNorm::load(p.pp(keys.norm2), D, cfg.eps);
    // Q, K, V are fused into one [3D, D] projection at load; the HF keys stay the source of truth.
    if (cfg.key_bias)
      L.qkv = Linear::load_stacked({p.pp(keys.q), p.pp(keys.k), p.pp(keys.v)}, D, D, cfg.qkv_bias);
    else
      L.qkv = Linear::load_stacked({p.pp(keys.q), p.pp(keys.k), p.pp(keys.v)}, D, D,
                                   std::vector<bool>{cfg.qkv_bias, false, cfg.qkv_bias});
    L.o = Linear::load(p.pp(keys.o), D, D);
    if (cfg.swiglu) {
      L.fc1 = Linear::load(p.pp(keys.swiglu_in), 2 * cfg.mlp_hidden, D);
      L.fc2 = Linear::load(p.pp(keys.swiglu_out), D, cfg.mlp_hidden);
    } else {
      L.fc1 = Linear::load(p.pp(keys.fc1), cfg.mlp_hidden, D);
      L.fc2 = Linear::load(p.pp(keys.fc2), D, cfg.mlp_hidden);
    }
    if (cfg.layer_scale) {
      L.ls1 = p.f32_vec(keys.ls1, {D});
      L.ls2 = p.f32_vec(keys.ls2, {D});
    }
  }
  });
}

void Encoder::forward(float* x, int64_t B, int64_t T, Workspace& wsp, EncoderRun& run) const {
  const int64_t D = cfg_.D, H = cfg_.heads, M = B * T, F = cfg_.mlp_hidden;
  float* ln = wsp.get("encoder.norm", static_cast<size_t>(M * D));
  float* qkv = wsp.get("encoder.qkv", static_cast<size_t>(M * 3 * D));
  float* ctx = wsp.get("encoder.context", static_cast<size_t>(M * D));
  float* hid = wsp.get("encoder.mlp", static_cast<size_t>(M * (cfg_.swiglu ? 2 * F : F)));
  float* gate = cfg_.swiglu ? wsp.get("encoder.swiglu", static_cast<size_t>(M * F)) : nullptr;
  // hidden_states[i]: the input of layer i (i = L: the last layer's output).
  auto keep = [&](int64_t i) {
    const bool k = run.keep_hidden || std::find(run.keep_only.begin(), run.keep_only.end(), i) != run.keep_only.end();
    if (run.keep_hidden || !run.keep_only.empty()) run.hidden_states.push_back(k ? tensor_from(x, {B, T, D}) : Tensor());
  };
  keep(0);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const EncoderLayer& L = layers_[l];
    L.norm1(x, M, ln);
    L.qkv(ln, M, qkv);
    kernels::AttentionArgs a;
    a.qkv = qkv;
    a.B = B;
    a.T = T;
    a.H = H;
    a.dh = D / H;
    a.out = ctx;
    Tensor probs;
    if (run.keep_attn) {
      probs = Tensor::uninitialized({B, H, T, T}, DType::F32);
      a.probs = probs.data<float>();
    }
    if (!run.head_mask.empty()) a.head_mask = run.head_mask[l].data();
    if (!run.attn_bias.empty()) a.bias = run.attn_bias.at(l);
    kernels::attention(a);
    if (run.keep_attn) run.attentions.push_back(probs);
    kernels::Epilogue e1;
    e1.scale = L.ls1.empty() ? nullptr : L.ls1.data();
    e1.residual = x;
    e1.ldr = D;
    L.o(ctx, M, x, e1);
    L.norm2(x, M, ln);
    kernels::Epilogue e2;
    e2.scale = L.ls2.empty() ? nullptr : L.ls2.data();
    e2.residual = x;
    e2.ldr = D;
    if (cfg_.swiglu) {
      L.fc1(ln, M, hid);
      global_pool().parallel_for(M, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* h = hid + r * 2 * F;
          float* g = gate + r * F;
          for (int64_t j = 0; j < F; ++j) {
            const float x1 = h[j];
            g[j] = x1 / (1.0f + std::exp(-x1)) * h[F + j];
          }
        }
      });
      L.fc2(gate, M, x, e2);
    } else {
      kernels::Epilogue ea;
      ea.act = cfg_.act;
      L.fc1(ln, M, hid, ea);
      L.fc2(hid, M, x, e2);
    }
    keep(static_cast<int64_t>(l) + 1);
  }
}

}  // namespace vtx::models
