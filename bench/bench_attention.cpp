// Attention benchmarks: fused kernel (no probs) and exact-probs path. GFLOPS counts the two matmuls
// (4*B*H*T^2*dh); pct_peak is relative to the measured FMA peak for the same thread count.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bench_common.hpp"
#include "core/threadpool.hpp"
#include "kernels/attention.hpp"

using namespace vtx::kernels;

namespace {

// args: B, T, H, dh, probs, threads
void BM_attention(benchmark::State& st) {
  const int64_t B = st.range(0), T = st.range(1), H = st.range(2), dh = st.range(3);
  const bool want_probs = st.range(4) != 0;
  const int threads = static_cast<int>(st.range(5));
  if (vtx::num_threads() != threads) vtx::set_num_threads(threads);
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> qkv(B * T * 3 * H * dh), out(B * T * H * dh), probs(want_probs ? B * H * T * T : 0);
  for (auto& x : qkv) x = u(g);
  AttentionArgs a;
  a.qkv = qkv.data(), a.B = B, a.T = T, a.H = H, a.dh = dh, a.out = out.data();
  a.probs = want_probs ? probs.data() : nullptr;
  const double c0 = vtx::bench::thread_cpu_seconds();
  for (auto _ : st) {
    attention(a);
    benchmark::ClobberMemory();
  }
  const double gf = 4.0 * B * H * T * T * dh * static_cast<double>(st.iterations()) / 1e9;
  st.counters["GFLOPS"] = benchmark::Counter(gf, benchmark::Counter::kIsRate);
  st.counters["pct_peak"] = benchmark::Counter(gf * 100.0 / vtx::bench::peak_for(threads), benchmark::Counter::kIsRate);
  const double cpu_s = vtx::bench::thread_cpu_seconds() - c0;
  if (threads == 1 && cpu_s > 0) {
    st.counters["GFLOPS_cpu"] = gf / cpu_s;
    st.counters["pct_peak_cpu"] = gf / cpu_s * 100.0 / vtx::bench::peak_for(1);
  }
}

BENCHMARK(BM_attention)
    ->Apply([](benchmark::internal::Benchmark* b) {
      for (int t : {1, 2}) {
        b->Args({1, 1370, 6, 64, 0, t});  // DINOv2-S 518x518
        b->Args({1, 197, 12, 64, 0, t});  // ViT-B/16 224, batch 1
        b->Args({8, 197, 12, 64, 0, t});  // ViT-B/16 batch 8
        b->Args({1, 257, 6, 64, 0, t});   // DINOv2-S 224, batch 1
        b->Args({8, 257, 6, 64, 0, t});   // DINOv2-S batch 8
        b->Args({1, 1370, 6, 64, 1, t});  // with output_attentions
        b->Args({1, 197, 12, 64, 1, t});
      }
      b->ArgNames({"B", "T", "H", "dh", "probs", "thr"})->Unit(benchmark::kMicrosecond)->MinTime(0.3)->UseRealTime();
    });

// BEiT's relative position bias: the same attention with and without an additive [H, T, T] score bias.
// args: T, H, bias, threads (batch 1, dh 64)
void BM_attention_bias(benchmark::State& st) {
  const int64_t T = st.range(0), H = st.range(1), dh = 64;
  const int threads = static_cast<int>(st.range(3));
  if (vtx::num_threads() != threads) vtx::set_num_threads(threads);
  std::mt19937 g(2);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> qkv(T * 3 * H * dh), out(T * H * dh), bias(H * T * T);
  for (auto& x : qkv) x = u(g);
  for (auto& x : bias) x = u(g);
  AttentionArgs a;
  a.qkv = qkv.data(), a.B = 1, a.T = T, a.H = H, a.dh = dh, a.out = out.data();
  a.bias = st.range(2) ? bias.data() : nullptr;
  for (auto _ : st) {
    attention(a);
    benchmark::ClobberMemory();
  }
  st.counters["GFLOPS"] =
      benchmark::Counter(4.0 * H * T * T * dh * static_cast<double>(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_attention_bias)
    ->Apply([](benchmark::internal::Benchmark* b) {
      for (int t : {1, 2})
        for (int bias : {0, 1}) b->Args({197, 12, bias, t});  // BEiT-base 224 vs the same without bias
      b->ArgNames({"T", "H", "bias", "thr"})->Unit(benchmark::kMicrosecond)->MinTime(0.3)->UseRealTime();
    });

}  // namespace

int main(int argc, char** argv) {
  vtx::bench::peak();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
