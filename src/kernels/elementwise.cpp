// LayerNorm / softmax: dispatch, portable paths and scalar references.
#include "kernels/elementwise.hpp"

#include <algorithm>
#include <cmath>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"

namespace vtx::kernels {

namespace avx2 {  // elementwise_avx2.cpp
void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
                     const float* beta, float eps, float* y, int64_t ldy);
void softmax_rows(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y, int64_t ldy);
}  // namespace avx2

namespace {

void layer_norm_rows_portable(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
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

void softmax_rows_portable(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y, int64_t ldy) {
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

template <class F>
void over_rows(int64_t rows, int64_t cols, F&& f) {
  if (rows * cols < (1 << 15)) return f(0, rows);
  global_pool().parallel_for(rows, f);
}

}  // namespace

void layer_norm(const float* x, int64_t rows, int64_t D, int64_t ldx, const float* gamma, const float* beta,
                float eps, float* y, int64_t ldy) {
  if (rows <= 0 || D <= 0) return;
  const bool simd = cpu_has_avx2_fma();
  over_rows(rows, D, [&](int64_t r0, int64_t r1) {
    if (simd)
      avx2::layer_norm_rows(x, r0, r1, D, ldx, gamma, beta, eps, y, ldy);
    else
      layer_norm_rows_portable(x, r0, r1, D, ldx, gamma, beta, eps, y, ldy);
  });
}

void softmax_rows(const float* x, int64_t rows, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  if (rows <= 0 || n <= 0) return;
  const bool simd = cpu_has_avx2_fma();
  over_rows(rows, n, [&](int64_t r0, int64_t r1) {
    if (simd)
      avx2::softmax_rows(x, r0, r1, n, ldx, y, ldy);
    else
      softmax_rows_portable(x, r0, r1, n, ldx, y, ldy);
  });
}

void layer_norm_ref(const float* x, int64_t rows, int64_t D, int64_t ldx, const float* gamma, const float* beta,
                    float eps, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, v = 0;
    for (int64_t i = 0; i < D; ++i) s += x[r * ldx + i];
    const double mean = s / D;
    for (int64_t i = 0; i < D; ++i) v += (x[r * ldx + i] - mean) * (x[r * ldx + i] - mean);
    const double rstd = 1.0 / std::sqrt(v / D + eps);
    for (int64_t i = 0; i < D; ++i) {
      double t = (x[r * ldx + i] - mean) * rstd;
      if (gamma) t *= gamma[i];
      if (beta) t += beta[i];
      y[r * ldy + i] = static_cast<float>(t);
    }
  }
}

void softmax_rows_ref(const float* x, int64_t rows, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(x[r * ldx + i]));
    for (int64_t i = 0; i < n; ++i) s += std::exp(x[r * ldx + i] - mx);
    for (int64_t i = 0; i < n; ++i) y[r * ldy + i] = static_cast<float>(std::exp(x[r * ldx + i] - mx) / s);
  }
}

}  // namespace vtx::kernels
