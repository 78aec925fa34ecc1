// Depth Anything V2 Small-sized model (the real config of depth-anything/Depth-Anything-V2-Small-hf, random
// weights) at 518x686, batch 1: wall time split backbone / neck / head, plus the conv kernel on the neck/head
// shapes against the alternative (explicit im2col + the GEMM of kernels/gemm.hpp + transpose).
//
//   bench_depth [--threads N] [--iters N] [--model-only]   (defaults: 2 threads, 5 timed iterations after 1 warm-up)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/threadpool.hpp"
#include "io/safetensors.hpp"
#include "kernels/conv.hpp"
#include "kernels/gemm.hpp"
#include "models/depth.hpp"
#include "vtx/model.hpp"

namespace fs = std::filesystem;
using namespace vtx;

namespace {

const char* kConfig = R"({
  "architectures": ["DepthAnythingForDepthEstimation"],
  "backbone_config": {
    "architectures": ["Dinov2Model"], "hidden_size": 384, "image_size": 518, "model_type": "dinov2",
    "num_attention_heads": 6, "num_hidden_layers": 12, "patch_size": 14, "layerscale_value": 1.0,
    "mlp_ratio": 4, "out_features": ["stage9", "stage10", "stage11", "stage12"], "out_indices": [9, 10, 11, 12],
    "reshape_hidden_states": false, "apply_layernorm": true
  },
  "depth_estimation_type": "relative", "max_depth": null, "fusion_hidden_size": 64, "head_hidden_size": 32,
  "head_in_index": -1, "model_type": "depth_anything", "neck_hidden_sizes": [48, 96, 192, 384], "patch_size": 14,
  "reassemble_factors": [4, 2, 1, 0.5], "reassemble_hidden_size": 384, "torch_dtype": "float32"
})";

struct Gen {
  std::mt19937 rng{42};
  std::vector<std::pair<std::string, Tensor>> tensors;
  void add(const std::string& k, std::vector<int64_t> shape, float std_dev, float mean = 0.f) {
    Tensor t(std::move(shape), DType::F32);
    std::normal_distribution<float> d(mean, std_dev);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std_dev > 0 ? d(rng) : mean;
    tensors.emplace_back(k, t);
  }
  void conv(const std::string& p, int64_t co, int64_t ci, int64_t k, bool bias = true) {
    add(p + ".weight", {co, ci, k, k}, 1.0f / std::sqrt(static_cast<float>(ci * k * k)));
    if (bias) add(p + ".bias", {co}, 0.01f);
  }
  void linear(const std::string& p, int64_t o, int64_t i) {
    add(p + ".weight", {o, i}, 1.0f / std::sqrt(static_cast<float>(i)));
    add(p + ".bias", {o}, 0.01f);
  }
  void ln(const std::string& p, int64_t d) {
    add(p + ".weight", {d}, 0.f, 1.f);
    add(p + ".bias", {d}, 0.f, 0.f);
  }
};

std::string make_model_dir() {
  const std::string dir = (fs::temp_directory_path() / "vtx-bench-depth-anything-v2-small").string();
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << kConfig;
  const int64_t D = 384, L = 12, F = 64;
  Gen g;
  g.add("backbone.embeddings.cls_token", {1, 1, D}, 0.02f);
  g.add("backbone.embeddings.mask_token", {1, D}, 0.02f);
  g.conv("backbone.embeddings.patch_embeddings.projection", D, 3, 14);
  g.add("backbone.embeddings.position_embeddings", {1, 1370, D}, 0.02f);
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "backbone.encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"query", "key", "value"}) g.linear(p + "attention.attention." + n, D, D);
    g.linear(p + "attention.output.dense", D, D);
    g.add(p + "layer_scale1.lambda1", {D}, 0.f, 0.1f);
    g.add(p + "layer_scale2.lambda1", {D}, 0.f, 0.1f);
    g.linear(p + "mlp.fc1", 4 * D, D);
    g.linear(p + "mlp.fc2", D, 4 * D);
    g.ln(p + "norm1", D);
    g.ln(p + "norm2", D);
  }
  g.ln("backbone.layernorm", D);
  const int64_t hs[4] = {48, 96, 192, 384};
  for (int i = 0; i < 4; ++i) {
    const std::string p = "neck.reassemble_stage.layers." + std::to_string(i) + ".";
    g.conv(p + "projection", hs[i], D, 1);
    if (i == 0) g.add(p + "resize.weight", {hs[i], hs[i], 4, 4}, 0.05f), g.add(p + "resize.bias", {hs[i]}, 0.01f);
    if (i == 1) g.add(p + "resize.weight", {hs[i], hs[i], 2, 2}, 0.05f), g.add(p + "resize.bias", {hs[i]}, 0.01f);
    if (i == 3) g.conv(p + "resize", hs[i], hs[i], 3);
    g.conv("neck.convs." + std::to_string(i), F, hs[i], 3, false);
    const std::string f = "neck.fusion_stage.layers." + std::to_string(i) + ".";
    g.conv(f + "projection", F, F, 1);
    for (const char* r : {"residual_layer1", "residual_layer2"})
      for (const char* c : {"convolution1", "convolution2"}) g.conv(f + r + "." + c, F, F, 3);
  }
  g.conv("head.conv1", F / 2, F, 3);
  g.conv("head.conv2", 32, F / 2, 3);
  g.conv("head.conv3", 1, 32, 1);
  io::save_safetensors(dir + "/model.safetensors", g.tensors);
  return dir;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One conv shape: vtx Conv2d vs im2col [P, K] + kernels::linear + transpose to NCHW.
void bench_conv(const char* what, int64_t cin, int64_t cout, int64_t H, int64_t W, int64_t k, int iters) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(cin * H * W), w(cout * cin * k * k), b(cout), y(cout * H * W), y2(y.size());
  for (auto& v : x) v = u(rng);
  for (auto& v : w) v = u(rng);
  const int64_t pad = k / 2, K = cin * k * k, P = H * W;
  kernels::Conv2d conv(w.data(), b.data(), kernels::ConvGeom{cout, cin, k, k, 1, 1, pad, pad});
  kernels::PackedWeight pw = kernels::PackedWeight::pack(w.data(), cout, K);
  std::vector<float> col(static_cast<size_t>(P * K)), tmp(static_cast<size_t>(P * cout));
  auto im2col_gemm = [&] {
    global_pool().parallel_for(P, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t oy = p / W, ox = p % W;
        float* c = col.data() + p * K;
        for (int64_t ci = 0; ci < cin; ++ci)
          for (int64_t ky = 0; ky < k; ++ky)
            for (int64_t kx = 0; kx < k; ++kx) {
              const int64_t iy = oy - pad + ky, ix = ox - pad + kx;
              *c++ = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(ci * H + iy) * W + ix] : 0.f;
            }
      }
    });
    kernels::Epilogue ep;
    ep.bias = b.data();
    kernels::linear(col.data(), P, K, pw, tmp.data(), cout, ep);
    global_pool().parallel_for(cout, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t p = 0; p < P; ++p) y2[c * P + p] = tmp[p * cout + c];
    });
  };
  std::vector<double> t1, t2;
  for (int i = 0; i <= iters; ++i) {
    double t0 = now_ms();
    conv.forward(x.data(), 1, H, W, y.data());
    double t = now_ms() - t0;
    if (i) t1.push_back(t);
    t0 = now_ms();
    im2col_gemm();
    t = now_ms() - t0;
    if (i) t2.push_back(t);
  }
  double md = 0;
  for (size_t i = 0; i < y.size(); ++i) md = std::max(md, static_cast<double>(std::fabs(y[i] - y2[i])));
  const double gflop = 2.0 * cout * K * P * 1e-9;
  std::printf("| %-34s | %3lldx%-3lld k%lld %4lldx%-4lld | %7.2f ms %6.1f GF/s | %7.2f ms %6.1f GF/s | %.1e |\n", what,
              (long long)cin, (long long)cout, (long long)k, (long long)H, (long long)W, median(t1),
              gflop / median(t1) * 1e3, median(t2), gflop / median(t2) * 1e3, md);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, iters = 5;
  bool convs = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--model-only")) convs = false;
  }
  set_num_threads(threads);
  const std::string dir = make_model_dir();
  auto model = Model::load(dir);
  Session s(model);
  Tensor pv({1, 3, 518, 686}, DType::F32);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < pv.numel(); ++i) pv.data<float>()[i] = nd(rng);

  std::vector<double> bb, nk, hd, tot;
  for (int i = 0; i <= iters; ++i) {
    models::DepthTiming t;
    const double t0 = now_ms();
    ModelOutput o = models::depth_forward_timed(s, pv, t);
    const double all = now_ms() - t0;
    if (i == 0) {
      std::printf("predicted_depth %s, %lld parameters\n", o.predicted_depth.shape_str().c_str(),
                  (long long)model->info().num_parameters);
      continue;  // warm-up
    }
    bb.push_back(t.backbone_ms);
    nk.push_back(t.neck_ms);
    hd.push_back(t.head_ms);
    tot.push_back(all);
  }
  std::printf("\nDepth-Anything-V2-Small-sized, 518x686, batch 1, %d threads, median of %d (min in brackets):\n\n",
              threads, iters);
  std::printf("| part | ms | share |\n|---|---:|---:|\n");
  auto row = [&](const char* n, const std::vector<double>& v) {
    std::printf("| %s | %.1f (%.1f) | %.0f %% |\n", n, median(v), *std::min_element(v.begin(), v.end()),
                100.0 * median(v) / median(tot));
  };
  row("backbone (DINOv2-S, 1814 tokens)", bb);
  row("neck (reassemble + convs + fusion)", nk);
  row("head", hd);
  row("total", tot);

  if (!convs) return 0;
  std::printf("\nConv kernel, batch 1, %d threads (median of %d): vtx Conv2d vs im2col + kernels::linear + transpose\n\n",
              threads, iters);
  std::printf("| layer | shape | vtx Conv2d | im2col + GEMM | max diff |\n|---|---|---:|---:|---:|\n");
  bench_conv("fusion residual conv (largest map)", 64, 64, 148, 196, 3, iters);
  bench_conv("neck.convs.0", 48, 64, 148, 196, 3, iters);
  bench_conv("neck.convs.3", 384, 64, 19, 25, 3, iters);
  bench_conv("head.conv1", 64, 32, 296, 392, 3, iters);
  bench_conv("head.conv2 (at 518x686)", 32, 32, 518, 686, 3, iters);
  bench_conv("fusion projection 1x1", 64, 64, 148, 196, 1, iters);
  return 0;
}
