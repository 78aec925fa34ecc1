#pragma once
// bf16 compute for linear layers: C[M,N] = epilogue(bf16(A[M,K]) * bf16(W[N,K])^T) with fp32 accumulation
// (AVX512-BF16 vdpbf16ps: 32 bf16 x bf16 products per instruction, each pair summed into one fp32 lane).
//
//   Weights  rounded to bf16 (round to nearest even) once, when packed; a bf16 checkpoint's words are copied.
//   A        rounded to bf16 (round to nearest even, as vcvtneps2bf16 does) while it is packed for the kernel.
//   Sum      fp32 (vdpbf16ps); the epilogue (bias, activation, layer scale, residual) is the fp32 GEMM's.
//
// There is no fallback kernel: linear_bf16 throws vtx::Error where cpu_has_avx512_bf16() is false (a model keeps
// its bf16 storage with f32 compute there: LoadOptions::dtype = BF16 without LoadOptions::compute).
// linear_bf16_ref is the scalar reference (any CPU): operands rounded exactly as above, products summed in double,
// so its result is defined bit for bit; the kernel differs from it by the fp32 summation only.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"

namespace vtx::kernels {

class Bf16Weight {
 public:
  Bf16Weight() = default;
  static Bf16Weight pack(const float* w, int64_t N, int64_t K);                  // w row-major [N, K]
  static Bf16Weight pack_rows(const std::vector<WeightRows>& parts, int64_t K);  // F32 / F16 / BF16 rows stacked
  std::vector<uint16_t> unpack() const;  // the bf16 words [N, K] row-major (exact inverse of the packing)
  int64_t N() const { return n_; }
  int64_t K() const { return k_; }
  bool empty() const { return n_ == 0; }
  size_t bytes() const { return data_.size() * 2; }

  // Layout: panels of NR = 32 output columns, K in pairs (the pair of vdpbf16ps): uint16 [np][K2][32][2] with
  // np = ceil(N / 32), K2 = ceil(K / 2); element (n, k) at ((n / 32) * K2 + k / 2) * 64 + (n % 32) * 2 + k % 2.
  // Columns past N and the odd K's last k are zero. One k-pair of a panel is two zmm (16 columns each).
  static constexpr int64_t NR = 32;
  const uint16_t* data() const { return data_.data(); }

 private:
  int64_t n_ = 0, k_ = 0;
  std::vector<uint16_t, AlignedAllocator<uint16_t>> data_;
};

// Multi-threaded on the global pool. Same contract as linear(). Throws vtx::Error without AVX512-BF16.
void linear_bf16(const float* A, int64_t M, int64_t lda, const Bf16Weight& W, float* C, int64_t ldc,
                 const Epilogue& ep = {});
// The scalar reference with the unpacked weight W [N, K] (f32; rounded to bf16 here).
void linear_bf16_ref(const float* A, int64_t M, int64_t lda, const float* W, int64_t N, int64_t K, float* C,
                     int64_t ldc, const Epilogue& ep = {});
// The rounding of both operands (round to nearest even; NaN stays NaN): f32_to_bf16 of core/half.hpp.
float round_to_bf16(float x);

// The bf16 kernel this process runs: "avx512-bf16", or "none" (no AVX512-BF16, or turned off by
// VTX_DISABLE_BF16=1 / VTX_DISABLE_AVX512=1 / VTX_DISABLE_AVX2=1).
const char* bf16_kernel_name();
// The message of the vtx::Error for bf16 compute where it is unavailable (`what`: who asked, e.g. "--compute
// bf16"); says why and what to do instead.
std::string bf16_unavailable_message(const std::string& what);

}  // namespace vtx::kernels
