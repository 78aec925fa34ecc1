#pragma once
// 2-D convolutions in NCHW (PyTorch layouts), groups 1, dilation 1.
//
//   Conv2d          weight [Cout, Cin, kh, kw], optional bias [Cout]
//   ConvTranspose2d weight [Cin, Cout, kh, kw], optional bias [Cout]
//
// The weights are packed once (constructor) into the panel layout of the conv GEMM (conv.cpp; micro-kernels in portable/conv.cpp, avx2/conv.cpp):
// out[n, co, p] = sum_k A[co, k] * col[k, p] with k = (ci, ky, kx) and p = (oy, ox); the im2col matrix is never
// materialised, it is gathered 16 output pixels at a time straight into the micro-kernel's panel.
// Multi-threaded on the global pool. The *_ref functions are scalar double-accumulating references.
#include <cstdint>
#include <vector>

#include "kernels/gemm.hpp"  // Act

namespace vtx::kernels {

struct ConvGeom {
  int64_t cout = 0, cin = 0, kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// Applied per output element in this order: y = acc + bias[co]; y = act(y); y += residual[...]; y += residual2[...].
// Residuals have the output's shape [N, Cout, OH, OW] and must alias neither the input nor the output (they may
// alias each other).
struct ConvEpilogue {
  Act act = Act::None;
  const float* residual = nullptr;
  const float* residual2 = nullptr;
};

// Folds an eval-mode BatchNorm2d that follows a conv into its weight [Cout, ...] and bias (bias may be empty: it
// is created). w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta.
void fold_batch_norm(std::vector<float>& weight, std::vector<float>& bias, int64_t cout, const float* gamma,
                     const float* beta, const float* mean, const float* var, double eps);

class Conv2d {
 public:
  Conv2d() = default;
  // weight [Cout, Cin, kh, kw] row-major; bias [Cout] or null. Throws vtx::Error on invalid geometry.
  Conv2d(const float* weight, const float* bias, const ConvGeom& g);

  const ConvGeom& geom() const { return g_; }
  bool empty() const { return g_.cout == 0; }
  int64_t out_h(int64_t H) const { return (H + 2 * g_.pad_h - g_.kh) / g_.stride_h + 1; }
  int64_t out_w(int64_t W) const { return (W + 2 * g_.pad_w - g_.kw) / g_.stride_w + 1; }

  // in [N, Cin, H, W] -> out [N, Cout, out_h(H), out_w(W)] (out must not alias in).
  // relu_input: the conv sees max(in, 0) (a pre-activation ReLU, as in the DPT residual units).
  void forward(const float* in, int64_t N, int64_t H, int64_t W, float* out, const ConvEpilogue& ep = {},
               bool relu_input = false) const;

  size_t bytes() const { return packed_.size() * sizeof(float); }

 private:
  ConvGeom g_;
  int64_t K_ = 0;               // cin * kh * kw
  std::vector<float> packed_;   // [ceil(cout / MR)][K][MR]
  std::vector<float> bias_;     // [cout] (zeros when the conv has no bias)
};

// ConvTranspose2d (groups 1, dilation 1, output_padding 0): out = (H - 1) * stride - 2 * pad + k.
// Computed as a GEMM [Cout*kh*kw, Cin] x [Cin, H*W] followed by col2im (a pure scatter when kernel == stride).
class ConvTranspose2d {
 public:
  ConvTranspose2d() = default;
  // weight [Cin, Cout, kh, kw]; bias [Cout] or null. g.cin / g.cout as in PyTorch's constructor.
  ConvTranspose2d(const float* weight, const float* bias, const ConvGeom& g);

  const ConvGeom& geom() const { return g_; }
  bool empty() const { return g_.cout == 0; }
  int64_t out_h(int64_t H) const { return (H - 1) * g_.stride_h - 2 * g_.pad_h + g_.kh; }
  int64_t out_w(int64_t W) const { return (W - 1) * g_.stride_w - 2 * g_.pad_w + g_.kw; }

  // scratch: null (allocated per call) or scratch_floats(N, H, W) floats reused by the caller.
  void forward(const float* in, int64_t N, int64_t H, int64_t W, float* out, Act act = Act::None,
               float* scratch = nullptr) const;
  size_t scratch_floats(int64_t N, int64_t H, int64_t W) const {
    return static_cast<size_t>(N * g_.cout * g_.kh * g_.kw * H * W);
  }

 private:
  ConvGeom g_;
  Conv2d gemm_;               // 1x1 conv with weight [Cout*kh*kw, Cin]
  std::vector<float> bias_;   // [cout]
};

// Scalar references (double accumulation, then + bias in float).
void conv2d_ref(const float* in, int64_t N, int64_t H, int64_t W, const float* weight, const float* bias,
                const ConvGeom& g, float* out);
void conv_transpose2d_ref(const float* in, int64_t N, int64_t H, int64_t W, const float* weight, const float* bias,
                          const ConvGeom& g, float* out);

namespace detail {
constexpr int kMR = 6;   // output channels per micro-tile
constexpr int kNR = 16;  // output pixels per micro-tile
constexpr int64_t kKC = 256;  // K block: a [kKC][NR] slice of the pixel panel stays in L1 across all Cout tiles
// c[MR][NR] (+)= sum_k a[k][MR] (x) b[k][NR]; accumulate: add to c, else overwrite it.
// Implementations: portable::conv_micro, avx2::conv_micro (kernels.hpp).
using ConvMicroKernel = void (*)(int64_t K, const float* a, const float* b, float* c, bool accumulate);
}  // namespace detail

}  // namespace vtx::kernels
