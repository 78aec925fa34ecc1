#pragma once
// Building blocks of the AVX-512 GEMMs (fp32 in avx512/gemm.cpp, weight-only f16/bf16/int4 in avx512/qgemm.cpp; the int8 VNNI kernel uses its epilogue):
// per-thread scratch, the fused epilogue on 32 columns, the 8x32 FMA microkernel, A packing, the blocked
// region loop (templated on where the [kc][32] f32 B blocks come from) and the thread split.
// Include only from files compiled with the default (portable) flags: every AVX-512 function carries a target
// attribute and is only reached after cpu_has_avx512(). Everything here has internal linkage (anonymous
// namespace: each including file gets its own copy), and no standard-library templates are instantiated
// inside AVX-512 functions, so no AVX-512 code can leak into shared (weak) symbols.
#include <immintrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"
#include "kernels/gemm.hpp"
#include "kernels/common/gemm_split.hpp"
#include "kernels/common/scratch.hpp"
#include "kernels/common/transpose8x8.hpp"
#include "kernels/avx512/vmath.hpp"

#define VTX_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))

namespace vtx::kernels::avx512 {

namespace {

constexpr int NR = 32;
constexpr int MR = 8;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

thread_local ThreadBuf<float> t_apack, t_cbuf;

// Cache blocking of region(): K blocks of <= kc, row blocks of <= mc, groups of nc_panels 32-column panels.
struct Blocking {
  int64_t kc = 256, mc = 96, nc_panels = 32;
  bool prefetch_b = true;  // L2 prefetch of the next B block during the first tile of each panel
  // Overrides from the environment: <prefix>_KC, <prefix>_MC (rounded down to a multiple of MR), <prefix>_NC,
  // <prefix>_PFB (0/1).
  // Malformed values throw vtx::Error naming the variable (core/cpu.hpp env_int).
  void read_env(const char* prefix) {
    char name[64];
    auto var = [&](const char* what) {
      std::snprintf(name, sizeof name, "%s_%s", prefix, what);
      return name;
    };
    prefetch_b = env_int(var("PFB"), prefetch_b ? 1 : 0, 0, 1) != 0;
    kc = env_int(var("KC"), kc, 16, 1 << 20);
    mc = imax(MR, env_int(var("MC"), mc, 1, 1 << 24) / MR * MR);
    nc_panels = env_int(var("NC"), nc_panels, 1, 1 << 20);
  }
};

// ---- 512-bit math (same algorithms as avx2/vmath.hpp) ----

VTX_AVX512_INLINE __m512 erf512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
  __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
  __m512 r = _mm512_div_ps(_mm512_mul_ps(x, p), q);
  return _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-1.0f)), _mm512_set1_ps(1.0f));
}

VTX_AVX512_INLINE __m512 xsigmoid512(__m512 x, __m512 ax) {
  __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), ax));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

VTX_AVX512_INLINE __m512 act512(__m512 v, Act act) {
  switch (act) {
    case Act::None: return v;
    case Act::Gelu: {
      __m512 e = erf512(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)));
      return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    }
    case Act::GeluTanh: {
      __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
      __m512 y2 = _mm512_mul_ps(_mm512_set1_ps(2.0f * 0.7978845608028654f),
                                _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, v));
      return xsigmoid512(v, y2);
    }
    case Act::Relu: return _mm512_max_ps(v, _mm512_setzero_ps());
    case Act::QuickGelu: return xsigmoid512(v, _mm512_mul_ps(_mm512_set1_ps(1.702f), v));
  }
  return v;
}

VTX_AVX512_INLINE void epilogue_row32(__m512 v0, __m512 v1, float* c, const float* res, int64_t n0, int nvalid,
                                      const Epilogue& ep) {
  const __mmask16 m0 = nvalid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nvalid) - 1);
  const __mmask16 m1 = nvalid >= 32 ? __mmask16(0xFFFF) : nvalid <= 16 ? __mmask16(0) : __mmask16((1u << (nvalid - 16)) - 1);
  if (ep.bias) {
    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ep.bias + n0));
    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ep.bias + n0 + 16));
  }
  if (ep.act != Act::None) {
    v0 = act512(v0, ep.act);
    if (m1) v1 = act512(v1, ep.act);
  }
  if (ep.scale) {
    v0 = _mm512_mul_ps(v0, _mm512_maskz_loadu_ps(m0, ep.scale + n0));
    v1 = _mm512_mul_ps(v1, _mm512_maskz_loadu_ps(m1, ep.scale + n0 + 16));
  }
  if (res) {
    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res));
    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, res + 16));
  }
  _mm512_mask_storeu_ps(c, m0, v0);
  _mm512_mask_storeu_ps(c + 16, m1, v1);
}

struct TileOut {
  float* C;
  int64_t ldc;
  const Epilogue* ep;
  int64_t m0, n0;
  int mvalid, nvalid;
};

// MR x 32 microkernel. a: packed [kc][MR]; b: panel [kc][32]; buf: the tile's partial-sum slot.
// PF: also prefetch the next panel block bn ([kc][32], same size) into L2, one line per line of b read.
template <bool PF>
VTX_AVX512_INLINE void kernel(const float* __restrict a, const float* __restrict b, int64_t kc, float* buf,
                              bool load_buf, bool final, const TileOut& o, const float* bn = nullptr) {
  __m512 c[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 2 <= kc; k += 2) {
    if constexpr (PF) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) _mm_prefetch(reinterpret_cast<const char*>(bn + i * 16), _MM_HINT_T1);
      bn += 64;
    }
#pragma GCC unroll 2
    for (int u = 0; u < 2; ++u) {
      const __m512 b0 = _mm512_load_ps(b + u * 32), b1 = _mm512_load_ps(b + u * 32 + 16);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512 av = _mm512_set1_ps(a[u * MR + r]);
        c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
        c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
      }
    }
    a += 2 * MR;
    b += 64;
  }
  for (; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
    }
    a += MR;
    b += 32;
  }
  if (load_buf) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c[r][0] = _mm512_add_ps(c[r][0], _mm512_load_ps(buf + r * 32));
      c[r][1] = _mm512_add_ps(c[r][1], _mm512_load_ps(buf + r * 32 + 16));
    }
  }
  if (!final) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      _mm512_store_ps(buf + r * 32, c[r][0]);
      _mm512_store_ps(buf + r * 32 + 16, c[r][1]);
    }
    return;
  }
  const Epilogue& ep = *o.ep;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r < o.mvalid) {
      const int64_t m = o.m0 + r;
      const float* res = ep.residual ? ep.residual + m * ep.ldr + o.n0 : nullptr;
      epilogue_row32(c[r][0], c[r][1], o.C + m * o.ldc + o.n0, res, o.n0, o.nvalid, ep);
    }
  }
}

VTX_AVX512 void pack_a(const float* A, int64_t lda, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* ap) {
  for (int64_t t = 0; t < mc; t += MR) {
    const int rows = static_cast<int>(imin(MR, mc - t));
    float* dst = ap + t * kc;
    const float* src = A + (m0 + t) * lda + k0;
    int64_t k = 0;
    if (rows == MR) {
      for (; k + 8 <= kc; k += 8) {  // 8x8 transposes
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lda + k);
        transpose8x8(r);
        float* d = dst + k * MR;
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) _mm256_store_ps(d + 8 * i, r[i]);
      }
    }
    for (int r = 0; r < MR; ++r)
      for (int64_t kk = k; kk < kc; ++kk) dst[kk * MR + r] = r < rows ? src[r * lda + kk] : 0.f;
  }
}

// One thread's share of C = epilogue(A * B): rows [mb, me), 32-column panels [pb, pe) of N columns, all of K.
// B comes from src (a struct with VTX_AVX512_INLINE members):
//   src.block(p, k0, kc, pn, kn) -> [kc][32] f32 of panel p, k in [k0, k0 + kc) (64-byte aligned; valid until
//                                   the next call); (pn, kn): the next block this thread reads (pn < 0: none)
//   src.next(pn, kn)             -> that block as [kc][32] f32 for the microkernel's L2 prefetch, or null
template <class BSource>
VTX_AVX512 void region(const float* A, int64_t lda, BSource& src, int64_t N, int64_t K, float* C, int64_t ldc,
                       const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe, const Blocking& tu) {
  const int64_t nkb = imax(1, (K + tu.kc - 1) / tu.kc);
  const int64_t kcb = K == 0 ? 0 : (K + nkb - 1) / nkb;
  const int64_t rows = me - mb;
  const int64_t nmb = imax(1, (rows + tu.mc - 1) / tu.mc);
  const int64_t mcb = ((rows + nmb - 1) / nmb + MR - 1) / MR * MR;
  const int64_t npb = imax(1, (pe - pb + tu.nc_panels - 1) / tu.nc_panels);
  const int64_t ncb = (pe - pb + npb - 1) / npb;
  float* ap = t_apack.get(static_cast<size_t>(mcb * imax(kcb, 1)));
  float* cbuf = nkb > 1 ? t_cbuf.get(static_cast<size_t>(mcb * ncb * NR)) : nullptr;
  for (int64_t m0 = mb; m0 < me; m0 += mcb) {
    const int64_t mc = imin(mcb, me - m0);
    const int64_t ntile = (mc + MR - 1) / MR;
    for (int64_t p0 = pb; p0 < pe; p0 += ncb) {
      const int64_t p1 = imin(pe, p0 + ncb);
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t k0 = kb * kcb, kc = imax(0, imin(kcb, K - k0));
        const bool final = kb == nkb - 1;
        pack_a(A, lda, m0, mc, k0, kc, ap);
        for (int64_t p = p0; p < p1; ++p) {
          // Next B block this thread reads: the next panel of the group, else the group's first panel in the
          // next K block (only a full-size one, so a prefetch of it stays inside the weight). In a forward pass
          // the weights are cold (streamed from DRAM once per pass) and the hardware prefetchers stop at every
          // 4 KiB page, so the sources fetch it into L2 ahead of use.
          int64_t pn = -1, kn = 0;
          if (p + 1 < p1) {
            pn = p + 1;
            kn = k0;
          } else if (kb + 1 < nkb && k0 + 2 * kc <= K) {
            pn = p0;
            kn = k0 + kc;
          }
          const float* bp = src.block(p, k0, kc, pn, kn);
          TileOut o{C, ldc, &ep, 0, p * NR, 0, static_cast<int>(imin(NR, N - p * NR))};
          const float* bnext = src.next(pn, kn);
          for (int64_t t = 0; t < ntile; ++t) {
            o.m0 = m0 + t * MR;
            o.mvalid = static_cast<int>(imin(MR, me - o.m0));
            float* buf = cbuf ? cbuf + ((p - p0) * ntile + t) * (MR * NR) : nullptr;
            if (t == 0 && bnext && tu.prefetch_b)
              kernel<true>(ap + t * MR * kc, bp, kc, buf, kb > 0, final, o, bnext);
            else
              kernel<false>(ap + t * MR * kc, bp, kc, buf, kb > 0, final, o);
          }
        }
      }
    }
  }
}


}  // namespace

}  // namespace vtx::kernels::avx512
