// BEiT / DiT: golden parity with transformers 4.48.3 (../shared/golden-beit-dpt: every stored output, from the
// stored pixel_values and from the image files), the relative-position-bias interpolation against a scalar
// reference, the per-window bias cache under concurrent use, and corrupt configs / checkpoints.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "golden_runner.hpp"
#include "io/safetensors.hpp"
#include "models/beit.hpp"
#include "support.hpp"
#include "vtx/image.hpp"
#include "vtx/model.hpp"
#include "vtx/processor.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

class BeitGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(BeitGolden, FromStoredPixelValues) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), GetParam());
  auto model = Model::load(c.model_dir());
  EXPECT_EQ(model->info().architecture, c.spec["class"].get<std::string>());
  EXPECT_EQ(model->info().model_type, "beit");
  ModelOutput out = model->forward(c.tensors.at("pixel_values"), case_options(c));
  EXPECT_GE(compare_outputs(c, out), 8) << "too few outputs compared";
}

INSTANTIATE_TEST_SUITE_P(Cases, BeitGolden,
                         ::testing::Values("beit-cls", "beit-features", "beit-rect", "beit-shared-rel", "dit-cls"),
                         test_name);

Tensor preprocess_images(const GoldenCase& c, const ImageProcessor& proc) {
  std::vector<Image> imgs;
  for (const auto& p : c.spec["inputs"]["images"]) imgs.push_back(load_image(c.dir + "/" + p.get<std::string>()));
  return proc.preprocess(imgs);
}

class BeitGoldenImages : public ::testing::TestWithParam<std::string> {};

// Image files -> load_image -> the folder's BeitImageProcessor -> model: pixel_values and every output.
TEST_P(BeitGoldenImages, FromImageFiles) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), GetParam());
  ASSERT_TRUE(c.spec["inputs"].contains("images"));
  ImageProcessor proc = ImageProcessor::from_pretrained(c.model_dir());
  EXPECT_EQ(proc.config().type, "BeitImageProcessor");
  Tensor pv = preprocess_images(c, proc);
  expect_close(pv, c.tensors.at("pixel_values"), c.atol("pixel_values"), c.name + ":pixel_values");
  auto model = Model::load(c.model_dir());
  EXPECT_GE(compare_outputs(c, model->forward(pv, case_options(c))), 8);
}

INSTANTIATE_TEST_SUITE_P(Cases, BeitGoldenImages, ::testing::Values("beit-cls", "beit-shared-rel", "dit-cls"), test_name);

// microsoft/dit-base-finetuned-rvlcdip's legacy file (BeitFeatureExtractor, "size": 224, reduce_labels) gives the
// same pixel_values as the saved BeitImageProcessor config.
TEST(BeitProcessor, LegacyDitHubConfig) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), "dit-cls");
  ImageProcessor proc = ImageProcessor::from_json_string(c.spec["hub_preprocessor_config"].dump(), "dit hub config");
  EXPECT_EQ(proc.config().type, "BeitImageProcessor");
  EXPECT_EQ(proc.config().size_height, 224);
  EXPECT_EQ(proc.config().size_width, 224);
  expect_close(preprocess_images(c, proc), c.tensors.at("pixel_values"), 1e-6, "dit hub config pixel_values");
}

// transformers defaults for absent keys: 256x256 bicubic resize, 224x224 center crop, mean = std = 0.5.
TEST(BeitProcessor, Defaults) {
  ImageProcessor proc = ImageProcessor::from_json_string(R"({"image_processor_type": "BeitImageProcessor", "do_reduce_labels": true})");
  const ProcessorConfig& p = proc.config();
  EXPECT_EQ(p.size_height, 256);
  EXPECT_EQ(p.size_width, 256);
  EXPECT_EQ(p.resample, Resample::Bicubic);
  EXPECT_TRUE(p.do_center_crop);
  EXPECT_EQ(p.crop_height, 224);
  EXPECT_EQ(p.crop_width, 224);
  EXPECT_EQ(p.image_mean[0], 0.5);
  EXPECT_EQ(p.image_std[2], 0.5);
  Image img(300, 200);
  std::fill(img.rgb.begin(), img.rgb.end(), 128);
  Tensor t = proc.preprocess(img);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{3, 224, 224}));
}

// ---- relative position bias: interpolation + index against a scalar reference ----

// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of one plane, in double, written out
// per output pixel (source coordinate clamped at 0, neighbours clamped at the border).
double bilinear_at(const std::vector<double>& plane, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t oy, int64_t ox) {
  auto coord = [](int64_t in, int64_t out, int64_t o, int64_t* i0, int64_t* i1, double* l1) {
    double src = (static_cast<double>(in) / out) * (o + 0.5) - 0.5;
    if (src < 0) src = 0;
    *i0 = static_cast<int64_t>(src);
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    *l1 = src - *i0;
  };
  int64_t y0, y1, x0, x1;
  double ly, lx;
  coord(H, OH, oy, &y0, &y1, &ly);
  coord(W, OW, ox, &x0, &x1, &lx);
  auto at = [&](int64_t y, int64_t x) { return plane[y * W + x]; };
  return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
}

// BeitRelativePositionBias.forward written from its definition: bias[k][i][j] = new_table[index(i, j)][k].
std::vector<double> reference_bias(const std::vector<float>& table, int64_t heads, int64_t Wh, int64_t Ww, int64_t h,
                                   int64_t w) {
  const int64_t A = 2 * Ww - 1, Bd = 2 * Wh - 1, R0 = A * Bd, nh = 2 * h - 1, nw = 2 * w - 1, R1 = nh * nw;
  std::vector<double> new_table(static_cast<size_t>((R1 + 3) * heads));
  for (int64_t k = 0; k < heads; ++k) {
    std::vector<double> plane(static_cast<size_t>(R0));
    for (int64_t a = 0; a < A; ++a)
      for (int64_t b = 0; b < Bd; ++b) plane[a * Bd + b] = table[(a * Bd + b) * heads + k];  // reshape(1, A, Bd, heads)
    for (int64_t y = 0; y < nh; ++y)
      for (int64_t x = 0; x < nw; ++x) new_table[(y * nw + x) * heads + k] = bilinear_at(plane, A, Bd, nh, nw, y, x);
    for (int64_t e = 0; e < 3; ++e) new_table[(R1 + e) * heads + k] = table[(R0 + e) * heads + k];
  }
  const int64_t T = 1 + h * w;
  std::vector<double> bias(static_cast<size_t>(heads * T * T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) {
      int64_t idx;
      if (i == 0 && j == 0) idx = R1 + 2;
      else if (i == 0) idx = R1;
      else if (j == 0) idx = R1 + 1;
      else {
        const int64_t dy = (i - 1) / w - (j - 1) / w, dx = (i - 1) % w - (j - 1) % w;
        idx = (dy + h - 1) * (2 * w - 1) + (dx + w - 1);
      }
      for (int64_t k = 0; k < heads; ++k) bias[(k * T + i) * T + j] = new_table[idx * heads + k];
    }
  return bias;
}

TEST(BeitRelativeBias, MatchesScalarReference) {
  struct W {
    int64_t heads, Wh, Ww, h, w;
  };
  for (const W& c : std::vector<W>{{3, 4, 4, 8, 6},     // beit-rect: 7x7 -> 15x11
                                   {2, 7, 7, 7, 7},     // identity at the trained window
                                   {4, 14, 14, 24, 24}, // 224 -> 384 (microsoft/beit-*-384 style)
                                   {1, 5, 5, 3, 2},     // downscale
                                   {2, 3, 5, 4, 7},     // non-square trained window (torch's view semantics)
                                   {2, 4, 4, 1, 1}}) {  // one patch
    const int64_t rows = (2 * c.Wh - 1) * (2 * c.Ww - 1) + 3;
    std::vector<float> table = random_floats(static_cast<size_t>(rows * c.heads), static_cast<uint32_t>(rows + c.h), -3.f, 3.f);
    std::vector<float> got = models::relative_position_bias(table.data(), c.heads, c.Wh, c.Ww, c.h, c.w);
    std::vector<double> ref = reference_bias(table, c.heads, c.Wh, c.Ww, c.h, c.w);
    ASSERT_EQ(got.size(), ref.size());
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(got[i] - ref[i]));
 // float32 interpolation weights (as torch computes them) against double: a few ulp of |table| <= 3
    EXPECT_LE(worst, 1e-5) << "window " << c.Wh << "x" << c.Ww << " -> " << c.h << "x" << c.w;
    if (c.h == c.Wh && c.w == c.Ww) {  // the resize is the identity at the trained window: exact
      EXPECT_EQ(worst, 0.0);
    }
  }
}

// The bias stored by transformers for beit-rect (resized 7x7 -> 15x11) from the checkpoint's table.
TEST(BeitRelativeBias, MatchesGoldenTable) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), "beit-rect");
  auto w = io::load_safetensors(c.model_dir() + "/model.safetensors");
  for (int l = 0; l < 2; ++l) {
    const Tensor& t = w.at("encoder.layer." + std::to_string(l) + ".attention.attention.relative_position_bias.relative_position_bias_table");
    std::vector<float> b = models::relative_position_bias(t.data<float>(), 3, 4, 4, 8, 6);
    Tensor got = Tensor::from_data({1, 3, 49, 49}, b.data());
    const std::string name = "relative_position_bias." + std::to_string(l);
    expect_close(got, c.tensors.at(name), c.atol(name), name);
  }
}

// The Model is shared: threads running different window sizes at once get the single-threaded results
// (the per-window bias cache, including eviction past kMaxWindows sizes).
TEST(BeitRelativeBias, ConcurrentWindowsAndEviction) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), "beit-rect");
  auto model = Model::load(c.model_dir());
  const Tensor& pv = c.tensors.at("pixel_values");  // [1, 3, 64, 48]
  std::vector<Tensor> inputs;
  for (int64_t s = 0; s < 10; ++s) {  // 10 window sizes > kMaxWindows
    const int64_t H = 16 + 8 * (s % 5), W = 48 - 8 * (s / 5) * 2;
    Tensor x({1, 3, H, W}, DType::F32);
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t xx = 0; xx < W; ++xx)
          x.data<float>()[(ch * H + y) * W + xx] = pv.data<float>()[(ch * 64 + y) * 48 + xx];
    inputs.push_back(x);
  }
  std::vector<Tensor> expected;
  for (const auto& x : inputs) expected.push_back(model->forward(x).last_hidden_state);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      Session s(model);
      for (int round = 0; round < 3; ++round)
        for (size_t i = 0; i < inputs.size(); ++i) {
          const size_t k = (i + static_cast<size_t>(t) * 3) % inputs.size();
          Diff d = compare(s.forward(inputs[k]).last_hidden_state, expected[k], 0.0);
          if (d.bad) ++bad;
        }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  ModelOutput o = model->forward(pv, case_options(c));  // still the golden after all that
  compare_outputs(c, o);
}

// `vtx run` and `vtx info` on BEiT: every golden output (incl. relative_position_bias.<i>) from the CLI.
TEST(BeitCli, RunWritesGoldenOutputs) {
  const std::string vtx = VTX_CLI_PATH;
  for (const char* name : {"beit-rect", "beit-shared-rel"}) {
    GoldenCase c = load_case_in(golden_beit_dpt_dir(), name);
    const std::string cs = c.dir + "/" + c.spec["tensors"].get<std::string>(), out = temp_dir() + "/" + name + ".safetensors";
    std::string cmd = vtx + " run " + c.model_dir() + " --pixel-values " + cs + ":pixel_values --hidden-states --attentions";
    if (c.spec["options"]["interpolate_pos_encoding"].get<bool>()) cmd += " --interpolate-pos-encoding";
    if (c.spec["options"]["bool_masked_pos"].is_string()) cmd += " --bool-masked-pos " + cs + ":bool_masked_pos";
    std::string log;
    ASSERT_EQ(run_command(cmd + " --out " + out, &log), 0) << log;
    auto got = io::load_safetensors(out);
    int n = 0;
    for (auto it = c.spec["stats"].begin(); it != c.spec["stats"].end(); ++it) {
      const std::string& k = it.key();
      if (k == "pixel_values" || k == "bool_masked_pos") continue;
      const std::string g = k == "embeddings" ? "hidden_states.0" : k;
      ASSERT_TRUE(got.count(g)) << name << ": vtx run wrote no " << g;
      expect_close(got.at(g), c.tensors.at(k), c.atol(k), std::string(name) + ":" + k);
      ++n;
    }
    EXPECT_GE(n, 9);
  }
  std::string info;
  ASSERT_EQ(run_command(vtx + " info " + golden_beit_dpt_dir() + "/models/dit-cls", &info), 0) << info;
  EXPECT_NE(info.find("BeitForImageClassification"), std::string::npos) << info;
  EXPECT_NE(info.find("model_type: beit"), std::string::npos) << info;
}

// ---- corrupt configs / checkpoints: each a vtx::Error naming the file and the problem ----

std::string copy_model(const std::string& name, const std::string& tag) {
  const std::string src = golden_beit_dpt_dir() + "/models/" + name;
  const std::string dst = temp_dir() + "/" + tag;
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (auto f : {"config.json", "model.safetensors", "preprocessor_config.json"}) fs::copy_file(src + "/" + f, dst + "/" + f);
  return dst;
}

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& fn) {
  nlohmann::json j = read_json(dir + "/config.json");
  fn(j);
  std::ofstream(dir + "/config.json") << j.dump(2);
}

void edit_weights(const std::string& dir, const std::function<void(std::map<std::string, Tensor>&)>& fn) {
  auto w = io::load_safetensors(dir + "/model.safetensors");
  fn(w);
  std::vector<std::pair<std::string, Tensor>> v(w.begin(), w.end());
  io::save_safetensors(dir + "/model.safetensors", v);
}

void expect_load_error(const std::string& dir, const std::vector<std::string>& parts) {
  try {
    Model::load(dir);
    ADD_FAILURE() << dir << ": loaded without error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
  }
}

const std::string kTable = "relative_position_bias.relative_position_bias_table";

TEST(BeitCorrupt, RelativeBiasTableWrongSize) {
  // A table for another window (table rows do not match image_size / patch_size).
  std::string d = copy_model("beit-features", "beit-table-rows");
  edit_weights(d, [](auto& w) {
    const std::string k = "encoder.layer.1.attention.attention." + kTable;
    w[k] = Tensor::from_data({100, 4}, random_floats(400, 1).data());
  });
  expect_load_error(d, {"model.safetensors", "encoder.layer.1.attention.attention." + kTable, "[100, 4]", "[172, 4]", "7x7"});
  // image_size changed in config.json: the stored tables no longer fit.
  d = copy_model("beit-features", "beit-image-size");
  edit_config(d, [](auto& j) { j["image_size"] = 128; });
  expect_load_error(d, {"encoder.layer.0.attention.attention." + kTable, "[172, 4]", "[228, 4]", "config.json"});
  // one column per head
  d = copy_model("beit-shared-rel", "beit-table-heads");
  edit_weights(d, [](auto& w) { w["beit.encoder." + kTable] = Tensor::from_data({124, 2}, random_floats(248, 2).data()); });
  expect_load_error(d, {"beit.encoder." + kTable, "[124, 2]", "[124, 4]"});
}

TEST(BeitCorrupt, MissingTensorsForConfigKeys) {
  std::string d = copy_model("beit-cls", "beit-shared-missing");
  edit_config(d, [](auto& j) { j["use_shared_relative_position_bias"] = true; });
  expect_load_error(d, {"missing tensor", "beit.encoder." + kTable, "use_shared"});
  d = copy_model("beit-cls", "beit-no-lambda");
  edit_weights(d, [](auto& w) { w.erase("beit.encoder.layer.1.lambda_2"); });
  expect_load_error(d, {"model.safetensors", "beit.encoder.layer.1.lambda_2"});
  d = copy_model("beit-cls", "beit-mask-token");
  edit_config(d, [](auto& j) { j["use_mask_token"] = true; });
  expect_load_error(d, {"beit.embeddings.mask_token", "use_mask_token"});
  d = copy_model("dit-cls", "dit-no-abs");
  edit_weights(d, [](auto& w) { w.erase("beit.embeddings.position_embeddings"); });
  expect_load_error(d, {"beit.embeddings.position_embeddings"});
  d = copy_model("beit-shared-rel", "beit-vocab");
  edit_config(d, [](auto& j) { j["vocab_size"] = 100; });
  expect_load_error(d, {"model.safetensors", "lm_head.weight", "[64, 64]", "[100, 64]"});
  d = copy_model("beit-features", "beit-no-pooler");
  edit_weights(d, [](auto& w) { w.erase("pooler.layernorm.weight"); });
  expect_load_error(d, {"pooler.layernorm.weight"});
}

TEST(BeitCorrupt, UnsupportedClassesAndBadValues) {
  std::string d = copy_model("beit-cls", "beit-seg");
  edit_config(d, [](auto& j) { j["architectures"] = {"BeitForSemanticSegmentation"}; });
  expect_load_error(d, {"config.json", "BeitForSemanticSegmentation", "BeitModel"});
  d = copy_model("beit-cls", "beit-bool");
  edit_config(d, [](auto& j) { j["use_relative_position_bias"] = "yes"; });
  expect_load_error(d, {"config.json", "use_relative_position_bias", "boolean"});
  d = copy_model("beit-cls", "beit-patch");
  edit_config(d, [](auto& j) { j["patch_size"] = 0; });
  expect_load_error(d, {"config.json", "patch_size"});
}

// Old hub checkpoints carry relative_position_index buffers (transformers ignores them); a stored key bias is
// not part of BEiT and is an unused encoder tensor: the config and the checkpoint disagree.
TEST(BeitCorrupt, ExtraTensors) {
  std::string d = copy_model("beit-rect", "beit-rel-index");
  edit_weights(d, [](auto& w) {
    w["encoder.layer.0.attention.attention.relative_position_bias.relative_position_index"] = Tensor({17, 17}, DType::F32);
  });
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), "beit-rect");
  compare_outputs(c, Model::load(d)->forward(c.tensors.at("pixel_values"), case_options(c)));
  d = copy_model("beit-rect", "beit-key-bias");
  edit_weights(d, [](auto& w) { w["encoder.layer.1.attention.attention.key.bias"] = Tensor({48}, DType::F32); });
  expect_load_error(d, {"encoder.layer.1.attention.attention.key.bias", "not used"});
}

TEST(BeitCorrupt, BadInputs) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), "beit-cls");
  auto model = Model::load(c.model_dir());
  ForwardOptions o;
  o.bool_masked_pos = Tensor({2, 196}, DType::F32);
  EXPECT_THROW(model->forward(c.tensors.at("pixel_values"), o), Error);  // no mask token
  GoldenCase m = load_case_in(golden_beit_dpt_dir(), "beit-shared-rel");
  auto mim = Model::load(m.model_dir());
  o.bool_masked_pos = Tensor({2, 35}, DType::F32);
  EXPECT_THROW(mim->forward(m.tensors.at("pixel_values"), o), Error);  // wrong patch count
  Tensor small({1, 3, 8, 8}, DType::F32);
  EXPECT_THROW(model->forward(small), Error);  // smaller than one patch
  ForwardOptions hm;
  hm.head_mask = Tensor({5}, DType::F32);
  EXPECT_THROW(model->forward(c.tensors.at("pixel_values"), hm), Error);
}

}  // namespace
}  // namespace vtx::test
