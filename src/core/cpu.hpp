#pragma once
// Run-time CPU feature detection and the environment switches that narrow it. Kernels compiled with -mavx2
// (src/kernels/avx2/) are only called when cpu_has_avx2_fma() is true, AVX-512 kernels (src/kernels/avx512/,
// function-level target attributes) only when cpu_has_avx512() is. The dispatch table that picks one path per
// kernel family from these is src/kernels/kernels.hpp.
//
// Environment (read once; any value other than empty, "0" or "1" throws vtx::Error naming the variable):
//   VTX_DISABLE_AVX2=1    portable paths only (also disables AVX-512)
//   VTX_DISABLE_AVX512=1  AVX2 paths at most
//   VTX_DISABLE_VNNI=1    int8 GEMM without AVX-512 VNNI (the AVX2 vpmaddubsw kernel)
//   VTX_DISABLE_BF16=1    no AVX512-BF16: bf16 compute (LoadOptions::compute) is refused as on a CPU without it
#include <cstdint>

namespace vtx {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512vl = false, avx512bw = false, avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;  // CPUID.(7,1):EAX bit 5 (vcvtne2ps2bf16, vdpbf16ps)
};

const CpuFeatures& cpu_features();  // what the CPU supports (detected once)
bool cpu_has_avx2_fma();            // avx2 && fma && f16c && !VTX_DISABLE_AVX2
// AVX-512 F/VL/BW/DQ (+ AVX2/FMA) and not disabled by VTX_DISABLE_AVX512=1 (or VTX_DISABLE_AVX2=1).
bool cpu_has_avx512();
bool cpu_has_avx512_vnni();         // cpu_has_avx512() && avx512vnni && !VTX_DISABLE_VNNI
bool cpu_has_avx512_bf16();         // cpu_has_avx512() && avx512bf16 && !VTX_DISABLE_BF16

// Strict environment parsing for the library's VTX_* variables; errors are vtx::Error naming the variable.
// env_flag: unset or "" -> false, "0" -> false, "1" -> true.
bool env_flag(const char* name);
// env_int: unset or "" -> def; otherwise a decimal integer in [lo, hi].
int64_t env_int(const char* name, int64_t def, int64_t lo, int64_t hi);

}  // namespace vtx
