#pragma once
// How int4 scale and zero point are chosen for one group of weights. The stored format is torchao's in every
// case (qgemm.hpp: uint4 codes q, float scale s > 0, float zero point z, w' = (q - 8) * s + z; the codes are
// torchao's quantize_affine of the group with the chosen s and z); only the choice of (s, z) differs:
//
//   MinMax  torchao's choose_qparams_affine (Int4WeightOnlyConfig): s = max((max - min) / 15, 1e-6),
//           z = min + 8 s. Bit-exact with torchao.
//   Mse     error-minimising choice within the same format: a small search over code assignments, each followed
//           by the least-squares (s, z) for those codes, then alternating refinement (assign nearest codes /
//           refit (s, z)); the pair with the smallest squared reconstruction error of the group is kept, and
//           min/max's pair whenever it is not strictly worse. So the group's error never exceeds min/max's.
//
// The default is Mse; VTX_INT4_METHOD=minmax in the environment makes int4_default_method() return MinMax
// (quantizing at load and `vtx quantize` both use the default), for bit-exact torchao parameters.
#include <cstdint>
#include <string>

namespace vtx::kernels {

enum class Int4Method : uint8_t { MinMax, Mse };
const char* int4_method_name(Int4Method m);                 // "minmax", "mse"
bool parse_int4_method(const std::string& s, Int4Method* out);  // false when unknown
// Mse, or what VTX_INT4_METHOD says (read once; an unknown value throws vtx::Error naming the variable).
Int4Method int4_default_method();

// Chooses (scale, zero) for the n >= 1 weights w[0..n) of one group and writes their codes (0..15, one per
// byte) to codes[0..n). The returned scale is finite and > 0, the zero point finite, whenever w is finite.
void int4_choose_params(const float* w, int64_t n, Int4Method m, float* scale, float* zero, uint8_t* codes);

// Squared reconstruction error of a group, sum_k (fma(q_k - 8, s, z) - w_k)^2 in double, exactly as the
// kernels dequantize (what int4_choose_params compares; exposed for tests).
double int4_group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes);

}  // namespace vtx::kernels
