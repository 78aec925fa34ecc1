// AVX2/FMA micro-kernel of the conv GEMM (compiled with -mavx2 -mfma, called only after the runtime CPU check).
#include <immintrin.h>

#include "kernels/kernels.hpp"

namespace vtx::kernels::avx2 {

using detail::kMR;
using detail::kNR;

static_assert(kMR == 6 && kNR == 16, "conv_micro is written for a 6x16 tile");

void conv_micro(int64_t K, const float* a, const float* b, float* c, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += kMR;
    b += kNR;
  }
  if (accumulate) {
    c00 = _mm256_add_ps(c00, _mm256_loadu_ps(c + 0));
    c01 = _mm256_add_ps(c01, _mm256_loadu_ps(c + 8));
    c10 = _mm256_add_ps(c10, _mm256_loadu_ps(c + 16));
    c11 = _mm256_add_ps(c11, _mm256_loadu_ps(c + 24));
    c20 = _mm256_add_ps(c20, _mm256_loadu_ps(c + 32));
    c21 = _mm256_add_ps(c21, _mm256_loadu_ps(c + 40));
    c30 = _mm256_add_ps(c30, _mm256_loadu_ps(c + 48));
    c31 = _mm256_add_ps(c31, _mm256_loadu_ps(c + 56));
    c40 = _mm256_add_ps(c40, _mm256_loadu_ps(c + 64));
    c41 = _mm256_add_ps(c41, _mm256_loadu_ps(c + 72));
    c50 = _mm256_add_ps(c50, _mm256_loadu_ps(c + 80));
    c51 = _mm256_add_ps(c51, _mm256_loadu_ps(c + 88));
  }
  _mm256_storeu_ps(c + 0, c00);
  _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + 16, c10);
  _mm256_storeu_ps(c + 24, c11);
  _mm256_storeu_ps(c + 32, c20);
  _mm256_storeu_ps(c + 40, c21);
  _mm256_storeu_ps(c + 48, c30);
  _mm256_storeu_ps(c + 56, c31);
  _mm256_storeu_ps(c + 64, c40);
  _mm256_storeu_ps(c + 72, c41);
  _mm256_storeu_ps(c + 80, c50);
  _mm256_storeu_ps(c + 88, c51);
}

}  // namespace vtx::kernels::avx2
