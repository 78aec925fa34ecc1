// AVX512-BF16 GEMM for Bf16Weight (layout: bf16gemm.hpp; one k-pair of a 32-column panel is two zmm).
// vdpbf16ps: per fp32 lane, acc += a[2j] * w[2j] + a[2j+1] * w[2j+1] (bf16 operands, products exact in fp32).
// A is converted to bf16 (vcvtneps2bf16, round to nearest even) while it is packed: per block of rows, all of K,
// as [tiles][K2p][8] 32-bit words (the k-pair of one row, broadcast by the kernel). The 8 x 32 tile keeps 16 zmm
// accumulators over the whole K (no K blocking: the A block and one B panel stay in L2), then runs the fp32
// epilogue of the AVX-512 GEMM (bias, activation, layer scale, residual).
//
// Compiled with the default flags: the AVX-512 functions carry target attributes and are only reached after
// cpu_has_avx512_bf16(); no standard-library code inside them (see avx512/gemm_blocks.hpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cstdint>

#include "core/cpu.hpp"
#include "kernels/avx512/gemm_blocks.hpp"
#include "kernels/kernels.hpp"

#define VTX_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define VTX_BF16_INLINE \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c"), always_inline)) inline

namespace vtx::kernels::avx512 {

namespace {

constexpr int64_t BNR = Bf16Weight::NR;  // 32 columns per panel
constexpr int BMR = 8;                   // rows per tile

thread_local ThreadBuf<uint32_t> t_abf;

// Bytes of packed A per row block (L2-resident next to one B panel); VTX_GEMM_BF16_A_KB overrides (KiB).
int64_t a_block_bytes() {
  static const int64_t b = env_int("VTX_GEMM_BF16_A_KB", 256, 4, 1 << 20) * 1024;
  return b;
}

// Panels per group (VTX_GEMM_BF16_NC, 0 = the default below): each row tile runs over a group of panels before the next
// tile, so a tile writes C rows of ncg * 32 contiguous columns (with whole panels per tile, the rows of a 32-column
// block hit the same cache sets when the row stride is a multiple of 4 KiB, e.g. N = 3072: -20 %), while the group's B
// panels stay in L2 next to the packed A block. Default: as many panels as fit in 384 KiB (K = 768: 8 panels, 256
// columns; K = 3072: 2).
int64_t panel_group(int64_t K2) {
  static const int64_t n = env_int("VTX_GEMM_BF16_NC", 0, 0, 1 << 20);
  return n > 0 ? n : imax(1, (int64_t{384} << 10) / imax(1, K2 * 2 * BNR * 2));
}

// Rows [m0, m0 + mc) of A, all of K, as bf16 k-pairs: ap[t][q][r] = (bf16 A[m0 + 8t + r][2q], ...[2q + 1]),
// zero past K and past the last row; K2p = K2 rounded up to 8 (the tile stride).
VTX_BF16 void pack_a_bf16(const float* A, int64_t lda, int64_t m0, int64_t mc, int64_t K, int64_t K2p, uint32_t* ap) {
  for (int64_t t = 0; t * BMR < mc; ++t) {
    const int rows = static_cast<int>(imin(BMR, mc - t * BMR));
    const float* src = A + (m0 + t * BMR) * lda;
    uint32_t* dst = ap + t * K2p * BMR;
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mk = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm256_castsi256_ps((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mk, src + i * lda + k)))
                        : _mm256_setzero_ps();
      transpose8x8(r);  // r[j]: k-pair k/2 + j of the 8 rows
      float* d = reinterpret_cast<float*>(dst + (k / 2) * BMR);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) _mm256_store_ps(d + 8 * j, r[j]);
    }
  }
}

// One 8 x 32 tile over all K2 k-pairs, then the epilogue on its valid rows / columns.
VTX_BF16_INLINE void tile_bf16(const uint32_t* __restrict a, const uint16_t* __restrict b, int64_t K2,
                               const TileOut& o) {
  __m512 c[BMR][2];
#pragma GCC unroll 8
  for (int r = 0; r < BMR; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t q = 0; q < K2; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b + q * 64);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + q * 64 + 32);
#pragma GCC unroll 8
    for (int r = 0; r < BMR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[q * BMR + r]));
      c[r][0] = _mm512_dpbf16_ps(c[r][0], av, b0);
      c[r][1] = _mm512_dpbf16_ps(c[r][1], av, b1);
    }
  }
  const Epilogue& ep = *o.ep;
#pragma GCC unroll 8
  for (int r = 0; r < BMR; ++r)
    if (r < o.mvalid) {
      const int64_t m = o.m0 + r;
      const float* res = ep.residual ? ep.residual + m * ep.ldr + o.n0 : nullptr;
      epilogue_row32(c[r][0], c[r][1], o.C + m * o.ldc + o.n0, res, o.n0, o.nvalid, ep);
    }
}

// One thread's share: rows [mb, me), panels [pb, pe). Per block of rows: pack A once, then per group of panels
// every tile x panel.
VTX_BF16 void region_bf16(const float* A, int64_t lda, const uint16_t* W, int64_t N, int64_t K, float* C, int64_t ldc,
                          const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe, uint32_t* ap, int64_t mcb,
                          int64_t ncg) {
  const int64_t K2 = (K + 1) / 2, K2p = (K2 + 7) / 8 * 8;
  for (int64_t m0 = mb; m0 < me; m0 += mcb) {
    const int64_t mc = imin(mcb, me - m0), ntile = (mc + BMR - 1) / BMR;
    pack_a_bf16(A, lda, m0, mc, K, K2p, ap);
    for (int64_t g0 = pb; g0 < pe; g0 += ncg) {
      const int64_t g1 = imin(pe, g0 + ncg);
      for (int64_t t = 0; t < ntile; ++t)
        for (int64_t p = g0; p < g1; ++p) {
          TileOut o{C, ldc, &ep, m0 + t * BMR, p * BNR, 0, static_cast<int>(imin(BNR, N - p * BNR))};
          o.mvalid = static_cast<int>(imin(BMR, me - o.m0));
          tile_bf16(ap + t * K2p * BMR, W + p * K2 * 2 * BNR, K2, o);
        }
    }
  }
}

}  // namespace

void linear_bf16_dp(const float* A, int64_t M, int64_t lda, const Bf16Weight& W, float* C, int64_t ldc,
                    const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K();
  if (M <= 0 || N <= 0) return;
  const int64_t K2p = ((K + 1) / 2 + 7) / 8 * 8;
  // Rows per block: a_block_bytes() of packed A, whole tiles, at least one.
  const int64_t mcb = imax(BMR, a_block_bytes() / imax(1, K2p * 4) / BMR * BMR);
  const uint16_t* w = W.data();
  const int64_t ncg = panel_group((K + 1) / 2);
  run_split(M, N, K, (N + BNR - 1) / BNR, BMR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    const int64_t rows = imin(mcb, (me - mb + BMR - 1) / BMR * BMR);
    uint32_t* ap = t_abf.get(static_cast<size_t>(rows * K2p));
    region_bf16(A, lda, w, N, K, C, ldc, ep, mb, me, pb, pe, ap, rows, ncg);
  });
}

}  // namespace vtx::kernels::avx512
