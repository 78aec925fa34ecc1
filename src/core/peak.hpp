#pragma once
// Measured fp32 FMA peak of this machine (GFLOP/s): tight loops of independent FMAs (12 ymm or 24 zmm
// accumulator chains, enough to cover the FMA latency on two pipes), best of 15 runs of ~20 ms.
// `vtx bench` and the kernel benchmarks report "% of peak" against it.
namespace vtx {

enum class FmaWidth {
  Widest,  // what the GEMM uses on this CPU: AVX-512 when available (and not disabled), else AVX2
  Avx2,
  Avx512,
};

// all_threads: run the loop on every thread of the global pool at once. Returns 0 if the CPU lacks the width.
double measure_fma_peak_gflops(bool all_threads, FmaWidth width = FmaWidth::Widest);

}  // namespace vtx
