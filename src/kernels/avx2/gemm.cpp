// AVX2/FMA f32 GEMM for linear layers: C = epilogue(A * W^T) with W packed in panels of 16 output columns
// (layout 1: panel p holds W[16p .. 16p+15, k] for k = 0..K-1, 16 floats per k, zero padded past N).
//
// Blocking (per thread): rows in blocks of MC, columns in blocks of NC panels, K in blocks of KC (defaults from the
// cache sizes, see initial_blocking()).
//   A block (MC x KC) is packed into 6-row micro-panels ([kc][6]) and lives in L2;
//   one B micro-panel (KC x 16) lives in L1 and is swept over every 6-row tile of the A block;
//   the 6x16 microkernel keeps 12 ymm accumulators (2 loads + 6 broadcasts per 12 FMAs).
// With several K blocks, partial sums go to a per-thread tile buffer (C is only written once, with the
// full epilogue, so residual may alias C).
#include <immintrin.h>

#include <unistd.h>

#include <algorithm>
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

// Default blocking from the data caches: one [kc][16] B micro-panel fills half of L1d (kc = L1d / 128: 384 with
// 48 KiB, 256 with 32 KiB; the other half holds the A micro-panel stream and C), the mc x kc A block at most half
// of L2; the next B block is prefetched into L2 during the first row tile of each block (measured +2 points of
// the AVX2 peak, median over the model shapes, bench/KERNELS.md). VTX_GEMM_KC / _MC / _NC / _PFB override.
GemmBlocking initial_blocking() {
  long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l1 <= 0) l1 = 48 * 1024;  // unknown: the previous fixed choice (kc 384, mc 192)
  if (l2 <= 0) l2 = 1024 * 1024;
  GemmBlocking b;
  b.kc = std::clamp<int64_t>(l1 / 128 / 16 * 16, 128, 512);
  b.mc = std::clamp<int64_t>(l2 / 2 / (b.kc * 4) / MR * MR, 8 * MR, 32 * MR);
  b.nc_panels = 16;
  b.prefetch_b = true;
  b.kc = env_int("VTX_GEMM_KC", b.kc, 16, 1 << 20);
  b.mc = std::max<int64_t>(MR, env_int("VTX_GEMM_MC", b.mc, 1, 1 << 24) / MR * MR);
  b.nc_panels = env_int("VTX_GEMM_NC", b.nc_panels, 1, 1 << 20);
  b.prefetch_b = env_int("VTX_GEMM_PFB", b.prefetch_b ? 1 : 0, 0, 1) != 0;
  return b;
}
GemmBlocking& blocking() {
  static GemmBlocking b = initial_blocking();
  return b;
}

thread_local ThreadBuf<float> t_apack, t_cbuf;

struct PackedSource {
  const float* Wp;
  int64_t K;
  const float* block(int64_t p, int64_t k0, int64_t) const { return Wp + (p * K + k0) * NR; }
  const float* next(int64_t p, int64_t k0) const { return Wp + (p * K + k0) * NR; }
};

}  // namespace

void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const GemmBlocking tu = blocking();
  PackedSource src{Wp, K};
  run_split(M, N, K, (N + NR - 1) / NR, MR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region(A, lda, src, N, K, C, ldc, ep, mb, me, pb, pe, Blocking{tu.kc, tu.mc, tu.nc_panels, tu.prefetch_b}, t_apack,
           t_cbuf);
  }, tu.mc);  // rows split dynamically in blocks of mc (gemm_split.hpp)
}

GemmBlocking gemm_blocking() { return blocking(); }

void set_gemm_blocking(const GemmBlocking& b) {
  GemmBlocking& g = blocking();
  g.kc = std::max<int64_t>(16, b.kc);
  g.mc = std::max<int64_t>(MR, b.mc / MR * MR);
  g.nc_panels = std::max<int64_t>(1, b.nc_panels);
  g.prefetch_b = b.prefetch_b;
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
