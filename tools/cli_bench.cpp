// vtx bench MODEL_DIR [--batch N] [--threads T] [--height H --width W] [--warmup W] [--iters N] [--json]
// Times the forward pass only (same input every iteration, one Session, one process); load is timed separately.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_load_options.hpp"
#include "vtx/cpu.hpp"
#include "vtx/model.hpp"

namespace vtx::cli {

static double peak_rss_mb() {
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Resident set now (MB), from /proc/self/statm; 0 where unavailable.
static double current_rss_mb() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long size = 0, resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return got == 2 ? static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0) : 0;
}

static int cmd_bench(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({"--batch", "--height", "--width", "--warmup", "--iters"})),
              with_hub_bool_flags({"--json", "--no-peak"}));
  if (p.positional().size() != 1)
    throw CliError("usage: vtx bench MODEL_DIR [--batch N] [--threads T] [--height H --width W] [--warmup W] [--iters N] [--json] " + std::string(kLoadFlagsUsage));
  const int batch = p.get_int("--batch", 1), warmup = p.get_int("--warmup", 3), iters = p.get_int("--iters", 10);
  if (batch < 1 || iters < 1 || warmup < 0) throw CliError("--batch and --iters must be >= 1, --warmup >= 0");
  const std::string dir = local_model_dir(p, p.positional()[0]);  // folder or hub id

  auto t0 = std::chrono::steady_clock::now();
  const LoadOptions lopt = load_options(p);
  t0 = std::chrono::steady_clock::now();
  auto model = Model::load(dir, lopt);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double rss_loaded = current_rss_mb();
  const ModelInfo& info = model->info();
  int64_t def = info.image_size > 0 ? info.image_size : 224;
  if (info.model_type.rfind("dinov2", 0) == 0) def = 224;  // the ONNX Runtime anchors run DINOv2 at 224
  const int64_t H = p.get_int("--height", static_cast<int>(def)), W = p.get_int("--width", static_cast<int>(def));

  Tensor x({batch, info.num_channels, H, W}, DType::F32);
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  ForwardOptions opt;
  opt.interpolate_pos_encoding = true;

  Session s(model);
  for (int i = 0; i < warmup; ++i) s.forward(x, opt);
  std::vector<double> ms;
  double rss_steady = 0;
  for (int i = 0; i < iters; ++i) {
    auto a = std::chrono::steady_clock::now();
    s.forward(x, opt);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    if (i == 0) rss_steady = current_rss_mb();  // weights + activations + runtime, after a full forward pass
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                          : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  const double p90 = sorted[std::min(sorted.size() - 1, static_cast<size_t>(0.9 * static_cast<double>(sorted.size())))];
  const double gflop = forward_flops(info, H, W) * batch / 1e9;
  const double gflops = gflop / (median / 1e3);
  const double peak = p.has("--no-peak") ? 0 : fma_peak_gflops(true);  // widest FMA the GEMM uses
  nlohmann::json j = {{"tool", "vtx bench"}, {"model", dir}, {"architecture", info.architecture}, {"batch", batch},
                      {"height", H}, {"width", W}, {"threads", num_threads()}, {"warmup", warmup}, {"iters", iters},
                      {"load_ms", load_ms}, {"quantization", quantization_label(info)},
                      {"compute", compute_type_name(info.compute)}, {"median_ms", median}, {"min_ms", sorted.front()}, {"p90_ms", p90},
                      {"images_per_s_at_median", batch / (median / 1e3)}, {"gflop_per_batch", gflop},
                      {"gflops_at_median", gflops}, {"fma_peak_gflops", peak},
                      {"pct_peak", peak > 0 ? 100.0 * gflops / peak : 0.0}, {"peak_rss_mb", peak_rss_mb()},
                      {"rss_after_load_mb", rss_loaded}, {"rss_steady_mb", rss_steady}, {"cpu", cpu_isa_string()}};
  for (const KernelPath& k : kernel_dispatch_table()) j["kernels"][k.family] = k.path;
  if (p.has("--json")) {
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s  batch %d  %lldx%lld  %d threads\n", info.architecture.c_str(), batch, static_cast<long long>(H),
                static_cast<long long>(W), num_threads());
    std::printf("weights   %s   (compute %s)\n", weights_label(info).c_str(), compute_type_name(info.compute));
    std::printf("kernels  ");
    for (const KernelPath& k : kernel_dispatch_table()) std::printf(" %s=%s", k.family.c_str(), k.path.c_str());
    std::printf("   (cpu: %s)\n", cpu_isa_string().c_str());
    std::printf("load      %8.1f ms\n", load_ms);
    std::printf("median    %8.2f ms   min %.2f   p90 %.2f   (%d iters after %d warm-up)\n", median, sorted.front(), p90,
                iters, warmup);
    std::printf("images/s  %8.2f\n", batch / (median / 1e3));
    std::printf("GFLOP/s   %8.1f   (%.2f GFLOP per batch; measured FMA peak %.1f GFLOP/s -> %.0f%%)\n", gflops, gflop,
                peak, peak > 0 ? 100.0 * gflops / peak : 0.0);
    std::printf("peak RSS  %8.1f MB   (after load %.1f MB, steady after a forward pass %.1f MB: peak / steady %.2fx)\n",
                peak_rss_mb(), rss_loaded, rss_steady, rss_steady > 0 ? peak_rss_mb() / rss_steady : 0.0);
  }
  return 0;
}

VTX_COMMAND("bench", "MODEL_DIR [--batch N] [--threads T] [--height H --width W]: forward-pass latency", cmd_bench);

}  // namespace vtx::cli
