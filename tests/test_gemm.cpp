// Optimized linear() (every layout this CPU supports, 1 and 2 threads) vs the scalar linear_ref().
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.hpp"
#include "core/threadpool.hpp"
#include "kernels/gemm.hpp"
#include "kernels/kernels.hpp"
#include "support.hpp"

using namespace vtx::kernels;

namespace {

std::vector<float> rnd(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  return vtx::test::random_floats(n, seed, lo, hi);
}
std::vector<int> layouts() { return vtx::test::supported_gemm_layouts(); }

const char* act_name(Act a) {
  switch (a) {
    case Act::None: return "none";
    case Act::Gelu: return "gelu";
    case Act::GeluTanh: return "gelu_tanh";
    case Act::Relu: return "relu";
    case Act::QuickGelu: return "quick_gelu";
  }
  return "?";
}

// residual: 0 none, 1 separate buffer, 2 aliases C.
void check(int64_t M, int64_t N, int64_t K, bool bias, Act act, bool scale, int residual, int layout,
           int64_t lda_pad = 0, int64_t ldc_pad = 0) {
  const int64_t lda = K + lda_pad, ldc = N + ldc_pad;
  const uint32_t seed = static_cast<uint32_t>(M * 131 + N * 17 + K);
  auto A = rnd(static_cast<size_t>(M * lda), seed);
  auto W = rnd(static_cast<size_t>(N * K), seed + 1, -0.5f, 0.5f);
  auto b = rnd(static_cast<size_t>(N), seed + 2);
  auto s = rnd(static_cast<size_t>(N), seed + 3, 0.1f, 2.f);
  auto R = rnd(static_cast<size_t>(M * ldc), seed + 4, -3.f, 3.f);
  Epilogue ep;
  ep.bias = bias ? b.data() : nullptr;
  ep.act = act;
  ep.scale = scale ? s.data() : nullptr;
  const float sentinel = 12345.f;
  std::vector<float> ref(static_cast<size_t>(M * ldc), sentinel), got(ref);
  if (residual == 2) got = R;  // in-place residual: C starts as the residual
  Epilogue ep_ref = ep, ep_got = ep;
  if (residual) {
    ep_ref.residual = R.data();
    ep_ref.ldr = ldc;
    ep_got.residual = residual == 2 ? got.data() : R.data();
    ep_got.ldr = ldc;
  }
  linear_ref(A.data(), M, lda, W.data(), N, K, ref.data(), ldc, ep_ref);
  PackedWeight pw = PackedWeight::pack(W.data(), N, K, layout);
  ASSERT_EQ(pw.N(), N);
  ASSERT_EQ(pw.K(), K);
  ASSERT_EQ(pw.layout(), layout);
  linear(A.data(), M, lda, pw, got.data(), ldc, ep_got);
  // Error bound per element from Cauchy-Schwarz: sum_k |a_k w_k| <= |a_m| |w_n|.
  std::vector<double> an(M), wn(N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) an[m] += double(A[m * lda + k]) * A[m * lda + k];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wn[n] += double(W[n * K + k]) * W[n * K + k];
  int64_t bad = 0;
  double worst = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < ldc; ++n) {
      const float r = ref[m * ldc + n], g = got[m * ldc + n];
      if (n >= N) {  // padding columns must be untouched
        const float expect = residual == 2 ? R[m * ldc + n] : sentinel;
        if (g != expect) ++bad;
        continue;
      }
      const double absdot = std::sqrt(an[m] * wn[n]);
      const double tol = 2e-6 * (absdot + 2.0) * (scale ? 2.0 : 1.0) + 2e-6 * std::fabs(r);
      const double e = std::fabs(static_cast<double>(g) - r);
      if (!(e <= tol)) ++bad;
      worst = std::max(worst, std::isnan(e) ? INFINITY : e);
    }
  }
  EXPECT_EQ(bad, 0) << "M=" << M << " N=" << N << " K=" << K << " bias=" << bias << " act=" << act_name(act)
                    << " scale=" << scale << " residual=" << residual << " layout=" << layout
                    << " threads=" << vtx::num_threads() << " max|diff|=" << worst;
}

class GemmThreads : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { vtx::set_num_threads(GetParam()); }
  void TearDown() override { vtx::set_num_threads(0); }
};

TEST_P(GemmThreads, OddShapesAllEpilogues) {
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 10, 13}, {13, 17, 33}, {17, 33, 7}, {6, 16, 4}, {5, 15, 588 / 12}};
  const Act acts[] = {Act::None, Act::Gelu, Act::GeluTanh, Act::Relu, Act::QuickGelu};
  for (int layout : layouts())
    for (auto& sh : shapes)
      for (int bias = 0; bias < 2; ++bias)
        for (Act act : acts)
          for (int scale = 0; scale < 2; ++scale)
            for (int res = 0; res < 3; ++res) check(sh[0], sh[1], sh[2], bias, act, scale, res, layout);
}

TEST_P(GemmThreads, ModelShapes) {
  // ViT/DINOv2-like shapes (reduced where the reference would be slow), incl. K = 588 and 768 patch embeds,
  // N = 10 classes, several K blocks, M split across threads and N split across threads.
  const int64_t shapes[][3] = {{197, 10, 768}, {33, 1152, 384}, {197, 96, 588}, {257, 40, 1536},
                               {13, 200, 3072}, {800, 48, 100}, {2, 33, 1000}, {61, 70, 40}, {203, 64, 96}};
  for (int layout : layouts())
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); ++i) {
      const auto& sh = shapes[i];
      if (i % 2 == 0)
        check(sh[0], sh[1], sh[2], true, Act::Gelu, false, 0, layout);
      else
        check(sh[0], sh[1], sh[2], true, Act::None, true, 2, layout);
    }
}

TEST_P(GemmThreads, StridedAAndC) {
  for (int layout : layouts()) {
    check(19, 37, 70, true, Act::None, false, 0, layout, 5, 3);
    check(197, 24, 64, true, Act::Gelu, true, 2, layout, 128, 8);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, GemmThreads, ::testing::Values(1, 2));

TEST(Gemm, ZeroK) {
  for (int layout : layouts()) {
    std::vector<float> b{1.f, -2.f, 3.f}, C(6, 7.f);
    PackedWeight pw = PackedWeight::pack(nullptr, 3, 0, layout);
    Epilogue ep;
    ep.bias = b.data();
    linear(nullptr, 2, 0, pw, C.data(), 3, ep);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(C[i], b[i % 3]);
  }
}

TEST(Gemm, DefaultPackUsesFastestLayout) {
  std::vector<float> w(20, 1.f);
  PackedWeight pw = PackedWeight::pack(w.data(), 4, 5);
  EXPECT_EQ(pw.layout(), vtx::cpu_has_avx512() ? 2 : vtx::cpu_has_avx2_fma() ? 1 : 0);
  // and under a forced narrower path, that path's layout
  vtx::test::for_each_isa([&] {
    EXPECT_EQ(PackedWeight::pack(w.data(), 4, 5).layout(), static_cast<int>(kernel_table().isa));
  });
}

// The AVX2 kernel's blocking knobs (K block, B-block prefetch) change nothing but speed: every K block size and
// both prefetch settings against the reference, with several K blocks, row blocks and panel groups.
TEST(Gemm, Avx2BlockingVariants) {
  if (!vtx::cpu_has_avx2_fma()) return;  // portable-only run: no AVX2 kernel to vary
  const avx2::GemmBlocking saved = avx2::gemm_blocking();
  for (int64_t kc : {16, 64, 200, 384})
    for (bool pf : {false, true}) {
      avx2::GemmBlocking b = saved;
      b.kc = kc;
      b.mc = 36;
      b.nc_panels = 3;
      b.prefetch_b = pf;
      avx2::set_gemm_blocking(b);
      SCOPED_TRACE("kc " + std::to_string(kc) + " prefetch " + std::to_string(pf));
      check(97, 150, 700, true, Act::Gelu, false, 0, PackedWeight::kLayoutAvx2);
      check(13, 64, 129, true, Act::None, true, 2, PackedWeight::kLayoutAvx2);
    }
  avx2::set_gemm_blocking(saved);
}

// Vectorized activations (apply_act: erf GELU, tanh GELU, QuickGELU via exp) vs double-precision formulas.
TEST(Gemm, ActivationAccuracy) {
  vtx::test::for_each_isa([&] {
    std::vector<float> x;
    for (float v = -12.f; v <= 12.f; v += 0.00137f) x.push_back(v);
    x.push_back(0.f);
    x.push_back(1e-30f);
    x.push_back(-1e-20f);
    x.push_back(60.f);
    x.push_back(-60.f);
    for (Act act : {Act::Gelu, Act::GeluTanh, Act::QuickGelu, Act::Relu}) {
      std::vector<float> y = x;
      apply_act(y.data(), static_cast<int64_t>(y.size()), act);
      double worst = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double v = x[i];
        double r = 0;
        switch (act) {
          case Act::Gelu: r = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); break;
          case Act::GeluTanh: r = 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); break;
          case Act::QuickGelu: r = v / (1.0 + std::exp(-1.702 * v)); break;
          default: r = v > 0 ? v : 0; break;
        }
        // absolute error relative to max(|x|, 1): what matters after a following linear layer
        const double e = std::fabs(y[i] - r) / std::max(1.0, std::fabs(v));
        worst = std::max(worst, e);
      }
      EXPECT_LT(worst, 1e-6) << act_name(act);
      std::printf("%-9s %-11s max |err|/max(1,|x|) = %.3g\n", isa_name(kernel_table().isa), act_name(act), worst);
    }
  });
}

}  // namespace
