// GEMM benchmarks on the linear-layer shapes of ViT-B/16 and DINOv2-S/B (batch 1 and 8), fp32 and bf16 compute.
// Counters: GFLOPS (2*M*N*K per call) and pct_peak (vs the FMA peak measured at startup for the same
// number of threads). Compared against oneDNN dnnl_sgemm and OpenBLAS cblas_sgemm when available
// (bench-only link, see bench/CMakeLists.txt). Thread counts: the `threads` argument (vtx pool;
// OpenBLAS via openblas_set_num_threads; oneDNN via OMP_NUM_THREADS of the process, default all cores).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bench_common.hpp"
#include "core/cpu.hpp"
#include "core/threadpool.hpp"
#include "kernels/gemm.hpp"
#include "kernels/kernels.hpp"

#ifdef VTX_BENCH_HAVE_DNNL
#include <dnnl.h>
#endif
#ifdef VTX_BENCH_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

using namespace vtx::kernels;

namespace {

std::vector<float> rnd(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void set_counters(benchmark::State& st, double flops, int threads, double cpu_s) {
  const double gf = flops * static_cast<double>(st.iterations()) / 1e9;
  st.counters["GFLOPS"] = benchmark::Counter(gf, benchmark::Counter::kIsRate);
  st.counters["pct_peak"] = benchmark::Counter(gf * 100.0 / vtx::bench::peak_for(threads), benchmark::Counter::kIsRate);
  if (threads == 1 && cpu_s > 0) {
    st.counters["GFLOPS_cpu"] = gf / cpu_s;
    st.counters["pct_peak_cpu"] = gf / cpu_s * 100.0 / vtx::bench::peak_for(1);
  }
}

void ensure_threads(int t) {
  if (vtx::num_threads() != t) vtx::set_num_threads(t);
}

// epilogue 0: none, 1: bias+GELU, 2: bias+layerscale+residual in place
Epilogue bench_ep(int64_t which, const std::vector<float>& b, const std::vector<float>& s, std::vector<float>& C,
                  int64_t N) {
  Epilogue ep;
  if (which == 1) {
    ep.bias = b.data();
    ep.act = Act::Gelu;
  } else if (which == 2) {
    ep.bias = b.data();
    ep.scale = s.data();
    ep.residual = C.data();
    ep.ldr = N;
  }
  return ep;
}

// The body every linear benchmark shares: random A [M, K] and W [N, K], W packed by pack(W, N, K), C of M rows
// with row stride ldc, epilogue `which` (bench_ep), then timed calls of run(A, M, K, w, C, ldc, ep).
template <class Pack, class Run>
void time_linear(benchmark::State& st, int64_t M, int64_t N, int64_t K, int threads, int64_t ldc, int64_t which,
                 Pack pack, Run run) {
  ensure_threads(threads);
  auto A = rnd(M * K, 1), W = rnd(N * K, 2), b = rnd(N, 3), s = rnd(N, 4);
  std::vector<float> C(M * ldc, 0.f);
  const auto w = pack(W.data(), N, K);
  const Epilogue ep = bench_ep(which, b, s, C, ldc);
  const double c0 = vtx::bench::thread_cpu_seconds();
  for (auto _ : st) {
    run(A.data(), M, K, w, C.data(), ldc, ep);
    benchmark::ClobberMemory();
  }
  set_counters(st, 2.0 * M * N * K, threads, vtx::bench::thread_cpu_seconds() - c0);
}

PackedWeight pack_f32(const float* w, int64_t N, int64_t K) { return PackedWeight::pack(w, N, K); }
void f32_linear(const float* A, int64_t M, int64_t K, const PackedWeight& w, float* C, int64_t ldc,
                const Epilogue& ep) {
  linear(A, M, K, w, C, ldc, ep);
}

// args: M, N, K, threads, epilogue (bench_ep)
void BM_vtx(benchmark::State& st) {
  const int64_t N = st.range(1);
  time_linear(st, st.range(0), N, st.range(2), static_cast<int>(st.range(3)), N, st.range(4), pack_f32, f32_linear);
}

// bf16 compute (kernels/bf16gemm.hpp, vdpbf16ps): args as BM_vtx. pct_bf16_peak: % of the bf16 peak, taken as
// 2x the fp32 FMA peak (one vdpbf16ps does 32 multiply-adds where one zmm FMA does 16, at the same rate).
void BM_bf16(benchmark::State& st) {
  if (!kernel_table().gemm_bf16) return st.SkipWithError("no AVX512-BF16");
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const int threads = static_cast<int>(st.range(3));
  time_linear(st, M, N, K, threads, N, st.range(4), Bf16Weight::pack,
              [](const float* A, int64_t m, int64_t k, const Bf16Weight& w, float* C, int64_t ldc, const Epilogue& ep) {
                linear_bf16(A, m, k, w, C, ldc, ep);
              });
  const double gf = 2.0 * M * N * K * static_cast<double>(st.iterations()) / 1e9;
  st.counters["pct_bf16_peak"] =
      benchmark::Counter(gf * 100.0 / (2.0 * vtx::bench::peak_for(threads)), benchmark::Counter::kIsRate);
  if (threads == 1) st.counters["pct_bf16_peak_cpu"] = st.counters["pct_peak_cpu"].value / 2.0;
}

// The AVX2 kernel (layout 1) with explicit blocking: args M, N, K, threads, kc (0: the default), prefetch of the
// next B block (0/1, -1: the default). For A/B
// comparisons of the blocking in one process: run with --benchmark_repetitions=N
// --benchmark_enable_random_interleaving=true and compare the medians.
void BM_avx2_kc(benchmark::State& st) {
  if (!vtx::cpu_has_avx2_fma()) return st.SkipWithError("no AVX2");
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const int threads = static_cast<int>(st.range(3));
  ensure_threads(threads);
  auto A = rnd(M * K, 1), W = rnd(N * K, 2);
  std::vector<float> C(M * N, 0.f);
  PackedWeight pw = PackedWeight::pack(W.data(), N, K, PackedWeight::kLayoutAvx2);
  const avx2::GemmBlocking saved = avx2::gemm_blocking();
  avx2::GemmBlocking b = saved;
  if (st.range(4) > 0) b.kc = st.range(4);
  if (st.range(5) >= 0) b.prefetch_b = st.range(5) != 0;
  avx2::set_gemm_blocking(b);
  const double c0 = vtx::bench::thread_cpu_seconds();
  for (auto _ : st) {
    linear(A.data(), M, K, pw, C.data(), N, {});
    benchmark::ClobberMemory();
  }
  avx2::set_gemm_blocking(saved);
  st.counters["kc"] = static_cast<double>(b.kc);
  st.counters["pfb"] = b.prefetch_b ? 1 : 0;
  // % of the AVX2 (ymm) peak, whatever the widest FMA of this CPU
  const double gf = 2.0 * M * N * K * static_cast<double>(st.iterations()) / 1e9;
  const double cpu_s = vtx::bench::thread_cpu_seconds() - c0;
  st.counters["GFLOPS"] = benchmark::Counter(gf, benchmark::Counter::kIsRate);
  const vtx::bench::Peak& pk = vtx::bench::peak();
  st.counters["pct_ymm_peak"] =
      benchmark::Counter(gf * 100.0 / (threads <= 1 ? pk.one256 : pk.all256 * std::min(threads, pk.threads) / pk.threads),
                         benchmark::Counter::kIsRate);
  if (threads == 1 && cpu_s > 0) {
    st.counters["GFLOPS_cpu"] = gf / cpu_s;
    st.counters["pct_ymm_peak_cpu"] = gf / cpu_s * 100.0 / pk.one256;
  }
}

#ifdef VTX_BENCH_HAVE_DNNL
void BM_onednn(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  auto A = rnd(M * K, 1), W = rnd(N * K, 2);
  std::vector<float> C(M * N, 0.f);
  const double c0 = vtx::bench::thread_cpu_seconds();
  for (auto _ : st) {
    dnnl_sgemm('N', 'T', M, N, K, 1.f, A.data(), K, W.data(), K, 0.f, C.data(), N);
    benchmark::ClobberMemory();
  }
  set_counters(st, 2.0 * M * N * K, static_cast<int>(st.range(3)), vtx::bench::thread_cpu_seconds() - c0);
}
#endif

#ifdef VTX_BENCH_HAVE_OPENBLAS
void BM_openblas(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  openblas_set_num_threads(static_cast<int>(st.range(3)));
  auto A = rnd(M * K, 1), W = rnd(N * K, 2);
  std::vector<float> C(M * N, 0.f);
  const double c0 = vtx::bench::thread_cpu_seconds();
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, A.data(), K, W.data(), K, 0.f, C.data(), N);
    benchmark::ClobberMemory();
  }
  set_counters(st, 2.0 * M * N * K, static_cast<int>(st.range(3)), vtx::bench::thread_cpu_seconds() - c0);
}
#endif

// args: all threads?, 512-bit?
void BM_fma_peak(benchmark::State& st) {
  const bool all = st.range(0) != 0, zmm = st.range(1) != 0;
  if (zmm && !vtx::cpu_has_avx512()) return st.SkipWithError("no AVX-512");
  double g = 0;
  for (auto _ : st) g = vtx::bench::measure_peak(all, zmm);
  st.counters["GFLOPS"] = g;
  st.counters["threads"] = all ? vtx::global_pool().size() : 1;
}
BENCHMARK(BM_fma_peak)->Args({0, 0})->Args({1, 0})->Args({0, 1})->Args({1, 1})->Iterations(1)->Unit(benchmark::kMillisecond);

const int64_t kShapes[][3] = {
    // ViT-B/16 batch 1 (M = 197): qkv, proj, fc1, fc2
    {197, 2304, 768}, {197, 768, 768}, {197, 3072, 768}, {197, 768, 3072},
    // DINOv2-S/14 batch 1 (M = 257): qkv, proj, fc1, fc2
    {257, 1152, 384}, {257, 384, 384}, {257, 1536, 384}, {257, 384, 1536},
    // DINOv2-B batch 1 (M = 257)
    {257, 2304, 768}, {257, 3072, 768}, {257, 768, 3072},
    // ViT-B/16 batch 8 (M = 1576)
    {1576, 2304, 768}, {1576, 3072, 768}, {1576, 768, 3072},
    // DINOv2-S batch 8 (M = 2056)
    {2056, 1152, 384}, {2056, 384, 384}, {2056, 1536, 384}, {2056, 384, 1536},
    // patch embeddings as GEMM: ViT-B/16 (K = 3*16*16), DINOv2-S 518px (1369 patches, K = 3*14*14)
    {196, 768, 768}, {1369, 384, 588},
    // classifier head (N = 1000, M = 1)
    {1, 1000, 768},
};

void shapes(benchmark::internal::Benchmark* b, bool with_ep) {
  for (int t : {1, 2})
    for (auto& s : kShapes) {
      b->Args({s[0], s[1], s[2], t, 0});
      if (with_ep && s[1] > s[2] && s[0] > 1) b->Args({s[0], s[1], s[2], t, 1});  // fc1-like: bias+GELU
      if (with_ep && s[1] < s[2]) b->Args({s[0], s[1], s[2], t, 2});  // fc2-like: bias+ls+residual
    }
  b->ArgNames({"M", "N", "K", "thr", "ep"})->Unit(benchmark::kMicrosecond)->MinTime(0.3)->UseRealTime();
}

BENCHMARK(BM_vtx)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, true); });
BENCHMARK(BM_bf16)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, true); });
BENCHMARK(BM_avx2_kc)->Apply([](benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (auto& s : kShapes)
      if (s[0] > 1)
        for (int kc : {0, 256})
          for (int pf : {0, 1}) b->Args({s[0], s[1], s[2], t, kc, pf});
  b->ArgNames({"M", "N", "K", "thr", "kc", "pfb"})->Unit(benchmark::kMicrosecond)->MinTime(0.2)->UseRealTime();
});
#ifdef VTX_BENCH_HAVE_DNNL
// oneDNN uses its own OpenMP threads: the thr argument is only a label; run with OMP_NUM_THREADS=1 and
// --benchmark_filter=onednn.*thr:1 (or OMP_NUM_THREADS=2 and thr:2) for comparable rows.
BENCHMARK(BM_onednn)->Apply([](benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (auto& s : kShapes) b->Args({s[0], s[1], s[2], t, 0});
  b->ArgNames({"M", "N", "K", "thr", "ep"})->Unit(benchmark::kMicrosecond)->MinTime(0.3)->UseRealTime();
});
#endif
#ifdef VTX_BENCH_HAVE_OPENBLAS
BENCHMARK(BM_openblas)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, false); });
#endif

}  // namespace

int main(int argc, char** argv) {
  vtx::bench::peak();  // measure before anything else, print to stderr
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
// C's row stride (issue 17): args M, N, K, padding of ldc beyond N. With ldc a multiple of 1024 floats (4 KiB:
// N = 2048, 3072, 4096) the large-M GEMM runs at ~80 % of peak instead of ~89 %, and padding ldc by 16 floats
// restores it: every row of a C tile maps to the same cache sets. Streaming (non-temporal) C stores fixed this
// benchmark but not the ViT-B/16 batch-8 forward pass, so the kernels store normally (BENCHMARK.md).
void BM_ldc(benchmark::State& st) {
  const int64_t N = st.range(1);
  time_linear(st, st.range(0), N, st.range(2), 2, N + st.range(3), 0, pack_f32, f32_linear);
}
BENCHMARK(BM_ldc)->Args({1576, 3072, 768, 0})->Args({1576, 3072, 768, 16})->Args({1576, 3072, 768, 32})->Args({1576, 3072, 768, 64})->Args({1576, 2304, 768, 0})->Args({1576, 2048, 768, 0})->Args({1576, 4096, 768, 0})->Args({1576, 3584, 768, 0})->MinTime(0.3)->UseRealTime();
