// Public GEMM entry points: packing, run-time dispatch (AVX2/FMA panels, layout 1, in gemm_avx2.cpp),
// the portable path (layout 0: W transposed to [K, N]) and the scalar reference.
#include "kernels/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"

namespace vtx::kernels {

namespace avx2 {  // gemm_avx2.cpp
void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep);
void apply_act(float* y, int64_t n, Act act);
}  // namespace avx2
namespace avx512 {  // gemm_avx512.cpp
void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep);
}  // namespace avx512

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
  if (cpu_has_avx2_fma()) return avx2::apply_act(y, n, act);
  for (int64_t i = 0; i < n; ++i) y[i] = act_ref(y[i], act);
}

struct PackAccess {
  static void set(PackedWeight& p, int64_t n, int64_t k, int layout, AlignedFloats d) {
    p.n_ = n;
    p.k_ = k;
    p.layout_ = layout;
    p.data_ = std::move(d);
  }
};

bool PackedWeight::layout_supported(int layout) {
  switch (layout) {
    case kLayoutPortable: return true;
    case kLayoutAvx2: return cpu_has_avx2_fma();
    case kLayoutAvx512: return cpu_has_avx512();
  }
  return false;
}

PackedWeight PackedWeight::pack(const float* w, int64_t N, int64_t K) {
  return pack(w, N, K, cpu_has_avx512() ? kLayoutAvx512 : cpu_has_avx2_fma() ? kLayoutAvx2 : kLayoutPortable);
}

PackedWeight PackedWeight::pack(const float* w, int64_t N, int64_t K, int layout) {
  if (N < 0 || K < 0) throw std::invalid_argument("PackedWeight::pack: negative shape");
  PackedWeight p;
  if (layout == kLayoutPortable) {
    AlignedFloats t(static_cast<size_t>(N * K));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) t[k * N + n] = w[n * K + k];
    PackAccess::set(p, N, K, layout, std::move(t));
  } else if (layout == kLayoutAvx2 || layout == kLayoutAvx512) {
    if (!layout_supported(layout))
      throw std::runtime_error("PackedWeight::pack: layout " + std::to_string(layout) + " not supported by this CPU");
    const int64_t NR = layout == kLayoutAvx2 ? 16 : 32;
    const int64_t np = (N + NR - 1) / NR;
    AlignedFloats t(static_cast<size_t>(np * K * NR), 0.f);
    for (int64_t pn = 0; pn < np; ++pn)
      for (int64_t j = 0; j < NR && pn * NR + j < N; ++j) {
        const float* src = w + (pn * NR + j) * K;
        float* dst = t.data() + pn * K * NR + j;
        for (int64_t k = 0; k < K; ++k) dst[k * NR] = src[k];
      }
    PackAccess::set(p, N, K, layout, std::move(t));
  } else {
    throw std::invalid_argument("PackedWeight::pack: unknown layout " + std::to_string(layout));
  }
  return p;
}

// acc holds the raw sums for columns [n0, n1) of row m; residual is read before c is written (may alias).
static inline void epilogue_row(const float* acc, float* c, int64_t m, int64_t n0, int64_t n1, const Epilogue& ep) {
  for (int64_t n = n0; n < n1; ++n) {
    float y = acc[n - n0];
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
  if (W.layout() == PackedWeight::kLayoutAvx2) return avx2::linear_panels(A, M, lda, W.data(), N, K, C, ldc, ep);
  if (W.layout() == PackedWeight::kLayoutAvx512)
    return avx512::linear_panels(A, M, lda, W.data(), N, K, C, ldc, ep);
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
        epilogue_row(acc.data(), c, m, nb, ne, ep);
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
