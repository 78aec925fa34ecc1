// AVX2/FMA GEMM for linear layers: C = epilogue(A * W^T) with W packed in panels of 16 output columns
// (layout 1: panel p holds W[16p .. 16p+15, k] for k = 0..K-1, 16 floats per k, zero padded past N).
//
// Blocking (per thread): rows in blocks of MC, columns in blocks of NC panels, K in blocks of KC.
//   A block (MC x KC) is packed into 6-row micro-panels ([kc][6]) and lives in L2;
//   one B micro-panel (KC x 16) lives in L1 and is swept over every 6-row tile of the A block;
//   the 6x16 microkernel keeps 12 ymm accumulators (2 loads + 6 broadcasts per 12 FMAs).
// With several K blocks, partial sums go to a per-thread tile buffer (C is only written once, with the
// full epilogue, so residual may alias C).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/threadpool.hpp"
#include "kernels/elementwise_avx2.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm_avx2_blocks.hpp"

namespace vtx::kernels::avx2 {

using namespace simd;
using namespace avx2_blocks;

namespace {

struct Tuning {
  int64_t kc = 384, mc = 192, nc_panels = 16;
  Tuning() {
    if (const char* e = std::getenv("VTX_GEMM_KC")) kc = std::max(16L, std::atol(e));
    if (const char* e = std::getenv("VTX_GEMM_MC")) mc = std::max<int64_t>(MR, std::atol(e) / MR * MR);
    if (const char* e = std::getenv("VTX_GEMM_NC")) nc_panels = std::max(1L, std::atol(e));
  }
};
const Tuning& tuning() {
  static Tuning t;
  return t;
}

thread_local ThreadBuf<float> t_apack, t_cbuf;

// One thread's region: rows [mb, me), panels [pb, pe).
void gemm_region(const float* A, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C, int64_t ldc,
                 const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  const Tuning& tu = tuning();
  const int64_t nkb = std::max<int64_t>(1, (K + tu.kc - 1) / tu.kc);
  const int64_t kcb = K == 0 ? 0 : (K + nkb - 1) / nkb;  // balanced K blocks
  const int64_t rows = me - mb;
  const int64_t nmb = std::max<int64_t>(1, (rows + tu.mc - 1) / tu.mc);
  const int64_t mcb = ((rows + nmb - 1) / nmb + MR - 1) / MR * MR;
  const int64_t npb = std::max<int64_t>(1, (pe - pb + tu.nc_panels - 1) / tu.nc_panels);
  const int64_t ncb = (pe - pb + npb - 1) / npb;

  float* ap = apack_buffer(t_apack, mcb, kcb);
  float* cbuf = nkb > 1 ? t_cbuf.get(static_cast<size_t>(mcb * ncb * NR)) : nullptr;

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
          const float* bp = Wp + (p * K + k0) * NR;
          TileOut o{C, ldc, &ep, 0, p * NR, 0, static_cast<int>(std::min<int64_t>(NR, N - p * NR))};
          for (int64_t t = 0; t < ntile; ++t) {
            o.m0 = m0 + t * MR;
            o.mvalid = static_cast<int>(std::min<int64_t>(MR, me - o.m0));
            float* buf = cbuf ? cbuf + ((p - p0) * ntile + t) * (MR * NR) : nullptr;
            kernel_6x16(ap + t * MR * kc, bp, kc, buf, kb > 0, final, o);
          }
        }
      }
    }
  }
}

}  // namespace

void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const int64_t npan = (N + NR - 1) / NR, mt = (M + MR - 1) / MR;
  ThreadPool& pool = global_pool();
  const int nt = pool.size();
  const double flops = 2.0 * M * N * K;
  if (nt == 1 || flops < 2e5) {
    gemm_region(A, lda, Wp, N, K, C, ldc, ep, 0, M, 0, npan);
    return;
  }
  // Small M (batch 1): split the output columns so every thread gets work and B is read once;
  // large M: split rows (each thread streams all of B from L3, reuses its A block from L2).
  const bool split_n = npan >= 2 * nt && (M < 64 * nt * 3 || mt < 4 * nt);
  pool.run_on_all([&](int tid, int n) {
    if (split_n) {
      const int64_t pb = npan * tid / n, pe = npan * (tid + 1) / n;
      if (pb < pe) gemm_region(A, lda, Wp, N, K, C, ldc, ep, 0, M, pb, pe);
    } else {
      const int64_t tb = mt * tid / n, te = mt * (tid + 1) / n;
      if (tb < te) gemm_region(A, lda, Wp, N, K, C, ldc, ep, tb * MR, std::min(M, te * MR), 0, npan);
    }
  });
}

void apply_act(float* y, int64_t n, Act act) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act256(_mm256_loadu_ps(y + i), act));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, act256(_mm256_maskload_ps(y + i, m), act));
  }
}

}  // namespace vtx::kernels::avx2
