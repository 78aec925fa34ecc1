#pragma once
// Linear layers: C[M,N] = epilogue(A[M,K] * W[N,K]^T), W in PyTorch nn.Linear layout (out x in).
// Weights are packed once at load into the layout of the fastest kernel available on this CPU;
// linear() dispatches at run time. linear_ref() is the scalar reference every optimized path is tested against.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "core/page_buffer.hpp"
#include "vtx/tensor.hpp"

namespace vtx::kernels {

// 64-byte aligned allocator (packed weights / kernel buffers: whole cache lines, aligned vector loads).
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
};
using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

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

// Rows of a weight as stored: [rows, K] row-major, F32, F16 or BF16, any alignment (e.g. straight from a
// mapped checkpoint). Several blocks stacked make one weight (fused q/k/v).
struct WeightRows {
  const void* data;
  DType dtype;
  int64_t rows;
};

// Packed weight. The layout is private to the kernel implementation (gemm.cpp, portable/gemm.cpp, avx2/gemm.cpp, avx512/gemm.cpp).
class PackedWeight {
 public:
  PackedWeight() = default;
  static PackedWeight pack(const float* w, int64_t N, int64_t K);  // w row-major [N, K], best layout for this CPU
  // The blocks stacked along N (N = sum of rows), converted to f32 while packing; best layout for this CPU.
  static PackedWeight pack_rows(const std::vector<WeightRows>& parts, int64_t K);
  // Layouts: 0 = portable ([K, N], any CPU); 1 = AVX2/FMA panels of 16 output columns ([N/16][K][16], zero
  // padded); 2 = AVX-512 panels of 32 columns ([N/32][K][32]). pack() picks 2, else 1, else 0.
  // pack with an explicit layout is for tests/benchmarks; it throws if the CPU lacks the instructions.
  static constexpr int kLayoutPortable = 0, kLayoutAvx2 = 1, kLayoutAvx512 = 2;
  static bool layout_supported(int layout);
  static PackedWeight pack(const float* w, int64_t N, int64_t K, int layout);
  static PackedWeight pack_rows(const std::vector<WeightRows>& parts, int64_t K, int layout);
  int64_t N() const { return n_; }
  int64_t K() const { return k_; }
  bool empty() const { return n_ == 0; }
  size_t bytes() const { return data_.size(); }

  // Implementation detail, used by the kernels.
  const float* data() const { return reinterpret_cast<const float*>(data_.data()); }
  int layout() const { return layout_; }

 private:
  friend struct PackAccess;
  int64_t n_ = 0, k_ = 0;
  int layout_ = 0;
  PageBuffer data_;  // floats; page-populated at allocation (see core/page_buffer.hpp)
};


void apply_act(float* y, int64_t n, Act act);  // in place, vectorized when AVX2 is available
float act_ref(float x, Act act);

// Multi-threaded on the global pool. A rows may be strided (lda >= K); C rows strided by ldc >= N.
// C must not overlap A; ep.residual may alias C exactly (same pointer and ldr == ldc).
void linear(const float* A, int64_t M, int64_t lda, const PackedWeight& W, float* C, int64_t ldc,
            const Epilogue& ep = {});

// Scalar reference with the unpacked weight [N, K] row-major.
void linear_ref(const float* A, int64_t M, int64_t lda, const float* W, int64_t N, int64_t K, float* C,
                int64_t ldc, const Epilogue& ep = {});

}  // namespace vtx::kernels
