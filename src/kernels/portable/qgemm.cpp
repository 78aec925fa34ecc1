// Portable kernels for every QuantWeight type (same packed layout as the AVX2 / AVX-512 kernels; qgemm.hpp).
#include <cmath>
#include <vector>

#include "core/half.hpp"
#include "core/threadpool.hpp"
#include "kernels/common/epilogue_scalar.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {

constexpr int64_t NR = QuantWeight::NR;

namespace {

// Dequantizes panel p, k in [k0, k0 + kc), into out[kc][16].
void dequant_panel(const QuantWeight& W, int64_t p, int64_t k0, int64_t kc, float* out) {
  const int64_t K = W.K();
  switch (W.type()) {
    case WType::F16:
    case WType::BF16: {
      const uint16_t* d = reinterpret_cast<const uint16_t*>(W.data()) + (p * K + k0) * NR;
      const bool f16 = W.type() == WType::F16;
      for (int64_t i = 0; i < kc * NR; ++i) out[i] = f16 ? f16_to_f32(d[i]) : bf16_to_f32(d[i]);
      break;
    }
    case WType::Int4: {
      const int64_t G = (K + W.group() - 1) / W.group();
      for (int64_t k = k0; k < k0 + kc; ++k) {
        const uint8_t* b = W.data() + (p * K + k) * (NR / 2);
        const int64_t g = k / W.group();
        const float* s = W.scales() + (p * G + g) * NR;
        const float* z = W.zeros() + (p * G + g) * NR;
        float* o = out + (k - k0) * NR;
        for (int64_t j = 0; j < NR; ++j) {
          const int v = j % 2 ? b[j / 2] >> 4 : b[j / 2] & 15;
          o[j] = std::fma(static_cast<float>(v - 8), s[j], z[j]);
        }
      }
      break;
    }
    default: break;  // not reached: the caller dispatches on the type
  }
}

}  // namespace

void linear_q(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                       const Epilogue& ep) {
  const int64_t N = W.N(), K = W.K(), np = (N + NR - 1) / NR;
  if (M <= 0 || N <= 0) return;
  if (W.type() == WType::Int8) {
    const int64_t K4 = (K + 3) / 4, Kp = K4 * 4;
    std::vector<int8_t> qa(static_cast<size_t>(M * Kp), 0);
    std::vector<float> sa(static_cast<size_t>(M));
    global_pool().parallel_for(M, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) sa[m] = quantize_row_int8(A + m * lda, K, qa.data() + m * Kp);
    });
    const int8_t* wq = reinterpret_cast<const int8_t*>(W.data());
    global_pool().parallel_for(M, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        const int8_t* a = qa.data() + m * Kp;
        for (int64_t p = 0; p < np; ++p) {
          int32_t acc[NR] = {};
          const int8_t* b = wq + p * K4 * NR * 4;
          for (int64_t k4 = 0; k4 < K4; ++k4)
            for (int64_t j = 0; j < NR; ++j) {
              const int8_t* bb = b + (k4 * NR + j) * 4;
              const int8_t* aa = a + k4 * 4;
              acc[j] += aa[0] * bb[0] + aa[1] * bb[1] + aa[2] * bb[2] + aa[3] * bb[3];
            }
          for (int64_t j = 0; j < NR && p * NR + j < N; ++j) {
            const int64_t n = p * NR + j;
            const float y = static_cast<float>(acc[j]) * (sa[m] * W.scales()[n]);
            C[m * ldc + n] = epilogue_scalar(y, m, n, ep);
          }
        }
      }
    });
    return;
  }
  // Weight-only: each thread dequantizes one panel (all of K) at a time and sweeps its rows over it.
  global_pool().parallel_for(M, [&](int64_t m0, int64_t m1) {
    std::vector<float> b(static_cast<size_t>(K * NR));
    for (int64_t p = 0; p < np; ++p) {
      dequant_panel(W, p, 0, K, b.data());
      for (int64_t m = m0; m < m1; ++m) {
        float acc[NR] = {};
        const float* a = A + m * lda;
        for (int64_t k = 0; k < K; ++k) {
          const float av = a[k];
          const float* bk = b.data() + k * NR;
          for (int64_t j = 0; j < NR; ++j) acc[j] += av * bk[j];
        }
        for (int64_t j = 0; j < NR && p * NR + j < N; ++j) C[m * ldc + p * NR + j] = epilogue_scalar(acc[j], m, p * NR + j, ep);
      }
    }
  });
}


}  // namespace vtx::kernels::portable
