// attention() on every kernel path this CPU runs (portable, AVX2, AVX-512; fused flash path without probs, exact
// path with probs) vs attention_ref().
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/threadpool.hpp"
#include "kernels/attention.hpp"
#include "support.hpp"

using namespace vtx::kernels;

namespace {

struct Case {
  int64_t B, T, H, dh;
  bool probs, mask;
  float qk_scale;      // spread of q/k values (larger -> peakier softmax)
  bool bias = false;   // additive [H, T, T] score bias (BEiT relative position bias)
};

void run(const Case& c) {
  const int64_t D = c.H * c.dh;
  std::mt19937 g(static_cast<uint32_t>(c.T * 7 + c.dh * 3 + c.H + c.B * 11 + c.probs));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> qkv(static_cast<size_t>(c.B * c.T * 3 * D));
  for (size_t i = 0; i < qkv.size(); ++i) {
    const bool is_v = (i % (3 * D)) >= static_cast<size_t>(2 * D);
    qkv[i] = u(g) * (is_v ? 1.f : c.qk_scale);
  }
  std::vector<float> mask(static_cast<size_t>(c.H));
  for (int64_t h = 0; h < c.H; ++h) mask[h] = h % 3 == 1 ? 0.f : 0.5f + 0.25f * h;
  const size_t np = c.probs ? static_cast<size_t>(c.B * c.H * c.T * c.T) : 0;
  std::vector<float> out(static_cast<size_t>(c.B * c.T * D), NAN), out_ref(out.size()), probs(np, NAN), probs_ref(np);
  std::vector<float> bias(c.bias ? static_cast<size_t>(c.H * c.T * c.T) : 0);
  for (float& v : bias) v = 3.f * u(g);
  AttentionArgs a;
  a.qkv = qkv.data();
  a.B = c.B, a.T = c.T, a.H = c.H, a.dh = c.dh;
  a.head_mask = c.mask ? mask.data() : nullptr;
  a.bias = c.bias ? bias.data() : nullptr;
  AttentionArgs r = a;
  a.out = out.data();
  r.out = out_ref.data();
  if (c.probs) {
    a.probs = probs.data();
    r.probs = probs_ref.data();
  }
  attention(a);
  attention_ref(r);
  double max_ref = 0, worst = 0;
  for (float v : out_ref) max_ref = std::max(max_ref, static_cast<double>(std::fabs(v)));
  int64_t bad = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double e = std::fabs(static_cast<double>(out[i]) - out_ref[i]);
    if (!(e <= 1e-5 * max_ref + 1e-6)) ++bad;
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  EXPECT_EQ(bad, 0) << "out: B=" << c.B << " T=" << c.T << " H=" << c.H << " dh=" << c.dh << " probs=" << c.probs
                    << " mask=" << c.mask << " threads=" << vtx::num_threads() << " max|diff|=" << worst
                    << " max|ref|=" << max_ref;
  if (c.probs) {
    int64_t pbad = 0;
    double pworst = 0;
    for (size_t i = 0; i < np; ++i) {
      const double e = std::fabs(static_cast<double>(probs[i]) - probs_ref[i]);
      if (!(e <= 1e-6)) ++pbad;
      pworst = std::max(pworst, std::isnan(e) ? INFINITY : e);
    }
    EXPECT_EQ(pbad, 0) << "probs: T=" << c.T << " dh=" << c.dh << " max|diff|=" << pworst;
  }
}

class AttnThreads : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { vtx::set_num_threads(GetParam()); }
  void TearDown() override { vtx::set_num_threads(0); }
};

TEST_P(AttnThreads, SmallShapes) {
  vtx::test::for_each_isa([&] {
    // T across the 16- and 32-row strips and the 128-key blocks; dh with 8-, 4- and 1-wide output tiles.
    for (int64_t T : {1, 5, 7, 16, 17, 33, 64, 65, 129})
      for (int64_t dh : {1, 3, 8, 13, 16, 20, 24, 32, 48, 64})
        for (int probs = 0; probs < 2; ++probs)
          for (int mask = 0; mask < 2; ++mask) run({2, T, 3, dh, static_cast<bool>(probs), static_cast<bool>(mask), 1.f});
  });
}

TEST_P(AttnThreads, ViTLikeT261) {
  vtx::test::for_each_isa([&] {
    run({1, 261, 4, 64, false, false, 2.f});
    run({2, 261, 2, 32, true, true, 2.f});
    run({1, 261, 3, 24, false, true, 4.f});  // peaky softmax: running max changes a lot between key blocks
    run({1, 197, 2, 48, true, false, 1.f});
  });
}

// Tails of 1-4 rows past the last 32-row strip run row by row (dh along the lanes; AVX-512 and AVX2), in key blocks of
// 1024: tails of 1 (T 257, DINOv2 at 224), 4 (T 36), 3 (T 1027, two key blocks) and 2 (T 3074), peaky and masked.
TEST_P(AttnThreads, RowTails) {
  vtx::test::for_each_isa([&] {
    run({1, 257, 3, 64, false, false, 1.f});
    run({2, 36, 2, 20, false, true, 4.f});
    run({1, 1027, 2, 13, false, false, 4.f});
    run({1, 1027, 1, 64, false, true, 1.f});
    run({1, 3074, 2, 8, false, false, 4.f});  // 2-row tail over 4 key blocks: the running max moves between blocks
  });
}

// Additive score bias: every path (flash over key blocks of 128 / exact with probs) at T below and above one block.
TEST_P(AttnThreads, ScoreBias) {
  for (int64_t T : {1, 7, 17, 50, 130, 197})
    for (int probs = 0; probs < 2; ++probs)
      for (int mask = 0; mask < 2; ++mask)
        run({2, T, 3, T > 100 ? 64 : 16, static_cast<bool>(probs), static_cast<bool>(mask), 1.5f, true});
  run({1, 261, 2, 32, false, false, 2.f, true});
}

INSTANTIATE_TEST_SUITE_P(Threads, AttnThreads, ::testing::Values(1, 2));

TEST(Attention, DinoV2Large1370) {
  vtx::test::for_each_isa([&] {
    // DINOv2-S at 518x518: 1370 tokens, dh 64 (2 heads here to keep the double-precision reference fast).
    run({1, 1370, 2, 64, false, false, 1.5f});
    run({1, 1370, 1, 64, true, true, 1.5f});
  });
}

TEST(Attention, HeadMaskZeroGivesZeroOutput) {
  vtx::test::for_each_isa([&] {
    const int64_t B = 1, T = 9, H = 2, dh = 16, D = H * dh;
    std::vector<float> qkv(B * T * 3 * D, 0.3f), out(B * T * D, 1.f), probs(B * H * T * T, 1.f);
    std::vector<float> mask{0.f, 1.f};
    AttentionArgs a;
    a.qkv = qkv.data(), a.B = B, a.T = T, a.H = H, a.dh = dh, a.out = out.data(), a.head_mask = mask.data();
    attention(a);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < dh; ++d) {
        EXPECT_EQ(out[t * D + d], 0.f);
        EXPECT_NEAR(out[t * D + dh + d], 0.3f, 1e-6f);
      }
    a.probs = probs.data();
    attention(a);
    for (int64_t i = 0; i < T * T; ++i) {
      EXPECT_EQ(probs[i], 0.f);
      EXPECT_NEAR(probs[T * T + i], 1.f / T, 1e-7f);
    }
  });
}

}  // namespace
