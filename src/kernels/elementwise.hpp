#pragma once
// Row-wise elementwise kernels used by the models: LayerNorm and softmax. Multi-threaded over rows on the
// global pool (serial for small inputs); AVX2 when available. The *_ref versions are scalar references
// (double accumulation) used by the tests.
#include <cstdint>

namespace vtx::kernels {

// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta, var biased (PyTorch nn.LayerNorm), two passes.
// gamma/beta may be null (treated as 1 / 0). y may alias x exactly (in place, ldy == ldx).
void layer_norm(const float* x, int64_t rows, int64_t D, int64_t ldx, const float* gamma, const float* beta,
                float eps, float* y, int64_t ldy);
void layer_norm_ref(const float* x, int64_t rows, int64_t D, int64_t ldx, const float* gamma, const float* beta,
                    float eps, float* y, int64_t ldy);

// y[r, :] = softmax(x[r, :]) over n columns (max-subtracted). y may alias x exactly.
void softmax_rows(const float* x, int64_t rows, int64_t n, int64_t ldx, float* y, int64_t ldy);
void softmax_rows_ref(const float* x, int64_t rows, int64_t n, int64_t ldx, float* y, int64_t ldy);

}  // namespace vtx::kernels
