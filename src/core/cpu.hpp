#pragma once
// Runtime CPU feature detection. Kernels compiled with -mavx2 (files *_avx2.cpp) are only called
// when cpu_has_avx2_fma() is true. Setting VTX_DISABLE_AVX2=1 in the environment forces the portable paths.
namespace vtx {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
};

const CpuFeatures& cpu_features();  // what the CPU supports (detected once)
bool cpu_has_avx2_fma();            // avx2 && fma && !VTX_DISABLE_AVX2

}  // namespace vtx
