// Attention entry points: run-time dispatch to the fused AVX2 kernel (attention_avx2.cpp), a portable
// row-at-a-time fallback, and the scalar reference.
#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"

namespace vtx::kernels {

namespace avx2 {  // attention_avx2.cpp
void attention(const AttentionArgs& a);
}
namespace avx512 {  // attention_avx512.cpp
void attention(const AttentionArgs& a);
}

namespace {

// Portable path: one (batch, head, query row) at a time: scores -> softmax -> weighted sum of V.
void attend_rows(const AttentionArgs& a, int64_t b, int64_t h, int64_t i0, int64_t i1, float* s) {
  const int64_t D = a.H * a.dh, ld = 3 * D, T = a.T, dh = a.dh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const float* base = a.qkv + b * T * ld;
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  for (int64_t i = i0; i < i1; ++i) {
    const float* q = base + i * ld + h * dh;
    float mx = -INFINITY;
    for (int64_t j = 0; j < T; ++j) {
      const float* k = base + j * ld + D + h * dh;
      float acc = 0.f;
      for (int64_t d = 0; d < dh; ++d) acc += q[d] * k[d];
      s[j] = acc * scale;
      mx = std::max(mx, s[j]);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < T; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    const float inv = hm / sum;
    for (int64_t j = 0; j < T; ++j) s[j] *= inv;
    if (a.probs) std::copy(s, s + T, a.probs + ((b * a.H + h) * T + i) * T);
    float* o = a.out + (b * T + i) * D + h * dh;
    std::fill(o, o + dh, 0.f);
    for (int64_t j = 0; j < T; ++j) {
      const float* v = base + j * ld + 2 * D + h * dh;
      const float p = s[j];
      for (int64_t d = 0; d < dh; ++d) o[d] += p * v[d];
    }
  }
}

void attention_portable(const AttentionArgs& a) {
  const int64_t RB = 32, nrb = (a.T + RB - 1) / RB;
  global_pool().parallel_for(a.B * a.H * nrb, [&](int64_t w0, int64_t w1) {
    std::vector<float> s(static_cast<size_t>(a.T));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / nrb, rb = w % nrb;
      attend_rows(a, bh / a.H, bh % a.H, rb * RB, std::min(a.T, (rb + 1) * RB), s.data());
    }
  });
}

}  // namespace

void attention(const AttentionArgs& a) {
  if (a.B <= 0 || a.T <= 0 || a.H <= 0 || a.dh <= 0) return;
  if (cpu_has_avx512()) return avx512::attention(a);
  if (cpu_has_avx2_fma()) return avx2::attention(a);
  attention_portable(a);
}

// Scalar reference, double precision internally: the plain textbook formula, shares nothing with the above.
void attention_ref(const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, dh = a.dh, D = H * dh;
  std::vector<double> p(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const float* q = a.qkv + (b * T + i) * 3 * D + h * dh;
        double mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          const float* k = a.qkv + (b * T + j) * 3 * D + D + h * dh;
          double s = 0;
          for (int64_t d = 0; d < dh; ++d) s += static_cast<double>(q[d]) * k[d];
          p[j] = s / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) sum += (p[j] = std::exp(p[j] - mx));
        const double hm = a.head_mask ? a.head_mask[h] : 1.0;
        for (int64_t j = 0; j < T; ++j) {
          p[j] = p[j] / sum * hm;
          if (a.probs) a.probs[((b * H + h) * T + i) * T + j] = static_cast<float>(p[j]);
        }
        for (int64_t d = 0; d < dh; ++d) {
          double o = 0;
          for (int64_t j = 0; j < T; ++j) o += p[j] * a.qkv[(b * T + j) * 3 * D + 2 * D + h * dh + d];
          a.out[(b * T + i) * D + h * dh + d] = static_cast<float>(o);
        }
      }
}

}  // namespace vtx::kernels
