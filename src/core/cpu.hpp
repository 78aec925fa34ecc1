#pragma once
// Runtime CPU feature detection. Kernels compiled with -mavx2 (files *_avx2.cpp) are only called
// when cpu_has_avx2_fma() is true. Setting VTX_DISABLE_AVX2=1 in the environment forces the portable paths.
namespace vtx {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512vl = false, avx512bw = false, avx512dq = false;
};

const CpuFeatures& cpu_features();  // what the CPU supports (detected once)
bool cpu_has_avx2_fma();            // avx2 && fma && !VTX_DISABLE_AVX2
// AVX-512 F/VL/BW/DQ (+ AVX2/FMA) and not disabled by VTX_DISABLE_AVX512=1 (or VTX_DISABLE_AVX2=1).
// Kernels using it are compiled with function-level target attributes (gemm_avx512.cpp).
bool cpu_has_avx512();

}  // namespace vtx
