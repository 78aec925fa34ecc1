// The int4 parameter search (int4_params_impl.hpp) compiled with AVX2/FMA flags; called from int4_params.cpp
// only after cpu_has_avx2_fma(). Same results as the portable build, bit for bit.
#include <cstdint>

namespace vtx::kernels::i4avx2 {
#include "kernels/int4_params_impl.hpp"
}  // namespace vtx::kernels::i4avx2
