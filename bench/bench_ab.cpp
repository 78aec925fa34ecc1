// Paired A/B latency of whole models in one process, for a machine shared with other load:
//   bench_ab [--threads T] [--rounds N] [--size S] MODEL_REF MODEL_B [MODEL_C ...]
// Loads every folder, warms each up, then per round runs one forward pass (batch 1, S x S random pixels) of
// every model back to back, in an order that rotates each round, and records per-round ratios to MODEL_REF.
// Neighbouring passes share the machine's load, so the median of the paired ratios is far steadier than the
// ratio of two separately measured medians. Prints per model: median and min ms, median paired ratio and its
// interquartile range.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "vtx/model.hpp"

namespace {

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, rounds = 20, size = 224;
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--size" && i + 1 < argc) size = std::atoi(argv[++i]);
    else dirs.push_back(a);
  }
  if (dirs.size() < 2 || rounds < 1 || size < 16) {
    std::fprintf(stderr, "usage: bench_ab [--threads T] [--rounds N] [--size S] MODEL_REF MODEL_B [MODEL_C ...]\n");
    return 2;
  }
  try {
    if (threads > 0) vtx::set_num_threads(threads);
    std::vector<std::shared_ptr<const vtx::Model>> models;
    std::vector<std::unique_ptr<vtx::Session>> sessions;
    for (const auto& d : dirs) {
      models.push_back(vtx::Model::load(d));
      sessions.push_back(std::make_unique<vtx::Session>(models.back()));
    }
    vtx::Tensor px({1, 3, size, size}, vtx::DType::F32);
    std::mt19937 g(0);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int64_t i = 0; i < px.numel(); ++i) px.data<float>()[i] = u(g);
    for (auto& s : sessions) s->forward(px);  // warm-up (workspace, bias caches)
    const size_t M = models.size();
    std::vector<std::vector<double>> ms(M), ratio(M);
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> t(M);
      for (size_t k = 0; k < M; ++k) {
        const size_t m = (k + static_cast<size_t>(r)) % M;
        const auto t0 = std::chrono::steady_clock::now();
        sessions[m]->forward(px);
        t[m] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      }
      for (size_t m = 0; m < M; ++m) {
        ms[m].push_back(t[m]);
        ratio[m].push_back(t[m] / t[0]);
      }
    }
    std::printf("%d rounds, %dx%d, batch 1, %d threads\n", rounds, size, size, vtx::num_threads());
    std::printf("%-48s %10s %10s %12s %18s\n", "model", "median ms", "min ms", "ratio (med)", "ratio IQR");
    for (size_t m = 0; m < M; ++m)
      std::printf("%-48s %10.1f %10.1f %12.4f %8.4f - %.4f\n", dirs[m].c_str(), quantile(ms[m], 0.5),
                  quantile(ms[m], 0.0), quantile(ratio[m], 0.5), quantile(ratio[m], 0.25), quantile(ratio[m], 0.75));
  } catch (const vtx::Error& e) {
    std::fprintf(stderr, "bench_ab: %s\n", e.what());
    return 1;
  }
  return 0;
}
