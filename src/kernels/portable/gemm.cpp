// Portable f32 GEMM (PackedWeight layout 0: W transposed to [K, N]) and the scalar activations.
#include <algorithm>
#include <vector>

#include "core/threadpool.hpp"
#include "kernels/common/epilogue_scalar.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {

namespace {

// acc holds the raw sums for columns [n0, n1) of row m; residual is read before c is written (may alias).
inline void epilogue_row(const float* acc, float* c, int64_t m, int64_t n0, int64_t n1, const Epilogue& ep) {
  for (int64_t n = n0; n < n1; ++n) c[n] = epilogue_scalar(acc[n - n0], m, n, ep);
}

}  // namespace

void linear(const float* A, int64_t M, int64_t lda, const float* B /* [K, N] */, int64_t N, int64_t K, float* C,
            int64_t ldc, const Epilogue& ep) {
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

void apply_act(float* y, int64_t n, Act act) {
  for (int64_t i = 0; i < n; ++i) y[i] = act_ref(y[i], act);
}

}  // namespace vtx::kernels::portable
