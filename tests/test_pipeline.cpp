// Images in, answers out: the golden image cases end to end (C++ pipeline API and `vtx run --image`),
// classify / embed CLIs (every output format read back), a folder with a corrupt file, atomic outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "golden_runner.hpp"
#include "io/npy.hpp"
#include "io/safetensors.hpp"
#include "vtx/pipeline.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

const std::string kVtx = VTX_CLI_PATH;

std::vector<std::string> case_images(const GoldenCase& c) {
  std::vector<std::string> r;
  for (const auto& p : c.spec["inputs"]["images"]) r.push_back(golden_dir() + "/" + p.get<std::string>());
  return r;
}

class ImageCases : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageCases, PipelineApiFromImageFiles) {
  GoldenCase c = load_case(GetParam());
  Pipeline pipe = Pipeline::load(c.model_dir());
  std::vector<Image> imgs;
  for (const auto& f : case_images(c)) imgs.push_back(load_image(f));
  Tensor pv = pipe.preprocess(imgs);
  expect_close(pv, c.tensors.at("pixel_values"), c.atol("pixel_values"), c.name + ":pixel_values");
  ModelOutput out = Session(Model::load(c.model_dir())).forward(pv, case_options(c));
  EXPECT_GE(compare_outputs(c, out), 3);
}

TEST_P(ImageCases, CliRunWithImages) {
  GoldenCase c = load_case(GetParam());
  std::string out = temp_dir() + "/run-image-" + c.name + ".safetensors";
  std::string cmd = kVtx + " run " + c.model_dir() + " --out " + out + " --hidden-states --image";
  for (const auto& f : case_images(c)) cmd += " " + f;
  std::string log;
  ASSERT_EQ(run_command(cmd, &log), 0) << log;
  auto got = io::load_safetensors(out);
  int n = 0;
  for (std::string k : {"last_hidden_state", "logits", "hidden_states.1"}) {
    if (!c.tensors.count(k)) continue;
    ASSERT_TRUE(got.count(k)) << k;
    expect_close(got.at(k), c.tensors.at(k), c.atol(k), c.name + ":" + k);
    ++n;
  }
  EXPECT_GE(n, 2);
}

INSTANTIATE_TEST_SUITE_P(Golden, ImageCases, ::testing::Values("vit-cls", "dinov2-features", "reg-features"),
                         [](const auto& i) {
                           std::string s = i.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

TEST(Pipeline, ClassifyMatchesSoftmaxOfGoldenLogits) {
  GoldenCase c = load_case("vit-cls");
  Pipeline pipe = Pipeline::load(c.model_dir());
  std::vector<Image> imgs;
  for (const auto& f : case_images(c)) imgs.push_back(load_image(f));
  auto preds = pipe.classify(imgs, 3);
  const Tensor& logits = c.tensors.at("logits");
  const int64_t C = logits.dim(1);
  ASSERT_EQ(preds.size(), imgs.size());
  for (size_t b = 0; b < preds.size(); ++b) {
    const float* l = logits.data<float>() + b * C;
    double mx = *std::max_element(l, l + C), sum = 0;
    for (int64_t k = 0; k < C; ++k) sum += std::exp(l[k] - mx);
    ASSERT_EQ(preds[b].size(), 3u);
    EXPECT_EQ(preds[b][0].index, std::max_element(l, l + C) - l);
    for (const auto& p : preds[b]) EXPECT_NEAR(p.score, std::exp(l[p.index] - mx) / sum, 1e-4);
    EXPECT_GE(preds[b][0].score, preds[b][1].score);
    EXPECT_EQ(preds[b][0].label, "class_" + std::string(4 - std::to_string(preds[b][0].index).size(), '0') +
                                     std::to_string(preds[b][0].index));
  }
}

TEST(CliClassify, JsonTopK) {
  GoldenCase c = load_case("vit-cls");
  std::string log;
  std::string cmd = kVtx + " classify " + c.model_dir() + " " + case_images(c)[0] + " " + case_images(c)[1] + " --top-k 4 --json --batch 2";
  ASSERT_EQ(run_command(cmd + " 2>/dev/null", &log), 0) << log;
  auto j = nlohmann::json::parse(log);
  ASSERT_EQ(j.size(), 2u);
  const Tensor& logits = c.tensors.at("logits");
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_EQ(j[b]["predictions"].size(), 4u);
    const float* l = logits.data<float>() + b * logits.dim(1);
    EXPECT_EQ(j[b]["predictions"][0]["index"].get<int64_t>(), std::max_element(l, l + logits.dim(1)) - l);
  }
}

// Every format, read back: cls pooling equals the golden last_hidden_state[:, 0] of the same images.
TEST(CliEmbed, AllFormatsReadBack) {
  GoldenCase c = load_case("dinov2-features");
  const Tensor& lhs = c.tensors.at("last_hidden_state");
  const int64_t B = lhs.dim(0), T = lhs.dim(1), D = lhs.dim(2);
  const double atol = c.atol("last_hidden_state");
  std::string imgs;
  for (const auto& f : case_images(c)) imgs += " " + f;
  std::string base = temp_dir() + "/emb";
  for (std::string ext : {".npy", ".safetensors", ".jsonl"}) {
    std::string log;
    ASSERT_EQ(run_command(kVtx + " embed " + c.model_dir() + imgs + " --pool cls --batch 2 --out " + base + ext, &log), 0) << log;
    Tensor got;
    if (ext == ".npy") got = io::load_npy(base + ext);
    if (ext == ".safetensors") {
      io::SafeTensorsFile f(base + ext);
      got = f.load("embeddings");
      EXPECT_EQ(nlohmann::json::parse(f.metadata().at("files")).size(), static_cast<size_t>(B));
    }
    if (ext == ".jsonl") {
      std::ifstream f(base + ext);
      std::string line;
      std::vector<float> all;
      int n = 0;
      while (std::getline(f, line)) {
        auto j = nlohmann::json::parse(line);
        auto v = j["embedding"].get<std::vector<float>>();
        all.insert(all.end(), v.begin(), v.end());
        ++n;
      }
      ASSERT_EQ(n, B);
      got = Tensor::from_data({B, D}, all.data());
    }
    ASSERT_EQ(got.shape(), (std::vector<int64_t>{B, D})) << ext;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(got.data<float>()[b * D + d], lhs.data<float>()[b * T * D + d], atol) << ext;
  }
  // mean and patch pooling shapes and values
  std::string log;
  ASSERT_EQ(run_command(kVtx + " embed " + c.model_dir() + imgs + " --pool patch --out " + base + "-patch.npy", &log), 0) << log;
  Tensor patch = io::load_npy(base + "-patch.npy");
  ASSERT_EQ(patch.shape(), (std::vector<int64_t>{B, T - 1, D}));
  EXPECT_NEAR(patch.data<float>()[5], lhs.data<float>()[D + 5], atol);
  ASSERT_EQ(run_command(kVtx + " embed " + c.model_dir() + imgs + " --pool mean --out " + base + "-mean.npy", &log), 0) << log;
  Tensor mean = io::load_npy(base + "-mean.npy");
  double ref = 0;
  for (int64_t n = 1; n < T; ++n) ref += lhs.data<float>()[n * D + 3];
  EXPECT_NEAR(mean.data<float>()[3], ref / static_cast<double>(T - 1), atol);
}

TEST(CliPipelines, CorruptFileInFolderIsReportedNotFatal) {
  std::string dir = temp_dir() + "/folder-with-corrupt";
  fs::create_directories(dir + "/sub");
  fs::copy_file(shared_dir() + "/images/coco/000000039769.png", dir + "/a.png", fs::copy_options::overwrite_existing);
  fs::copy_file(shared_dir() + "/images/imagenet/n01440764_tench.JPEG", dir + "/sub/b.JPEG", fs::copy_options::overwrite_existing);
  { std::ofstream(dir + "/broken.jpg") << "\xff\xd8\xff\xe0 this is not a jpeg"; }
  { std::ofstream(dir + "/notes.txt") << "ignored: not an image extension"; }
  std::string model = golden_dir() + "/models/vit-cls";
  std::string log;
  int rc = run_command(kVtx + " classify " + model + " " + dir + " --json", &log);
  EXPECT_EQ(rc, 3) << log;  // partial failure
  EXPECT_NE(log.find("1 of 3 images failed"), std::string::npos) << log;
  EXPECT_NE(log.find("broken.jpg"), std::string::npos) << log;
  EXPECT_NE(log.find("a.png"), std::string::npos) << log;
  EXPECT_NE(log.find("b.JPEG"), std::string::npos) << log;
  std::string out = temp_dir() + "/folder.npy";
  rc = run_command(kVtx + " embed " + golden_dir() + "/models/dinov2 " + dir + " --out " + out, &log);
  EXPECT_EQ(rc, 3) << log;
  EXPECT_EQ(io::load_npy(out).dim(0), 2);
}

TEST(CliPipelines, OutputIsAtomic) {
  std::string out = temp_dir() + "/atomic.npy";
  { std::ofstream(out) << "previous result"; }
  std::string bad = temp_dir() + "/only-bad.png";
  { std::ofstream(bad) << "\x89PNG\r\n\x1a\n truncated"; }
  std::string log;
  EXPECT_EQ(run_command(kVtx + " embed " + golden_dir() + "/models/dinov2 " + bad + " --out " + out, &log), 1) << log;
  std::ifstream f(out);
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "previous result") << "a failed run replaced the output";
  ASSERT_EQ(run_command(kVtx + " embed " + golden_dir() + "/models/dinov2 " + shared_dir() + "/images/coco --out " + out, &log), 0) << log;
  EXPECT_EQ(io::load_npy(out).dim(0), 2);
  for (const auto& e : fs::directory_iterator(temp_dir()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary file left: " << e.path();
}

}  // namespace
}  // namespace vtx::test

// The gray depth picture is transformers' depth-estimation pipeline output:
// Image.fromarray(((d - min) / (max - min) * 255).astype("uint8")), computed in float32, truncated.
TEST(DepthPicture, GrayTruncatesLikeTheTransformersPipeline) {
  vtx::Tensor d({1, 4}, vtx::DType::F32);
  float* p = d.data<float>();
  p[0] = 2.0f; p[1] = 3.0f; p[2] = 4.0f; p[3] = 2.9f;  // normalised 0, 0.5, 1, 0.45
  const vtx::Image img = vtx::depth_to_image(d);
  ASSERT_EQ(img.width, 4);
  ASSERT_EQ(img.height, 1);
  const float lo = 2.0f, range = 2.0f;
  for (int i = 0; i < 4; ++i) {
    const auto expect = static_cast<uint8_t>((p[i] - lo) / range * 255.0f);  // numpy's astype: toward zero
    EXPECT_EQ(img.rgb[3 * i], expect) << i;
    EXPECT_EQ(img.rgb[3 * i + 1], expect);
    EXPECT_EQ(img.rgb[3 * i + 2], expect);
  }
  EXPECT_EQ(img.rgb[3], 127);  // 127.5 truncated, where rounding would give 128
  // An infinite maximum: the finite values normalise to 0 and the infinite one to NaN (inf / inf), which maps to
  // 0 instead of an undefined float-to-integer cast.
  p[1] = INFINITY;
  const vtx::Image inf = vtx::depth_to_image(d);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(inf.rgb[3 * i], 0) << i;
}
