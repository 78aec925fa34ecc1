// LayerNorm / softmax: threading over rows, dispatch (portable/, avx2/elementwise.cpp) and scalar references.
#include "kernels/elementwise.hpp"

#include <algorithm>
#include <cmath>

#include "core/threadpool.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels {

namespace {

template <class F>
void over_rows(int64_t rows, int64_t cols, F&& f) {
  if (rows * cols < (1 << 15)) return f(0, rows);
  global_pool().parallel_for(rows, f);
}

}  // namespace

void layer_norm(const float* x, int64_t rows, int64_t D, int64_t ldx, const float* gamma, const float* beta,
                float eps, float* y, int64_t ldy) {
  if (rows <= 0 || D <= 0) return;
  const LayerNormRowsFn f = kernel_table().layer_norm_rows;
  over_rows(rows, D, [&](int64_t r0, int64_t r1) { f(x, r0, r1, D, ldx, gamma, beta, eps, y, ldy); });
}

void softmax_rows(const float* x, int64_t rows, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  if (rows <= 0 || n <= 0) return;
  const SoftmaxRowsFn f = kernel_table().softmax_rows;
  over_rows(rows, n, [&](int64_t r0, int64_t r1) { f(x, r0, r1, n, ldx, y, ldy); });
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
