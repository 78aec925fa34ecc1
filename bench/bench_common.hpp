#pragma once
// Shared by the kernel benchmarks: measured FMA peak (GFLOP/s) of this machine, single thread and on all
// threads of the vtx pool. A tight loop of independent 256-bit FMAs (12 accumulator chains, enough to cover
// the FMA latency on 2 pipes).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <vector>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"

namespace vtx::bench {

__attribute__((target("avx2,fma"), noinline)) inline float fma_loop(int64_t iters) {
  // Distinct start values and an asm barrier so the compiler can neither merge the chains nor drop them.
  __m256 a0 = _mm256_set1_ps(0.1f), a1 = _mm256_set1_ps(0.2f), a2 = _mm256_set1_ps(0.3f), a3 = _mm256_set1_ps(0.4f),
         a4 = _mm256_set1_ps(0.5f), a5 = _mm256_set1_ps(0.6f), a6 = _mm256_set1_ps(0.7f), a7 = _mm256_set1_ps(0.8f),
         a8 = _mm256_set1_ps(0.9f), a9 = _mm256_set1_ps(1.0f), a10 = _mm256_set1_ps(1.1f), a11 = _mm256_set1_ps(1.2f);
  __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  asm volatile("" : "+x"(m), "+x"(c));
  for (int64_t i = 0; i < iters; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c);
    a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c);
    a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c);
    a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    a10 = _mm256_fmadd_ps(a10, m, c);
    a11 = _mm256_fmadd_ps(a11, m, c);
    asm volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

constexpr double kFlopsPerIter = 12 * 8 * 2;

// Same with 512-bit FMAs (24 chains); only called when the CPU has AVX-512F.
__attribute__((target("avx512f"), noinline)) inline float fma_loop512(int64_t iters) {
  __m512 a[24];
  for (int i = 0; i < 24; ++i) a[i] = _mm512_set1_ps(0.01f * (i + 1));
  __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  asm volatile("" : "+v"(m), "+v"(c));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (int j = 0; j < 24; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, a[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0] + out[15];
}
constexpr double kFlopsPerIter512 = 24 * 16 * 2;

// Best of several runs of ~20 ms each (GFLOP/s).
inline double measure_peak(bool all_threads, bool zmm = false) {
  const int64_t iters = zmm ? 500'000 : 1'000'000;
  const double fpi = zmm ? kFlopsPerIter512 : kFlopsPerIter;
  auto loop = [&] { return zmm ? fma_loop512(iters) : fma_loop(iters); };
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    int nt = 1;
    if (all_threads) {
      nt = vtx::global_pool().size();
      vtx::global_pool().run_on_all([&](int, int) { sink = sink + loop(); });
    } else {
      sink = sink + loop();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, fpi * iters * nt / s / 1e9);
  }
  return best;
}

// Peaks of the widest FMA the GEMM uses (AVX-512 when vtx::cpu_has_avx512(), else AVX2), and the AVX2 peak.
struct Peak {
  double one = 0, all = 0;
  double one256 = 0, all256 = 0;
  bool zmm = false;
  int threads = 1;
};
inline const Peak& peak() {
  static Peak p = [] {
    Peak r;
    measure_peak(true);  // warm-up: wake the pool threads, let clocks settle
    r.one256 = measure_peak(false);
    r.all256 = measure_peak(true);
    r.zmm = vtx::cpu_has_avx512();
    r.one = r.zmm ? measure_peak(false, true) : r.one256;
    r.all = r.zmm ? measure_peak(true, true) : r.all256;
    r.threads = vtx::global_pool().size();
    std::fprintf(stderr,
                 "# measured FMA peak (GFLOP/s): AVX2 %.1f (1 thread) %.1f (%d threads); AVX-512 %s %.1f / %.1f\n",
                 r.one256, r.all256, r.threads, r.zmm ? "" : "(unused)", r.zmm ? r.one : 0.0, r.zmm ? r.all : 0.0);
    return r;
  }();
  return p;
}
// Peak for a run on `threads` threads.
inline double peak_for(int threads) {
  return threads <= 1 ? peak().one : peak().all * std::min(threads, peak().threads) / peak().threads;
}

// CPU time of the calling thread (s). With other processes on the machine, GFLOP/s per CPU-second of a
// single-threaded run is a contention-robust estimate of kernel efficiency (reported as *_cpu counters).
inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

}  // namespace vtx::bench
