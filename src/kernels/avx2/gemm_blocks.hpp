#pragma once
// Building blocks of the AVX2/FMA GEMMs (fp32 in avx2/gemm.cpp, weight-only half/int4 in avx2/qgemm.cpp, int8 epilogue in avx2/int8.cpp):
// per-thread scratch buffers, the fused epilogue on 16 columns, the 6x16 FMA micro-kernel and A packing.
// Include only from src/kernels/avx2/ files (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <new>

#include "kernels/avx2/vmath.hpp"
#include "kernels/gemm.hpp"
#include "kernels/common/gemm_split.hpp"
#include "kernels/common/scratch.hpp"

namespace vtx::kernels::avx2_blocks {

using namespace simd;

constexpr int MR = 6, NR = 16;


// Epilogue on up to 16 columns of one row: acc -> C (bias, act, scale, residual; in that order).
inline __m256 act256(__m256 v, Act act) {
  switch (act) {
    case Act::None: return v;
    case Act::Gelu: return gelu256(v);
    case Act::GeluTanh: return gelu_tanh256(v);
    case Act::Relu: return _mm256_max_ps(v, _mm256_setzero_ps());
    case Act::QuickGelu: return quick_gelu256(v);
  }
  return v;
}

inline void epilogue_row16(__m256 v0, __m256 v1, float* c, const float* res, int64_t n0, int nvalid,
                           const Epilogue& ep) {
  if (nvalid == NR) {
    if (ep.bias) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ep.bias + n0));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ep.bias + n0 + 8));
    }
    if (ep.act != Act::None) {
      v0 = act256(v0, ep.act);
      v1 = act256(v1, ep.act);
    }
    if (ep.scale) {
      v0 = _mm256_mul_ps(v0, _mm256_loadu_ps(ep.scale + n0));
      v1 = _mm256_mul_ps(v1, _mm256_loadu_ps(ep.scale + n0 + 8));
    }
    if (res) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + 8));
    }
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
    return;
  }
  const __m256i m0 = tail_mask(nvalid), m1 = tail_mask(nvalid - 8);
  if (ep.bias) {
    v0 = _mm256_add_ps(v0, _mm256_maskload_ps(ep.bias + n0, m0));
    v1 = _mm256_add_ps(v1, _mm256_maskload_ps(ep.bias + n0 + 8, m1));
  }
  if (ep.act != Act::None) {
    v0 = act256(v0, ep.act);
    v1 = act256(v1, ep.act);
  }
  if (ep.scale) {
    v0 = _mm256_mul_ps(v0, _mm256_maskload_ps(ep.scale + n0, m0));
    v1 = _mm256_mul_ps(v1, _mm256_maskload_ps(ep.scale + n0 + 8, m1));
  }
  if (res) {
    v0 = _mm256_add_ps(v0, _mm256_maskload_ps(res, m0));
    v1 = _mm256_add_ps(v1, _mm256_maskload_ps(res + 8, m1));
  }
  _mm256_maskstore_ps(c, m0, v0);
  _mm256_maskstore_ps(c + 8, m1, v1);
}

struct TileOut {
  float* C;
  int64_t ldc;
  const Epilogue* ep;
  int64_t m0, n0;  // global coordinates of the tile
  int mvalid, nvalid;
};

// 6x16 microkernel. a: packed [kc][6]; b: panel [kc][16]. buf: the tile's 96-float partial-sum slot.
// load_buf: add the partial sums from buf; final: run the epilogue into C, else store partial sums to buf.
// PF: also prefetch the next B block bn ([kc][16], same size) into L2, one 64-byte line per 4 k (one line of b).
template <bool PF = false>
__attribute__((always_inline)) inline void kernel_6x16(const float* __restrict a, const float* __restrict b,
                                                       int64_t kc, float* buf, bool load_buf, bool final,
                                                       const TileOut& o, const float* bn = nullptr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define VTX_STEP(i)                                              \
  {                                                             \
    const __m256 b0 = _mm256_load_ps(b + (i) * 16);             \
    const __m256 b1 = _mm256_load_ps(b + (i) * 16 + 8);         \
    __m256 av = _mm256_broadcast_ss(a + (i) * 6 + 0);           \
    c00 = _mm256_fmadd_ps(av, b0, c00);                         \
    c01 = _mm256_fmadd_ps(av, b1, c01);                         \
    av = _mm256_broadcast_ss(a + (i) * 6 + 1);                  \
    c10 = _mm256_fmadd_ps(av, b0, c10);                         \
    c11 = _mm256_fmadd_ps(av, b1, c11);                         \
    av = _mm256_broadcast_ss(a + (i) * 6 + 2);                  \
    c20 = _mm256_fmadd_ps(av, b0, c20);                         \
    c21 = _mm256_fmadd_ps(av, b1, c21);                         \
    av = _mm256_broadcast_ss(a + (i) * 6 + 3);                  \
    c30 = _mm256_fmadd_ps(av, b0, c30);                         \
    c31 = _mm256_fmadd_ps(av, b1, c31);                         \
    av = _mm256_broadcast_ss(a + (i) * 6 + 4);                  \
    c40 = _mm256_fmadd_ps(av, b0, c40);                         \
    c41 = _mm256_fmadd_ps(av, b1, c41);                         \
    av = _mm256_broadcast_ss(a + (i) * 6 + 5);                  \
    c50 = _mm256_fmadd_ps(av, b0, c50);                         \
    c51 = _mm256_fmadd_ps(av, b1, c51);                         \
  }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    if constexpr (PF) {
      _mm_prefetch(reinterpret_cast<const char*>(bn), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(bn + 16), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(bn + 32), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(bn + 48), _MM_HINT_T1);
      bn += 64;
    }
    VTX_STEP(0) VTX_STEP(1) VTX_STEP(2) VTX_STEP(3)
    a += 24;
    b += 64;
  }
  for (; k < kc; ++k) {
    VTX_STEP(0)
    a += 6;
    b += 16;
  }
#undef VTX_STEP
  if (load_buf) {
    c00 = _mm256_add_ps(c00, _mm256_load_ps(buf + 0));
    c01 = _mm256_add_ps(c01, _mm256_load_ps(buf + 8));
    c10 = _mm256_add_ps(c10, _mm256_load_ps(buf + 16));
    c11 = _mm256_add_ps(c11, _mm256_load_ps(buf + 24));
    c20 = _mm256_add_ps(c20, _mm256_load_ps(buf + 32));
    c21 = _mm256_add_ps(c21, _mm256_load_ps(buf + 40));
    c30 = _mm256_add_ps(c30, _mm256_load_ps(buf + 48));
    c31 = _mm256_add_ps(c31, _mm256_load_ps(buf + 56));
    c40 = _mm256_add_ps(c40, _mm256_load_ps(buf + 64));
    c41 = _mm256_add_ps(c41, _mm256_load_ps(buf + 72));
    c50 = _mm256_add_ps(c50, _mm256_load_ps(buf + 80));
    c51 = _mm256_add_ps(c51, _mm256_load_ps(buf + 88));
  }
  if (!final) {
    _mm256_store_ps(buf + 0, c00);
    _mm256_store_ps(buf + 8, c01);
    _mm256_store_ps(buf + 16, c10);
    _mm256_store_ps(buf + 24, c11);
    _mm256_store_ps(buf + 32, c20);
    _mm256_store_ps(buf + 40, c21);
    _mm256_store_ps(buf + 48, c30);
    _mm256_store_ps(buf + 56, c31);
    _mm256_store_ps(buf + 64, c40);
    _mm256_store_ps(buf + 72, c41);
    _mm256_store_ps(buf + 80, c50);
    _mm256_store_ps(buf + 88, c51);
    return;
  }
  const Epilogue& ep = *o.ep;
  const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < o.mvalid; ++r) {
    const int64_t m = o.m0 + r;
    const float* res = ep.residual ? ep.residual + m * ep.ldr + o.n0 : nullptr;
    epilogue_row16(rows[r][0], rows[r][1], o.C + m * o.ldc + o.n0, res, o.n0, o.nvalid, ep);
  }
}

// Packs rows [m0, m0+mc) x cols [k0, k0+kc) of A into 6-row micro-panels [tile][kc][6], zero-padding rows.
// pack_a's vector path stores 8 floats per k at stride 6: the destination needs this many floats of slack.
constexpr size_t kApackSlack = 8;
// Destination for pack_a of an mc x kc block, slack included.
static inline float* apack_buffer(ThreadBuf<float>& buf, int64_t mc, int64_t kc) {
  return buf.get(static_cast<size_t>(mc * std::max<int64_t>(kc, 1)) + kApackSlack);
}

inline void pack_a(const float* A, int64_t lda, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* ap) {
  for (int64_t t = 0; t < mc; t += MR) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - t));
    float* dst = ap + t * kc;
    const float* src[MR];
    for (int r = 0; r < MR; ++r) src[r] = A + (m0 + t + std::min(r, rows - 1)) * lda + k0;
    if (rows == MR) {
      // 8 k at a time: transpose 8 (6 real + 2 duplicate) rows x 8 k, store 8 floats per k with stride 6
      // (each store's 2 extra floats are overwritten by the next k / next tile; the buffer has 8 floats slack).
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src[i] + k);
        r[6] = r[5];
        r[7] = r[5];
        transpose8x8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (k + i) * 6, r[i]);
      }
      for (; k < kc; ++k) {
        dst[k * 6 + 0] = src[0][k];
        dst[k * 6 + 1] = src[1][k];
        dst[k * 6 + 2] = src[2][k];
        dst[k * 6 + 3] = src[3][k];
        dst[k * 6 + 4] = src[4][k];
        dst[k * 6 + 5] = src[5][k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * 6 + r] = r < rows ? src[r][k] : 0.f;
    }
  }
}

struct Blocking {
  int64_t kc, mc, nc_panels;
  bool prefetch_b = false;  // L2 prefetch of the next B block during the first row tile (needs BSource::next)
};

// One thread's share of C = epilogue(A * B): rows [mb, me), 16-column panels [pb, pe) of N columns, all of K.
// A is packed per (MC x KC) block into 6-row micro-panels (L2); each B block src.block(p, k0, kc) ([kc][16]
// f32 of panel p, valid until the next call) stays in L1 while the 6x16 microkernel sweeps every row tile.
// With tu.prefetch_b, src.next(p, k0) gives that block's address for an L2 prefetch ahead of use (or null).
// With several K blocks, partial sums go to the tile buffer cbufs (C is written once, with the full epilogue,
// so the residual may alias C).
template <class BSource>
void region(const float* A, int64_t lda, BSource& src, int64_t N, int64_t K, float* C, int64_t ldc,
            const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe, const Blocking& tu,
            ThreadBuf<float>& apack, ThreadBuf<float>& cbufs) {
  const int64_t nkb = std::max<int64_t>(1, (K + tu.kc - 1) / tu.kc);
  const int64_t kcb = K == 0 ? 0 : (K + nkb - 1) / nkb;  // balanced K blocks
  const int64_t rows = me - mb;
  const int64_t nmb = std::max<int64_t>(1, (rows + tu.mc - 1) / tu.mc);
  const int64_t mcb = ((rows + nmb - 1) / nmb + MR - 1) / MR * MR;
  const int64_t npb = std::max<int64_t>(1, (pe - pb + tu.nc_panels - 1) / tu.nc_panels);
  const int64_t ncb = (pe - pb + npb - 1) / npb;
  float* ap = apack_buffer(apack, mcb, kcb);
  float* cbuf = nkb > 1 ? cbufs.get(static_cast<size_t>(mcb * ncb * NR)) : nullptr;
  for (int64_t m0 = mb; m0 < me; m0 += mcb) {
    const int64_t mc = std::min(mcb, me - m0);
    const int64_t ntile = (mc + MR - 1) / MR;
    for (int64_t p0 = pb; p0 < pe; p0 += ncb) {
      const int64_t p1 = std::min(pe, p0 + ncb);
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t k0 = kb * kcb, kc = std::max<int64_t>(0, std::min(kcb, K - k0));
        const bool final = kb == nkb - 1;
        pack_a(A, lda, m0, mc, k0, kc, ap);
        for (int64_t p = p0; p < p1; ++p) {
          const float* bp = src.block(p, k0, kc);
          TileOut o{C, ldc, &ep, 0, p * NR, 0, static_cast<int>(std::min<int64_t>(NR, N - p * NR))};
          // The next B block this thread reads (next panel of the group, else the group's first panel in the next
          // K block, only a full-size one so that the prefetch stays inside the weight), fetched into L2 during the
          // first row tile: the weight is streamed from L3 / DRAM and the hardware prefetchers stop at each page.
          const float* bnext = nullptr;
          if (tu.prefetch_b) {
            if (p + 1 < p1)
              bnext = src.next(p + 1, k0);
            else if (kb + 1 < nkb && k0 + 2 * kc <= K)
              bnext = src.next(p0, k0 + kc);
          }
          for (int64_t t = 0; t < ntile; ++t) {
            o.m0 = m0 + t * MR;
            o.mvalid = static_cast<int>(std::min<int64_t>(MR, me - o.m0));
            float* buf = cbuf ? cbuf + ((p - p0) * ntile + t) * (MR * NR) : nullptr;
            if (t == 0 && bnext)
              kernel_6x16<true>(ap + t * MR * kc, bp, kc, buf, kb > 0, final, o, bnext);
            else
              kernel_6x16(ap + t * MR * kc, bp, kc, buf, kb > 0, final, o);
          }
        }
      }
    }
  }
}


}  // namespace vtx::kernels::avx2_blocks
