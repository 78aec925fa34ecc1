// int4 group parameters (int4_params.hpp): torchao's min/max choice and the error-minimising search.
//
// Mse, per group of n weights (int4_params_impl.hpp, built portable here and with AVX2 in int4_params_avx2.cpp;
// both give the same bits):
//   1. candidates: codes q = clamp(round((w - lo) * inv), 0, 15) for inv = (15 + t) / (max - min),
//      t in {-1, -2/3, ..., 1}, anchored at the minimum (lo = min) and at the maximum (lo = max - 15 / inv),
//      7 ranges x 2 anchors = 14 candidates in 7 passes (t = 0 is min/max's own code assignment);
//   2. for each candidate the least-squares (s, b) of w ~ s * q + b (a 2x2 solve from sum q, sum q^2, sum q w,
//      sum w) and its squared error in closed form; keep the best;
//   3. up to 2 alternating refinements: nearest codes for the best (s, z = b + 8 s), refit, keep while the
//      error drops;
//   4. the codes are torchao's quantize_affine with the result's (s, z); its exact error (int4_group_error) is
//      compared with min/max's, and min/max's parameters are kept unless the search is strictly better.
// The impl's 32-byte vector helpers have internal linkage: GCC's note that passing them without AVX has a
// different ABI does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#include "kernels/int4_params.hpp"

#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "core/cpu.hpp"

namespace vtx::kernels {

namespace i4portable {
#include "kernels/int4_params_impl.hpp"
}  // namespace i4portable
namespace i4avx2 {  // int4_params_avx2.cpp
double group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes);
void choose_params(const float* w, int64_t n, bool mse, float* scale, float* zero, uint8_t* codes, uint8_t* scratch);
}  // namespace i4avx2

const char* int4_method_name(Int4Method m) { return m == Int4Method::MinMax ? "minmax" : "mse"; }

bool parse_int4_method(const std::string& s, Int4Method* out) {
  for (Int4Method m : {Int4Method::MinMax, Int4Method::Mse})
    if (s == int4_method_name(m)) {
      *out = m;
      return true;
    }
  return false;
}

Int4Method int4_default_method() {
  static const Int4Method m = [] {
    Int4Method r = Int4Method::Mse;
    const char* e = std::getenv("VTX_INT4_METHOD");
    if (e && *e && !parse_int4_method(e, &r))
      throw std::invalid_argument(std::string("VTX_INT4_METHOD=\"") + e + "\" is not one of minmax, mse");
    return r;
  }();
  return m;
}

double int4_group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes) {
  return i4portable::group_error(w, n, scale, zero, codes);
}

void int4_choose_params(const float* w, int64_t n, Int4Method m, float* scale, float* zero, uint8_t* codes) {
  if (n <= 0) throw std::invalid_argument("int4_choose_params: empty group");
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < static_cast<size_t>(n)) scratch.resize(static_cast<size_t>(n));
  const bool mse = m == Int4Method::Mse;
  if (cpu_has_avx2_fma())
    i4avx2::choose_params(w, n, mse, scale, zero, codes, scratch.data());
  else
    i4portable::choose_params(w, n, mse, scale, zero, codes, scratch.data());
}

}  // namespace vtx::kernels
