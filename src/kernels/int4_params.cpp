// int4 group parameters (int4_params.hpp): torchao's min/max choice and the error-minimising search.
//
// Mse, per group of n weights (common/int4_params_impl.hpp, built in portable/int4_params.cpp and
// avx2/int4_params.cpp; both give the same bits):
//   1. candidates: codes q = clamp(round((w - lo) * inv), 0, 15) for inv = (15 + t) / (max - min),
//      t in {-1, -2/3, ..., 1}, anchored at the minimum (lo = min) and at the maximum (lo = max - 15 / inv),
//      7 ranges x 2 anchors = 14 candidates in 7 passes (t = 0 is min/max's own code assignment);
//   2. for each candidate the least-squares (s, b) of w ~ s * q + b (a 2x2 solve from sum q, sum q^2, sum q w,
//      sum w) and its squared error in closed form; keep the best;
//   3. up to 2 alternating refinements: nearest codes for the best (s, z = b + 8 s), refit, keep while the
//      error drops;
//   4. the codes are torchao's quantize_affine with the result's (s, z); its exact error (int4_group_error) is
//      compared with min/max's, and min/max's parameters are kept unless the search is strictly better.
#include "kernels/int4_params.hpp"

#include <cstdlib>
#include <vector>

#include "kernels/kernels.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

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
      throw Error(std::string("VTX_INT4_METHOD=\"") + e + "\": expected minmax or mse");
    return r;
  }();
  return m;
}

double int4_group_error(const float* w, int64_t n, float scale, float zero, const uint8_t* codes) {
  return portable::int4_group_error(w, n, scale, zero, codes);
}

void int4_choose_params(const float* w, int64_t n, Int4Method m, float* scale, float* zero, uint8_t* codes) {
  if (n <= 0) throw Error("int4_choose_params: n = " + std::to_string(n) + " (a group needs at least one weight)");
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < static_cast<size_t>(n)) scratch.resize(static_cast<size_t>(n));
  const bool mse = m == Int4Method::Mse;
  kernel_table().int4_params(w, n, mse, scale, zero, codes, scratch.data());
}

}  // namespace vtx::kernels
