#pragma once
// Measured fp32 FMA peak of this machine (GFLOP/s): a tight loop of independent 256-bit FMAs
// (12 accumulator chains cover the FMA latency on two pipes). Used by `vtx bench` and the kernel benchmarks
// to report % of peak. Returns 0 when the CPU has no AVX2/FMA.
namespace vtx {

double measure_fma_peak_gflops(bool all_threads);

}  // namespace vtx
