// Interpolation kernels (torch bicubic, antialiased bicubic, bilinear) and the patch-embedding convolution
// against scalar references on random shapes, odd sizes included.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/interp.hpp"
#include "models/common.hpp"
#include "support.hpp"

namespace vtx::test {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

struct Shape {
  int64_t C, H, W, OH, OW;
};
const Shape kShapes[] = {{3, 37, 37, 16, 16}, {2, 37, 37, 16, 22}, {1, 5, 7, 13, 3}, {4, 14, 14, 10, 15},
                         {1, 1, 1, 3, 4},     {2, 9, 11, 9, 11},   {1, 16, 16, 7, 5}, {3, 6, 6, 37, 37}};

TEST(Interp, BicubicMatchesReference) {
  vtx::test::for_each_isa([&] {
    for (const auto& s : kShapes) {
      auto in = random_vec(static_cast<size_t>(s.C * s.H * s.W), 1);
      std::vector<float> a(static_cast<size_t>(s.C * s.OH * s.OW)), b(a.size());
      kernels::Resize r{s.C, s.H, s.W, s.OH, s.OW, 0, 0};
      kernels::bicubic(in.data(), a.data(), r);
      kernels::bicubic_ref(in.data(), b.data(), r);
      EXPECT_LT(max_diff(a, b), 2e-5) << s.H << "x" << s.W << "->" << s.OH << "x" << s.OW;
    }
  });
}

TEST(Interp, BicubicAntialiasMatchesReference) {
  vtx::test::for_each_isa([&] {
    for (const auto& s : kShapes) {
      auto in = random_vec(static_cast<size_t>(s.C * s.H * s.W), 2);
      std::vector<float> a(static_cast<size_t>(s.C * s.OH * s.OW)), b(a.size());
      kernels::Resize r{s.C, s.H, s.W, s.OH, s.OW, 0, 0};
      kernels::bicubic_aa(in.data(), a.data(), r);
      kernels::bicubic_aa_ref(in.data(), b.data(), r);
      EXPECT_LT(max_diff(a, b), 2e-5) << s.H << "x" << s.W << "->" << s.OH << "x" << s.OW;
    }
  });
}

TEST(Interp, BilinearMatchesReference) {
  vtx::test::for_each_isa([&] {
    for (bool ac : {false, true})
      for (const auto& s : kShapes) {
        auto in = random_vec(static_cast<size_t>(s.C * s.H * s.W), 3);
        std::vector<float> a(static_cast<size_t>(s.C * s.OH * s.OW)), b(a.size());
        kernels::Resize r{s.C, s.H, s.W, s.OH, s.OW, 0, 0};
        kernels::bilinear(in.data(), a.data(), r, ac);
        kernels::bilinear_ref(in.data(), b.data(), r, ac);
        EXPECT_LT(max_diff(a, b), 2e-5) << "align_corners=" << ac << " " << s.H << "x" << s.W << "->" << s.OH << "x" << s.OW;
      }
  });
}

// Properties that hold for the true operators, independent of the references: identity size is exact for
// bicubic/bilinear, constants are preserved by all three, align_corners keeps the corners.
TEST(Interp, Invariants) {
  auto in = random_vec(2 * 9 * 7, 4);
  std::vector<float> out(in.size());
  kernels::Resize same{2, 9, 7, 9, 7, 0, 0};
  kernels::bicubic(in.data(), out.data(), same);
  EXPECT_LT(max_diff(in, out), 1e-6);
  kernels::bilinear(in.data(), out.data(), same, false);
  EXPECT_LT(max_diff(in, out), 1e-6);
  std::vector<float> c(5 * 6, 2.5f), o(11 * 3);
  kernels::Resize r{1, 5, 6, 11, 3, 0, 0};
  for (int mode = 0; mode < 3; ++mode) {
    if (mode == 0) kernels::bicubic(c.data(), o.data(), r);
    if (mode == 1) kernels::bicubic_aa(c.data(), o.data(), r);
    if (mode == 2) kernels::bilinear(c.data(), o.data(), r, true);
    for (float v : o) EXPECT_NEAR(v, 2.5f, 1e-5) << "mode " << mode;
  }
  kernels::Resize up{1, 5, 6, 11, 13, 0, 0};
  auto x = random_vec(30, 5);
  std::vector<float> y(11 * 13);
  kernels::bilinear(x.data(), y.data(), up, true);
  EXPECT_FLOAT_EQ(y[0], x[0]);
  EXPECT_FLOAT_EQ(y[11 * 13 - 1], x[29]);
}

// The patch embedding (im2col + packed GEMM) equals a direct strided convolution.
TEST(PatchEmbedding, MatchesDirectConvolution) {
  vtx::test::for_each_isa([&] {
    struct Case { int64_t B, C, H, W, D, p; };
    for (const Case& cs : {Case{1, 3, 32, 48, 16, 16}, Case{2, 3, 42, 28, 24, 14}, Case{1, 1, 7, 9, 5, 3}, Case{2, 4, 17, 20, 7, 4}}) {
      auto w = random_vec(static_cast<size_t>(cs.D * cs.C * cs.p * cs.p), 6);
      auto bias = random_vec(static_cast<size_t>(cs.D), 7);
      auto x = random_vec(static_cast<size_t>(cs.B * cs.C * cs.H * cs.W), 8);
      models::PatchEmbedding pe;
      pe.C = cs.C;
      pe.p = cs.p;
      pe.D = cs.D;
      pe.proj.in = cs.C * cs.p * cs.p;
      pe.proj.out = cs.D;
      pe.proj.w = kernels::PackedWeight::pack(w.data(), cs.D, cs.C * cs.p * cs.p);
      pe.proj.bias = bias;
      const int64_t gh = cs.H / cs.p, gw = cs.W / cs.p;
      std::vector<float> got(static_cast<size_t>(cs.B * gh * gw * cs.D));
      models::Workspace wsp;
      pe(x.data(), cs.B, cs.H, cs.W, got.data(), wsp, "test.im2col");
      for (int64_t b = 0; b < cs.B; ++b)
        for (int64_t y = 0; y < gh; ++y)
          for (int64_t xx = 0; xx < gw; ++xx)
            for (int64_t d = 0; d < cs.D; ++d) {
              double s = bias[d];
              for (int64_t c = 0; c < cs.C; ++c)
                for (int64_t ky = 0; ky < cs.p; ++ky)
                  for (int64_t kx = 0; kx < cs.p; ++kx)
                    s += static_cast<double>(w[((d * cs.C + c) * cs.p + ky) * cs.p + kx]) *
                         x[((b * cs.C + c) * cs.H + y * cs.p + ky) * cs.W + xx * cs.p + kx];
              EXPECT_NEAR(got[((b * gh + y) * gw + xx) * cs.D + d], s, 1e-4 * (1 + std::fabs(s)));
            }
    }
  });
}

}  // namespace
}  // namespace vtx::test
