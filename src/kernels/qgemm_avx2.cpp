// AVX2/FMA kernels for QuantWeight (layout: qgemm.hpp). Only called after cpu_has_avx2_fma().
//
// Weight-only (F16, BF16, Int4): the fp32 GEMM structure of gemm_avx2.cpp (A packed in 6-row micro-panels,
// 6x16 FMA microkernel, K blocks with partial sums in a per-thread tile buffer). The weight is never expanded
// as a whole: for each (16-column panel, K block) the block is converted to f32 into a 16 KB L1 buffer
// (vcvtph2ps / bf16 << 16 / int4 nibbles -> (q - 8) * s + z with one FMA) and swept over every row tile of the
// A block, so the conversion is amortised over up to 192 rows.
//
// Int8: A is quantized per row (per token) to int8 [-127, 127] with its scale; the 4x16 microkernel computes
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
#include <cstdlib>
#include <cstring>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"
#include "kernels/elementwise_avx2.hpp"
#include "kernels/gemm_avx2_blocks.hpp"
#include "kernels/qgemm.hpp"

namespace vtx::kernels::qavx2 {

using namespace simd;
using namespace avx2_blocks;

namespace {

struct Tuning {
  int64_t kc = 256, mc = 192, nc_panels = 16, i8_nc = 8;
  Tuning() {
    if (const char* e = std::getenv("VTX_QGEMM_KC")) kc = std::max(16L, std::atol(e));
    if (const char* e = std::getenv("VTX_QGEMM_MC")) mc = std::max<int64_t>(MR, std::atol(e) / MR * MR);
    if (const char* e = std::getenv("VTX_QGEMM_NC")) nc_panels = std::max(1L, std::atol(e));
    if (const char* e = std::getenv("VTX_QGEMM_I8_NC")) i8_nc = std::max(1L, std::atol(e));
  }
};
const Tuning& tuning() {
  static Tuning t;
  return t;
}

thread_local ThreadBuf<float> t_apack, t_cbuf, t_bbuf, t_ascale;
thread_local ThreadBuf<int8_t> t_aq;

// Panel p, k in [k0, k0+kc) -> out[kc][16] f32.
void dequant_block(const QuantWeight& W, int64_t p, int64_t k0, int64_t kc, float* out) {
  const int64_t K = W.K();
  switch (W.type()) {
    case WType::F16: {
      const uint16_t* d = reinterpret_cast<const uint16_t*>(W.data()) + (p * K + k0) * NR;
      for (int64_t i = 0; i < kc * NR; i += 8)
        _mm256_store_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i))));
      break;
    }
    case WType::BF16: {
      const uint16_t* d = reinterpret_cast<const uint16_t*>(W.data()) + (p * K + k0) * NR;
      for (int64_t i = 0; i < kc * NR; i += 8) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i)));
        _mm256_store_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
      }
      break;
    }
    case WType::Int4: {
      const int64_t gs = W.group(), G = (K + gs - 1) / gs;
      const __m128i lo4 = _mm_set1_epi8(0x0f);
      const __m256 eight = _mm256_set1_ps(8.f);
      int64_t k = k0;
      while (k < k0 + kc) {
        const int64_t g = k / gs, kend = std::min(k0 + kc, (g + 1) * gs);
        const float* sp = W.scales() + (p * G + g) * NR;
        const float* zp = W.zeros() + (p * G + g) * NR;
        const __m256 s0 = _mm256_loadu_ps(sp), s1 = _mm256_loadu_ps(sp + 8);
        const __m256 z0 = _mm256_loadu_ps(zp), z1 = _mm256_loadu_ps(zp + 8);
        for (; k < kend; ++k) {
          int64_t bits;
          std::memcpy(&bits, W.data() + (p * K + k) * (NR / 2), 8);
          const __m128i x = _mm_cvtsi64_si128(bits);
          const __m128i lo = _mm_and_si128(x, lo4), hi = _mm_and_si128(_mm_srli_epi16(x, 4), lo4);
          const __m128i v = _mm_unpacklo_epi8(lo, hi);  // 16 nibbles in column order
          const __m256 f0 = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), eight);
          const __m256 f1 = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8))), eight);
          float* o = out + (k - k0) * NR;
          _mm256_store_ps(o, _mm256_fmadd_ps(f0, s0, z0));
          _mm256_store_ps(o + 8, _mm256_fmadd_ps(f1, s1, z1));
        }
      }
      break;
    }
    default: break;
  }
}

// Weight-only B blocks: each (panel, K block) converted to f32 into an L1 buffer, reused over every row tile.
struct DequantSource {
  const QuantWeight& W;
  float* out;
  const float* block(int64_t p, int64_t k0, int64_t kc) const {
    dequant_block(W, p, k0, kc, out);
    return out;
  }
};

void region_wo(const float* A, int64_t lda, const QuantWeight& W, float* C, int64_t ldc, const Epilogue& ep,
               int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  const Tuning& tu = tuning();
  const int64_t kcb_max = std::min<int64_t>(std::max<int64_t>(W.K(), 1), tu.kc);
  DequantSource src{W, t_bbuf.get(static_cast<size_t>(kcb_max * NR))};
  region(A, lda, src, W.N(), W.K(), C, ldc, ep, mb, me, pb, pe, Blocking{tu.kc, tu.mc, tu.nc_panels}, t_apack,
         t_cbuf);
}

// ---------------------------------------------------------------------------------------------------------
// Int8 path

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
  const int64_t ncg = tuning().i8_nc;
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


// ---------------------------------------------------------------------------------------------------------
// Int8 with AVX-512 VNNI (vpdpbusd: 64 u8 x s8 products summed 4 at a time into 16 int32, no intermediate
// saturation). Activations are stored as u8 = q + 128; the kernel subtracts 128 * sum_k w[n, k] (comp) so the
// integer result is the same exact dot product as the AVX2 kernel (and the scalar reference). Functions carry
// target attributes and are only reached after vnni_available(); no standard-library code inside them.
#define VTX_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

constexpr int VMR = 8;  // 8 rows x 2 panels (32 columns): 16 zmm accumulators

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

void region_vnni(const int8_t* qa, const float* sa, int64_t Kp, const QuantWeight& W, float* C, int64_t ldc,
                 const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  const int64_t N = W.N(), K4 = Kp / 4;
  const int64_t ncg = std::max<int64_t>(2, tuning().i8_nc / 2 * 2);
  const int8_t* wq = reinterpret_cast<const int8_t*>(W.data());
  alignas(64) int32_t out[VMR * 32];
  for (int64_t p0 = pb; p0 < pe; p0 += ncg) {
    const int64_t p1 = std::min(pe, p0 + ncg);
    for (int64_t m0 = mb; m0 < me; m0 += VMR) {
      const int mvalid = static_cast<int>(std::min<int64_t>(VMR, me - m0));
      const int8_t* a[VMR];
      for (int r = 0; r < VMR; ++r) a[r] = qa + (m0 + std::min(r, mvalid - 1)) * Kp;
      for (int64_t p = p0; p < p1; p += 2) {
        const bool two = p + 1 < p1;
        const int8_t* b0 = wq + p * K4 * NR * 4;
        if (two) kernel_vnni<true>(a, b0, b0 + K4 * NR * 4, K4, out);
        else kernel_vnni<false>(a, b0, b0, K4, out);
        for (int h = 0; h < (two ? 2 : 1); ++h) {
          const int64_t n0 = (p + h) * NR;
          const int nvalid = static_cast<int>(std::min<int64_t>(NR, N - n0));
          const __m256 ws0 = _mm256_load_ps(W.scales() + n0), ws1 = _mm256_load_ps(W.scales() + n0 + 8);
          const __m256i cp0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(W.comp() + n0));
          const __m256i cp1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(W.comp() + n0 + 8));
          for (int r = 0; r < mvalid; ++r) {
            const int64_t m = m0 + r;
            const __m256i i0 = _mm256_sub_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(out + r * 32 + h * 16)), cp0);
            const __m256i i1 = _mm256_sub_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(out + r * 32 + h * 16 + 8)), cp1);
            const __m256 s = _mm256_set1_ps(sa[m]);
            const __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(s, ws0));
            const __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(s, ws1));
            const float* res = ep.residual ? ep.residual + m * ep.ldr + n0 : nullptr;
            epilogue_row16(v0, v1, C + m * ldc + n0, res, n0, nvalid, ep);
          }
        }
      }
    }
  }
}

bool vnni_available() {
  static const bool ok = [] {
    const char* e = std::getenv("VTX_DISABLE_VNNI");
    if (e && *e && std::strcmp(e, "0") != 0) return false;
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  }();
  return ok;
}

}  // namespace

bool int8_vnni() { return vnni_available(); }

void linear_q_impl(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                   const Epilogue& ep, bool vnni);

void linear_q(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
              const Epilogue& ep) {
  linear_q_impl(A, M, lda, W, C, ldc, ep, vnni_available());
}

void linear_q_impl(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                   const Epilogue& ep, bool vnni) {
  const int64_t N = W.N(), K = W.K();
  if (M <= 0 || N <= 0) return;
  const int64_t npan = (N + NR - 1) / NR;
  ThreadPool& pool = global_pool();
  const int nt = pool.size();
  const bool small = nt == 1 || 2.0 * M * N * K < 2e5;
  if (W.type() == WType::Int8) {
    const int64_t Kp = (K + 3) / 4 * 4;
    int8_t* qa = t_aq.get(static_cast<size_t>(M * Kp));
    float* sa = t_ascale.get(static_cast<size_t>(M));
    const uint8_t x = vnni ? 0x80 : 0;
    auto quant = [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) sa[m] = quantize_row(A + m * lda, K, Kp, qa + m * Kp, x);
    };
    auto region = vnni ? region_vnni : region_i8;
    const int mr = vnni ? VMR : IMR;
    if (small)
      quant(0, M);
    else
      pool.parallel_for(M, quant);
    run_split(M, N, K, npan, mr, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
      region(qa, sa, Kp, W, C, ldc, ep, mb, me, pb, pe);
    });
    return;
  }
  run_split(M, N, K, npan, MR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region_wo(A, lda, W, C, ldc, ep, mb, me, pb, pe);
  });
}

}  // namespace vtx::kernels::qavx2
