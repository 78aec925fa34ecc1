#pragma once
// Which kernel path each kernel family runs on this CPU. The choice is made once per process from the CPU's
// instruction sets, narrowed by VTX_DISABLE_AVX512=1 (AVX2 at most), VTX_DISABLE_AVX2=1 (portable only) and
// VTX_DISABLE_VNNI=1 (int8 without AVX-512 VNNI) and VTX_DISABLE_BF16=1 (no bf16 compute); a bad value of one of
// these throws vtx::Error.
#include <string>
#include <vector>

#include "vtx/export.hpp"

namespace vtx {

struct KernelPath {
  std::string family;  // "gemm_f32", "gemm_f16_bf16_int4", "gemm_int8", "gemm_bf16", "attention", "layer_norm",
                       // "softmax", "gelu", "conv", "interpolation", "int4_params"
  std::string path;    // "portable", "avx2", "avx512", "avx512-vnni", "avx512-bf16" or "none"
};

// One entry per kernel family, in a fixed order.
VTX_API std::vector<KernelPath> kernel_dispatch_table();
// The CPU's relevant instruction sets, e.g. "avx2 fma f16c" (plus a note when the environment disables some).
VTX_API std::string cpu_isa_string();

}  // namespace vtx
