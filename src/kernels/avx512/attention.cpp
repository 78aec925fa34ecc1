// Fused multi-head attention, AVX-512 version of avx2/attention.cpp (same algorithm; see there).
// Strips of 8 query rows; K^T packed in 32-key panels ([T/32][dh][32]); V rows padded to dhp = dh rounded
// up to 32; 8x32 microkernels (16 zmm accumulators) for S = Q K^T and O += P V.
// Compiled with portable flags: AVX-512 functions carry target attributes, have internal linkage and are
// only reached after cpu_has_avx512(); no standard-library templates are instantiated inside them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "kernels/avx512/vmath.hpp"

#include <cmath>
#include <cstdint>
#include <new>

#include "core/threadpool.hpp"
#include "kernels/kernels.hpp"
#include "kernels/common/transpose8x8.hpp"
#include "kernels/common/scratch.hpp"

#define VTX_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))

namespace vtx::kernels::avx512 {

namespace {

constexpr int MR = 8, NR = 32, BK = 128;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

thread_local ThreadBuf<float> t_k, t_v, t_q, t_s, t_o;


VTX_AVX512_INLINE __mmask16 mask16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// S[8][32] (row stride lds) = a[k][8] . b[k][32].
VTX_AVX512_INLINE void qk_8x32(const float* a, const float* b, int64_t K, float* s, int64_t lds) {
  __m512 c[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[k * MR + r]);
      c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm512_store_ps(s + r * lds, c[r][0]);
    _mm512_store_ps(s + r * lds + 16, c[r][1]);
  }
}

// O[8][32] (row stride ldo) += P[8][n] (row stride ldp) . V[n][32] (row stride ldv).
VTX_AVX512_INLINE void pv_8x32(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, float* o,
                               int64_t ldo) {
  __m512 c[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    c[r][0] = _mm512_load_ps(o + r * ldo);
    c[r][1] = _mm512_load_ps(o + r * ldo + 16);
  }
  for (int64_t j = 0; j < n; ++j) {
    const __m512 b0 = _mm512_load_ps(v + j * ldv), b1 = _mm512_load_ps(v + j * ldv + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(p[r * ldp + j]);
      c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm512_store_ps(o + r * ldo, c[r][0]);
    _mm512_store_ps(o + r * ldo + 16, c[r][1]);
  }
}

// s[r][j] += bias rows (row stride T) for the valid rows of a strip, j < n.
VTX_AVX512_INLINE void add_bias(float* s, int64_t lds, const float* bias, int64_t T, int rows, int64_t n) {
  for (int r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    const float* br = bias + r * T;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 k = mask16(n - j);
      _mm512_mask_storeu_ps(sr + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, sr + j), _mm512_maskz_loadu_ps(k, br + j)));
    }
  }
}

VTX_AVX512_INLINE float row_max(const float* s, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(m, mask16(n - j), s + j));
  return _mm512_reduce_max_ps(m);
}

// s[j] = exp(s[j] - mx) for j < n, 0 for n <= j < npad (npad multiple of 16); returns the sum over j < n.
VTX_AVX512_INLINE float exp_row(float* s, int64_t n, int64_t npad, float mx) {
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < npad; j += 16) {
    const __mmask16 k = mask16(n - j);
    const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm)));
    _mm512_storeu_ps(s + j, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

struct Ctx {
  const AttentionArgs* a;
  int64_t D, ld, dhp, tpad, npan;
  float scale;
};


// K^T into 32-key panels (8x8 transposes, rows past T are zero), V rows copied into dhp-wide zero-padded rows.
VTX_AVX512 void pack_kv(const Ctx& c, int64_t b, int64_t h, float* kp, float* vp) {
  const AttentionArgs& a = *c.a;
  const int64_t T = a.T, dh = a.dh;
  const float* kb = a.qkv + b * T * c.ld + c.D + h * dh;
  for (int64_t p = 0; p < c.npan; ++p)
    for (int64_t jj0 = 0; jj0 < NR; jj0 += 8) {
      const int64_t j0 = p * NR + jj0;
      const int64_t valid = imin(8, T - j0);
      float* dst = kp + p * dh * NR + jj0;
      int64_t d = 0;
      if (valid > 0) {
        for (; d + 8 <= dh; d += 8) {
          __m256 r[8];
#pragma GCC unroll 8
          for (int i = 0; i < 8; ++i) r[i] = i < valid ? _mm256_loadu_ps(kb + (j0 + i) * c.ld + d) : _mm256_setzero_ps();
          transpose8x8(r);
#pragma GCC unroll 8
          for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (d + i) * NR, r[i]);
        }
      }
      for (; d < dh; ++d)
        for (int64_t i = 0; i < 8; ++i) dst[d * NR + i] = i < valid ? kb[(j0 + i) * c.ld + d] : 0.f;
    }
  const float* vb = a.qkv + b * T * c.ld + 2 * c.D + h * dh;
  for (int64_t j = 0; j < c.tpad; ++j) {
    float* dst = vp + j * c.dhp;
    if (j < T) {
      for (int64_t d = 0; d < c.dhp; d += 16) _mm512_storeu_ps(dst + d, _mm512_maskz_loadu_ps(mask16(dh - d), vb + j * c.ld + d));
    } else {
      for (int64_t d = 0; d < c.dhp; d += 16) _mm512_storeu_ps(dst + d, _mm512_setzero_ps());
    }
  }
}

// Q^T of one strip, pre-scaled: qp[d][MR].
VTX_AVX512 void pack_q(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, float* qp) {
  const AttentionArgs& a = *c.a;
  const float* qb = a.qkv + (b * a.T + i0) * c.ld + h * a.dh;
  int64_t d = 0;
  if (rows == MR) {
    const __m256 vs = _mm256_set1_ps(c.scale);
    for (; d + 8 <= a.dh; d += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(qb + i * c.ld + d);
      transpose8x8(r);
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(qp + (d + i) * MR, _mm256_mul_ps(r[i], vs));
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int64_t dd = d; dd < a.dh; ++dd) qp[dd * MR + r] = r < rows ? qb[r * c.ld + dd] * c.scale : 0.f;
}

VTX_AVX512 void strip_flash(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, const float* qp,
                            const float* kp, const float* vp, float* s, float* o) {
  const AttentionArgs& a = *c.a;
  const int64_t T = a.T, dh = a.dh, dhp = c.dhp;
  float m[MR], l[MR];
  for (int r = 0; r < MR; ++r) m[r] = -INFINITY, l[r] = 0.f;
  for (int64_t i = 0; i < MR * dhp; i += 16) _mm512_store_ps(o + i, _mm512_setzero_ps());
  for (int64_t j0 = 0; j0 < T; j0 += BK) {
    const int64_t nb = imin(BK, T - j0);
    const int64_t npb = (nb + NR - 1) / NR;
    for (int64_t p = 0; p < npb; ++p) qk_8x32(qp, kp + (j0 / NR + p) * dh * NR, dh, s + p * NR, BK);
    if (a.bias) add_bias(s, BK, a.bias + (h * T + i0) * T + j0, T, rows, nb);
    for (int r = 0; r < MR; ++r) {
      float* sr = s + r * BK;
      const float bm = row_max(sr, nb);
      const float mx = m[r] > bm ? m[r] : bm;
      const float alpha = std::exp(m[r] - mx);
      const float sum = exp_row(sr, nb, npb * NR, mx);
      l[r] = l[r] * alpha + sum;
      m[r] = mx;
      if (alpha != 1.0f) {
        const __m512 va = _mm512_set1_ps(alpha);
        for (int64_t d = 0; d < dhp; d += 16)
          _mm512_store_ps(o + r * dhp + d, _mm512_mul_ps(_mm512_load_ps(o + r * dhp + d), va));
      }
    }
    for (int64_t d0 = 0; d0 < dhp; d0 += NR) pv_8x32(s, BK, vp + j0 * dhp + d0, dhp, nb, o + d0, dhp);
  }
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  for (int r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(hm / l[r]);
    float* dst = a.out + (b * T + i0 + r) * c.D + h * dh;
    for (int64_t d = 0; d < dh; d += 16)
      _mm512_mask_storeu_ps(dst + d, mask16(dh - d), _mm512_mul_ps(_mm512_load_ps(o + r * dhp + d), inv));
  }
}

VTX_AVX512 void strip_probs(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, const float* qp,
                            const float* kp, const float* vp, float* s, float* o) {
  const AttentionArgs& a = *c.a;
  const int64_t T = a.T, dh = a.dh, dhp = c.dhp, lds = c.tpad;
  for (int64_t p = 0; p < c.npan; ++p) qk_8x32(qp, kp + p * dh * NR, dh, s + p * NR, lds);
  if (a.bias) add_bias(s, lds, a.bias + (h * T + i0) * T, T, rows, T);
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  for (int r = 0; r < MR; ++r) {
    float* sr = s + r * lds;
    const float sum = exp_row(sr, T, lds, row_max(sr, T));
    const __m512 vinv = _mm512_set1_ps(hm / sum);
    float* pr = r < rows ? a.probs + ((b * a.H + h) * T + i0 + r) * T : nullptr;
    for (int64_t j = 0; j < lds; j += 16) {
      const __m512 v = _mm512_mul_ps(_mm512_load_ps(sr + j), vinv);
      _mm512_store_ps(sr + j, v);
      if (pr) _mm512_mask_storeu_ps(pr + j, mask16(T - j), v);
    }
  }
  for (int64_t i = 0; i < MR * dhp; i += 16) _mm512_store_ps(o + i, _mm512_setzero_ps());
  for (int64_t d0 = 0; d0 < dhp; d0 += NR) pv_8x32(s, lds, vp + d0, dhp, T, o + d0, dhp);
  for (int r = 0; r < rows; ++r) {
    float* dst = a.out + (b * T + i0 + r) * c.D + h * dh;
    for (int64_t d = 0; d < dh; d += 16) _mm512_mask_storeu_ps(dst + d, mask16(dh - d), _mm512_load_ps(o + r * dhp + d));
  }
}

// ---- Row-lane kernel (no probabilities, no bias: the common case) ----------------------------------------
// Query rows run along the vector lanes: a strip is 16 * RV rows, and an S^T tile [key][row] holds each key's scores
// for all rows of the strip in RV vectors. The softmax (tile maximum, 2^x, row sum, rescaling) is then plain
// vertical vector operations in the tile's epilogue (no horizontal reductions, no scalar exp), and K and V are read
// in place from the QKV rows (one broadcast per element), so nothing is packed per head but the strip's Q^T. Tails
// of at most kVecRowsMax rows run row by row (row_vec).

constexpr int KC = 8;  // keys per S^T micro-tile, d values per O^T micro-tile
constexpr float kLog2e = 1.44269504088896341f;

// Running softmax state of a strip, lane-wise per row: reference exponent m (log2 units), row sum l.
template <int RV>
struct RowSoftmax {
  __m512 m[RV], l[RV];
};

// One S^T tile: the scores of KC keys (k_j = kr[j], rows already clamped by the caller) for the 16 RV rows of the
// strip, s[j][row] = sum_d k_j[d] q^T[d][row], with the softmax fused into the tile's epilogue: st gets
// P^T = 2^(s - m) directly and l the sum over the nvalid keys, so S^T is never re-read for a maximum or an exp
// pass. m is a reference, not the maximum: a tile whose maximum exceeds m by more than kSlack (and the first tile,
// m = -inf) moves m up to it, and rescales what was accumulated with the old m (l, O^T, and the P^T already stored
// in this block: st_block .. st).
constexpr float kSlack = 16.f;  // 2^16 headroom: l stays far from overflow
template <int RV>
VTX_AVX512_INLINE void qk_rows_exp(const float* qt, const float* const* kr, int64_t dh, float* st, int nvalid,
                                   RowSoftmax<RV>& sm, float* st_block, float* ot) {
  constexpr int R = 16 * RV;
  __m512 c[KC][RV];
#pragma GCC unroll 8
  for (int j = 0; j < KC; ++j)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) c[j][v] = _mm512_setzero_ps();
  for (int64_t d = 0; d < dh; ++d) {
    __m512 q[RV];
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) q[v] = _mm512_load_ps(qt + d * R + 16 * v);
#pragma GCC unroll 8
    for (int j = 0; j < KC; ++j) {
      const __m512 kv = _mm512_set1_ps(kr[j][d]);
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) c[j][v] = _mm512_fmadd_ps(kv, q[v], c[j][v]);
    }
  }
  __m512 tm[RV];
#pragma GCC unroll 2
  for (int v = 0; v < RV; ++v) tm[v] = c[0][v];
#pragma GCC unroll 8
  for (int j = 1; j < KC; ++j)
    if (j < nvalid)
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) tm[v] = _mm512_max_ps(tm[v], c[j][v]);
  __mmask16 up = 0;
#pragma GCC unroll 2
  for (int v = 0; v < RV; ++v) up |= _mm512_cmp_ps_mask(tm[v], _mm512_add_ps(sm.m[v], _mm512_set1_ps(kSlack)), _CMP_GT_OQ);
  if (up) [[unlikely]] {
    // New reference: the tile maximum where it is higher. alpha = 2^(m_old - m_new) (0 on the first tile).
    __m512 alpha[RV];
    for (int v = 0; v < RV; ++v) {
      const __m512 mn = _mm512_max_ps(sm.m[v], tm[v]);
      alpha[v] = exp2_512(_mm512_sub_ps(sm.m[v], mn));
      sm.m[v] = mn;
      sm.l[v] = _mm512_mul_ps(sm.l[v], alpha[v]);
    }
    for (int64_t i = 0; i < dh; ++i)
      for (int v = 0; v < RV; ++v)
        _mm512_store_ps(ot + i * R + 16 * v, _mm512_mul_ps(_mm512_load_ps(ot + i * R + 16 * v), alpha[v]));
    for (float* p = st_block; p < st; p += R)
      for (int v = 0; v < RV; ++v) _mm512_store_ps(p + 16 * v, _mm512_mul_ps(_mm512_load_ps(p + 16 * v), alpha[v]));
  }
#pragma GCC unroll 8
  for (int j = 0; j < KC; ++j)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) {
      const __m512 e = exp2_512(_mm512_sub_ps(c[j][v], sm.m[v]));
      _mm512_store_ps(st + (j * RV + v) * 16, e);
      if (j < nvalid) sm.l[v] = _mm512_add_ps(sm.l[v], e);
    }
}

// O^T[dc + i][16 RV] += sum_{j < n} v_j[dc + i] P^T[j][16 RV] for i < ND; v_j = vb + j * ld.
template <int RV, int ND>
VTX_AVX512_INLINE void pv_rows(const float* pt, const float* vb, int64_t ld, int64_t n, float* ot) {
  __m512 c[ND][RV];
#pragma GCC unroll 8
  for (int i = 0; i < ND; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) c[i][v] = _mm512_load_ps(ot + (i * RV + v) * 16);
  for (int64_t j = 0; j < n; ++j) {
    __m512 p[RV];
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) p[v] = _mm512_load_ps(pt + (j * RV + v) * 16);
    const float* vr = vb + j * ld;
#pragma GCC unroll 8
    for (int i = 0; i < ND; ++i) {
      const __m512 vv = _mm512_set1_ps(vr[i]);
#pragma GCC unroll 2
      for (int v = 0; v < RV; ++v) c[i][v] = _mm512_fmadd_ps(vv, p[v], c[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < ND; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < RV; ++v) _mm512_store_ps(ot + (i * RV + v) * 16, c[i][v]);
}

// Q^T of rows [i0, i0 + rows) of one head, pre-scaled: qt[d][16 RV], rows past `rows` zero.
template <int RV>
VTX_AVX512 void pack_qt(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, float* qt) {
  constexpr int R = 16 * RV;
  const AttentionArgs& a = *c.a;
  const float* qb = a.qkv + (b * a.T + i0) * c.ld + h * a.dh;
  const float scale = c.scale * kLog2e;  // scores in log2 units: the softmax below uses 2^x
  const __m256 vs = _mm256_set1_ps(scale);
  for (int r0 = 0; r0 < R; r0 += 8) {
    int64_t d = 0;
    if (r0 + 8 <= rows) {
      for (; d + 8 <= a.dh; d += 8) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(qb + (r0 + i) * c.ld + d);
        transpose8x8(r);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) _mm256_store_ps(qt + (d + i) * R + r0, _mm256_mul_ps(r[i], vs));
      }
    }
    for (; d < a.dh; ++d)
      for (int r = r0; r < r0 + 8; ++r) qt[d * R + r] = r < rows ? qb[r * c.ld + d] * scale : 0.f;
  }
}

template <int RV>
VTX_AVX512 void strip_rows(const Ctx& c, int64_t b, int64_t h, int64_t i0, int rows, float* qt, float* st,
                           float* ot) {
  constexpr int R = 16 * RV;
  const AttentionArgs& a = *c.a;
  const int64_t T = a.T, dh = a.dh, ld = c.ld;
  pack_qt<RV>(c, b, h, i0, rows, qt);
  const float* kb = a.qkv + b * T * ld + c.D + h * dh;
  const float* vb = a.qkv + b * T * ld + 2 * c.D + h * dh;
  RowSoftmax<RV> sm;
  for (int v = 0; v < RV; ++v) sm.m[v] = _mm512_set1_ps(-INFINITY), sm.l[v] = _mm512_setzero_ps();
  for (int64_t i = 0; i < dh * R; i += 16) _mm512_store_ps(ot + i, _mm512_setzero_ps());
  for (int64_t j0 = 0; j0 < T; j0 += BK) {
    const int64_t nb = imin(BK, T - j0);
    // P^T of the block; keys past T read the last key (finite) and are left out of l and of O^T.
    for (int64_t k0 = 0; k0 < nb; k0 += KC) {
      const float* kr[KC];
      for (int j = 0; j < KC; ++j) kr[j] = kb + (j0 + imin(k0 + j, nb - 1)) * ld;
      qk_rows_exp<RV>(qt, kr, dh, st + k0 * R, static_cast<int>(imin(KC, nb - k0)), sm, st, ot);
    }
    const float* vbj = vb + j0 * ld;
    int64_t d0 = 0;
    for (; d0 + KC <= dh; d0 += KC) pv_rows<RV, KC>(st, vbj + d0, ld, nb, ot + d0 * R);
    for (; d0 + 4 <= dh; d0 += 4) pv_rows<RV, 4>(st, vbj + d0, ld, nb, ot + d0 * R);
    for (; d0 < dh; ++d0) pv_rows<RV, 1>(st, vbj + d0, ld, nb, ot + d0 * R);
  }
  // out rows = O^T / l * head_mask, transposed back 8x8 at a time.
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  float inv[R];
  for (int v = 0; v < RV; ++v) _mm512_storeu_ps(inv + 16 * v, _mm512_div_ps(_mm512_set1_ps(hm), sm.l[v]));
  float* out = a.out + (b * T + i0) * c.D + h * dh;
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const __m256 vi = _mm256_loadu_ps(inv + r0);
    int64_t d = 0;
    if (r0 + 8 <= rows) {
      for (; d + 8 <= dh; d += 8) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(_mm256_load_ps(ot + (d + i) * R + r0), vi);
        transpose8x8(r);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + (r0 + i) * c.D + d, r[i]);
      }
    }
    for (; d < dh; ++d)
      for (int r = r0; r < rows && r < r0 + 8; ++r) out[r * c.D + d] = ot[d * R + r] * inv[r];
  }
}

// One query row with the head dimension along the lanes: the few rows past the last 32-row strip (T = 257: one
// row), which a 16-row strip would compute 16 times over. Online softmax over blocks of up to kVecBlock keys;
// s holds the block's scores, w the scaled q (nv vectors) and the output accumulator (nv vectors).
constexpr int64_t kVecBlock = 1024;
constexpr int kVecRowsMax = 4;  // tails of at most this many rows run row by row (about 1/6 of a strip's cost per row)

VTX_AVX512 void row_vec(const Ctx& c, int64_t b, int64_t h, int64_t i, float* s, float* w) {
  const AttentionArgs& a = *c.a;
  const int64_t T = a.T, dh = a.dh, ld = c.ld, nv = (dh + 15) / 16;
  const float* kb = a.qkv + b * T * ld + c.D + h * dh;
  const float* vb = a.qkv + b * T * ld + 2 * c.D + h * dh;
  const float* qr = a.qkv + (b * T + i) * ld + h * dh;
  float* q = w;
  float* o = w + nv * 16;
  const __m512 vs = _mm512_set1_ps(c.scale);
  for (int64_t v = 0; v < nv; ++v) {
    _mm512_store_ps(q + v * 16, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask16(dh - v * 16), qr + v * 16), vs));
    _mm512_store_ps(o + v * 16, _mm512_setzero_ps());
  }
  float m = -INFINITY, l = 0.f;
  for (int64_t j0 = 0; j0 < T; j0 += kVecBlock) {
    const int64_t nb = imin(kVecBlock, T - j0);
    for (int64_t j = 0; j < nb; ++j) {
      const float* kr = kb + (j0 + j) * ld;
      __m512 acc = _mm512_setzero_ps();
      for (int64_t v = 0; v < nv; ++v)
        acc = _mm512_fmadd_ps(_mm512_load_ps(q + v * 16), _mm512_maskz_loadu_ps(mask16(dh - v * 16), kr + v * 16), acc);
      s[j] = _mm512_reduce_add_ps(acc);
    }
    const float bm = row_max(s, nb);
    const float mx = m > bm ? m : bm;
    const float alpha = std::exp(m - mx);
    l = l * alpha + exp_row(s, nb, (nb + 15) / 16 * 16, mx);
    m = mx;
    if (alpha != 1.0f)
      for (int64_t v = 0; v < nv; ++v) _mm512_store_ps(o + v * 16, _mm512_mul_ps(_mm512_load_ps(o + v * 16), _mm512_set1_ps(alpha)));
    for (int64_t j = 0; j < nb; ++j) {
      const float* vr = vb + (j0 + j) * ld;
      const __m512 p = _mm512_set1_ps(s[j]);
      for (int64_t v = 0; v < nv; ++v)
        _mm512_store_ps(o + v * 16, _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(mask16(dh - v * 16), vr + v * 16),
                                                    _mm512_load_ps(o + v * 16)));
    }
  }
  const float hm = a.head_mask ? a.head_mask[h] : 1.0f;
  const __m512 inv = _mm512_set1_ps(hm / l);
  float* dst = a.out + (b * T + i) * c.D + h * dh;
  for (int64_t v = 0; v < nv; ++v) _mm512_mask_storeu_ps(dst + v * 16, mask16(dh - v * 16), _mm512_mul_ps(_mm512_load_ps(o + v * 16), inv));
}

// Strips of 32 rows, the last one 16 when at most 16 rows remain, or row by row when at most kVecRowsMax remain.
void run_rows(const Ctx& c, int64_t nstrip, int64_t w0, int64_t w1) {
  const AttentionArgs& a = *c.a;
  constexpr int R = 32;
  float* qt = t_q.get(static_cast<size_t>(R * a.dh));
  float* st = t_s.get(static_cast<size_t>(R * BK));
  float* ot = t_o.get(static_cast<size_t>(R * a.dh));
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t bh = w / nstrip, i0 = (w % nstrip) * R;
    const int rows = static_cast<int>(imin(R, a.T - i0));
    if (rows <= kVecRowsMax) {
      for (int r = 0; r < rows; ++r) row_vec(c, bh / a.H, bh % a.H, i0 + r, st, ot);
    } else if (rows > 16)
      strip_rows<2>(c, bh / a.H, bh % a.H, i0, rows, qt, st, ot);
    else
      strip_rows<1>(c, bh / a.H, bh % a.H, i0, rows, qt, st, ot);
  }
}

void run_items(const Ctx& c, int64_t nstrip, int64_t w0, int64_t w1) {
  const AttentionArgs& a = *c.a;
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
    const int rows = static_cast<int>(imin(MR, a.T - i0));
    pack_q(c, b, h, i0, rows, qp);
    if (a.probs)
      strip_probs(c, b, h, i0, rows, qp, kp, vp, s, o);
    else
      strip_flash(c, b, h, i0, rows, qp, kp, vp, s, o);
  }
}

}  // namespace

void attention(const AttentionArgs& a) {
  Ctx c{&a, a.H * a.dh, 3 * a.H * a.dh, (a.dh + NR - 1) / NR * NR, 0, 0, 1.0f / std::sqrt(static_cast<float>(a.dh))};
  c.npan = (a.T + NR - 1) / NR;
  c.tpad = c.npan * NR;
  if (!a.probs && !a.bias) {
    const int64_t nstrip = (a.T + 31) / 32;
    global_pool().parallel_for_dynamic(a.B * a.H * nstrip, 1, [&](int64_t w0, int64_t w1) { run_rows(c, nstrip, w0, w1); });
    return;
  }
  const int64_t nstrip = (a.T + MR - 1) / MR;
  global_pool().parallel_for(a.B * a.H * nstrip, [&](int64_t w0, int64_t w1) { run_items(c, nstrip, w0, w1); });
}

}  // namespace vtx::kernels::avx512
