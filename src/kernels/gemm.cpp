// Portable GEMM path (layout 0: W transposed to [K, N]) and the scalar reference.
#include "kernels/gemm.hpp"

#include <algorithm>
#include <cmath>

#include "core/threadpool.hpp"

namespace vtx::kernels {

float act_ref(float x, Act act) {
  switch (act) {
    case Act::None: return x;
    case Act::Gelu: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Act::GeluTanh: {
      float c = 0.7978845608028654f;
      return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case Act::Relu: return x > 0.f ? x : 0.f;
    case Act::QuickGelu: return x / (1.0f + std::exp(-1.702f * x));
  }
  return x;
}

void apply_act(float* y, int64_t n, Act act) {
  if (act == Act::None) return;
  for (int64_t i = 0; i < n; ++i) y[i] = act_ref(y[i], act);
}

struct PackAccess {
  static void set(PackedWeight& p, int64_t n, int64_t k, int layout, std::vector<float> d) {
    p.n_ = n;
    p.k_ = k;
    p.layout_ = layout;
    p.data_ = std::move(d);
  }
};

PackedWeight PackedWeight::pack(const float* w, int64_t N, int64_t K) {
  std::vector<float> t(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) t[k * N + n] = w[n * K + k];
  PackedWeight p;
  PackAccess::set(p, N, K, 0, std::move(t));
  return p;
}

static inline void epilogue_row(float* c, int64_t m, int64_t n0, int64_t n1, const Epilogue& ep) {
  for (int64_t n = n0; n < n1; ++n) {
    float y = c[n];
    if (ep.bias) y += ep.bias[n];
    y = act_ref(y, ep.act);
    if (ep.scale) y *= ep.scale[n];
    if (ep.residual) y += ep.residual[m * ep.ldr + n];
    c[n] = y;
  }
}

void linear(const float* A, int64_t M, int64_t lda, const PackedWeight& W, float* C, int64_t ldc,
            const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K();
  const float* B = W.data();  // [K, N]
  global_pool().parallel_for(M, [&](int64_t m0, int64_t m1) {
    constexpr int64_t NB = 256;
    std::vector<float> acc(NB);
    for (int64_t m = m0; m < m1; ++m) {
      const float* a = A + m * lda;
      float* c = C + m * ldc;
      for (int64_t nb = 0; nb < N; nb += NB) {
        int64_t ne = std::min(N, nb + NB);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t k = 0; k < K; ++k) {
          float av = a[k];
          const float* b = B + k * N;
          for (int64_t n = nb; n < ne; ++n) acc[n - nb] += av * b[n];
        }
        // residual may alias c: read it before writing this element (same index), which epilogue_row does.
        for (int64_t n = nb; n < ne; ++n) c[n] = acc[n - nb];
        epilogue_row(c, m, nb, ne, ep);
      }
    }
  });
}

void linear_ref(const float* A, int64_t M, int64_t lda, const float* W, int64_t N, int64_t K, float* C,
                int64_t ldc, const Epilogue& ep) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(A[m * lda + k]) * W[n * K + k];
      float y = static_cast<float>(s);
      if (ep.bias) y += ep.bias[n];
      y = act_ref(y, ep.act);
      if (ep.scale) y *= ep.scale[n];
      if (ep.residual) y += ep.residual[m * ep.ldr + n];
      C[m * ldc + n] = y;
    }
  }
}

}  // namespace vtx::kernels
