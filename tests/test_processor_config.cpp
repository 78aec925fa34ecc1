// preprocessor_config.json parsing (defaults, size forms, errors, unknown-key warnings) and resize / crop
// properties that do not need golden data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support.hpp"
#include "vtx/processor.hpp"

namespace {

vtx::ImageProcessor parse(const std::string& json) { return vtx::ImageProcessor::from_json_string(json, "cfg.json"); }

void expect_parse_error(const std::string& json, const std::string& fragment) {
  try {
    parse(json);
    ADD_FAILURE() << "expected an error for " << json;
  } catch (const vtx::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
  }
}

vtx::Image gradient(int w, int h) {
  vtx::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) im.pixel(x, y)[c] = static_cast<uint8_t>((x * 37 + y * 91 + c * 50) % 256);
  return im;
}

}  // namespace

TEST(ProcessorConfig, DefaultsPerClass) {
  auto bit = parse(R"({"image_processor_type": "BitImageProcessor"})").config();
  EXPECT_EQ(bit.size_shortest_edge, 224);
  EXPECT_EQ(bit.resample, vtx::Resample::Bicubic);
  EXPECT_TRUE(bit.do_center_crop);
  EXPECT_DOUBLE_EQ(bit.image_mean[0], 0.48145466);
  auto vit = parse(R"({"image_processor_type": "ViTImageProcessor"})").config();
  EXPECT_EQ(vit.size_height, 224);
  EXPECT_EQ(vit.resample, vtx::Resample::Bilinear);
  EXPECT_FALSE(vit.do_center_crop);
  auto deit = parse(R"({"image_processor_type": "DeiTImageProcessor"})").config();
  EXPECT_EQ(deit.size_height, 256);
  EXPECT_EQ(deit.crop_height, 224);
  auto dpt = parse(R"({"image_processor_type": "DPTImageProcessor", "size_divisor": null})").config();
  EXPECT_EQ(dpt.size_width, 384);
  EXPECT_FALSE(dpt.do_pad);
  auto legacy = parse(R"({"feature_extractor_type": "ViTFeatureExtractor", "size": 384})").config();
  EXPECT_EQ(legacy.type, "ViTImageProcessor");
  EXPECT_EQ(legacy.size_height, 384);
  EXPECT_EQ(legacy.size_width, 384);
}

TEST(ProcessorConfig, SizeForms) {
  auto a = parse(R"({"image_processor_type": "BitImageProcessor", "size": 256})").config();
  EXPECT_EQ(a.size_shortest_edge, 256);  // int means shortest edge for Bit (default_to_square=False)
  auto b = parse(R"({"image_processor_type": "BitImageProcessor", "size": {"height": 100, "width": 50}})").config();
  EXPECT_EQ(b.size_shortest_edge, 0);
  EXPECT_EQ(b.size_height, 100);
  auto c = parse(R"({"image_processor_type": "ViTImageProcessor", "size": [120, 160], "crop_size": 7})");
  EXPECT_EQ(c.config().size_height, 120);
  EXPECT_EQ(c.config().size_width, 160);
  EXPECT_EQ(c.resize_output_size(10, 10), (std::pair<int, int>{120, 160}));
  auto d = parse(R"({"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 256}})");
  EXPECT_EQ(d.resize_output_size(480, 640), (std::pair<int, int>{256, 341}));  // int(256 * 640 / 480)
  EXPECT_EQ(d.resize_output_size(500, 333), (std::pair<int, int>{384, 256}));
}

TEST(ProcessorConfig, DptOutputSize) {
  auto p = parse(R"({"image_processor_type": "DPTImageProcessor", "size": {"height": 518, "width": 518},
                     "keep_aspect_ratio": true, "ensure_multiple_of": 14})");
  // Scale as little as possible: the height scale 518/500 is closer to 1; 333 * 1.036 = 345 -> 350.
  EXPECT_EQ(p.resize_output_size(500, 333), (std::pair<int, int>{518, 350}));
  EXPECT_EQ(p.resize_output_size(333, 500), (std::pair<int, int>{350, 518}));
  // Python round() is half-to-even: 40 / 16 = 2.5 -> 2, 56 / 16 = 3.5 -> 4.
  auto q = parse(R"({"image_processor_type": "DPTImageProcessor", "size": {"height": 40, "width": 56},
                     "ensure_multiple_of": 16})");
  EXPECT_EQ(q.resize_output_size(64, 64), (std::pair<int, int>{32, 64}));
}

TEST(ProcessorConfig, Errors) {
  expect_parse_error("{", "invalid JSON");
  expect_parse_error(R"({"size": 3})", "image_processor_type");
  expect_parse_error(R"({"image_processor_type": "CLIPImageProcessor"})", "unsupported image processor");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "resample": 6})", "resample");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "resample": "bicubic"})", "resample");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "size": {"shortest_edge": 224}})", "shortest_edge");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "size": {"height": 224}})", "size");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "size": {"longest_edge": 224}})", "longest_edge");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "image_mean": [0.5, 0.5]})", "image_mean");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "image_std": [0.5, 0, 0.5]})", "image_std");
  expect_parse_error(R"({"image_processor_type": "ViTImageProcessor", "do_resize": "yes"})", "do_resize");
  expect_parse_error(R"({"image_processor_type": "DPTImageProcessor", "do_pad": true})", "size_divisor");
  expect_parse_error(R"({"image_processor_type": "BitImageProcessor", "crop_size": -3})", "crop_size");
  EXPECT_THROW(vtx::ImageProcessor::from_pretrained(vtx::test::temp_dir() + "/no-such-model"), vtx::Error);
}

TEST(ProcessorConfig, UnknownKeysWarnOnce) {
  const std::string cfg = R"({"image_processor_type": "ViTImageProcessor", "my_unknown_knob": 1, "do_pad": true})";
  testing::internal::CaptureStderr();
  parse(cfg);
  parse(cfg);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("my_unknown_knob"), std::string::npos) << err;
  EXPECT_EQ(err.find("my_unknown_knob"), err.rfind("my_unknown_knob")) << "warned twice: " << err;
  EXPECT_NE(err.find("do_pad"), std::string::npos) << "DPT-only key on ViT should be reported: " << err;
}

TEST(ProcessorPipeline, RescaleNormalizeAndPad) {
  auto p = parse(R"({"image_processor_type": "DPTImageProcessor", "do_resize": false, "do_rescale": false,
                     "image_mean": 100, "image_std": 50, "do_pad": true, "size_divisor": 4})");
  vtx::Image im(3, 2);
  for (size_t i = 0; i < im.rgb.size(); ++i) im.rgb[i] = static_cast<uint8_t>(i * 20);
  vtx::Tensor t = p.preprocess(im);
  ASSERT_EQ(t.shape(), (std::vector<int64_t>{3, 4, 4}));
  const float* d = t.data<float>();
  // pad: height 2 -> 4 (top 1, bottom 1), width 3 -> 4 (left 0, right 1); padding is 0 after normalisation.
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        const float v = d[(c * 4 + y) * 4 + x];
        if (y == 0 || y == 3 || x == 3) EXPECT_EQ(v, 0.0f);
        else EXPECT_EQ(v, (static_cast<float>(im.pixel(x, y - 1)[c]) - 100.0f) / 50.0f);
      }
}

TEST(ProcessorPipeline, BatchNeedsEqualSizes) {
  auto p = parse(R"({"image_processor_type": "DPTImageProcessor", "do_resize": false})");
  vtx::Tensor b = p.preprocess(std::vector<vtx::Image>{gradient(5, 4), gradient(5, 4)});
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_THROW(p.preprocess(std::vector<vtx::Image>{gradient(5, 4), gradient(4, 5)}), vtx::Error);
  EXPECT_THROW(p.preprocess(std::vector<vtx::Image>{}), vtx::Error);
}

TEST(CenterCrop, PadsWithZerosLikeTransformers) {
  vtx::Image im = gradient(2, 3);
  vtx::Image c = vtx::center_crop(im, 5, 5);  // top = (3-5)//2 = -1, left = (2-5)//2 = -2
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      const int sy = y - 1, sx = x - 2;
      const bool inside = sy >= 0 && sy < 3 && sx >= 0 && sx < 2;
      for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(c.pixel(x, y)[ch], inside ? im.pixel(sx, sy)[ch] : 0) << x << "," << y;
    }
  vtx::Image s = vtx::center_crop(gradient(7, 6), 3, 4);  // top = 1, left = 1
  EXPECT_EQ(s.pixel(0, 0)[0], gradient(7, 6).pixel(1, 1)[0]);
}

TEST(Resize, SameSizeIsIdentityAndConstantsArePreserved) {
  vtx::Image g = gradient(9, 7);
  for (int f = 0; f <= 5; ++f) EXPECT_EQ(vtx::resize(g, 9, 7, static_cast<vtx::Resample>(f)).rgb, g.rgb);
  vtx::Image flat(13, 11);
  std::fill(flat.rgb.begin(), flat.rgb.end(), 200);
  for (int f = 0; f <= 5; ++f)
    for (auto [w, h] : {std::pair{5, 4}, std::pair{31, 29}, std::pair{13, 3}, std::pair{2, 11}}) {
      vtx::Image r = vtx::resize(flat, w, h, static_cast<vtx::Resample>(f));
      for (uint8_t v : r.rgb) ASSERT_EQ(v, 200) << "filter " << f << " " << w << "x" << h;
    }
  EXPECT_THROW(vtx::resize(flat, 0, 3, vtx::Resample::Bilinear), vtx::Error);
}

TEST(Resize, NearestAndBoxExactValues) {
  vtx::Image g = gradient(4, 3);
  vtx::Image up = vtx::resize(g, 8, 6, vtx::Resample::Nearest);  // pixel replication
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) ASSERT_EQ(0, std::memcmp(up.pixel(x, y), g.pixel(x / 2, y / 2), 3));
  vtx::Image g2 = gradient(6, 4);
  vtx::Image half = vtx::resize(g2, 3, 2, vtx::Resample::Box);
  // Box 2:1 = average of 2 with round-half-up, horizontally then vertically (two uint8 roundings).
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) {
        auto hz = [&](int yy) { return (g2.pixel(2 * x, yy)[c] + g2.pixel(2 * x + 1, yy)[c] + 1) / 2; };
        EXPECT_EQ(half.pixel(x, y)[c], (hz(2 * y) + hz(2 * y + 1) + 1) / 2) << x << "," << y << "," << c;
      }
}

// A preprocessor_config.json that names no class, as google/vit-base-patch16-224 publishes it: the class comes from
// config.json's model_type, as transformers' AutoImageProcessor takes it (vit -> ViTImageProcessor, dinov2 ->
// BitImageProcessor, ...). Without a usable model_type the error says what is missing.
TEST(ProcessorConfig, ClassFromTheModelTypeWhenNoneIsNamed) {
  namespace fs = std::filesystem;
  const std::string untyped = R"({"do_normalize": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5],
                                  "image_std": [0.5, 0.5, 0.5], "size": 224})";
  auto folder = [&](const std::string& name, const std::string& config) {
    const fs::path d = fs::path(vtx::test::temp_dir()) / name;
    fs::create_directories(d);
    std::ofstream(d / "preprocessor_config.json") << untyped;
    if (!config.empty()) std::ofstream(d / "config.json") << config;
    return d.string();
  };
  const auto vit = vtx::ImageProcessor::from_pretrained(folder("vit", R"({"model_type": "vit"})")).config();
  EXPECT_EQ(vit.type, "ViTImageProcessor");
  EXPECT_EQ(vit.size_height, 224);
  EXPECT_EQ(vit.size_width, 224);
  EXPECT_EQ(vit.resample, vtx::Resample::Bilinear);
  const auto explicit_vit = parse(R"({"image_processor_type": "ViTImageProcessor", "size": 224})").config();
  EXPECT_EQ(vit.image_mean, explicit_vit.image_mean);
  EXPECT_EQ(vit.do_center_crop, explicit_vit.do_center_crop);
  for (const auto& [mt, cls] : std::vector<std::pair<std::string, std::string>>{{"dinov2", "BitImageProcessor"},
                                                                              {"deit", "DeiTImageProcessor"},
                                                                              {"beit", "BeitImageProcessor"},
                                                                              {"depth_anything", "DPTImageProcessor"}}) {
    const auto c = vtx::ImageProcessor::from_pretrained(folder("mt-" + mt, R"({"model_type": ")" + mt + R"("})")).config();
    EXPECT_EQ(c.type, cls) << mt;
  }
  for (const auto& [name, config, fragment] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"no-config", "", "no config.json model_type"},
           {"clip", R"({"model_type": "clip"})", "model_type 'clip'"},
           {"bad-json", "{", "no config.json model_type"}}) {
    try {
      vtx::ImageProcessor::from_pretrained(folder(name, config));
      ADD_FAILURE() << name << ": expected an error";
    } catch (const vtx::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("preprocessor_config.json"), std::string::npos) << e.what();
    }
  }
}
