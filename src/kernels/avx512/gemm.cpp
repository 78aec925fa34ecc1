// AVX-512 GEMM for linear layers (layout 2: W packed in panels of 32 output columns, [N/32][K][32]).
// Same blocking scheme as avx2/gemm.cpp with a MR x 32 register-blocked microkernel (2*MR zmm accumulators);
// the microkernel, A packing, the region loop and the thread split live in gemm_avx512_blocks.hpp (shared with
// the weight-only kernels of avx512/qgemm.cpp).
// This file is compiled with the default (portable) flags: every function that uses AVX-512 carries a target
// attribute and is only reached after cpu_has_avx512(). Everything here has internal linkage except
// the entry point, and no standard-library templates are instantiated inside AVX-512 functions, so no
// AVX-512 code can leak into shared (weak) symbols.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cstdint>

#include "kernels/avx512/gemm_blocks.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::avx512 {

namespace {

const Blocking& tuning() {
  static const Blocking t = [] {
    Blocking b;
    b.read_env("VTX_GEMM512");
    return b;
  }();
  return t;
}

// B blocks straight from the packed weight; the next block is prefetched into L2 by the microkernel during
// the first row tile.
struct PackedSource {
  const float* Wp;
  int64_t K;
  VTX_AVX512_INLINE const float* block(int64_t p, int64_t k0, int64_t, int64_t, int64_t) const {
    return Wp + (p * K + k0) * NR;
  }
  VTX_AVX512_INLINE const float* next(int64_t pn, int64_t kn) const {
    return pn >= 0 ? Wp + (pn * K + kn) * NR : nullptr;
  }
};

VTX_AVX512 void gemm_region(const float* A, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                            int64_t ldc, const Epilogue& ep, int64_t mb, int64_t me, int64_t pb, int64_t pe) {
  PackedSource src{Wp, K};
  region(A, lda, src, N, K, C, ldc, ep, mb, me, pb, pe, tuning());
}

}  // namespace

void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  tuning();  // read the environment on the calling thread (a bad value throws here, not in a worker)
  run_split(M, N, K, (N + NR - 1) / NR, MR, [&](int64_t mb, int64_t me, int64_t pb, int64_t pe) {
    gemm_region(A, lda, Wp, N, K, C, ldc, ep, mb, me, pb, pe);
  }, tuning().mc);  // rows split dynamically in blocks of mc (gemm_split.hpp)
}

}  // namespace vtx::kernels::avx512
