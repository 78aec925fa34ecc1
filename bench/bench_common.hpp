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
#include "core/peak.hpp"
#include "core/threadpool.hpp"

namespace vtx::bench {

// The FMA loops live in the library (src/core/peak.cpp), shared with `vtx bench`.
inline double measure_peak(bool all_threads, bool zmm = false) {
  return vtx::measure_fma_peak_gflops(all_threads, zmm ? vtx::FmaWidth::Avx512 : vtx::FmaWidth::Avx2);
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
