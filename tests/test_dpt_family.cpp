// Golden parity of the DPT classes beyond depth on DPT's own ViT (shared/golden-beit-dpt): the bare DPTModel,
// DPTForSemanticSegmentation (logits, auxiliary_logits, neck maps, post_process_semantic_segmentation at the
// original image size with the listed near-ties) and DPT-Hybrid (BiT backbone maps, ViT, neck, depth), each from
// the stored pixel_values and from the image files through load_image + the folder's processor.
#include <cmath>
#include <cstring>
#include <iostream>

#include "golden_runner.hpp"
#include "vtx/image.hpp"
#include "vtx/pipeline.hpp"
#include "vtx/processor.hpp"

namespace vtx::test {
namespace {

GoldenCase dpt_case(const std::string& name) { return load_case_in(golden_beit_dpt_dir(), name); }

// pixel_values from the case's image files (load_image + the model folder's image processor).
Tensor pixels_from_images(const GoldenCase& c, std::vector<Image>* images = nullptr) {
  std::vector<Image> imgs;
  for (const auto& f : c.spec["inputs"]["images"]) imgs.push_back(load_image(c.dir + "/" + f.get<std::string>()));
  Tensor pv = ImageProcessor::from_pretrained(c.model_dir()).preprocess(imgs);
  if (images) *images = imgs;
  return pv;
}

// The worst |diff| / atol over the outputs the case stores (printed for the record).
void report(const GoldenCase& c, const ModelOutput& out) {
  double worst = 0;
  std::string which;
  for (const auto& [k, v] : out.named()) {
    if (!c.tensors.count(k) || !c.spec["tolerance"].contains(k)) continue;
    if (v.shape() != c.tensors.at(k).shape()) continue;
    const double r = compare(v, c.tensors.at(k), c.atol(k)).max_abs / c.atol(k);
    if (r > worst) {
      worst = r;
      which = k;
    }
  }
  std::cout << "  " << c.name << ": worst |diff| = " << 100.0 * worst << "% of atol (" << which << ")\n";
}

// Label map vs the reference: exact everywhere except where the reference's top-2 margin is within
// 2 * atol(logits_at_original_size); there either of the two top reference classes is accepted.
void expect_label_map(const GoldenCase& c, const Tensor& map) {
  const Tensor& ref = c.tensors.at("semantic_segmentation_at_original_size");
  const Tensor& margin = c.tensors.at("semantic_segmentation_margin");
  const Tensor& lo = c.tensors.at("logits_at_original_size");
  ASSERT_EQ(map.dtype(), DType::I64);
  ASSERT_EQ(map.shape(), ref.shape());
  const double tie = 2 * c.atol("logits_at_original_size");
  const int64_t P = ref.numel(), C = lo.dim(0);
  int64_t ambiguous = 0, wrong = 0, flipped = 0;
  for (int64_t i = 0; i < P; ++i) {
    const int64_t got = map.data<int64_t>()[i], want = static_cast<int64_t>(ref.data<float>()[i]);
    if (margin.data<float>()[i] <= tie) {
      ++ambiguous;
      // the two best reference classes at this pixel
      int64_t a = -1, b = -1;
      for (int64_t k = 0; k < C; ++k) {
        const float v = lo.data<float>()[k * P + i];
        if (a < 0 || v > lo.data<float>()[a * P + i]) {
          b = a;
          a = k;
        } else if (b < 0 || v > lo.data<float>()[b * P + i]) {
          b = k;
        }
      }
      if (got != a && got != b) ++wrong;
      if (got != want) ++flipped;
    } else if (got != want) {
      ++wrong;
    }
  }
  EXPECT_EQ(ambiguous, c.spec["label_map_ambiguous_pixels"].get<int64_t>()) << c.name << ": near-tie count";
  EXPECT_EQ(wrong, 0) << c.name << ": label map differs at " << wrong << " pixels";
  std::cout << "  " << c.name << ": label map " << P << " pixels, " << ambiguous << " near-ties (" << flipped
            << " flipped to the second class)\n";
}

void check_segmentation_post(const GoldenCase& c, const ModelOutput& out) {
  const Tensor& lo = c.tensors.at("logits_at_original_size");
  Tensor resized;
  Tensor map = post_process_semantic_segmentation(out.logits, 0, lo.dim(1), lo.dim(2), &resized);
  expect_close(resized, lo, c.atol("logits_at_original_size"), c.name + ":logits_at_original_size");
  expect_label_map(c, map);
}

TEST(DptModel, FeaturesGolden) {
  GoldenCase c = dpt_case("dpt-model");
  auto model = Model::load(c.model_dir());
  EXPECT_EQ(model->info().architecture, "DPTModel");
  EXPECT_EQ(model->info().task, Task::Features);
  for (int src = 0; src < 2; ++src) {
    Tensor pv = src == 0 ? c.tensors.at("pixel_values") : pixels_from_images(c);
    if (src == 1) expect_close(pv, c.tensors.at("pixel_values"), c.atol("pixel_values"), "dpt-model:pixel_values");
    ModelOutput out = model->forward(pv, case_options(c));
    EXPECT_EQ(compare_outputs(c, out), 10);
    if (src == 0) report(c, out);
  }
  // DPTModel has no neck: non-square inputs run (the position grid is resized to (H/16, W/16)).
  ModelOutput r = model->forward(Tensor({1, 3, 64, 96}, DType::F32));
  EXPECT_EQ(r.last_hidden_state.shape(), (std::vector<int64_t>{1, 1 + 4 * 6, 48}));
}

TEST(DptSegmentation, Golden) {
  GoldenCase c = dpt_case("dpt-vit-seg");
  auto model = Model::load(c.model_dir());
  EXPECT_EQ(model->info().architecture, "DPTForSemanticSegmentation");
  EXPECT_EQ(model->info().task, Task::SemanticSegmentation);
  ASSERT_EQ(model->info().id2label.size(), 5u);
  EXPECT_EQ(model->info().id2label[4], "class_0004");
  for (int src = 0; src < 2; ++src) {
    Tensor pv = src == 0 ? c.tensors.at("pixel_values") : pixels_from_images(c);
    if (src == 1) expect_close(pv, c.tensors.at("pixel_values"), c.atol("pixel_values"), "dpt-vit-seg:pixel_values");
    ModelOutput out = model->forward(pv, case_options(c));
    EXPECT_EQ(compare_outputs(c, out), 27);
    check_segmentation_post(c, out);
    if (src == 0) report(c, out);
  }
  // The pipeline: the same label map from the image file, at the image's own size.
  Pipeline p = Pipeline::load(c.model_dir());
  std::vector<Image> imgs;
  pixels_from_images(c, &imgs);
  std::vector<Tensor> maps = p.segment(imgs);
  ASSERT_EQ(maps.size(), 1u);
  expect_label_map(c, maps[0]);
}

TEST(DptSegmentation, NonSquareRefused) {
  GoldenCase c = dpt_case("dpt-vit-seg");
  auto model = Model::load(c.model_dir());
  try {
    model->forward(Tensor({1, 3, 96, 64}, DType::F32));
    ADD_FAILURE() << "non-square input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("square"), std::string::npos) << e.what();
  }
  // 4x9 patches = 36 = 6x6: transformers silently mis-reshapes; vtx refuses too.
  EXPECT_THROW(model->forward(Tensor({1, 3, 64, 144}, DType::F32)), Error);
  // A square input at another size runs (position grid resized).
  ModelOutput o = model->forward(Tensor({1, 3, 64, 64}, DType::F32));
  EXPECT_EQ(o.logits.shape(), (std::vector<int64_t>{1, 5, 64, 64}));
  EXPECT_EQ(o.extra.at("auxiliary_logits").shape(), (std::vector<int64_t>{1, 5, 32, 32}));
}

TEST(DptHybrid, Golden) {
  GoldenCase c = dpt_case("dpt-hybrid");
  auto model = Model::load(c.model_dir());
  EXPECT_EQ(model->info().architecture, "DPTForDepthEstimation");
  EXPECT_EQ(model->info().task, Task::DepthEstimation);
  for (int src = 0; src < 2; ++src) {
    Tensor pv = src == 0 ? c.tensors.at("pixel_values") : pixels_from_images(c);
    if (src == 1) expect_close(pv, c.tensors.at("pixel_values"), c.atol("pixel_values"), "dpt-hybrid:pixel_values");
    ModelOutput out = model->forward(pv, case_options(c));
    EXPECT_EQ(compare_outputs(c, out), 28);
    const Tensor& ref = c.tensors.at("depth_at_original_size");
    Tensor d = post_process_depth_estimation(out.predicted_depth, 0, ref.dim(0), ref.dim(1));
    expect_close(d, ref, c.atol("depth_at_original_size"), "dpt-hybrid:depth_at_original_size");
    if (src == 0) report(c, out);
  }
}

TEST(DptHybrid, OtherSizesRefused) {
  GoldenCase c = dpt_case("dpt-hybrid");
  auto model = Model::load(c.model_dir());
  for (auto shape : {std::vector<int64_t>{1, 3, 96, 96}, {1, 3, 64, 96}, {1, 3, 32, 32}}) {
    try {
      model->forward(Tensor(shape, DType::F32));
      ADD_FAILURE() << "accepted " << Tensor(shape, DType::F32).shape_str();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("image_size"), std::string::npos) << e.what();
    }
  }
}

// Batch 2 through a reused Session: each item equals the single-image reference (segmentation and hybrid).
TEST(DptFamily, BatchAndSessionReuse) {
  for (const char* name : {"dpt-vit-seg", "dpt-hybrid"}) {
    GoldenCase c = dpt_case(name);
    auto model = Model::load(c.model_dir());
    const Tensor& pv = c.tensors.at("pixel_values");
    Tensor pv2({2, pv.dim(1), pv.dim(2), pv.dim(3)}, DType::F32);
    std::memcpy(pv2.data<float>(), pv.data<float>(), pv.nbytes());
    std::memcpy(pv2.data<float>() + pv.numel(), pv.data<float>(), pv.nbytes());
    const std::string key = std::string(name) == "dpt-hybrid" ? "predicted_depth" : "logits";
    const Tensor& ref = c.tensors.at(key);
    Session s(model);
    for (int round = 0; round < 2; ++round) {
      ModelOutput o2 = s.forward(pv2);
      const Tensor& got = key == "logits" ? o2.logits : o2.predicted_depth;
      ASSERT_EQ(got.dim(0), 2);
      std::vector<int64_t> one_shape = ref.shape();
      for (int b = 0; b < 2; ++b) {
        Tensor one = Tensor::from_data(one_shape, got.data<float>() + b * ref.numel());
        expect_close(one, ref, c.atol(key), std::string(name) + " batch item " + std::to_string(b));
      }
      ModelOutput o1 = s.forward(pv);
      expect_close(key == "logits" ? o1.logits : o1.predicted_depth, ref, c.atol(key), std::string(name) + " batch 1");
    }
  }
}

TEST(SemanticPostProcess, ArgmaxAndErrors) {
  // 2 classes on a 1x2 map; equal logits -> the first class (torch.argmax: first maximum).
  Tensor l({1, 2, 1, 2}, DType::F32);
  float* p = l.data<float>();
  p[0] = 1;  p[1] = 0.5f;  // class 0
  p[2] = 1;  p[3] = 2;     // class 1
  Tensor m = post_process_semantic_segmentation(l, 0, 0, 0);
  ASSERT_EQ(m.shape(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(m.data<int64_t>()[0], 0);
  EXPECT_EQ(m.data<int64_t>()[1], 1);
  Tensor r;
  Tensor m2 = post_process_semantic_segmentation(l, 0, 3, 4, &r);
  EXPECT_EQ(m2.shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(r.shape(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_THROW(post_process_semantic_segmentation(l, 1, 3, 4), Error);
  EXPECT_THROW(post_process_semantic_segmentation(l, 0, -1, 4), Error);
  EXPECT_THROW(post_process_semantic_segmentation(Tensor({2, 3}, DType::F32), 0, 3, 4), Error);
}

}  // namespace
}  // namespace vtx::test
