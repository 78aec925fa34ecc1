#pragma once
// Every kernel entry point of every instruction set, and the dispatch table that picks one per kernel family.
//
//   src/kernels/*.hpp, *.cpp   the families the models call (gemm, qgemm, attention, elementwise, conv, interp,
//                              int4_params) and the preprocessing calls (resample): packing, argument checks, scalar references, threading, dispatch
//   src/kernels/portable/      plain C++ paths, any CPU
//   src/kernels/avx2/          AVX2 + FMA + F16C (compiled with -mavx2 -mfma -mf16c; called only when
//                              cpu_has_avx2_fma())
//   src/kernels/avx512/        AVX-512 F/VL/BW/DQ (+ VNNI for int8_vnni.cpp, + BF16 for bf16_dpbf16.cpp); compiled with the default flags,
//                              every AVX-512 function carries a target attribute; called only when cpu_has_avx512()
//   src/kernels/common/        helpers shared by the paths (thread split, scratch buffers, 8x8 transpose, ...)
//
// The table is built once per process (kernel_table()); the families call through it, so the path of every
// family is fixed at start-up and printable (kernel_dispatch_table() in <vtx/cpu.hpp>, `vtx info --verbose`).
// A family without a kernel for an ISA uses the next narrower one (e.g. LayerNorm on AVX-512 machines: avx2).
// Tests run every path this CPU can run: for (Isa isa : available_isas()) { ScopedIsa use(isa); ... }.
#include <cstdint>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/bf16gemm.hpp"
#include "kernels/conv.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"
#include "kernels/qgemm.hpp"
#include "kernels/resample.hpp"

namespace vtx::kernels {

enum class Isa : uint8_t { Portable, Avx2, Avx512 };
const char* isa_name(Isa isa);  // "portable", "avx2", "avx512"
// The CPU has the instructions and no VTX_DISABLE_* variable turns them off (core/cpu.hpp).
bool isa_available(Isa isa);
std::vector<Isa> available_isas();  // narrowest first: portable, then avx2, avx512 where available

// ---- entry point signatures (one per family) ----
// f32 GEMM on a packed weight Wp (layout of PackedWeight; see gemm.hpp): C = epilogue(A * W^T).
using LinearFn = void (*)(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                          int64_t ldc, const Epilogue& ep);
// Quantized / half-precision GEMM (qgemm.hpp).
using LinearQFn = void (*)(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                           const Epilogue& ep);
// bf16 x bf16 GEMM with fp32 accumulation (bf16gemm.hpp).
using LinearBf16Fn = void (*)(const float* A, int64_t M, int64_t lda, const Bf16Weight& W, float* C, int64_t ldc,
                              const Epilogue& ep);
using AttentionFn = void (*)(const AttentionArgs& a);
// Rows [r0, r1) (the family front splits rows over threads).
using LayerNormRowsFn = void (*)(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
                                 const float* beta, float eps, float* y, int64_t ldy);
using SoftmaxRowsFn = void (*)(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y,
                               int64_t ldy);
using ActFn = void (*)(float* y, int64_t n, Act act);  // in place (GELU, tanh-GELU, QuickGELU, ReLU)
using ConvMicroFn = detail::ConvMicroKernel;            // 6x16 tile of the conv GEMM (conv.hpp)
// int4 group parameter search (int4_params.hpp); scratch holds n bytes.
using Int4ParamsFn = void (*)(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes,
                              uint8_t* scratch);
// PIL fixed-point resampling passes of 8-bit RGB (resample.hpp).
using ResampleHorizontalFn = void (*)(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w,
                                      const ResampleCoeffs& c);
using ResampleVerticalFn = void (*)(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset,
                                    const ResampleCoeffs& c);

// ---- portable/ ----
namespace portable {
void linear(const float* A, int64_t M, int64_t lda, const float* Wt, int64_t N, int64_t K, float* C, int64_t ldc,
            const Epilogue& ep);  // layout 0: Wt is [K, N]
void linear_q(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
              const Epilogue& ep);  // every QuantWeight type
void attention(const AttentionArgs& a);
void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
                     const float* beta, float eps, float* y, int64_t ldy);
void softmax_rows(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y, int64_t ldy);
void apply_act(float* y, int64_t n, Act act);
void conv_micro(int64_t K, const float* a, const float* b, float* c, bool accumulate);
void int4_choose_params(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes,
                        uint8_t* scratch);
double int4_group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes);
void resample_horizontal(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const ResampleCoeffs& c);
void resample_vertical(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset, const ResampleCoeffs& c);
}  // namespace portable

// ---- avx2/ ----
namespace avx2 {
void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep);  // layout 1, gemm.cpp
// Cache blocking of linear_panels (K blocks of kc, row blocks of mc, groups of nc_panels 16-column panels).
struct GemmBlocking {
  int64_t kc = 384, mc = 192, nc_panels = 16;
  bool prefetch_b = true;  // L2 prefetch of the next B block (VTX_GEMM_PFB)
};
GemmBlocking gemm_blocking();
void set_gemm_blocking(const GemmBlocking& b);  // benchmarks only; not while a GEMM runs
void linear_q_wo(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                 const Epilogue& ep);  // F16 / BF16 / Int4, qgemm.cpp
void linear_q_int8(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                   const Epilogue& ep);  // Int8 (vpmaddubsw), int8.cpp
// Per-row int8 quantization of A (quantize_row_int8's values, xor'ed with `x`: 0, or 0x80 for u8 activations)
// into qa [M][Kp] (zero padded past K) and sa [M]; multi-threaded unless the M x N x K GEMM is small.
// int8.cpp (also used by avx512/int8_vnni.cpp).
void quantize_rows_int8(const float* A, int64_t M, int64_t lda, int64_t K, int64_t Kp, int8_t* qa, float* sa,
                        uint8_t x, int64_t N);
void attention(const AttentionArgs& a);
void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t D, int64_t ldx, const float* gamma,
                     const float* beta, float eps, float* y, int64_t ldy);
void softmax_rows(const float* x, int64_t r0, int64_t r1, int64_t n, int64_t ldx, float* y, int64_t ldy);
void apply_act(float* y, int64_t n, Act act);
void conv_micro(int64_t K, const float* a, const float* b, float* c, bool accumulate);
void int4_choose_params(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes,
                        uint8_t* scratch);
void resample_horizontal(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const ResampleCoeffs& c);
void resample_vertical(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset, const ResampleCoeffs& c);
}  // namespace avx2

// ---- avx512/ ----
namespace avx512 {
void linear_panels(const float* A, int64_t M, int64_t lda, const float* Wp, int64_t N, int64_t K, float* C,
                   int64_t ldc, const Epilogue& ep);  // layout 2, gemm.cpp
void linear_q_wo(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                 const Epilogue& ep);  // F16 / BF16 / Int4, qgemm.cpp
void linear_q_int8_vnni(const float* A, int64_t M, int64_t lda, const QuantWeight& W, float* C, int64_t ldc,
                        const Epilogue& ep);  // Int8 with vpdpbusd, int8_vnni.cpp (needs cpu_has_avx512_vnni())
void linear_bf16_dp(const float* A, int64_t M, int64_t lda, const Bf16Weight& W, float* C, int64_t ldc,
                    const Epilogue& ep);  // vdpbf16ps, bf16_dpbf16.cpp (needs cpu_has_avx512_bf16())
void attention(const AttentionArgs& a);
}  // namespace avx512

// ---- the dispatch table ----
struct KernelTable {
  Isa isa = Isa::Portable;  // the widest ISA this table may use
  // f32 GEMM: PackedWeight::pack() lays weights out in gemm_layout; linear() runs the kernel of a weight's layout.
  int gemm_layout = 0;
  LinearFn gemm_f32 = nullptr;
  LinearQFn gemm_weight_only = nullptr;  // F16 / BF16 / Int4
  LinearQFn gemm_int8 = nullptr;
  LinearBf16Fn gemm_bf16 = nullptr;  // null: no AVX512-BF16 (no fallback; see bf16gemm.hpp)
  AttentionFn attention = nullptr;
  LayerNormRowsFn layer_norm_rows = nullptr;
  SoftmaxRowsFn softmax_rows = nullptr;
  ActFn activation = nullptr;
  ConvMicroFn conv_micro = nullptr;
  Int4ParamsFn int4_params = nullptr;
  ResampleHorizontalFn resample_horizontal = nullptr;
  ResampleVerticalFn resample_vertical = nullptr;

  // What each family runs, for printing: {family, path}; path is "portable", "avx2", "avx512", "avx512-vnni",
  // "avx512-bf16" or "none" (gemm_bf16 without AVX512-BF16).
  enum Family { kGemmF32, kGemmWeightOnly, kGemmInt8, kGemmBf16, kAttention, kLayerNorm, kSoftmax, kGelu, kConv, kInterp,
                kInt4Params, kResample, kFamilies };
  struct Entry {
    const char* family;
    const char* path;
  };
  Entry paths[kFamilies] = {};
};

// The table the kernels use: built once, on first use, for the widest available ISA (a ScopedIsa overrides it).
const KernelTable& kernel_table();
// The table restricted to `isa` (built once); throws vtx::Error when !isa_available(isa).
const KernelTable& kernel_table(Isa isa);
// The ISA whose kernel runs a PackedWeight layout (0 portable, 1 avx2, 2 avx512).
LinearFn gemm_kernel_for_layout(int layout);

// Tests and benchmarks: while alive, every family runs the paths of kernel_table(isa) (process-wide; do not
// create one while another thread runs kernels). Throws vtx::Error when the ISA is not available.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa);
  ~ScopedIsa();
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  const KernelTable* prev_;
};

}  // namespace vtx::kernels
