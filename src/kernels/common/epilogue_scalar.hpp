#pragma once
// The GEMM epilogue on one element, in plain C++ (portable kernels and scalar references; not for avx2/ files):
// y = acc + bias[n]; y = act(y); y *= scale[n]; y += residual[m, n].
#include <cstdint>

#include "kernels/gemm.hpp"

namespace vtx::kernels {

static inline float epilogue_scalar(float y, int64_t m, int64_t n, const Epilogue& ep) {
  if (ep.bias) y += ep.bias[n];
  y = act_ref(y, ep.act);
  if (ep.scale) y *= ep.scale[n];
  if (ep.residual) y += ep.residual[m * ep.ldr + n];
  return y;
}

}  // namespace vtx::kernels
