#include "core/peak.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"
#include "vtx/model.hpp"

namespace vtx {
namespace {

__attribute__((target("avx2,fma"), noinline)) float fma_loop256(int64_t iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(0.1f * static_cast<float>(i + 1));
  __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  asm volatile("" : "+x"(m), "+x"(c));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], m, c);
  }
  __m256 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0] + out[7];
}

__attribute__((target("avx512f"), noinline)) float fma_loop512(int64_t iters) {
  __m512 a[24];
  for (int i = 0; i < 24; ++i) a[i] = _mm512_set1_ps(0.01f * static_cast<float>(i + 1));
  __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  asm volatile("" : "+v"(m), "+v"(c));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, a[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0] + out[15];
}

}  // namespace

double measure_fma_peak_gflops(bool all_threads, FmaWidth width) {
  if (width == FmaWidth::Widest) width = cpu_has_avx512() ? FmaWidth::Avx512 : FmaWidth::Avx2;
  if (width == FmaWidth::Avx512 && !cpu_features().avx512f) return 0;
  if (width == FmaWidth::Avx2 && !cpu_has_avx2_fma()) return 0;
  const bool zmm = width == FmaWidth::Avx512;
  const int64_t iters = zmm ? 500'000 : 1'000'000;
  const double flops_per_iter = zmm ? 24 * 16 * 2 : 12 * 8 * 2;
  std::atomic<float> sink{0};  // keeps the loops' results alive
  auto loop = [&] { sink.store(zmm ? fma_loop512(iters) : fma_loop256(iters), std::memory_order_relaxed); };
  double best = 0;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    int nt = 1;
    if (all_threads) {
      nt = global_pool().size();
      global_pool().run_on_all([&](int, int) { loop(); });
    } else {
      loop();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops_per_iter * static_cast<double>(iters) * nt / s / 1e9);
  }
  return best;
}

}  // namespace vtx

namespace vtx {
double fma_peak_gflops(bool all_threads) { return measure_fma_peak_gflops(all_threads, FmaWidth::Widest); }
}  // namespace vtx
