// Quantized / half-precision GEMM benchmarks on the linear-layer shapes of ViT-B/16 and DINOv2-S (batch 8 and 1),
// against the fp32 GEMM on the same shape. Counter GOPS = 2*M*N*K per call (multiply-adds x 2, whatever the type).
//   bench/bench_qgemm --benchmark_filter='fc1'   (see the shapes below)
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "core/threadpool.hpp"
#include "kernels/gemm.hpp"
#include "kernels/qgemm.hpp"

using namespace vtx::kernels;

namespace {

std::vector<float> rnd(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// args: M, N, K, threads, type (0 f32, 1 f16, 2 bf16, 3 int8, 4 int4), kernel (0: what linear_q picks on this
// CPU, 1: the AVX2 kernels via linear_q_avx2)
void BM_linear(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const int threads = static_cast<int>(st.range(3));
  const WType t = static_cast<WType>(st.range(4));
  const bool avx2 = st.range(5) == 1;
  const auto kernel = avx2 ? linear_q_avx2 : linear_q;
  if (vtx::num_threads() != threads) vtx::set_num_threads(threads);
  auto A = rnd(M * K, 1), W = rnd(N * K, 2), b = rnd(N, 3);
  std::vector<float> C(M * N, 0.f);
  Epilogue ep;
  ep.bias = b.data();
  ep.act = Act::Gelu;
  PackedWeight pw;
  QuantWeight qw;
  if (t == WType::F32) pw = PackedWeight::pack(W.data(), N, K);
  else qw = QuantWeight::pack(quantize(W.data(), N, K, t));
  for (auto _ : st) {
    if (t == WType::F32) linear(A.data(), M, K, pw, C.data(), N, ep);
    else kernel(A.data(), M, K, qw, C.data(), N, ep);
    benchmark::DoNotOptimize(C.data());
  }
  st.counters["GOPS"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9, benchmark::Counter::kIsRate);
  st.SetLabel(std::string(wtype_name(t)) + (t == WType::F32 ? "" : avx2 ? " avx2" : " linear_q"));
}

void shapes(benchmark::internal::Benchmark* b) {
  // {M, N, K}: ViT-B/16 batch 8 (M = 8 * 197): qkv, o, fc1, fc2; DINOv2-S batch 8 (M = 8 * 257) fc1, fc2;
  // ViT-B/16 batch 1: qkv, o, fc1, fc2.
  const int64_t s[][3] = {{1576, 2304, 768}, {1576, 768, 768}, {1576, 3072, 768}, {1576, 768, 3072},
                          {2056, 1536, 384}, {2056, 384, 1536}, {197, 2304, 768},  {197, 768, 768},
                          {197, 3072, 768},  {197, 768, 3072}};
  for (auto& x : s)
    for (int t = 0; t <= 4; ++t)
      for (int k = 0; k <= (t == 0 ? 0 : 1); ++k) b->Args({x[0], x[1], x[2], 2, t, k});
}

BENCHMARK(BM_linear)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
