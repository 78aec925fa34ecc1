// The int4 parameter search (common/int4_params_impl.hpp) built with AVX2/FMA flags; reached through the
// dispatch table only when cpu_has_avx2_fma(). Same results as the portable build, bit for bit.
#include <cstdint>

#include "kernels/kernels.hpp"

namespace vtx::kernels::avx2 {

namespace i4 {
#include "kernels/common/int4_params_impl.hpp"
}  // namespace i4

void int4_choose_params(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes,
                        uint8_t* scratch) {
  i4::choose_params(w, n, mse, scale, zero, codes, scratch);
}

}  // namespace vtx::kernels::avx2
