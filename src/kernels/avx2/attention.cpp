// Fused multi-head attention for AVX2/FMA (flash-attention style).
//
// Work items are (batch, head, strip of 6 query rows), split statically over the pool threads. When a
// thread starts a new (batch, head) it packs K^T into 16-column panels ([T/16][dh][16]) and V into
// [T][dhp] rows (dhp = dh rounded up to 16), zero padded; both stay in L2 (~0.7 MB at T=1370, dh=64).
// For a strip, Q (pre-scaled by 1/sqrt(dh)) is packed as [dh][6], then for each block of BK keys:
//   S = Q K^T (6x16 register-blocked microkernel), online softmax (running max m, sum l, rescale O),
//   O += P V (6x16 microkernel over dh chunks); finally out = O / l * head_mask.
// The T x T matrix is never materialized. With probs requested, a strip computes its full score rows,
// an exact two-pass softmax (written to probs), then out = probs V with the same microkernels.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <new>

#include "core/threadpool.hpp"
#include "kernels/common/scratch.hpp"
#include "kernels/avx2/vmath.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::avx2 {

using namespace simd;

namespace {

constexpr int MR = 6, NR = 16, BK = 128;

thread_local ThreadBuf<float> t_k, t_v, t_q, t_s, t_o;

// S[6][16] (row stride lds) = a[k][6] . b[k][16], k = 0..K-1.
__attribute__((always_inline)) inline void qk_6x16(const float* a, const float* b, int64_t K, float* s, int64_t lds) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * 16), b1 = _mm256_load_ps(b + k * 16 + 8);
    __m256 av = _mm256_broadcast_ss(a + k * 6 + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + k * 6 + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + k * 6 + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + k * 6 + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + k * 6 + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + k * 6 + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  _mm256_store_ps(s + 0 * lds, c00);
  _mm256_store_ps(s + 0 * lds + 8, c01);
  _mm256_store_ps(s + 1 * lds, c10);
  _mm256_store_ps(s + 1 * lds + 8, c11);
  _mm256_store_ps(s + 2 * lds, c20);
  _mm256_store_ps(s + 2 * lds + 8, c21);
  _mm256_store_ps(s + 3 * lds, c30);
  _mm256_store_ps(s + 3 * lds + 8, c31);
  _mm256_store_ps(s + 4 * lds, c40);
  _mm256_store_ps(s + 4 * lds + 8, c41);
  _mm256_store_ps(s + 5 * lds, c50);
  _mm256_store_ps(s + 5 * lds + 8, c51);
}

// O[6][16] (row stride ldo) += P[6][n] (row stride ldp) . V[n][16] (row stride ldv).
__attribute__((always_inline)) inline void pv_6x16(const float* p, int64_t ldp, const float* v, int64_t ldv,
                                                   int64_t n, float* o, int64_t ldo) {
  __m256 c00 = _mm256_load_ps(o), c01 = _mm256_load_ps(o + 8), c10 = _mm256_load_ps(o + ldo),
         c11 = _mm256_load_ps(o + ldo + 8), c20 = _mm256_load_ps(o + 2 * ldo), c21 = _mm256_load_ps(o + 2 * ldo + 8),
         c30 = _mm256_load_ps(o + 3 * ldo), c31 = _mm256_load_ps(o + 3 * ldo + 8), c40 = _mm256_load_ps(o + 4 * ldo),
         c41 = _mm256_load_ps(o + 4 * ldo + 8), c50 = _mm256_load_ps(o + 5 * ldo),
         c51 = _mm256_load_ps(o + 5 * ldo + 8);
  for (int64_t j = 0; j < n; ++j) {
    const __m256 b0 = _mm256_load_ps(v + j * ldv), b1 = _mm256_load_ps(v + j * ldv + 8);
    __m256 av = _mm256_broadcast_ss(p + j);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(p + ldp + j);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(p + 2 * ldp + j);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(p + 3 * ldp + j);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(p + 4 * ldp + j);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(p + 5 * ldp + j);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  _mm256_store_ps(o, c00);
  _mm256_store_ps(o + 8, c01);
  _mm256_store_ps(o + ldo, c10);
  _mm256_store_ps(o + ldo + 8, c11);
  _mm256_store_ps(o + 2 * ldo, c20);
  _mm256_store_ps(o + 2 * ldo + 8, c21);
  _mm256_store_ps(o + 3 * ldo, c30);
  _mm256_store_ps(o + 3 * ldo + 8, c31);
  _mm256_store_ps(o + 4 * ldo, c40);
  _mm256_store_ps(o + 4 * ldo + 8, c41);
  _mm256_store_ps(o + 5 * ldo, c50);
  _mm256_store_ps(o + 5 * ldo + 8, c51);
}

// s[r][j] += bias rows (row stride T) for the valid rows of a strip, j < n.
inline void add_bias(float* s, int64_t lds, const float* bias, int64_t T, int rows, int64_t n) {
  for (int r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    const float* br = bias + r * T;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(sr + j, _mm256_add_ps(_mm256_loadu_ps(sr + j), _mm256_loadu_ps(br + j)));
    for (; j < n; ++j) sr[j] += br[j];
  }
}

// Max of s[0..n) (n >= 1).
inline float row_max(const float* s, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
  float r = hmax256(m);
  for (; j < n; ++j) r = std::max(r, s[j]);
  return r;
}

// s[j] = exp(s[j] - mx) for j < n, 0 for n <= j < npad (npad multiple of 8); returns the sum over j < n.
inline float exp_row(float* s, int64_t n, int64_t npad, float mx) {
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (j < n) {
    const __m256 msk = _mm256_castsi256_ps(tail_mask(n - j));
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm)), msk);
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
    j += 8;
  }
  for (; j < npad; j += 8) _mm256_storeu_ps(s + j, _mm256_setzero_ps());
  return hsum256(acc);
}

struct Ctx {
  const AttentionArgs& a;
  int64_t D, ld, dhp, tpad, npan;
  float scale;
};

void pack_kv(const Ctx& c, int64_t b, int64_t h, float* kp, float* vp) {
  const AttentionArgs& a = c.a;
  const float* base = a.qkv + b * a.T * c.ld;
  for (int64_t p = 0; p < c.npan; ++p)
    for (int64_t jj = 0; jj < NR; ++jj) {
      const int64_t j = p * NR + jj;
      float* dst = kp + p * a.dh * NR + jj;
      if (j < a.T) {
        const float* src = base + j * c.ld + c.D + h * a.dh;
        for (int64_t d = 0; d < a.dh; ++d) dst[d * NR] = src[d];
      } else {
        for (int64_t d = 0; d < a.dh; ++d) dst[d * NR] = 0.f;
      }
    }
  for (int64_t j = 0; j < c.tpad; ++j) {
    float* dst = vp + j * c.dhp;
    int64_t d = 0;
    if (j < a.T) {
      const float* src = base + j * c.ld + 2 * c.D + h * a.dh;
      for (; d < a.dh; ++d) dst[d] = src[d];
    }
    for (; d < c.dhp; ++d) dst[d] = 0.f;
  }
}

void pack_q(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, float* qp) {
  const AttentionArgs& a = c.a;
  for (int r = 0; r < MR; ++r) {
    if (r < rows) {
      const float* src = a.qkv + (b * a.T + i0 + r) * c.ld + h * a.dh;
      for (int64_t d = 0; d < a.dh; ++d) qp[d * MR + r] = src[d] * c.scale;
    } else {
      for (int64_t d = 0; d < a.dh; ++d) qp[d * MR + r] = 0.f;
    }
  }
}

// Flash path for one strip: online softmax over key blocks.
void strip_flash(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, const float* qp, const float* kp,
                 const float* vp, float* s, float* o) {
  const AttentionArgs& a = c.a;
  const int64_t T = a.T, dh = a.dh, dhp = c.dhp;
  float m[MR], l[MR];
  for (int r = 0; r < MR; ++r) m[r] = -INFINITY, l[r] = 0.f;
  std::fill(o, o + MR * dhp, 0.f);
  for (int64_t j0 = 0; j0 < T; j0 += BK) {
    const int64_t nb = std::min<int64_t>(BK, T - j0);
    const int64_t npb = (nb + NR - 1) / NR;
    for (int64_t p = 0; p < npb; ++p) qk_6x16(qp, kp + (j0 / NR + p) * dh * NR, dh, s + p * NR, BK);
    if (a.bias) add_bias(s, BK, a.bias + (h * T + i0) * T + j0, T, rows, nb);
    for (int r = 0; r < MR; ++r) {
      float* sr = s + r * BK;
      const float mx = std::max(m[r], row_max(sr, nb));
      const float alpha = std::exp(m[r] - mx);  // 0 on the first block (m = -inf)
      const float sum = exp_row(sr, nb, npb * NR, mx);
      l[r] = l[r] * alpha + sum;
      m[r] = mx;
      if (alpha != 1.0f) {
        const __m256 va = _mm256_set1_ps(alpha);
        for (int64_t d = 0; d < dhp; d += 8) _mm256_store_ps(o + r * dhp + d, _mm256_mul_ps(_mm256_load_ps(o + r * dhp + d), va));
      }
    }
    for (int64_t d0 = 0; d0 < dhp; d0 += NR) pv_6x16(s, BK, vp + j0 * dhp + d0, dhp, nb, o + d0, dhp);
  }
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  for (int r = 0; r < rows; ++r) {
    const float inv = hm / l[r];
    float* dst = a.out + (b * T + i0 + r) * c.D + h * dh;
    for (int64_t d = 0; d < dh; ++d) dst[d] = o[r * dhp + d] * inv;
  }
}

// Exact path for one strip: full score rows, two-pass softmax written to probs, out = probs V.
void strip_probs(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, const float* qp, const float* kp,
                 const float* vp, float* s, float* o) {
  const AttentionArgs& a = c.a;
  const int64_t T = a.T, dh = a.dh, dhp = c.dhp, lds = c.tpad;
  for (int64_t p = 0; p < c.npan; ++p) qk_6x16(qp, kp + p * dh * NR, dh, s + p * NR, lds);
  if (a.bias) add_bias(s, lds, a.bias + (h * T + i0) * T, T, rows, T);
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  for (int r = 0; r < MR; ++r) {
    float* sr = s + r * lds;
    const float sum = exp_row(sr, T, lds, row_max(sr, T));
    const __m256 vinv = _mm256_set1_ps(hm / sum);
    for (int64_t j = 0; j < lds; j += 8) _mm256_store_ps(sr + j, _mm256_mul_ps(_mm256_load_ps(sr + j), vinv));
    if (r < rows) std::copy(sr, sr + T, a.probs + ((b * a.H + h) * T + i0 + r) * T);
  }
  std::fill(o, o + MR * dhp, 0.f);
  for (int64_t d0 = 0; d0 < dhp; d0 += NR) pv_6x16(s, lds, vp + d0, dhp, T, o + d0, dhp);
  for (int r = 0; r < rows; ++r) {
    float* dst = a.out + (b * T + i0 + r) * c.D + h * dh;
    for (int64_t d = 0; d < dh; ++d) dst[d] = o[r * dhp + d];
  }
}

}  // namespace

void attention(const AttentionArgs& a) {
  Ctx c{a, a.H * a.dh, 3 * a.H * a.dh, (a.dh + NR - 1) / NR * NR, 0, 0, 1.0f / std::sqrt(static_cast<float>(a.dh))};
  c.npan = (a.T + NR - 1) / NR;
  c.tpad = c.npan * NR;
  const int64_t nstrip = (a.T + MR - 1) / MR;
  const int64_t items = a.B * a.H * nstrip;
  global_pool().parallel_for(items, [&](int64_t w0, int64_t w1) {
    float* kp = t_k.get(static_cast<size_t>(c.tpad * a.dh));
    float* vp = t_v.get(static_cast<size_t>(c.tpad * c.dhp));
    float* qp = t_q.get(static_cast<size_t>(MR * a.dh));
    float* s = t_s.get(static_cast<size_t>(MR * (a.probs ? c.tpad : BK)));
    float* o = t_o.get(static_cast<size_t>(MR * c.dhp));
    int64_t cur_bh = -1;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / nstrip, st = w % nstrip;
      const int64_t b = bh / a.H, h = bh % a.H;
      if (bh != cur_bh) {
        pack_kv(c, b, h, kp, vp);
        cur_bh = bh;
      }
      const int64_t i0 = st * MR;
      const int rows = static_cast<int>(std::min<int64_t>(MR, a.T - i0));
      pack_q(c, b, h, i0, rows, qp);
      if (a.probs)
        strip_probs(c, b, h, i0, rows, qp, kp, vp, s, o);
      else
        strip_flash(c, b, h, i0, rows, qp, kp, vp, s, o);
    }
  });
}

}  // namespace vtx::kernels::avx2
