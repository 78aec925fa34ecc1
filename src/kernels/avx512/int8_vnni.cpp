// AVX-512 VNNI int8 GEMM for QuantWeight Int8 (layout: qgemm.hpp; one k-quad of one 16-column panel is one zmm).
// vpdpbusd: 64 u8 x s8 products summed 4 at a time into 16 int32, no intermediate saturation. Activations are
// quantized per row exactly as on AVX2 (avx2::quantize_rows_int8) and stored as u8 = q + 128; the kernel subtracts
// 128 * sum_k w[n, k] (QuantWeight::comp) so the integer result is the same exact dot product as the AVX2 and
// portable kernels (and the scalar reference). The epilogue is the fp32 AVX-512 GEMM's (same operations per
// element as the AVX2 one: the three int8 paths agree bit for bit).
//
// Compiled with the default flags: the AVX-512 functions carry target attributes and are only reached after
// cpu_has_avx512_vnni(); no standard-library code inside them (see avx512/gemm_blocks.hpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cstdint>

#include "core/cpu.hpp"
#include "kernels/avx512/gemm_blocks.hpp"
#include "kernels/kernels.hpp"

#define VTX_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

namespace vtx::kernels::avx512 {

namespace {

constexpr int64_t QNR = QuantWeight::NR;  // 16 columns per panel; the kernel takes two panels at a time
constexpr int VMR = 8;                    // 8 rows x 2 panels (32 columns): 16 zmm accumulators

// Panels per column group (VTX_QGEMM_I8_NC, as the AVX2 kernel; rounded down to an even count, at least 2).
int64_t i8_nc() {
  static const int64_t n = env_int("VTX_QGEMM_I8_NC", 8, 1, 1 << 20);
  return n;
}

thread_local ThreadBuf<float> t_ascale;
thread_local ThreadBuf<int8_t> t_aq;

// The packed weight as plain pointers (no standard-library calls inside the AVX-512 functions).
struct I8Weight {
  const int8_t* data;   // [np][K4][16][4]
  const float* scale;   // [np * 16]
  const int32_t* comp;  // [np * 16]
  int64_t N;
};

template <bool TWO>
VTX_VNNI void kernel_vnni(const int8_t* const a[VMR], const int8_t* __restrict b0, const int8_t* __restrict b1,
                          int64_t K4, int32_t* out /* [VMR][32] */) {
  __m512i c0[VMR], c1[VMR];
#pragma GCC unroll 8
  for (int r = 0; r < VMR; ++r) c0[r] = c1[r] = _mm512_setzero_si512();
  for (int64_t q = 0; q < K4; ++q) {
    const __m512i w0 = _mm512_load_si512(b0 + q * 64);
    const __m512i w1 = TWO ? _mm512_load_si512(b1 + q * 64) : w0;
#pragma GCC unroll 8
    for (int r = 0; r < VMR; ++r) {
      const __m512i av = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(a[r] + q * 4));
      c0[r] = _mm512_dpbusd_epi32(c0[r], av, w0);
      if (TWO) c1[r] = _mm512_dpbusd_epi32(c1[r], av, w1);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < VMR; ++r) {
    _mm512_store_si512(out + r * 32, c0[r]);
    if (TWO) _mm512_store_si512(out + r * 32 + 16, c1[r]);
  }
}

VTX_VNNI void region_vnni(const int8_t* qa, const float* sa, int64_t Kp, const I8Weight& w, float* C, int64_t ldc,
                          const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe, int64_t ncg) {
  const int64_t N = w.N, K4 = Kp / 4;
  alignas(64) int32_t out[VMR * 32];
  for (int64_t p0 = pb; p0 < pe; p0 += ncg) {
    const int64_t p1 = imin(pe, p0 + ncg);
    for (int64_t m0 = mb; m0 < me; m0 += VMR) {
      const int mvalid = static_cast<int>(imin(VMR, me - m0));
      const int8_t* a[VMR];
      for (int r = 0; r < VMR; ++r) a[r] = qa + (m0 + (r < mvalid - 1 ? r : mvalid - 1)) * Kp;
      for (int64_t p = p0; p < p1; p += 2) {
        const bool two = p + 1 < p1;
        const int8_t* b0 = w.data + p * K4 * QNR * 4;
        if (two)
          kernel_vnni<true>(a, b0, b0 + K4 * QNR * 4, K4, out);
        else
          kernel_vnni<false>(a, b0, b0, K4, out);
        const int64_t n0 = p * QNR;
        const int nvalid = static_cast<int>(imin(two ? 2 * QNR : QNR, N - n0));
        const __m512 ws0 = _mm512_load_ps(w.scale + n0);
        const __m512 ws1 = two ? _mm512_load_ps(w.scale + n0 + QNR) : _mm512_setzero_ps();
        const __m512i cp0 = _mm512_load_si512(w.comp + n0);
        const __m512i cp1 = two ? _mm512_load_si512(w.comp + n0 + QNR) : _mm512_setzero_si512();
        for (int r = 0; r < mvalid; ++r) {
          const int64_t m = m0 + r;
          const __m512 s = _mm512_set1_ps(sa[m]);
          const __m512i i0 = _mm512_sub_epi32(_mm512_load_si512(out + r * 32), cp0);
          const __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(s, ws0));
          __m512 v1 = _mm512_setzero_ps();
          if (two) {
            const __m512i i1 = _mm512_sub_epi32(_mm512_load_si512(out + r * 32 + 16), cp1);
            v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(s, ws1));
          }
          const float* res = ep.residual ? ep.residual + m * ep.ldr + n0 : nullptr;
          epilogue_row32(v0, v1, C + m * ldc + n0, res, n0, nvalid, ep);
        }
      }
    }
  }
}

}  // namespace

void linear_q_int8_vnni(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                        const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K();
  if (M <= 0 || N <= 0) return;
  const int64_t ncg = imax(2, i8_nc() / 2 * 2);
  const int64_t Kp = (K + 3) / 4 * 4;
  int8_t* qa = t_aq.get(static_cast<size_t>(M * Kp));
  float* sa = t_ascale.get(static_cast<size_t>(M));
  avx2::quantize_rows_int8(A, M, lda, K, Kp, qa, sa, 0x80, N);
  const I8Weight w{reinterpret_cast<const int8_t*>(W.data()), W.scales(), W.comp(), N};
  run_split(M, N, K, (N + QNR - 1) / QNR, VMR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region_vnni(qa, sa, Kp, w, C, ldc, ep, mb, me, pb, pe, ncg);
  });
}

}  // namespace vtx::kernels::avx512
