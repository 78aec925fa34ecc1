// Conv2d / ConvTranspose2d: packed-panel GEMM with on-the-fly im2col, plus scalar references.
#include "kernels/conv.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/threadpool.hpp"
#include "kernels/kernels.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

using detail::kMR;
using detail::kNR;

namespace {

std::string geom_str(const ConvGeom& g) {
  return "Cout " + std::to_string(g.cout) + ", Cin " + std::to_string(g.cin) + ", kernel " + std::to_string(g.kh) +
         "x" + std::to_string(g.kw) + ", stride " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) +
         ", padding " + std::to_string(g.pad_h) + "x" + std::to_string(g.pad_w);
}

void check_geom(const ConvGeom& g, const char* what) {
  if (g.cout <= 0 || g.cin <= 0 || g.kh <= 0 || g.kw <= 0 || g.stride_h <= 0 || g.stride_w <= 0 || g.pad_h < 0 ||
      g.pad_w < 0)
    throw Error(std::string(what) + ": invalid geometry (" + geom_str(g) + ")");
}

// max(v, 0) on the bits (clears negatives, -0 and negative NaNs): branch-free and vectorisable. The compiler turns
// `v > 0 ? v : 0` into a compare + branch, which mispredicts on the random signs of activations (4x slower).
inline float relu_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u &= ~static_cast<uint32_t>(static_cast<int32_t>(u) >> 31);
  std::memcpy(&v, &u, 4);
  return v;
}
// Copies n floats (ReLU applied when relu).
inline void copy_run(float* __restrict d, const float* __restrict s, int n, bool relu) {
  if (relu)
    for (int j = 0; j < n; ++j) d[j] = relu_bits(s[j]);
  else
    std::memcpy(d, s, sizeof(float) * static_cast<size_t>(n));
}
inline void copy16(float* __restrict d, const float* __restrict s, bool relu) {
  if (relu)
    for (int j = 0; j < kNR; ++j) d[j] = relu_bits(s[j]);
  else
    std::memcpy(d, s, sizeof(float) * kNR);
}

// A run of consecutive panel columns [j0, j0 + len) reading consecutive source pixels from src (or zeros: src < 0).
struct Run {
  int j0, len;
  int64_t src;
};

detail::ConvMicroKernel pick_kernel() { return kernel_table().conv_micro; }

}  // namespace


void fold_batch_norm(std::vector<float>& weight, std::vector<float>& bias, int64_t cout, const float* gamma,
                     const float* beta, const float* mean, const float* var, double eps) {
  if (cout <= 0 || weight.size() % static_cast<size_t>(cout) != 0)
    throw Error("fold_batch_norm: weight size " + std::to_string(weight.size()) + " is not a multiple of Cout " +
                std::to_string(cout));
  const size_t per = weight.size() / static_cast<size_t>(cout);
  if (bias.empty()) bias.assign(static_cast<size_t>(cout), 0.f);
  if (bias.size() != static_cast<size_t>(cout)) throw Error("fold_batch_norm: bias size != Cout");
  for (int64_t c = 0; c < cout; ++c) {
    const double s = static_cast<double>(gamma[c]) / std::sqrt(static_cast<double>(var[c]) + eps);
    for (size_t i = 0; i < per; ++i) weight[c * per + i] = static_cast<float>(weight[c * per + i] * s);
    bias[c] = static_cast<float>((static_cast<double>(bias[c]) - mean[c]) * s + beta[c]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Conv2d

Conv2d::Conv2d(const float* weight, const float* bias, const ConvGeom& g) : g_(g) {
  check_geom(g, "conv2d");
  K_ = g.cin * g.kh * g.kw;
  const int64_t nm = (g.cout + kMR - 1) / kMR;
  packed_.assign(static_cast<size_t>(nm * K_ * kMR), 0.f);
  for (int64_t co = 0; co < g.cout; ++co) {
    const int64_t mp = co / kMR, r = co % kMR;
    float* dst = packed_.data() + mp * K_ * kMR + r;
    const float* src = weight + co * K_;
    for (int64_t k = 0; k < K_; ++k) dst[k * kMR] = src[k];
  }
  bias_.assign(static_cast<size_t>(g.cout), 0.f);
  if (bias) std::copy(bias, bias + g.cout, bias_.begin());
}

void Conv2d::forward(const float* in, int64_t N, int64_t H, int64_t W, float* out, const ConvEpilogue& ep,
                     bool relu_input) const {
  if (empty()) throw Error("conv2d: forward on an empty (unloaded) convolution");
  const ConvGeom& g = g_;
  if (N <= 0 || H <= 0 || W <= 0 || H + 2 * g.pad_h < g.kh || W + 2 * g.pad_w < g.kw)
    throw Error("conv2d: input [" + std::to_string(N) + ", " + std::to_string(g.cin) + ", " + std::to_string(H) +
                ", " + std::to_string(W) + "] is too small for " + geom_str(g));
  const int64_t OH = out_h(H), OW = out_w(W), P = OH * OW, HW = H * W;
  const int64_t kk = g.kh * g.kw, K = K_;
  const int64_t np = (P + kNR - 1) / kNR;
  const int64_t nm = (g.cout + kMR - 1) / kMR;
  const int nthreads = global_pool().size();
  // Split output channels too when there are few pixel panels (small maps), so every thread gets work.
  int64_t mgroups = 1;
  if (N * np < 4 * nthreads && nm > 1) mgroups = std::min<int64_t>(nm, (4 * nthreads + N * np - 1) / (N * np));
  const int64_t per_group = (nm + mgroups - 1) / mgroups;
  const int64_t tasks = N * np * mgroups;
  const detail::ConvMicroKernel micro = pick_kernel();

  global_pool().parallel_for(tasks, [&](int64_t t0, int64_t t1) {
    std::vector<float> bpanel(static_cast<size_t>(K * kNR));
    std::vector<int64_t> offs(static_cast<size_t>(kk * kNR));
    std::vector<char> contig(static_cast<size_t>(kk));
    std::vector<Run> runs(static_cast<size_t>(kk * kNR));
    std::vector<int> nruns(static_cast<size_t>(kk));
    std::vector<float> tiles(static_cast<size_t>(per_group * kMR * kNR));
    int64_t packed_for = -1;  // (n * np + pj) of the panel currently in bpanel
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t mg = t % mgroups, np_idx = t / mgroups;
      const int64_t n = np_idx / np, pj = np_idx % np;
      const int64_t p0 = pj * kNR, valid = std::min<int64_t>(kNR, P - p0);
      if (packed_for != np_idx) {
        packed_for = np_idx;
        // Source offsets of the 16 columns for every kernel tap.
        for (int64_t j = 0; j < kNR; ++j) {
          int64_t oy = 0, ox = 0;
          const bool col_ok = j < valid;
          if (col_ok) {
            oy = (p0 + j) / OW;
            ox = (p0 + j) % OW;
          }
          for (int64_t ky = 0; ky < g.kh; ++ky)
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t iy = oy * g.stride_h - g.pad_h + ky, ix = ox * g.stride_w - g.pad_w + kx;
              const bool ok = col_ok && iy >= 0 && iy < H && ix >= 0 && ix < W;
              offs[(ky * g.kw + kx) * kNR + j] = ok ? iy * W + ix : -1;
            }
        }
        for (int64_t q = 0; q < kk; ++q) {
          const int64_t* o = &offs[q * kNR];
          bool c = o[0] >= 0;
          for (int64_t j = 1; c && j < kNR; ++j) c = o[j] == o[0] + j;
          contig[q] = c;
          if (c) continue;
          Run* run = &runs[q * kNR];
          int n_r = 0;
          for (int j = 0; j < kNR;) {
            int e = j + 1;
            if (o[j] < 0)
              while (e < kNR && o[e] < 0) ++e;
            else
              while (e < kNR && o[e] == o[e - 1] + 1) ++e;
            run[n_r++] = Run{j, e - j, o[j] < 0 ? -1 : o[j]};
            j = e;
          }
          nruns[q] = n_r;
        }
        // Gather the [K, 16] panel.
        const float* img = in + n * g.cin * HW;
        float* dst = bpanel.data();
        for (int64_t ci = 0; ci < g.cin; ++ci) {
          const float* base = img + ci * HW;
          for (int64_t q = 0; q < kk; ++q, dst += kNR) {
            const int64_t* o = &offs[q * kNR];
            if (contig[q]) {
              copy16(dst, base + o[0], relu_input);
            } else {
              // Row wraps / borders: a few runs of consecutive source pixels or zeros.
              const Run* run = &runs[q * kNR];
              for (int r = 0; r < nruns[q]; ++r) {
                float* d = dst + run[r].j0;
                if (run[r].src < 0) {
                  std::memset(d, 0, sizeof(float) * run[r].len);
                } else {
                  copy_run(d, base + run[r].src, run[r].len, relu_input);
                }
              }
            }
          }
        }
      }
      const int64_t m0 = mg * per_group, m1 = std::min(nm, m0 + per_group);
      // K blocks outermost: the [kKC, 16] slice of the pixel panel stays in L1 while every Cout tile uses it.
      for (int64_t k0 = 0; k0 < K; k0 += detail::kKC) {
        const int64_t kc = std::min<int64_t>(detail::kKC, K - k0);
        for (int64_t mp = m0; mp < m1; ++mp)
          micro(kc, packed_.data() + (mp * K + k0) * kMR, bpanel.data() + k0 * kNR, tiles.data() + (mp - m0) * kMR * kNR,
                k0 > 0);
      }
      for (int64_t mp = m0; mp < m1; ++mp) {
        const float* tile = tiles.data() + (mp - m0) * kMR * kNR;
        const int64_t rows = std::min<int64_t>(kMR, g.cout - mp * kMR);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t co = mp * kMR + r;
          const int64_t off = (n * g.cout + co) * P + p0;
          float* o = out + off;
          const float b = bias_[co];
          const float* tr = tile + r * kNR;
          if (ep.act == Act::None || ep.act == Act::Relu) {
            const bool relu = ep.act == Act::Relu;
            for (int64_t j = 0; j < valid; ++j) {
              float y = tr[j] + b;
              if (relu) y = relu_bits(y);
              o[j] = y;
            }
          } else {
            for (int64_t j = 0; j < valid; ++j) o[j] = act_ref(tr[j] + b, ep.act);
          }
          if (ep.residual)
            for (int64_t j = 0; j < valid; ++j) o[j] += ep.residual[off + j];
          if (ep.residual2)
            for (int64_t j = 0; j < valid; ++j) o[j] += ep.residual2[off + j];
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// ConvTranspose2d

ConvTranspose2d::ConvTranspose2d(const float* weight, const float* bias, const ConvGeom& g) : g_(g) {
  check_geom(g, "conv_transpose2d");
  const int64_t kk = g.kh * g.kw;
  // A[(co, ky, kx), ci] = weight[ci, co, ky, kx]
  std::vector<float> a(static_cast<size_t>(g.cout * kk * g.cin));
  for (int64_t ci = 0; ci < g.cin; ++ci)
    for (int64_t co = 0; co < g.cout; ++co)
      for (int64_t q = 0; q < kk; ++q) a[(co * kk + q) * g.cin + ci] = weight[(ci * g.cout + co) * kk + q];
  ConvGeom gg;
  gg.cout = g.cout * kk;
  gg.cin = g.cin;
  gemm_ = Conv2d(a.data(), nullptr, gg);
  bias_.assign(static_cast<size_t>(g.cout), 0.f);
  if (bias) std::copy(bias, bias + g.cout, bias_.begin());
}

void ConvTranspose2d::forward(const float* in, int64_t N, int64_t H, int64_t W, float* out, Act act,
                              float* scratch) const {
  if (empty()) throw Error("conv_transpose2d: forward on an empty (unloaded) convolution");
  const ConvGeom& g = g_;
  if (N <= 0 || H <= 0 || W <= 0 || out_h(H) <= 0 || out_w(W) <= 0)
    throw Error("conv_transpose2d: input [" + std::to_string(N) + ", " + std::to_string(g.cin) + ", " +
                std::to_string(H) + ", " + std::to_string(W) + "] is invalid for " + geom_str(g));
  const int64_t kk = g.kh * g.kw, HW = H * W, OH = out_h(H), OW = out_w(W);
  std::vector<float> own;
  float* cols = scratch;
  if (!cols) {
    own.resize(scratch_floats(N, H, W));
    cols = own.data();
  }
  gemm_.forward(in, N, H, W, cols);
  const bool scatter = g.kh == g.stride_h && g.kw == g.stride_w && g.pad_h == 0 && g.pad_w == 0;
  global_pool().parallel_for(N * g.cout, [&](int64_t c0, int64_t c1) {
    for (int64_t nc = c0; nc < c1; ++nc) {
      const int64_t co = nc % g.cout;
      float* o = out + nc * OH * OW;
      const float* src = cols + nc * kk * HW;  // [(ky, kx), H*W] of this (n, co)
      const float b = bias_[co];
      if (scatter) {
        // Every output pixel receives exactly one tap.
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const float* s = src + (ky * g.kw + kx) * HW;
            for (int64_t y = 0; y < H; ++y) {
              float* orow = o + (y * g.stride_h + ky) * OW + kx;
              const float* srow = s + y * W;
              for (int64_t x = 0; x < W; ++x) orow[x * g.stride_w] = srow[x] + b;
            }
          }
      } else {
        std::fill(o, o + OH * OW, 0.f);
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const float* s = src + (ky * g.kw + kx) * HW;
            for (int64_t y = 0; y < H; ++y) {
              const int64_t oy = y * g.stride_h - g.pad_h + ky;
              if (oy < 0 || oy >= OH) continue;
              for (int64_t x = 0; x < W; ++x) {
                const int64_t ox = x * g.stride_w - g.pad_w + kx;
                if (ox >= 0 && ox < OW) o[oy * OW + ox] += s[y * W + x];
              }
            }
          }
        for (int64_t i = 0; i < OH * OW; ++i) o[i] += b;
      }
      if (act == Act::Relu)
        for (int64_t i = 0; i < OH * OW; ++i) o[i] = relu_bits(o[i]);
      else if (act != Act::None)
        apply_act(o, OH * OW, act);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// References

void conv2d_ref(const float* in, int64_t N, int64_t H, int64_t W, const float* weight, const float* bias,
                const ConvGeom& g, float* out) {
  check_geom(g, "conv2d_ref");
  const int64_t OH = (H + 2 * g.pad_h - g.kh) / g.stride_h + 1, OW = (W + 2 * g.pad_w - g.kw) / g.stride_w + 1;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < g.cout; ++co)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double s = 0;
          for (int64_t ci = 0; ci < g.cin; ++ci)
            for (int64_t ky = 0; ky < g.kh; ++ky) {
              const int64_t iy = oy * g.stride_h - g.pad_h + ky;
              if (iy < 0 || iy >= H) continue;
              for (int64_t kx = 0; kx < g.kw; ++kx) {
                const int64_t ix = ox * g.stride_w - g.pad_w + kx;
                if (ix < 0 || ix >= W) continue;
                s += static_cast<double>(in[((n * g.cin + ci) * H + iy) * W + ix]) *
                     weight[((co * g.cin + ci) * g.kh + ky) * g.kw + kx];
              }
            }
          out[((n * g.cout + co) * OH + oy) * OW + ox] = static_cast<float>(s) + (bias ? bias[co] : 0.f);
        }
}

void conv_transpose2d_ref(const float* in, int64_t N, int64_t H, int64_t W, const float* weight, const float* bias,
                          const ConvGeom& g, float* out) {
  check_geom(g, "conv_transpose2d_ref");
  const int64_t OH = (H - 1) * g.stride_h - 2 * g.pad_h + g.kh, OW = (W - 1) * g.stride_w - 2 * g.pad_w + g.kw;
  std::vector<double> acc(static_cast<size_t>(OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < g.cout; ++co) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t ci = 0; ci < g.cin; ++ci)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            const double v = in[((n * g.cin + ci) * H + y) * W + x];
            for (int64_t ky = 0; ky < g.kh; ++ky) {
              const int64_t oy = y * g.stride_h - g.pad_h + ky;
              if (oy < 0 || oy >= OH) continue;
              for (int64_t kx = 0; kx < g.kw; ++kx) {
                const int64_t ox = x * g.stride_w - g.pad_w + kx;
                if (ox < 0 || ox >= OW) continue;
                acc[oy * OW + ox] += v * weight[((ci * g.cout + co) * g.kh + ky) * g.kw + kx];
              }
            }
          }
      for (int64_t i = 0; i < OH * OW; ++i)
        out[(n * g.cout + co) * OH * OW + i] = static_cast<float>(acc[i]) + (bias ? bias[co] : 0.f);
    }
}

}  // namespace vtx::kernels
