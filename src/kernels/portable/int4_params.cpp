// The int4 parameter search (common/int4_params_impl.hpp) built with the default flags.
// The impl's 32-byte vector helpers have internal linkage: GCC's note that passing them without AVX has a
// different ABI does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#include <cstdint>

#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {

namespace i4 {
#include "kernels/common/int4_params_impl.hpp"
}  // namespace i4

void int4_choose_params(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes,
                        uint8_t* scratch) {
  i4::choose_params(w, n, mse, scale, zero, codes, scratch);
}

double int4_group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes) {
  return i4::group_error(w, n, scale, zero, codes);
}

}  // namespace vtx::kernels::portable
