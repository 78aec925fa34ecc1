#pragma once
// CNN building blocks of the BiT backbone (DPT-Hybrid), NCHW float32:
//   GroupNorm (torch.nn.GroupNorm, affine) with an optional residual add and ReLU fused after it,
//   weight standardisation (BiT's WeightStandardizedConv2d: per output channel (w - mean) / sqrt(var + eps),
//   biased variance over (in, kh, kw)), TensorFlow "SAME" padding amounts, zero / constant padding, max pooling.
// Each has a scalar double-precision reference (*_ref) used by the kernel tests.
#include <cstdint>

namespace vtx::kernels {

// y[n, c, :] = (x - mean_g) / sqrt(var_g + eps) * gamma[c] + beta[c] for the group g of channel c
// (C / groups consecutive channels; statistics over those channels and all HW positions, biased variance);
// then y += residual (same shape) when residual is set; then y = max(y, 0) when relu.
// y may alias x (and residual may alias neither, or be y's exact alias). Throws vtx::Error when C % groups != 0.
void group_norm(const float* x, int64_t N, int64_t C, int64_t HW, int64_t groups, const float* gamma,
                const float* beta, double eps, float* y, const float* residual = nullptr, bool relu = false);
void group_norm_ref(const float* x, int64_t N, int64_t C, int64_t HW, int64_t groups, const float* gamma,
                    const float* beta, double eps, float* y, const float* residual = nullptr, bool relu = false);

// w [cout, per] -> out [cout, per]: per row (w - mean) / sqrt(var + eps), biased variance (torch batch_norm in
// training mode over the flattened filter, as BiT does). out may alias w.
void standardize_weights(const float* w, int64_t cout, int64_t per, double eps, float* out);
void standardize_weights_ref(const float* w, int64_t cout, int64_t per, double eps, float* out);

// TF "SAME" padding of one spatial dimension (timm / HF DynamicPad2d):
//   total = max((ceil(n / stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0), before = total / 2, after = rest.
// The output of a conv / pool with this padding has ceil(n / stride) positions.
struct PadAmount {
  int64_t before = 0, after = 0;
};
PadAmount tf_same_pad(int64_t n, int64_t k, int64_t stride, int64_t dilation = 1);

// Constant padding of NC planes [H, W] -> [H + top + bottom, W + left + right]. y must not alias x.
void pad2d(const float* x, int64_t NC, int64_t H, int64_t W, int64_t top, int64_t bottom, int64_t left,
           int64_t right, float value, float* y);
void pad2d_ref(const float* x, int64_t NC, int64_t H, int64_t W, int64_t top, int64_t bottom, int64_t left,
               int64_t right, float value, float* y);

// max_pool2d(kernel k, stride s, no padding, floor mode, dilation 1) of NC planes [H, W] -> [(H-k)/s+1, (W-k)/s+1].
// Pad first (pad2d) for "SAME" pooling. Throws vtx::Error when the input is smaller than the kernel.
void max_pool2d(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t s, float* y);
void max_pool2d_ref(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t s, float* y);

}  // namespace vtx::kernels
