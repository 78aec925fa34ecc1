// AVX2/FMA f32 GEMM for linear layers: C = epilogue(A * W^T) with W packed in panels of 16 output columns
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
  int64_t kc = 384, mc = 192, nc_panels = 16;
  Tuning() {
    kc = env_int("VTX_GEMM_KC", kc, 16, 1 << 20);
    mc = std::max<int64_t>(MR, env_int("VTX_GEMM_MC", mc, 1, 1 << 24) / MR * MR);
    nc_panels = env_int("VTX_GEMM_NC", nc_panels, 1, 1 << 20);
  }
};
const Tuning& tuning() {
  static Tuning t;
  return t;
}

thread_local ThreadBuf<float> t_apack, t_cbuf;

struct PackedSource {
  const float* Wp;
  int64_t K;
  const float* block(int64_t p, int64_t k0, int64_t) const { return Wp + (p * K + k0) * NR; }
};

}  // namespace

void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const Tuning& tu = tuning();
  PackedSource src{Wp, K};
  run_split(M, N, K, (N + NR - 1) / NR, MR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    region(A, lda, src, N, K, C, ldc, ep, mb, me, pb, pe, Blocking{tu.kc, tu.mc, tu.nc_panels}, t_apack, t_cbuf);
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
