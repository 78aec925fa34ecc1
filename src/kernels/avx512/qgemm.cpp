// AVX-512 kernels for the weight-only QuantWeight types (F16, BF16, Int4; layout: qgemm.hpp). Only called after
// cpu_has_avx512(). Int8 has its own AVX-512 VNNI kernel, int8_vnni.cpp.
//
// The fp32 AVX-512 GEMM of avx512/gemm.cpp (8x32 microkernel, A packed in 8-row micro-panels, K blocks with
// partial sums in a per-thread tile buffer, same thread split), with the B operand produced on the fly: for each
// (32-column tile = two adjacent 16-column QuantWeight panels, K block) the block is converted to f32 into an L1
// buffer [kc][32] and swept over every row tile of the A block, so the conversion is amortised over up to
// `mc` rows. Conversions (all exact w.r.t. the stored weight, and the same formulas as the AVX2 / portable paths):
//   f16:  vcvtph2ps zmm;   bf16: zero-extend to 32 bits, << 16;
//   int4: nibble -> float(q - 8) (vpermps from a 16-entry table), then one FMA: (q - 8) * s + z.
// A tile whose second panel lies past N (odd panel count) reads it with zero masks: zero weights, and the
// epilogue stores only the valid columns.
//
// This file is compiled with the default (portable) flags; see gemm_avx512_blocks.hpp for the rules.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cstdint>

#include "kernels/avx512/gemm_blocks.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::avx512 {

namespace {

constexpr int64_t QNR = QuantWeight::NR;  // 16 columns per QuantWeight panel, two per 32-column tile

// Blocking of the fp32 kernel except mc: the conversion is amortised over up to 24 row tiles.
// Overrides: VTX_QGEMM512_KC / _MC / _NC.
const Blocking& qtuning() {
  static const Blocking t = [] {
    Blocking b;
    b.mc = 192;
    b.read_env("VTX_QGEMM512");
    return b;
  }();
  return t;
}

thread_local ThreadBuf<float> t_bbuf;

// The packed weight as plain pointers (no standard-library calls inside the AVX-512 functions).
struct WoWeight {
  const uint8_t* data;
  const float* scale;  // int4: [np][G][16]
  const float* zero;
  int64_t K, group, G, np;  // np: 16-column panels
};

// B blocks converted from the packed weight into buf ([kc][32], reused for every block).
template <WType T>
struct WoSource {
  WoWeight w;
  float* buf;

  // Also prefetches the source of the next block (pn, kn) into L2, one line per line converted (the next
  // tile's panels; the current ones again when there is no next block).
  VTX_AVX512_INLINE const float* block(int64_t p, int64_t k0, int64_t kc, int64_t pn, int64_t kn) const {
    const int64_t q0 = 2 * p;  // first 16-column panel of the tile
    const bool two = q0 + 1 < w.np;
    const __mmask16 m1 = two ? __mmask16(0xFFFF) : __mmask16(0);
    const int64_t qn = pn >= 0 ? 2 * pn : q0, kp = pn >= 0 ? kn : k0;
    const int64_t qn1 = qn + 1 < w.np ? qn + 1 : qn;
    float* out = buf;
    if constexpr (T == WType::F16 || T == WType::BF16) {
      const uint16_t* d0 = reinterpret_cast<const uint16_t*>(w.data) + (q0 * w.K + k0) * QNR;
      const uint16_t* d1 = two ? d0 + w.K * QNR : d0;
      const char* n0 = reinterpret_cast<const char*>(w.data) + (qn * w.K + kp) * QNR * 2;
      const char* n1 = reinterpret_cast<const char*>(w.data) + (qn1 * w.K + kp) * QNR * 2;
      for (int64_t k = 0; k < kc; ++k, out += NR) {
        if ((k & 1) == 0) {  // 2 rows of 16 halves = one line per panel
          _mm_prefetch(n0 + k * QNR * 2, _MM_HINT_T1);
          _mm_prefetch(n1 + k * QNR * 2, _MM_HINT_T1);
        }
        const __m256i h0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d0 + k * QNR));
        const __m256i h1 = _mm256_maskz_loadu_epi16(m1, d1 + k * QNR);
        if constexpr (T == WType::F16) {
          _mm512_store_ps(out, _mm512_cvtph_ps(h0));
          _mm512_store_ps(out + 16, _mm512_cvtph_ps(h1));
        } else {
          _mm512_store_ps(out, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h0), 16)));
          _mm512_store_ps(out + 16, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h1), 16)));
        }
      }
    } else {
      static_assert(T == WType::Int4);
      const __mmask16 mb1 = two ? __mmask16(0x00FF) : __mmask16(0);
      const uint8_t* d0 = w.data + q0 * w.K * (QNR / 2);
      const uint8_t* d1 = two ? d0 + w.K * (QNR / 2) : d0;
      const char* n0 = reinterpret_cast<const char*>(w.data) + (qn * w.K + kp - k0) * (QNR / 2);
      const char* n1 = reinterpret_cast<const char*>(w.data) + (qn1 * w.K + kp - k0) * (QNR / 2);
      const __m512 qtab = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
      const __m128i lo4 = _mm_set1_epi8(0x0f);
      int64_t k = k0;
      const int64_t kend_all = k0 + kc;
      while (k < kend_all) {
        const int64_t g = k / w.group, kend = imin(kend_all, (g + 1) * w.group);
        const float* sp0 = w.scale + (q0 * w.G + g) * QNR;
        const float* zp0 = w.zero + (q0 * w.G + g) * QNR;
        const float* sp1 = two ? sp0 + w.G * QNR : sp0;
        const float* zp1 = two ? zp0 + w.G * QNR : zp0;
        const __m512 s0 = _mm512_loadu_ps(sp0), z0 = _mm512_loadu_ps(zp0);
        const __m512 s1 = _mm512_maskz_loadu_ps(m1, sp1), z1 = _mm512_maskz_loadu_ps(m1, zp1);
        for (; k < kend; ++k, out += NR) {
          if (((k - k0) & 7) == 0) {  // 8 rows of 8 bytes = one line per panel
            _mm_prefetch(n0 + k * (QNR / 2), _MM_HINT_T1);
            _mm_prefetch(n1 + k * (QNR / 2), _MM_HINT_T1);
          }
          // 8 bytes of panel q0, 8 of panel q0 + 1: byte j holds column 2j (low nibble) and 2j + 1 (high).
          const __m128i x = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d0 + k * (QNR / 2))),
                                               _mm_maskz_loadu_epi8(mb1, d1 + k * (QNR / 2)));
          const __m128i lo = _mm_and_si128(x, lo4), hi = _mm_and_si128(_mm_srli_epi16(x, 4), lo4);
          const __m512 f0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), qtab);
          const __m512 f1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi)), qtab);
          _mm512_store_ps(out, _mm512_fmadd_ps(f0, s0, z0));
          _mm512_store_ps(out + 16, _mm512_fmadd_ps(f1, s1, z1));
        }
      }
    }
    return buf;
  }
  VTX_AVX512_INLINE const float* next(int64_t, int64_t) const { return nullptr; }
};

template <WType T>
VTX_AVX512 void region_wo(const float* A, int64_t lda, const WoWeight& w, int64_t N, float* C, int64_t ldc,
                          const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  const Blocking& tu = qtuning();
  WoSource<T> src{w, t_bbuf.get(static_cast<size_t>(imax(tu.kc, 1) * NR))};
  region(A, lda, src, N, w.K, C, ldc, ep, mb, me, pb, pe, tu);
}

template <WType T>
void run(const float* A, int64_t M, int64_t lda, const WoWeight& w, int64_t N, float* C, int64_t ldc,
         const Epilogue& ep) {
  run_split(M, N, w.K, (N + NR - 1) / NR, MR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region_wo<T>(A, lda, w, N, C, ldc, ep, mb, me, pb, pe);
  });
}

}  // namespace

// Weight-only types only (F16, BF16, Int4); the caller checks cpu_has_avx512().
void linear_q_wo(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                 const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K();
  if (M <= 0 || N <= 0) return;
  qtuning();  // read the environment on the calling thread
  const WoWeight w{W.data(), W.scales(), W.zeros(), K, W.group(), (K + W.group() - 1) / W.group(),
                   (N + QNR - 1) / QNR};
  switch (W.type()) {
    case WType::F16: return run<WType::F16>(A, M, lda, w, N, C, ldc, ep);
    case WType::BF16: return run<WType::BF16>(A, M, lda, w, N, C, ldc, ep);
    case WType::Int4: return run<WType::Int4>(A, M, lda, w, N, C, ldc, ep);
    default: break;
  }
}

}  // namespace vtx::kernels::avx512
