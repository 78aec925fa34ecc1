// Attention family: dispatch (portable/attention.cpp, avx2/attention.cpp, avx512/attention.cpp) and the scalar
// reference.
#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.hpp"

namespace vtx::kernels {

void attention(const AttentionArgs& a) {
  if (a.B <= 0 || a.T <= 0 || a.H <= 0 || a.dh <= 0) return;
  kernel_table().attention(a);
}

// Scalar reference, double precision internally: the plain textbook formula, shares nothing with the above.
void attention_ref(const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, dh = a.dh, D = H * dh;
  std::vector<double> p(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const float* q = a.qkv + (b * T + i) * 3 * D + h * dh;
        double mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          const float* k = a.qkv + (b * T + j) * 3 * D + D + h * dh;
          double s = 0;
          for (int64_t d = 0; d < dh; ++d) s += static_cast<double>(q[d]) * k[d];
          p[j] = s / std::sqrt(static_cast<double>(dh)) + (a.bias ? a.bias[(h * T + i) * T + j] : 0.0);
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) sum += (p[j] = std::exp(p[j] - mx));
        const double hm = a.head_mask ? a.head_mask[h] : 1.0;
        for (int64_t j = 0; j < T; ++j) {
          p[j] = p[j] / sum * hm;
          if (a.probs) a.probs[((b * H + h) * T + i) * T + j] = static_cast<float>(p[j]);
        }
        for (int64_t d = 0; d < dh; ++d) {
          double o = 0;
          for (int64_t j = 0; j < T; ++j) o += p[j] * a.qkv[(b * T + j) * 3 * D + 2 * D + h * dh + d];
          a.out[(b * T + i) * D + h * dh + d] = static_cast<float>(o);
        }
      }
}

}  // namespace vtx::kernels
