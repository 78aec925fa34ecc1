#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/cpu.hpp"
#include "core/peak.hpp"
#include "core/threadpool.hpp"

namespace vtx {
namespace {

__attribute__((noinline)) float fma_loop(int64_t iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(0.1f * static_cast<float>(i + 1));
  __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  asm volatile("" : "+x"(m), "+x"(c));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], m, c);
    asm volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]));
  }
  __m256 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

}  // namespace

double measure_fma_peak_gflops(bool all_threads) {
  if (!cpu_has_avx2_fma()) return 0;
  const int64_t iters = 1'000'000;
  const double flops_per_iter = 12 * 8 * 2;
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 12; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    int nt = 1;
    if (all_threads) {
      nt = global_pool().size();
      global_pool().run_on_all([&](int, int) { sink = sink + fma_loop(iters); });
    } else {
      sink = sink + fma_loop(iters);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops_per_iter * static_cast<double>(iters) * nt / s / 1e9);
  }
  return best;
}

}  // namespace vtx
