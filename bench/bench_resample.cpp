// PIL resize (vtx::resize, kernels/resample.hpp) of an RGB image, per kernel path: the two model-size resizes of
// a 640x480 photo (341x256 bicubic for DINOv2, 224x224 bilinear for ViT), and each pass alone (a resize that
// changes only the width runs only the horizontal pass, over every row; only the height: only the vertical).
// Coefficient precompute and allocation included. Single thread; report the median of the repetitions.
#include <benchmark/benchmark.h>

#include <random>

#include "kernels/kernels.hpp"
#include "vtx/processor.hpp"

namespace {

using vtx::kernels::Isa;

// args: in_w, in_h, out_w, out_h, filter (vtx::Resample), isa (0 portable, 1 avx2, 2 avx512)
void BM_resize(benchmark::State& st) {
  const int w = static_cast<int>(st.range(0)), h = static_cast<int>(st.range(1));
  const int ow = static_cast<int>(st.range(2)), oh = static_cast<int>(st.range(3));
  const auto filter = static_cast<vtx::Resample>(st.range(4));
  const auto isa = static_cast<Isa>(st.range(5));
  if (!vtx::kernels::isa_available(isa)) {
    st.SkipWithError("ISA not available");
    return;
  }
  vtx::kernels::ScopedIsa use(isa);
  vtx::Image in(w, h);
  std::mt19937 rng(1);
  for (auto& b : in.rgb) b = static_cast<uint8_t>(rng());
  const char* pass = ow != w && oh != h ? "both" : ow != w ? "horizontal" : "vertical";
  st.SetLabel(std::string(vtx::kernels::isa_name(isa)) + " " + pass);
  for (auto _ : st) {
    vtx::Image out = vtx::resize(in, ow, oh, filter);
    benchmark::DoNotOptimize(out.rgb.data());
  }
}

constexpr int kBicubic = static_cast<int>(vtx::Resample::Bicubic), kBilinear = static_cast<int>(vtx::Resample::Bilinear);

void cases(benchmark::internal::Benchmark* b) {
  const int c[][5] = {{640, 480, 341, 256, kBicubic},  {640, 480, 341, 480, kBicubic},  {341, 480, 341, 256, kBicubic},
                      {640, 480, 224, 224, kBilinear}, {640, 480, 224, 480, kBilinear}, {224, 480, 224, 224, kBilinear}};
  for (const auto& x : c)
    for (int isa : {0, 1}) b->Args({x[0], x[1], x[2], x[3], x[4], isa});
}

BENCHMARK(BM_resize)->Apply(cases)->Unit(benchmark::kMicrosecond)->Repetitions(9)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
