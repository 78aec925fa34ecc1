// AVX2 int8 GEMM for QuantWeight Int8 (layout: qgemm.hpp) and the per-row activation quantization it shares with
// the AVX-512 VNNI kernel (avx512/int8_vnni.cpp). Only called after cpu_has_avx2_fma().
//
// A is quantized per row (per token) to int8 [-127, 127] with its scale; the 3x16 microkernel computes
// exact int32 dot products 4 k at a time:
//     vpmaddubsw(|w|, sign(a, w))  -> int16 pair sums,   vpmaddwd(., 1) -> int32,   vpaddd
// vpmaddubsw multiplies an unsigned by a signed byte and saturates the pair sum to int16. With the sign moved
// onto the activation (|w| * sign(a, w) == a * w, vpsignb), the unsigned operand is |w| <= 127 and the signed one
// |a| <= 127 (neither side ever holds -128), so every pair sum is bounded by 2 * 127 * 127 = 32258 < 32767:
// no saturation is possible and the result is the exact integer dot product (|acc| <= K * 127^2 fits int32 for
// K < 133000). Dequantization (s_a * s_w), bias, activation, layer scale and residual run in the epilogue.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"
#include "kernels/avx2/gemm_blocks.hpp"
#include "kernels/avx2/vmath.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::avx2 {

using namespace simd;
using namespace avx2_blocks;

namespace {

// Panels per column group (VTX_QGEMM_I8_NC).
int64_t i8_nc() {
  static const int64_t n = env_int("VTX_QGEMM_I8_NC", 8, 1, 1 << 20);
  return n;
}

thread_local ThreadBuf<float> t_ascale;
thread_local ThreadBuf<int8_t> t_aq;

// Per-row symmetric int8 quantization, identical to quantize_row_int8 (same scale, a * (1 / s), round half
// to even by vcvtps2dq under the default rounding mode, clamp to [-127, 127]); q is padded with zeros to Kp.
float quantize_row(const float* a, int64_t K, int64_t Kp, int8_t* q, uint8_t x) {
  __m256 vmax = _mm256_setzero_ps();
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(a + k), absmask));
  float amax = hmax256(vmax);
  for (; k < K; ++k) amax = std::max(amax, std::fabs(a[k]));
  if (!(amax > 0.f) || !std::isfinite(amax)) {
    std::memset(q, x, static_cast<size_t>(Kp));
    return amax > 0.f ? amax : 0.f;
  }
  const float s = amax / 127.f, inv = 1.f / s;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i lo = _mm256_set1_epi8(-127);
  k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k), vinv));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k + 8), vinv));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k + 16), vinv));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k + 24), vinv));
    __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    v = _mm256_max_epi8(_mm256_permutevar8x32_epi32(v, perm), lo);
    v = _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(x)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), v);
  }
  for (; k < K; ++k) {
    float v = std::nearbyint(a[k] * inv);
    q[k] = static_cast<int8_t>(static_cast<int8_t>(std::min(127.f, std::max(-127.f, v))) ^ x);
  }
  for (; k < Kp; ++k) q[k] = static_cast<int8_t>(x);
  return s;
}

constexpr int IMR = 3;  // 3 rows x 16 columns: 6 accumulators + w, |w| (2 each) + 1 + broadcast + temps <= 16 ymm

// IMR rows x 16 columns, all of K (K4 groups of 4). a[r]: row r of the quantized A; b: the panel.
__attribute__((always_inline)) inline void kernel_i8(const int8_t* const a[IMR], const int8_t* __restrict b, int64_t K4,
                                                     __m256i acc[IMR][2]) {
  const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
  for (int r = 0; r < IMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t q = 0; q < K4; ++q) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + q * 64));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + q * 64 + 32));
    const __m256i u0 = _mm256_abs_epi8(b0), u1 = _mm256_abs_epi8(b1);
#pragma GCC unroll 4
    for (int r = 0; r < IMR; ++r) {
      const __m256i av = _mm256_set1_epi32(*reinterpret_cast<const int32_t*>(a[r] + q * 4));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_sign_epi8(av, b0)), ones);
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_sign_epi8(av, b1)), ones);
      acc[r][0] = _mm256_add_epi32(acc[r][0], p0);
      acc[r][1] = _mm256_add_epi32(acc[r][1], p1);
    }
  }
}

void region_i8(const int8_t* qa, const float* sa, int64_t Kp, const QuantWeight& W, float* C, int64_t ldc,
               const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  const int64_t N = W.N(), K4 = Kp / 4;
  const int64_t ncg = i8_nc();
  const int8_t* wq = reinterpret_cast<const int8_t*>(W.data());
  for (int64_t p0 = pb; p0 < pe; p0 += ncg) {
    const int64_t p1 = std::min(pe, p0 + ncg);
    for (int64_t m0 = mb; m0 < me; m0 += IMR) {
      const int mvalid = static_cast<int>(std::min<int64_t>(IMR, me - m0));
      const int8_t* a[IMR];
      for (int r = 0; r < IMR; ++r) a[r] = qa + (m0 + std::min(r, mvalid - 1)) * Kp;
      for (int64_t p = p0; p < p1; ++p) {
        __m256i acc[IMR][2];
        kernel_i8(a, wq + p * K4 * NR * 4, K4, acc);
        const int64_t n0 = p * NR;
        const int nvalid = static_cast<int>(std::min<int64_t>(NR, N - n0));
        const __m256 ws0 = _mm256_load_ps(W.scales() + n0), ws1 = _mm256_load_ps(W.scales() + n0 + 8);
        for (int r = 0; r < mvalid; ++r) {
          const int64_t m = m0 + r;
          const __m256 s = _mm256_set1_ps(sa[m]);
          const __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][0]), _mm256_mul_ps(s, ws0));
          const __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][1]), _mm256_mul_ps(s, ws1));
          const float* res = ep.residual ? ep.residual + m * ep.ldr + n0 : nullptr;
          epilogue_row16(v0, v1, C + m * ldc + n0, res, n0, nvalid, ep);
        }
      }
    }
  }
}

}  // namespace

void quantize_rows_int8(const float* A, int64_t M, int64_t lda, int64_t K, int64_t Kp, int8_t* qa, float* sa,
                        uint8_t x, int64_t N) {
  auto quant = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) sa[m] = quantize_row(A + m * lda, K, Kp, qa + m * Kp, x);
  };
  ThreadPool& pool = global_pool();
  if (pool.size() == 1 || 2.0 * M * N * K < 2e5)  // small GEMM: the calling thread
    quant(0, M);
  else
    pool.parallel_for(M, quant);
}

void linear_q_int8(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                   const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K();
  if (M <= 0 || N <= 0) return;
  i8_nc();  // read the environment on the calling thread
  const int64_t Kp = (K + 3) / 4 * 4;
  int8_t* qa = t_aq.get(static_cast<size_t>(M * Kp));
  float* sa = t_ascale.get(static_cast<size_t>(M));
  quantize_rows_int8(A, M, lda, K, Kp, qa, sa, 0, N);
  run_split(M, N, K, (N + NR - 1) / NR, IMR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region_i8(qa, sa, Kp, W, C, ldc, ep, mb, me, pb, pe);
  });
}

}  // namespace vtx::kernels::avx2
