// Portable attention: one (batch, head, query row) at a time: scores -> softmax -> weighted sum of V.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threadpool.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {

namespace {

// Portable path: one (batch, head, query row) at a time: scores -> softmax -> weighted sum of V.
void attend_rows(const AttentionArgs& a, int64_t b, int64_t h, int64_t i0, int64_t i1, float* s) {
  const int64_t D = a.H * a.dh, ld = 3 * D, T = a.T, dh = a.dh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const float* base = a.qkv + b * T * ld;
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  for (int64_t i = i0; i < i1; ++i) {
    const float* q = base + i * ld + h * dh;
    const float* bias = a.bias ? a.bias + (h * T + i) * T : nullptr;
    float mx = -INFINITY;
    for (int64_t j = 0; j < T; ++j) {
      const float* k = base + j * ld + D + h * dh;
      float acc = 0.f;
      for (int64_t d = 0; d < dh; ++d) acc += q[d] * k[d];
      s[j] = acc * scale + (bias ? bias[j] : 0.f);
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

}  // namespace

void attention(const AttentionArgs& a) {
  const int64_t RB = 32, nrb = (a.T + RB - 1) / RB;
  global_pool().parallel_for(a.B * a.H * nrb, [&](int64_t w0, int64_t w1) {
    std::vector<float> s(static_cast<size_t>(a.T));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / nrb, rb = w % nrb;
      attend_rows(a, bh / a.H, bh % a.H, rb * RB, std::min(a.T, (rb + 1) * RB), s.data());
    }
  });
}

}  // namespace vtx::kernels::portable
