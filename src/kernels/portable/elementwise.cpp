// Portable LayerNorm / softmax rows.
#include <algorithm>
#include <cmath>

#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {

void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
                              const float* beta, float eps, float* y, int64_t ldy) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    float s = 0.f;
    for (int64_t i = 0; i < D; ++i) s += xr[i];
    const float mean = s / static_cast<float>(D);
    float v = 0.f;
    for (int64_t i = 0; i < D; ++i) v += (xr[i] - mean) * (xr[i] - mean);
    const float rstd = 1.0f / std::sqrt(v / static_cast<float>(D) + eps);
    for (int64_t i = 0; i < D; ++i) {
      float t = (xr[i] - mean) * rstd;
      if (gamma) t *= gamma[i];
      if (beta) t += beta[i];
      yr[i] = t;
    }
  }
}

void softmax_rows(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, xr[i]);
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += (yr[i] = std::exp(xr[i] - mx));
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
  }
}

}  // namespace vtx::kernels::portable
