// Portable micro-kernel of the conv GEMM (conv.hpp).
#include <cstring>

#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {

using detail::kMR;
using detail::kNR;

void conv_micro(int64_t K, const float* a, const float* b, float* c, bool accumulate) {
  float acc[kMR][kNR] = {};
  if (accumulate) std::memcpy(acc, c, sizeof(acc));
  for (int64_t k = 0; k < K; ++k) {
    const float* ak = a + k * kMR;
    const float* bk = b + k * kNR;
    for (int r = 0; r < kMR; ++r) {
      const float av = ak[r];
      for (int j = 0; j < kNR; ++j) acc[r][j] += av * bk[j];
    }
  }
  std::memcpy(c, acc, sizeof(acc));
}

}  // namespace vtx::kernels::portable
