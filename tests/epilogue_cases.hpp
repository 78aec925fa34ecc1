#pragma once
// The fused GEMM epilogues the kernel tests cover (test_quant, test_bf16), numbered as they loop over them.
#include <cstdint>

#include "kernels/gemm.hpp"

namespace vtx::test {

constexpr int kEpilogueCases = 4;
// 0: none; 1: bias + GELU; 2: bias + layer scale + residual in place (C aliases the residual, ldr = ldc); 3: ReLU.
inline kernels::Epilogue epilogue_case(int which, const float* bias, const float* scale, float* C, int64_t ldc) {
  kernels::Epilogue e;
  if (which == 1 || which == 2) e.bias = bias;
  if (which == 1) e.act = kernels::Act::Gelu;
  if (which == 3) e.act = kernels::Act::Relu;
  if (which == 2) {
    e.scale = scale;
    e.residual = C;
    e.ldr = ldc;
  }
  return e;
}

}  // namespace vtx::test
