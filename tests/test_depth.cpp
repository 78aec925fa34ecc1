// Golden parity of the full depth models from the stored pixel_values: Depth Anything (relative, metric),
// DPT on a Dinov2 backbone (with and without add_projection, bf16 checkpoint) and DPT with its own ViT.
// Every stored output (hidden states, attentions, feature maps, neck intermediates, predicted_depth) is compared,
// plus depth_at_original_size through post_process_depth.
#include <cstring>
#include <iostream>

#include "golden_runner.hpp"
#include "vtx/pipeline.hpp"
#include "models/depth.hpp"

namespace vtx::test {
namespace {

class DepthGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(DepthGolden, MatchesTransformers) {
  GoldenCase c = load_case(GetParam());
  auto model = Model::load(c.model_dir());
  EXPECT_EQ(model->info().architecture, c.spec["class"].get<std::string>());
  EXPECT_EQ(model->info().task, Task::DepthEstimation);
  ModelOutput out = model->forward(c.tensors.at("pixel_values"), case_options(c));
  int compared = compare_outputs(c, out);
  EXPECT_GE(compared, 5) << "too few outputs compared";
  const Tensor& ref = c.tensors.at("depth_at_original_size");
  Tensor d = post_process_depth_estimation(out.predicted_depth, 0, ref.dim(0), ref.dim(1));
  expect_close(d, ref, c.atol("depth_at_original_size"), c.name + ":depth_at_original_size");
  // For the record: worst deviation as a fraction of the tolerance.
  for (const auto& [name, t] : {std::pair<std::string, Tensor>{"predicted_depth", out.predicted_depth},
                                {"feature_maps.0", out.feature_maps.at(0)}}) {
    Diff df = compare(t, c.tensors.at(name), c.atol(name));
    std::cout << "  " << c.name << " " << name << ": max|diff| " << df.max_abs << " = "
              << 100.0 * df.max_abs / c.atol(name) << "% of atol\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, DepthGolden,
                         ::testing::Values("depth-anything", "depth-anything-metric", "dpt-dinov2", "dpt-dinov2-proj",
                                           "dpt-vit"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

// Batch 2 (the same image twice) through a reused Session: each batch item equals the single-image reference.
TEST(DepthModel, BatchAndSessionReuse) {
  GoldenCase c = load_case("depth-anything-metric");
  auto model = Model::load(c.model_dir());
  const Tensor& pv = c.tensors.at("pixel_values");
  Tensor pv2({2, pv.dim(1), pv.dim(2), pv.dim(3)}, DType::F32);
  std::memcpy(pv2.data<float>(), pv.data<float>(), pv.nbytes());
  std::memcpy(pv2.data<float>() + pv.numel(), pv.data<float>(), pv.nbytes());
  Session s(model);
  const Tensor& ref = c.tensors.at("predicted_depth");
  const double atol = c.atol("predicted_depth");
  for (int round = 0; round < 2; ++round) {
    ModelOutput o1 = s.forward(pv);
    expect_close(o1.predicted_depth, ref, atol, "batch 1");
    ModelOutput o2 = s.forward(pv2);
    ASSERT_EQ(o2.predicted_depth.dim(0), 2);
    for (int b = 0; b < 2; ++b) {
      Tensor one = Tensor::from_data({1, ref.dim(1), ref.dim(2)}, o2.predicted_depth.data<float>() + b * ref.numel());
      expect_close(one, ref, atol, "batch 2 item " + std::to_string(b));
    }
  }
  // Timing entry point gives the same map.
  models::DepthTiming t;
  ModelOutput o = models::depth_forward_timed(s, pv, t);
  expect_close(o.predicted_depth, ref, atol, "timed");
  EXPECT_GT(t.backbone_ms + t.neck_ms + t.head_ms, 0.0);
}

TEST(DepthModel, BadInputsThrow) {
  GoldenCase c = load_case("dpt-vit");
  auto model = Model::load(c.model_dir());
  // DPT-ViT infers a square grid: a non-square input is rejected instead of silently mis-reshaped.
  EXPECT_THROW(model->forward(Tensor({1, 3, 96, 64}, DType::F32)), Error);
  EXPECT_THROW(model->forward(Tensor({1, 4, 96, 96}, DType::F32)), Error);
  EXPECT_THROW(model->forward(Tensor({1, 3, 8, 8}, DType::F32)), Error);
  GoldenCase a = load_case("depth-anything-metric");
  auto da = Model::load(a.model_dir());
  EXPECT_THROW(da->forward(Tensor({3, 14, 14}, DType::F32)), Error);
}

}  // namespace
}  // namespace vtx::test
