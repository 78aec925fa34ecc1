// layer_norm / softmax_rows on every kernel path this CPU runs (portable, AVX2), 1 and 2 threads, vs the
// double-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/threadpool.hpp"
#include "kernels/elementwise.hpp"
#include "support.hpp"

using namespace vtx::kernels;

namespace {

std::vector<float> rnd(size_t n, uint32_t seed, float lo, float hi) { return vtx::test::random_floats(n, seed, lo, hi); }

class EwThreads : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { vtx::set_num_threads(GetParam()); }
  void TearDown() override { vtx::set_num_threads(0); }
};

TEST_P(EwThreads, LayerNorm) {
  vtx::test::for_each_isa([&] {
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 17}, {2, 33}, {197, 768}, {257, 384}, {64, 1025}};
    for (auto& sh : shapes)
      for (int affine = 0; affine < 2; ++affine)
        for (int inplace = 0; inplace < 2; ++inplace) {
          const int64_t R = sh[0], D = sh[1], ld = D + 3;
          auto x = rnd(R * ld, static_cast<uint32_t>(R + D), -2.f, 6.f);  // nonzero mean
          auto g = rnd(D, 1, 0.5f, 1.5f), b = rnd(D, 2, -1.f, 1.f);
          std::vector<float> ref(R * ld, 7.f), got = inplace ? x : std::vector<float>(R * ld, 7.f);
          const float* gp = affine ? g.data() : nullptr;
          const float* bp = affine ? b.data() : nullptr;
          layer_norm_ref(x.data(), R, D, ld, gp, bp, 1e-6f, ref.data(), ld);
          layer_norm(inplace ? got.data() : x.data(), R, D, ld, gp, bp, 1e-6f, got.data(), ld);
          int64_t bad = 0;
          for (int64_t r = 0; r < R; ++r)
            for (int64_t i = 0; i < ld; ++i) {
              const float e = ref[r * ld + i], v = got[r * ld + i];
              if (i >= D) {
                if (v != (inplace ? x[r * ld + i] : 7.f)) ++bad;  // padding untouched
              } else if (!(std::fabs(v - e) <= 2e-5f * (1.f + std::fabs(e)))) {
                ++bad;
              }
            }
          EXPECT_EQ(bad, 0) << "rows=" << R << " D=" << D << " affine=" << affine << " inplace=" << inplace;
        }
  });
}

TEST_P(EwThreads, Softmax) {
  vtx::test::for_each_isa([&] {
    const int64_t shapes[][2] = {{1, 1}, {4, 7}, {3, 9}, {197, 197}, {50, 1370}, {2, 1000}};
    for (auto& sh : shapes)
      for (int inplace = 0; inplace < 2; ++inplace) {
        const int64_t R = sh[0], n = sh[1], ld = n + 1;
        auto x = rnd(R * ld, static_cast<uint32_t>(R * 3 + n), -20.f, 20.f);
        std::vector<float> ref(R * ld, 0.f), got = inplace ? x : std::vector<float>(R * ld, 0.f);
        softmax_rows_ref(x.data(), R, n, ld, ref.data(), ld);
        softmax_rows(inplace ? got.data() : x.data(), R, n, ld, got.data(), ld);
        int64_t bad = 0;
        for (int64_t r = 0; r < R; ++r)
          for (int64_t i = 0; i < n; ++i) {
            const float e = ref[r * ld + i], v = got[r * ld + i];
            if (!(std::fabs(v - e) <= 1e-9f + 3e-6f * e)) ++bad;
          }
        EXPECT_EQ(bad, 0) << "rows=" << R << " n=" << n << " inplace=" << inplace;
      }
  });
}

INSTANTIATE_TEST_SUITE_P(Threads, EwThreads, ::testing::Values(1, 2));

}  // namespace
