// BiT kernels (kernels/cnn.hpp) vs their scalar references: GroupNorm (+ residual, ReLU, in place), weight
// standardisation, TF "SAME" padding amounts, constant padding and max pooling; error cases.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cnn.hpp"
#include "support.hpp"
#include "vtx/error.hpp"

using namespace vtx::kernels;

namespace {

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= m)) m = std::isnan(e) ? INFINITY : e;
  }
  return m;
}

TEST(GroupNorm, MatchesReference) {
  uint32_t seed = 1;
  for (int64_t N : {1, 3})
    for (auto [C, G] : {std::pair<int64_t, int64_t>{8, 4}, {16, 16}, {12, 1}, {64, 8}})
      for (int64_t HW : {1, 7, 64, 257})
        for (int mode = 0; mode < 4; ++mode) {
          const bool relu = mode & 1, res = mode & 2;
          const size_t n = static_cast<size_t>(N * C * HW);
          // Offset inputs (mean 3, spread 2) exercise the centring of the variance.
          std::vector<float> x = vtx::test::random_floats(n, seed++, 1.f, 5.f);
          std::vector<float> r = vtx::test::random_floats(n, seed++);
          std::vector<float> g = vtx::test::random_floats(static_cast<size_t>(C), seed++, 0.5f, 1.5f);
          std::vector<float> b = vtx::test::random_floats(static_cast<size_t>(C), seed++);
          std::vector<float> y(n), yr(n);
          group_norm(x.data(), N, C, HW, G, g.data(), b.data(), 1e-5, y.data(), res ? r.data() : nullptr, relu);
          group_norm_ref(x.data(), N, C, HW, G, g.data(), b.data(), 1e-5, yr.data(), res ? r.data() : nullptr, relu);
          EXPECT_LE(max_diff(y, yr), 2e-5) << N << " " << C << "/" << G << " " << HW << " mode " << mode;
          if (relu)
            for (float v : y) ASSERT_GE(v, 0.f);
          // In place gives the same.
          std::vector<float> xi = x;
          group_norm(xi.data(), N, C, HW, G, g.data(), b.data(), 1e-5, xi.data(), res ? r.data() : nullptr, relu);
          EXPECT_EQ(max_diff(xi, y), 0.0);
        }
}

TEST(GroupNorm, NormalisesEachGroup) {
  // gamma 1, beta 0: each (n, group) has mean 0 and (biased) variance var / (var + eps).
  const int64_t N = 2, C = 6, G = 3, HW = 50;
  std::vector<float> x = vtx::test::random_floats(static_cast<size_t>(N * C * HW), 7, -3.f, 8.f), y(x.size());
  std::vector<float> g(C, 1.f), b(C, 0.f);
  group_norm(x.data(), N, C, HW, G, g.data(), b.data(), 0.0, y.data());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < G; ++k) {
      double s = 0, q = 0;
      const float* p = y.data() + (n * C + k * 2) * HW;
      for (int64_t i = 0; i < 2 * HW; ++i) s += p[i];
      for (int64_t i = 0; i < 2 * HW; ++i) q += (p[i] - s / (2 * HW)) * (p[i] - s / (2 * HW));
      EXPECT_NEAR(s / (2 * HW), 0.0, 1e-5);
      EXPECT_NEAR(q / (2 * HW), 1.0, 1e-4);
    }
}

TEST(GroupNorm, RejectsIndivisibleGroups) {
  std::vector<float> x(12), g(6, 1.f), b(6, 0.f);
  EXPECT_THROW(group_norm(x.data(), 1, 6, 2, 4, g.data(), b.data(), 1e-5, x.data()), vtx::Error);
  EXPECT_THROW(group_norm(x.data(), 1, 6, 2, 0, g.data(), b.data(), 1e-5, x.data()), vtx::Error);
}

TEST(WeightStandardization, MatchesReference) {
  uint32_t seed = 100;
  for (auto [cout, per] : {std::pair<int64_t, int64_t>{1, 1}, {8, 9}, {16, 147}, {32, 576}}) {
    std::vector<float> w = vtx::test::random_floats(static_cast<size_t>(cout * per), seed++, -0.5f, 1.5f);
    std::vector<float> o(w.size()), r(w.size());
    standardize_weights(w.data(), cout, per, 1e-8, o.data());
    standardize_weights_ref(w.data(), cout, per, 1e-8, r.data());
    EXPECT_LE(max_diff(o, r), per == 1 ? 1e-6 : 2e-6) << cout << "x" << per;
    if (per > 1)
      for (int64_t c = 0; c < cout; ++c) {  // mean 0, variance 1 per output channel
        double s = 0, q = 0;
        for (int64_t i = 0; i < per; ++i) s += o[c * per + i];
        for (int64_t i = 0; i < per; ++i) q += o[c * per + i] * static_cast<double>(o[c * per + i]);
        EXPECT_NEAR(s / per, 0.0, 1e-6);
        EXPECT_NEAR(q / per, 1.0, 1e-5);
      }
    // In place.
    std::vector<float> wi = w;
    standardize_weights(wi.data(), cout, per, 1e-8, wi.data());
    EXPECT_EQ(max_diff(wi, o), 0.0);
  }
  // A constant filter: var 0 -> (w - mean) / sqrt(eps) = 0.
  std::vector<float> k(9, 0.25f), ko(9);
  standardize_weights(k.data(), 1, 9, 1e-8, ko.data());
  for (float v : ko) EXPECT_EQ(v, 0.f);
}

TEST(TfSamePad, MatchesDefinition) {
  // Independent check: the smallest total padding for which a k/s window sequence yields ceil(n / s) outputs
  // (and, with dilation, the dilated extent), split with the smaller half first.
  for (int64_t n = 1; n <= 40; ++n)
    for (int64_t k = 1; k <= 7; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t d = 1; d <= 2; ++d) {
          const int64_t out = (n + s - 1) / s, extent = (k - 1) * d + 1;
          int64_t total = 0;
          while (n + total < (out - 1) * s + extent) ++total;
          const PadAmount p = tf_same_pad(n, k, s, d);
          EXPECT_EQ(p.before + p.after, total) << n << " " << k << " " << s << " " << d;
          EXPECT_EQ(p.before, total / 2);
          EXPECT_LE(p.before, p.after);
        }
  EXPECT_THROW(tf_same_pad(0, 3, 1), vtx::Error);
  EXPECT_THROW(tf_same_pad(5, 3, 0), vtx::Error);
}

TEST(Pad2d, MatchesReference) {
  uint32_t seed = 200;
  for (auto [H, W] : {std::pair<int64_t, int64_t>{1, 1}, {5, 7}, {32, 17}})
    for (auto pads : {std::vector<int64_t>{0, 0, 0, 0}, {0, 1, 0, 1}, {2, 3, 2, 3}, {1, 0, 4, 2}}) {
      const int64_t NC = 3, OH = H + pads[0] + pads[1], OW = W + pads[2] + pads[3];
      std::vector<float> x = vtx::test::random_floats(static_cast<size_t>(NC * H * W), seed++);
      std::vector<float> y(static_cast<size_t>(NC * OH * OW)), r(y.size());
      pad2d(x.data(), NC, H, W, pads[0], pads[1], pads[2], pads[3], -2.5f, y.data());
      pad2d_ref(x.data(), NC, H, W, pads[0], pads[1], pads[2], pads[3], -2.5f, r.data());
      EXPECT_EQ(max_diff(y, r), 0.0);
    }
  std::vector<float> x(4), y(16);
  EXPECT_THROW(pad2d(x.data(), 1, 2, 2, -1, 0, 0, 0, 0.f, y.data()), vtx::Error);
}

TEST(MaxPool2d, MatchesReference) {
  uint32_t seed = 300;
  for (auto [H, W] : {std::pair<int64_t, int64_t>{3, 3}, {8, 8}, {33, 17}, {5, 40}})
    for (auto [k, s] : {std::pair<int64_t, int64_t>{3, 2}, {2, 2}, {3, 1}, {1, 1}}) {
      const int64_t NC = 4, OH = (H - k) / s + 1, OW = (W - k) / s + 1;
      std::vector<float> x = vtx::test::random_floats(static_cast<size_t>(NC * H * W), seed++, -5.f, 5.f);
      std::vector<float> y(static_cast<size_t>(NC * OH * OW)), r(y.size());
      max_pool2d(x.data(), NC, H, W, k, s, y.data());
      max_pool2d_ref(x.data(), NC, H, W, k, s, r.data());
      EXPECT_EQ(max_diff(y, r), 0.0) << H << "x" << W << " k" << k << " s" << s;
    }
  // NaN propagates (torch.max_pool2d).
  std::vector<float> x(9, 1.f), y(1);
  x[4] = NAN;
  max_pool2d(x.data(), 1, 3, 3, 3, 1, y.data());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_THROW(max_pool2d(x.data(), 1, 2, 2, 3, 2, y.data()), vtx::Error);
}

// SAME max pooling = pad (zeros, TF split) then pool: the BiT stem's output size is ceil(n / 2).
TEST(MaxPool2d, TfSameComposition) {
  for (int64_t n : {7, 8, 31, 32}) {
    const PadAmount p = tf_same_pad(n, 3, 2);
    const int64_t P = n + p.before + p.after;
    EXPECT_EQ((P - 3) / 2 + 1, (n + 1) / 2);
  }
}

}  // namespace
