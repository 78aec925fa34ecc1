// AVX2/FMA weight-only kernels for QuantWeight (F16, BF16, Int4; layout: qgemm.hpp). Only called after
// cpu_has_avx2_fma(). The int8 kernel is int8.cpp (and avx512/int8_vnni.cpp).
//
// The fp32 GEMM structure of avx2/gemm.cpp (A packed in 6-row micro-panels,
// 6x16 FMA microkernel, K blocks with partial sums in a per-thread tile buffer). The weight is never expanded
// as a whole: for each (16-column panel, K block) the block is converted to f32 into a 16 KB L1 buffer
// (vcvtph2ps / bf16 << 16 / int4 nibbles -> (q - 8) * s + z with one FMA) and swept over every row tile of the
// A block, so the conversion is amortised over up to 192 rows.
//
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
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

struct Tuning {
  int64_t kc = 256, mc = 192, nc_panels = 16;
  Tuning() {
    kc = env_int("VTX_QGEMM_KC", kc, 16, 1 << 20);
    mc = std::max<int64_t>(MR, env_int("VTX_QGEMM_MC", mc, 1, 1 << 24) / MR * MR);
    nc_panels = env_int("VTX_QGEMM_NC", nc_panels, 1, 1 << 20);
  }
};
const Tuning& tuning() {
  static Tuning t;
  return t;
}

thread_local ThreadBuf<float> t_apack, t_cbuf, t_bbuf;

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
  const float* next(int64_t, int64_t) const { return nullptr; }
};

void region_wo(const float* A, int64_t lda, const QuantWeight& W, float* C, int64_t ldc, const Epilogue& ep,
               int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  const Tuning& tu = tuning();
  const int64_t kcb_max = std::min<int64_t>(std::max<int64_t>(W.K(), 1), tu.kc);
  DequantSource src{W, t_bbuf.get(static_cast<size_t>(kcb_max * NR))};
  region(A, lda, src, W.N(), W.K(), C, ldc, ep, mb, me, pb, pe, Blocking{tu.kc, tu.mc, tu.nc_panels}, t_apack,
         t_cbuf);
}

}  // namespace

void linear_q_wo(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                 const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K();
  if (M <= 0 || N <= 0) return;
  tuning();  // read the environment on the calling thread
  run_split(M, N, K, (N + NR - 1) / NR, MR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region_wo(A, lda, W, C, ldc, ep, mb, me, pb, pe);
  });
}

}  // namespace vtx::kernels::avx2
