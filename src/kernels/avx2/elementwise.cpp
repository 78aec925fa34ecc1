// AVX2 LayerNorm / softmax rows.
#include <immintrin.h>

#include <cmath>

#include "kernels/avx2/vmath.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::avx2 {

using namespace simd;

void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
                     const float* beta, float eps, float* y, int64_t ldy) {
  const int64_t Dv = D / 8 * 8;
  const __m256i tm = tail_mask(D - Dv);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= Dv; i += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(xr + i + 8));
    }
    if (i < Dv) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + i));
    if (Dv < D) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(xr + Dv, tm));
    const float mean = hsum256(_mm256_add_ps(s0, s1)) / static_cast<float>(D);
    const __m256 vm = _mm256_set1_ps(mean);
    __m256 v0 = _mm256_setzero_ps(), v1 = v0;
    for (i = 0; i + 16 <= Dv; i += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(xr + i + 8), vm);
      v0 = _mm256_fmadd_ps(d0, d0, v0);
      v1 = _mm256_fmadd_ps(d1, d1, v1);
    }
    if (i < Dv) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vm);
      v0 = _mm256_fmadd_ps(d0, d0, v0);
    }
    if (Dv < D) {
      const __m256 d1 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + Dv, tm), vm), _mm256_castsi256_ps(tm));
      v1 = _mm256_fmadd_ps(d1, d1, v1);
    }
    const float var = hsum256(_mm256_add_ps(v0, v1)) / static_cast<float>(D);
    const __m256 rs = _mm256_set1_ps(1.0f / std::sqrt(var + eps));
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (i = 0; i < Dv; i += 8) {
      __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), rs);
      const __m256 g = gamma ? _mm256_loadu_ps(gamma + i) : one;
      const __m256 b = beta ? _mm256_loadu_ps(beta + i) : zero;
      _mm256_storeu_ps(yr + i, _mm256_fmadd_ps(t, g, b));
    }
    if (Dv < D) {
      __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + Dv, tm), vm), rs);
      const __m256 g = gamma ? _mm256_maskload_ps(gamma + Dv, tm) : one;
      const __m256 b = beta ? _mm256_maskload_ps(beta + Dv, tm) : zero;
      _mm256_maskstore_ps(yr + Dv, tm, _mm256_fmadd_ps(t, g, b));
    }
  }
}

void softmax_rows(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  const int64_t nv = n / 8 * 8;
  const __m256i tm = tail_mask(n - nv);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < nv; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(xr + i));
    float mx = hmax256(m);
    for (int64_t i = nv; i < n; ++i) mx = mx > xr[i] ? mx : xr[i];
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = 0; i < nv; i += 8) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vm));
      _mm256_storeu_ps(yr + i, e);
      s = _mm256_add_ps(s, e);
    }
    if (nv < n) {
      const __m256 e =
          _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(xr + nv, tm), vm)), _mm256_castsi256_ps(tm));
      _mm256_maskstore_ps(yr + nv, tm, e);
      s = _mm256_add_ps(s, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum256(s));
    for (int64_t i = 0; i < nv; i += 8) _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(yr + i), inv));
    if (nv < n) _mm256_maskstore_ps(yr + nv, tm, _mm256_mul_ps(_mm256_maskload_ps(yr + nv, tm), inv));
  }
}

}  // namespace vtx::kernels::avx2
