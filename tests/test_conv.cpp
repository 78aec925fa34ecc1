// Conv2d / ConvTranspose2d on every kernel path this CPU runs (portable, AVX2) vs the scalar references on random shapes; BN folding; epilogues; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/cpu.hpp"
#include "kernels/conv.hpp"
#include "kernels/kernels.hpp"
#include "support.hpp"
#include "vtx/error.hpp"

using namespace vtx::kernels;

namespace {

std::vector<float> rnd(size_t n, std::mt19937& g, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// Max |a - b|, NaN-aware (NaN counts as infinite).
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= m)) m = std::isnan(e) ? INFINITY : e;
  }
  return m;
}

struct Case {
  int64_t N, cin, cout, H, W, kh, kw, sh, sw, ph, pw;
};

}  // namespace

TEST(Conv, Conv2dMatchesReferenceOnRandomShapes) {
  vtx::test::for_each_isa([&] {
    std::mt19937 gen(1234);
    const std::vector<Case> cases = {
        {1, 3, 5, 7, 9, 3, 3, 1, 1, 1, 1},      // odd everything, Cout not a multiple of 6
        {2, 4, 6, 5, 5, 1, 1, 1, 1, 0, 0},      // 1x1, batch 2
        {1, 16, 13, 19, 13, 3, 3, 2, 2, 1, 1},  // stride 2 downsample (reassemble factor 0.5)
        {1, 8, 1, 17, 23, 1, 1, 1, 1, 0, 0},    // Cout 1 (depth output conv)
        {1, 3, 7, 28, 42, 14, 14, 14, 14, 0, 0},  // patch embedding
        {1, 5, 12, 6, 11, 5, 3, 2, 1, 2, 0},    // asymmetric kernel / stride / padding
        {3, 2, 9, 4, 4, 3, 3, 1, 1, 2, 2},      // padding larger than needed
        {1, 32, 32, 37, 25, 3, 3, 1, 1, 1, 1},  // realistic neck size
        {1, 6, 4, 1, 1, 3, 3, 1, 1, 1, 1},      // 1x1 input with 3x3 kernel
        {2, 70, 13, 9, 11, 3, 3, 1, 1, 1, 1},   // K = 630: three K blocks, batch 2
    };
    for (const Case& c : cases) {
      ConvGeom g{c.cout, c.cin, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw};
      auto x = rnd(c.N * c.cin * c.H * c.W, gen);
      auto w = rnd(c.cout * c.cin * c.kh * c.kw, gen);
      auto b = rnd(c.cout, gen);
      Conv2d conv(w.data(), b.data(), g);
      const int64_t OH = conv.out_h(c.H), OW = conv.out_w(c.W);
      std::vector<float> got(c.N * c.cout * OH * OW, NAN), ref(got.size());
      conv.forward(x.data(), c.N, c.H, c.W, got.data());
      conv2d_ref(x.data(), c.N, c.H, c.W, w.data(), b.data(), g, ref.data());
      const double tol = 1e-5 * std::max(1.0, max_abs(ref));
      EXPECT_LE(max_diff(got, ref), tol) << "N" << c.N << " Cin" << c.cin << " Cout" << c.cout << " " << c.H << "x"
                                         << c.W << " k" << c.kh << "x" << c.kw << " s" << c.sh << "x" << c.sw;

      // No bias + fused ReLU on input and output + two residuals.
      Conv2d conv_nb(w.data(), nullptr, g);
      auto r1 = rnd(got.size(), gen), r2 = rnd(got.size(), gen);
      ConvEpilogue ep;
      ep.act = Act::Relu;
      ep.residual = r1.data();
      ep.residual2 = r2.data();
      conv_nb.forward(x.data(), c.N, c.H, c.W, got.data(), ep, /*relu_input=*/true);
      std::vector<float> xr = x;
      for (auto& v : xr) v = v > 0 ? v : 0;
      conv2d_ref(xr.data(), c.N, c.H, c.W, w.data(), nullptr, g, ref.data());
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = std::max(ref[i], 0.f) + r1[i] + r2[i];
      EXPECT_LE(max_diff(got, ref), 1e-5 * std::max(1.0, max_abs(ref))) << "epilogue, Cin " << c.cin;
    }
  });
}

TEST(Conv, PortableAndAvx2MicroKernelsAgree) {
  std::mt19937 gen(7);
  for (int64_t K : {1, 2, 9, 64, 577}) {
    auto a = rnd(K * detail::kMR, gen), b = rnd(K * detail::kNR, gen);
    std::vector<float> c1(detail::kMR * detail::kNR), c2(c1.size());
    portable::conv_micro(K, a.data(), b.data(), c1.data(), false);
    // double reference
    for (int r = 0; r < detail::kMR; ++r)
      for (int j = 0; j < detail::kNR; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += static_cast<double>(a[k * detail::kMR + r]) * b[k * detail::kNR + j];
        EXPECT_NEAR(c1[r * detail::kNR + j], s, 1e-5 * std::max(1.0, std::sqrt(static_cast<double>(K))));
      }
    if (vtx::cpu_has_avx2_fma()) {
      avx2::conv_micro(K, a.data(), b.data(), c2.data(), false);
      EXPECT_LE(max_diff(c1, c2), 1e-5 * std::max(1.0, std::sqrt(static_cast<double>(K))));
    }
    // accumulate = true adds to the tile.
    std::vector<float> base = rnd(c1.size(), gen), acc1 = base, acc2 = base;
    portable::conv_micro(K, a.data(), b.data(), acc1.data(), true);
    for (size_t i = 0; i < c1.size(); ++i) EXPECT_NEAR(acc1[i], base[i] + c1[i], 1e-5) << i;
    if (vtx::cpu_has_avx2_fma()) {
      avx2::conv_micro(K, a.data(), b.data(), acc2.data(), true);
      EXPECT_LE(max_diff(acc1, acc2), 1e-5 * std::max(1.0, std::sqrt(static_cast<double>(K))));
    }
  }
}

TEST(Conv, ConvTransposeMatchesReference) {
  vtx::test::for_each_isa([&] {
    std::mt19937 gen(99);
    const std::vector<Case> cases = {
        {1, 16, 16, 5, 7, 4, 4, 4, 4, 0, 0},  // reassemble factor 4
        {2, 8, 5, 3, 6, 2, 2, 2, 2, 0, 0},    // factor 2, batch 2, odd Cout
        {1, 3, 4, 4, 5, 3, 3, 2, 2, 1, 1},    // general (overlapping taps, padding) via col2im
        {1, 7, 3, 1, 1, 2, 3, 2, 3, 0, 0},    // 1x1 input, rectangular kernel == stride
    };
    for (const Case& c : cases) {
      ConvGeom g{c.cout, c.cin, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw};
      auto x = rnd(c.N * c.cin * c.H * c.W, gen);
      auto w = rnd(c.cin * c.cout * c.kh * c.kw, gen);
      auto b = rnd(c.cout, gen);
      ConvTranspose2d ct(w.data(), b.data(), g);
      const int64_t OH = ct.out_h(c.H), OW = ct.out_w(c.W);
      std::vector<float> got(c.N * c.cout * OH * OW, NAN), ref(got.size());
      ct.forward(x.data(), c.N, c.H, c.W, got.data());
      conv_transpose2d_ref(x.data(), c.N, c.H, c.W, w.data(), b.data(), g, ref.data());
      EXPECT_LE(max_diff(got, ref), 1e-5 * std::max(1.0, max_abs(ref)))
          << "k" << c.kh << "x" << c.kw << " s" << c.sh << " p" << c.ph;
    }
  });
}

TEST(Conv, BatchNormFolding) {
  std::mt19937 gen(5);
  ConvGeom g{5, 4, 3, 3, 1, 1, 1, 1};
  const int64_t H = 6, W = 7;
  auto x = rnd(g.cin * H * W, gen);
  auto w = rnd(g.cout * g.cin * 9, gen);
  auto gamma = rnd(g.cout, gen, 0.5f, 2.f), beta = rnd(g.cout, gen), mean = rnd(g.cout, gen);
  auto var = rnd(g.cout, gen, 0.1f, 3.f);
  const double eps = 1e-5;
  std::vector<float> ref(g.cout * H * W), got(ref.size());
  conv2d_ref(x.data(), 1, H, W, w.data(), nullptr, g, ref.data());
  for (int64_t c = 0; c < g.cout; ++c)
    for (int64_t i = 0; i < H * W; ++i) {
      float& v = ref[c * H * W + i];
      v = static_cast<float>((v - mean[c]) / std::sqrt(var[c] + eps) * gamma[c] + beta[c]);
    }
  std::vector<float> wf = w, bf;
  fold_batch_norm(wf, bf, g.cout, gamma.data(), beta.data(), mean.data(), var.data(), eps);
  ASSERT_EQ(bf.size(), static_cast<size_t>(g.cout));
  Conv2d conv(wf.data(), bf.data(), g);
  conv.forward(x.data(), 1, H, W, got.data());
  EXPECT_LE(max_diff(got, ref), 1e-5 * std::max(1.0, max_abs(ref)));
}

TEST(Conv, InvalidGeometryAndInputsThrow) {
  std::vector<float> w(9, 1.f);
  EXPECT_THROW(Conv2d(w.data(), nullptr, ConvGeom{0, 1, 3, 3}), vtx::Error);
  EXPECT_THROW(Conv2d(w.data(), nullptr, ConvGeom{1, 1, 3, 3, 0, 1, 0, 0}), vtx::Error);
  EXPECT_THROW(ConvTranspose2d(w.data(), nullptr, ConvGeom{1, 1, 3, 3, 1, 1, -1, 0}), vtx::Error);
  Conv2d conv(w.data(), nullptr, ConvGeom{1, 1, 3, 3});  // no padding
  std::vector<float> x(4), y(4);
  EXPECT_THROW(conv.forward(x.data(), 1, 2, 2, y.data()), vtx::Error);  // 2x2 input < 3x3 kernel
  Conv2d empty;
  EXPECT_THROW(empty.forward(x.data(), 1, 2, 2, y.data()), vtx::Error);
  std::vector<float> wf(6), bf;
  EXPECT_THROW(fold_batch_norm(wf, bf, 4, wf.data(), wf.data(), wf.data(), wf.data(), 1e-5), vtx::Error);
}
