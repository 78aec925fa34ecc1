// Golden parity: ViT, DeiT, DINOv2, DINOv2-with-registers (every stored output of every case).
#include "golden_runner.hpp"

#include <stdexcept>

#include "models/common.hpp"

namespace vtx::test {
namespace {

class EncoderGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(EncoderGolden, MatchesTransformers) {
  GoldenCase c = load_case(GetParam());
  auto model = Model::load(c.model_dir());
  EXPECT_EQ(model->info().architecture, c.spec["class"].get<std::string>());
  ModelOutput out = model->forward(c.tensors.at("pixel_values"), case_options(c));
  int compared = compare_outputs(c, out);
  EXPECT_GE(compared, 2) << "too few outputs compared";
}

INSTANTIATE_TEST_SUITE_P(Cases, EncoderGolden,
                         ::testing::Values("vit-cls", "vit-f16", "vit-bf16", "vit-headmask", "vit-interp", "vit-mim",
                                           "vit-pooler", "deit-distilled", "dinov2-518", "dinov2-backbone",
                                           "dinov2-backbone-flat", "dinov2-cls", "dinov2-features", "dinov2-mask",
                                           "dinov2-rect", "dinov2-swiglu", "reg-backbone", "reg-cls", "reg-features",
                                           "reg-rect"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

// A Session reused across calls and shapes gives the same results as fresh calls (arena reuse is safe).
TEST(EncoderSession, ReuseAcrossShapes) {
  GoldenCase rect = load_case("dinov2-rect");
  GoldenCase sq = load_case("dinov2-features");
  auto model = Model::load(sq.model_dir());
  Session s(model);
  for (int round = 0; round < 2; ++round) {
    compare_outputs(sq, s.forward(sq.tensors.at("pixel_values"), case_options(sq)));
    compare_outputs(rect, s.forward(rect.tensors.at("pixel_values"), case_options(rect)));
  }
}

// Workspace::memo: fill runs once per key, again when the key or the size changes, and a fill that throws leaves
// nothing that a later call takes for a hit.
TEST(EncoderSession, WorkspaceMemoRefillsOnNewKeyAndAfterAThrow) {
  models::Workspace w;
  int fills = 0;
  auto fill_with = [&](float v) { return [&fills, v](float* p) { ++fills, p[0] = v; }; };
  EXPECT_EQ(w.memo("m", 4, "a", fill_with(1.f))[0], 1.f);
  EXPECT_EQ(w.memo("m", 4, "a", fill_with(9.f))[0], 1.f);  // hit: not refilled
  EXPECT_EQ(fills, 1);
  EXPECT_EQ(w.memo("m", 4, "b", fill_with(2.f))[0], 2.f);
  EXPECT_EQ(w.memo("m", 64, "b", fill_with(3.f))[0], 3.f);  // larger than stored: refilled
  EXPECT_EQ(fills, 3);
  EXPECT_THROW(w.memo("m", 64, "c", [](float* p) { p[0] = -1.f; throw std::runtime_error("half-way"); }),
               std::runtime_error);
  EXPECT_EQ(w.memo("m", 64, "c", fill_with(4.f))[0], 4.f);  // the throw left no hit for "c"
  EXPECT_EQ(fills, 4);
}

}  // namespace
}  // namespace vtx::test
