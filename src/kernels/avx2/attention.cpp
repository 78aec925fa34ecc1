// Fused multi-head attention for AVX2/FMA (flash-attention style).
//
// Two kernels. The common case (no probabilities, no score bias) is the row-lane kernel below ("Row-lane kernel").
// The other, described here: work items are (batch, head, strip of 6 query rows), split statically over the pool
// threads. When a
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
#include "kernels/common/transpose8x8.hpp"
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

// ---- Row-lane kernel (no probabilities, no bias: the common case) ----------------------------------------
// As in avx512/attention.cpp: a strip's 8 * RV query rows run along the lanes, an S^T tile [key][row] holds each
// key's scores for all rows, so the softmax is vertical and fused into the tile's epilogue (no horizontal sums, no
// scalar exp), and K and V are broadcast element by element from the QKV rows (no per-head packing). 6-wide tiles:
// 12 accumulators + 3. Strips are taken dynamically by the pool threads; tails of <= kVecRowsMax rows run row by row.

constexpr int KC = 6;      // keys per S^T micro-tile, d values per O^T micro-tile
constexpr int BKR = 120;   // keys per block (a multiple of KC)

// Running softmax state of a strip, lane-wise per row: reference exponent m (log2 units), row sum l.
template <int RV>
struct RowSoftmax {
  __m256 m[RV], l[RV];
};
constexpr float kSlack = 16.f;  // a tile may exceed the reference by up to 2^16 before it moves

// S^T tile of KC keys with the softmax fused into its epilogue, as avx512::qk_rows_exp: st gets P^T = 2^(s - m),
// l the sum over the nvalid keys; a tile more than kSlack above m (or the first, m = -inf) moves m up and rescales
// l, O^T and the P^T already stored in this block (st_block .. st).
template <int RV>
__attribute__((always_inline)) inline void qk_rows_exp(const float* qt, const float* const* kr, int64_t dh, float* st,
                                                       int nvalid, RowSoftmax<RV>& sm, float* st_block, float* ot) {
  constexpr int R = 8 * RV;
  __m256 c[KC][RV];
#pragma GCC unroll 6
  for (int j = 0; j < KC; ++j)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) c[j][v] = _mm256_setzero_ps();
  for (int64_t d = 0; d < dh; ++d) {
    __m256 q[RV];
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) q[v] = _mm256_load_ps(qt + d * R + 8 * v);
#pragma GCC unroll 6
    for (int j = 0; j < KC; ++j) {
      const __m256 kv = _mm256_broadcast_ss(kr[j] + d);
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) c[j][v] = _mm256_fmadd_ps(kv, q[v], c[j][v]);
    }
  }
  __m256 tm[RV];
#pragma GCC unroll 2
  for (int v = 0; v < RV; ++v) tm[v] = c[0][v];
#pragma GCC unroll 6
  for (int j = 1; j < KC; ++j)
    if (j < nvalid)
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) tm[v] = _mm256_max_ps(tm[v], c[j][v]);
  int up = 0;
#pragma GCC unroll 2
  for (int v = 0; v < RV; ++v)
    up |= _mm256_movemask_ps(_mm256_cmp_ps(tm[v], _mm256_add_ps(sm.m[v], _mm256_set1_ps(kSlack)), _CMP_GT_OQ));
  if (up) [[unlikely]] {
    __m256 alpha[RV];
    for (int v = 0; v < RV; ++v) {
      const __m256 mn = _mm256_max_ps(sm.m[v], tm[v]);
      alpha[v] = exp2_256(_mm256_sub_ps(sm.m[v], mn));  // ~0 on the first tile (m = -inf)
      sm.m[v] = mn;
      sm.l[v] = _mm256_mul_ps(sm.l[v], alpha[v]);
    }
    for (int64_t i = 0; i < dh; ++i)
      for (int v = 0; v < RV; ++v)
        _mm256_store_ps(ot + i * R + 8 * v, _mm256_mul_ps(_mm256_load_ps(ot + i * R + 8 * v), alpha[v]));
    for (float* p = st_block; p < st; p += R)
      for (int v = 0; v < RV; ++v) _mm256_store_ps(p + 8 * v, _mm256_mul_ps(_mm256_load_ps(p + 8 * v), alpha[v]));
  }
#pragma GCC unroll 6
  for (int j = 0; j < KC; ++j)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) {
      const __m256 e = exp2_256(_mm256_sub_ps(c[j][v], sm.m[v]));
      _mm256_store_ps(st + (j * RV + v) * 8, e);
      if (j < nvalid) sm.l[v] = _mm256_add_ps(sm.l[v], e);
    }
}

template <int RV, int ND>
__attribute__((always_inline)) inline void pv_rows(const float* pt, const float* vb, int64_t ld, int64_t n, float* ot) {
  __m256 c[ND][RV];
#pragma GCC unroll 6
  for (int i = 0; i < ND; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) c[i][v] = _mm256_load_ps(ot + (i * RV + v) * 8);
  for (int64_t j = 0; j < n; ++j) {
    __m256 p[RV];
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) p[v] = _mm256_load_ps(pt + (j * RV + v) * 8);
    const float* vr = vb + j * ld;
#pragma GCC unroll 6
    for (int i = 0; i < ND; ++i) {
      const __m256 vv = _mm256_broadcast_ss(vr + i);
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) c[i][v] = _mm256_fmadd_ps(vv, p[v], c[i][v]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < ND; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) _mm256_store_ps(ot + (i * RV + v) * 8, c[i][v]);
}

// Q^T of rows [i0, i0 + rows), pre-scaled: qt[d][8 RV], rows past `rows` zero.
template <int RV>
void pack_qt(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, float* qt) {
  constexpr int R = 8 * RV;
  const AttentionArgs& a = c.a;
  const float* qb = a.qkv + (b * a.T + i0) * c.ld + h * a.dh;
  const float scale = c.scale * 1.44269504088896341f;  // scores in log2 units: the softmax below uses 2^x
  const __m256 vs = _mm256_set1_ps(scale);
  for (int r0 = 0; r0 < R; r0 += 8) {
    int64_t d = 0;
    if (r0 + 8 <= rows) {
      for (; d + 8 <= a.dh; d += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(qb + (r0 + i) * c.ld + d);
        transpose8x8(r);
        for (int i = 0; i < 8; ++i) _mm256_store_ps(qt + (d + i) * R + r0, _mm256_mul_ps(r[i], vs));
      }
    }
    for (; d < a.dh; ++d)
      for (int r = r0; r < r0 + 8; ++r) qt[d * R + r] = r < rows ? qb[r * c.ld + d] * scale : 0.f;
  }
}

template <int RV>
void strip_rows(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, float* qt, float* st, float* ot) {
  constexpr int R = 8 * RV;
  const AttentionArgs& a = c.a;
  const int64_t T = a.T, dh = a.dh, ld = c.ld;
  pack_qt<RV>(c, b, h, i0, rows, qt);
  const float* kb = a.qkv + b * T * ld + c.D + h * dh;
  const float* vb = a.qkv + b * T * ld + 2 * c.D + h * dh;
  RowSoftmax<RV> sm;
  for (int v = 0; v < RV; ++v) sm.m[v] = _mm256_set1_ps(-INFINITY), sm.l[v] = _mm256_setzero_ps();
  for (int64_t i = 0; i < dh * R; i += 8) _mm256_store_ps(ot + i, _mm256_setzero_ps());
  for (int64_t j0 = 0; j0 < T; j0 += BKR) {
    const int64_t nb = std::min<int64_t>(BKR, T - j0);
    // P^T of the block; keys past T read the last key (finite) and are left out of l and of O^T.
    for (int64_t k0 = 0; k0 < nb; k0 += KC) {
      const float* kr[KC];
      for (int j = 0; j < KC; ++j) kr[j] = kb + (j0 + std::min<int64_t>(k0 + j, nb - 1)) * ld;
      qk_rows_exp<RV>(qt, kr, dh, st + k0 * R, static_cast<int>(std::min<int64_t>(KC, nb - k0)), sm, st, ot);
    }
    const float* vbj = vb + j0 * ld;
    int64_t d0 = 0;
    for (; d0 + KC <= dh; d0 += KC) pv_rows<RV, KC>(st, vbj + d0, ld, nb, ot + d0 * R);
    for (; d0 + 2 <= dh; d0 += 2) pv_rows<RV, 2>(st, vbj + d0, ld, nb, ot + d0 * R);
    for (; d0 < dh; ++d0) pv_rows<RV, 1>(st, vbj + d0, ld, nb, ot + d0 * R);
  }
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  float inv[R];
  for (int v = 0; v < RV; ++v) _mm256_storeu_ps(inv + 8 * v, _mm256_div_ps(_mm256_set1_ps(hm), sm.l[v]));
  float* out = a.out + (b * T + i0) * c.D + h * dh;
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const __m256 vi = _mm256_loadu_ps(inv + r0);
    int64_t d = 0;
    if (r0 + 8 <= rows) {
      for (; d + 8 <= dh; d += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(_mm256_load_ps(ot + (d + i) * R + r0), vi);
        transpose8x8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + (r0 + i) * c.D + d, r[i]);
      }
    }
    for (; d < dh; ++d)
      for (int r = r0; r < rows && r < r0 + 8; ++r) out[r * c.D + d] = ot[d * R + r] * inv[r];
  }
}

// One query row with the head dimension along the lanes, for tails of at most kVecRowsMax rows past the last
// 16-row strip (T = 257: one row, which an 8-row strip would compute 8 times over); as avx512::row_vec.
constexpr int64_t kVecBlock = 1024;
constexpr int kVecRowsMax = 2;

void row_vec(const Ctx& c, int64_t b, int64_t h, int64_t i, float* s, float* w) {
  const AttentionArgs& a = c.a;
  const int64_t T = a.T, dh = a.dh, ld = c.ld, nv = (dh + 7) / 8;
  const float* kb = a.qkv + b * T * ld + c.D + h * dh;
  const float* vb = a.qkv + b * T * ld + 2 * c.D + h * dh;
  const float* qr = a.qkv + (b * T + i) * ld + h * dh;
  float* q = w;
  float* o = w + nv * 8;
  auto load = [&](const float* p, int64_t v) {  // lanes past dh read as zero
    return v * 8 + 8 <= dh ? _mm256_loadu_ps(p + v * 8) : _mm256_maskload_ps(p + v * 8, tail_mask(dh - v * 8));
  };
  for (int64_t v = 0; v < nv; ++v) {
    _mm256_store_ps(q + v * 8, _mm256_mul_ps(load(qr, v), _mm256_set1_ps(c.scale)));
    _mm256_store_ps(o + v * 8, _mm256_setzero_ps());
  }
  float m = -INFINITY, l = 0.f;
  for (int64_t j0 = 0; j0 < T; j0 += kVecBlock) {
    const int64_t nb = std::min(kVecBlock, T - j0);
    for (int64_t j = 0; j < nb; ++j) {
      const float* kr = kb + (j0 + j) * ld;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t v = 0; v < nv; ++v) acc = _mm256_fmadd_ps(_mm256_load_ps(q + v * 8), load(kr, v), acc);
      s[j] = hsum256(acc);
    }
    const float mx = std::max(m, row_max(s, nb));
    const float alpha = std::exp(m - mx);
    l = l * alpha + exp_row(s, nb, (nb + 7) / 8 * 8, mx);
    m = mx;
    if (alpha != 1.0f)
      for (int64_t v = 0; v < nv; ++v) _mm256_store_ps(o + v * 8, _mm256_mul_ps(_mm256_load_ps(o + v * 8), _mm256_set1_ps(alpha)));
    for (int64_t j = 0; j < nb; ++j) {
      const float* vr = vb + (j0 + j) * ld;
      const __m256 p = _mm256_set1_ps(s[j]);
      for (int64_t v = 0; v < nv; ++v) _mm256_store_ps(o + v * 8, _mm256_fmadd_ps(p, load(vr, v), _mm256_load_ps(o + v * 8)));
    }
  }
  const __m256 inv = _mm256_set1_ps((a.head_mask ? a.head_mask[h] : 1.0f) / l);
  float* dst = a.out + (b * T + i) * c.D + h * dh;
  for (int64_t v = 0; v < nv; ++v) {
    const __m256 r = _mm256_mul_ps(_mm256_load_ps(o + v * 8), inv);
    if (v * 8 + 8 <= dh)
      _mm256_storeu_ps(dst + v * 8, r);
    else
      _mm256_maskstore_ps(dst + v * 8, tail_mask(dh - v * 8), r);
  }
}

// Strips of 16 rows, the last one 8 when at most 8 rows remain, or row by row when at most kVecRowsMax remain.
void run_rows(const Ctx& c, int64_t nstrip, int64_t w0, int64_t w1) {
  const AttentionArgs& a = c.a;
  constexpr int R = 16;
  float* qt = t_q.get(static_cast<size_t>(R * a.dh));
  float* st = t_s.get(static_cast<size_t>(R * BKR));
  float* ot = t_o.get(static_cast<size_t>(R * a.dh));
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t bh = w / nstrip, i0 = (w % nstrip) * R, b = bh / a.H, h = bh % a.H;
    const int rows = static_cast<int>(std::min<int64_t>(R, a.T - i0));
    if (rows <= kVecRowsMax) {
      for (int r = 0; r < rows; ++r) row_vec(c, b, h, i0 + r, st, ot);
    } else if (rows > 8)
      strip_rows<2>(c, b, h, i0, rows, qt, st, ot);
    else
      strip_rows<1>(c, b, h, i0, rows, qt, st, ot);
  }
}

}  // namespace

void attention(const AttentionArgs& a) {
  Ctx c{a, a.H * a.dh, 3 * a.H * a.dh, (a.dh + NR - 1) / NR * NR, 0, 0, 1.0f / std::sqrt(static_cast<float>(a.dh))};
  c.npan = (a.T + NR - 1) / NR;
  c.tpad = c.npan * NR;
  if (!a.probs && !a.bias) {
    const int64_t nrow = (a.T + 15) / 16;
    global_pool().parallel_for_dynamic(a.B * a.H * nrow, 1, [&](int64_t w0, int64_t w1) { run_rows(c, nrow, w0, w1); });
    return;
  }
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
