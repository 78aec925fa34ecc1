// Golden cases of the trained Fashion-MNIST models (../shared/trained/golden: the first 16 test images, every
// hidden state, attention map and the logits of transformers 4.48.3), at the case tolerances, from the stored
// pixel_values and from the PNG files; the processors (ViTImageProcessor 28x28, BitImageProcessor shortest edge
// 32 bicubic + center crop 28) bit-exact on these grayscale 28x28 PNGs (load_image converts L to RGB).
#include <algorithm>
#include <cstring>

#include "golden_runner.hpp"
#include "io/safetensors.hpp"
#include "vtx/image.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::test {
namespace {

std::string trained_golden_dir() { return shared_dir() + "/trained/golden"; }

// The case and its model folder (paths in the json are relative to trained/golden).
GoldenCase load_trained_case(const std::string& name, std::string* model_dir) {
  const std::string g = trained_golden_dir();
  GoldenCase c;
  c.name = name;
  c.spec = read_json(g + "/cases/" + name + ".json");
  c.tensors = io::load_safetensors(g + "/" + c.spec["tensors"].get<std::string>());
  *model_dir = g + "/" + c.spec["model"].get<std::string>();
  return c;
}

std::vector<int64_t> argmax_rows(const Tensor& logits) {
  const Tensor x = logits.to_f32();
  std::vector<int64_t> r;
  for (int64_t b = 0; b < x.dim(0); ++b) {
    const float* p = x.data<float>() + b * x.dim(1);
    r.push_back(std::max_element(p, p + x.dim(1)) - p);
  }
  return r;
}

class TrainedGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainedGolden, FromStoredPixelValues) {
  std::string dir;
  GoldenCase c = load_trained_case(GetParam(), &dir);
  auto model = Model::load(dir);
  EXPECT_EQ(model->info().architecture, c.spec["class"].get<std::string>());
  ModelOutput out = model->forward(c.tensors.at("pixel_values"), case_options(c));
  EXPECT_GE(compare_outputs(c, out), 7);  // embeddings, hidden states, last_hidden_state, logits (+ attentions)
  EXPECT_EQ(argmax_rows(out.logits), c.spec["predicted"].get<std::vector<int64_t>>());
}

TEST_P(TrainedGolden, FromPngFiles) {
  std::string dir;
  GoldenCase c = load_trained_case(GetParam(), &dir);
  Pipeline pipe = Pipeline::load(dir);
  std::vector<Image> images;
  for (const auto& p : c.spec["inputs"]["images"]) images.push_back(load_image(trained_golden_dir() + "/" + p.get<std::string>()));
  ASSERT_EQ(images.size(), 16u);
  for (const Image& im : images) {
    ASSERT_EQ(im.width, 28);
    ASSERT_EQ(im.height, 28);
  }
  const Tensor pv = pipe.preprocess(images);
  const Tensor& ref = c.tensors.at("pixel_values");
  ASSERT_EQ(pv.shape(), ref.shape());
  ASSERT_EQ(pv.dtype(), DType::F32);
  ASSERT_EQ(ref.dtype(), DType::F32);
  int64_t differ = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) differ += std::memcmp(pv.data<float>() + i, ref.data<float>() + i, 4) != 0;
  EXPECT_EQ(differ, 0) << GetParam() << ": pixel_values not bit-identical to transformers' processor";
  ModelOutput out = pipe.model().forward(pv, case_options(c));
  EXPECT_GE(compare_outputs(c, out), 7);
  EXPECT_EQ(argmax_rows(out.logits), c.spec["predicted"].get<std::vector<int64_t>>());
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainedGolden, ::testing::Values("fashion-vit", "fashion-dinov2", "fashion-dinov2-bf16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace vtx::test
