#pragma once
// Linear layers: C[M,N] = epilogue(A[M,K] * W[N,K]^T), W in PyTorch nn.Linear layout (out x in).
// Weights are packed once at load into the layout of the fastest kernel available on this CPU;
// linear() dispatches at run time. linear_ref() is the scalar reference every optimized path is tested against.
#include <cstdint>
#include <memory>
#include <vector>

namespace vtx::kernels {

enum class Act : uint8_t { None, Gelu /* exact erf GELU, HF "gelu" */, GeluTanh, Relu, QuickGelu };

// Applied per element in this order: y = acc + bias[n]; y = act(y); y *= scale[n]; y += residual[m, n].
// residual may alias C (same leading dimension) for in-place residual adds.
struct Epilogue {
  const float* bias = nullptr;      // [N] or null
  Act act = Act::None;
  const float* scale = nullptr;     // [N] or null (layer scale)
  const float* residual = nullptr;  // [M, ldr] or null
  int64_t ldr = 0;
};

// Packed weight. The layout is private to the kernel implementation (gemm.cpp / gemm_*.cpp).
class PackedWeight {
 public:
  PackedWeight() = default;
  static PackedWeight pack(const float* w, int64_t N, int64_t K);  // w row-major [N, K]
  int64_t N() const { return n_; }
  int64_t K() const { return k_; }
  bool empty() const { return n_ == 0; }
  size_t bytes() const { return data_.size() * sizeof(float); }

  // Implementation detail, used by the kernels.
  const float* data() const { return data_.data(); }
  int layout() const { return layout_; }

 private:
  friend struct PackAccess;
  int64_t n_ = 0, k_ = 0;
  int layout_ = 0;
  std::vector<float> data_;
};


void apply_act(float* y, int64_t n, Act act);
float act_ref(float x, Act act);

// Multi-threaded on the global pool.
void linear(const float* A, int64_t M, int64_t lda, const PackedWeight& W, float* C, int64_t ldc,
            const Epilogue& ep = {});

// Scalar reference with the unpacked weight [N, K] row-major.
void linear_ref(const float* A, int64_t M, int64_t lda, const float* W, int64_t N, int64_t K, float* C,
                int64_t ldc, const Epilogue& ep = {});

}  // namespace vtx::kernels
