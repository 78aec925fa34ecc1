// `vtx segment`: image files -> label maps at the original size, end to end (processor + model +
// post_process_semantic_segmentation) against the golden label map (near-ties accepted); the PNG (8-bit, and
// 16-bit for a model with more than 256 labels) and the npy are decoded and compared with each other and with the
// library's Pipeline::segment; the overlay's size and legend area; exit codes for bad inputs.
#include <gtest/gtest.h>
#include <png.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/safetensors.hpp"
#include "support.hpp"
#include "vtx/pipeline.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

struct Png {
  int width = 0, height = 0, channels = 0, bit_depth = 0;
  std::vector<uint32_t> samples;
  std::map<std::string, std::string> text;
};

Png decode_png(const std::string& path) {
  Png r;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
    throw std::runtime_error("libpng failed on " + path);
  }
  png_init_io(png, f);
  png_read_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  r.width = static_cast<int>(png_get_image_width(png, info));
  r.height = static_cast<int>(png_get_image_height(png, info));
  r.channels = png_get_channels(png, info);
  r.bit_depth = png_get_bit_depth(png, info);
  png_bytepp rows = png_get_rows(png, info);
  const int bps = r.bit_depth / 8;
  for (int y = 0; y < r.height; ++y)
    for (int i = 0; i < r.width * r.channels; ++i) {
      const png_bytep s = rows[y] + i * bps;
      r.samples.push_back(bps == 2 ? (static_cast<uint32_t>(s[0]) << 8) | s[1] : s[0]);
    }
  png_textp text = nullptr;
  int nt = 0;
  png_get_text(png, info, &text, &nt);
  for (int i = 0; i < nt; ++i) r.text[text[i].key] = text[i].text;
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(f);
  return r;
}

// An int64 [h, w] .npy as written by numpy.save (checked header, then the data).
std::vector<int64_t> read_npy_i64(const std::string& path, int64_t h, int64_t w) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t hl = static_cast<unsigned char>(s[8]) | (static_cast<size_t>(static_cast<unsigned char>(s[9])) << 8);
  const std::string header = s.substr(10, hl);
  EXPECT_NE(header.find("'descr': '<i8'"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (" + std::to_string(h) + ", " + std::to_string(w) + ")"), std::string::npos) << header;
  EXPECT_EQ((10 + hl) % 64, 0u);
  std::vector<int64_t> v(static_cast<size_t>(h * w));
  EXPECT_EQ(s.size(), 10 + hl + v.size() * 8);
  if (s.size() == 10 + hl + v.size() * 8) std::memcpy(v.data(), s.data() + 10 + hl, v.size() * 8);
  return v;
}

std::string cli() { return VTX_CLI_PATH; }

TEST(SegmentCli, GoldenLabelMap) {
  GoldenCase c = load_case_in(golden_beit_dpt_dir(), "dpt-vit-seg");
  const std::string img = c.dir + "/" + c.spec["inputs"]["images"][0].get<std::string>();
  const std::string out = temp_dir() + "/segment-golden";
  std::string log;
  ASSERT_EQ(run_command(cli() + " segment " + c.model_dir() + " " + img + " --out " + out, &log), 0) << log;
  const std::string stem = fs::path(img).stem().string();
  const Tensor& ref = c.tensors.at("semantic_segmentation_at_original_size");
  const Tensor& margin = c.tensors.at("semantic_segmentation_margin");
  const int64_t H = ref.dim(0), W = ref.dim(1);
  Png png = decode_png(out + "/" + stem + ".png");
  EXPECT_EQ(png.width, W);
  EXPECT_EQ(png.height, H);
  EXPECT_EQ(png.channels, 1);
  EXPECT_EQ(png.bit_depth, 8);
  EXPECT_NE(png.text["vtx-labels"].find("class_0004"), std::string::npos);
  std::vector<int64_t> npy = read_npy_i64(out + "/" + stem + ".npy", H, W);
  const double tie = 2 * c.atol("logits_at_original_size");
  int64_t mismatches = 0;
  for (int64_t i = 0; i < H * W; ++i) {
    EXPECT_EQ(static_cast<int64_t>(png.samples[i]), npy[i]);
    if (margin.data<float>()[i] > tie && npy[i] != static_cast<int64_t>(ref.data<float>()[i])) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0) << "label map differs from transformers outside the near-ties";
  // The overlay: the image on top, the legend (one row per class present) below, RGB.
  Png ov = decode_png(out + "/" + stem + "_overlay.png");
  EXPECT_EQ(ov.channels, 3);
  EXPECT_GE(ov.width, W);
  EXPECT_GT(ov.height, H);
  // Same as the library pipeline.
  Pipeline p = Pipeline::load(c.model_dir());
  std::vector<Tensor> maps = p.segment({load_image(img)});
  ASSERT_EQ(maps.at(0).numel(), H * W);
  EXPECT_EQ(std::memcmp(maps[0].data<int64_t>(), npy.data(), npy.size() * 8), 0);
}

// A model with 300 labels writes a 16-bit label PNG; several images in a folder, batched.
TEST(SegmentCli, SixteenBitAndBatches) {
  const std::string src = golden_beit_dpt_dir() + "/models/dpt-vit-seg";
  const std::string dir = temp_dir() + "/seg-300";
  fs::remove_all(dir);
  fs::create_directories(dir);
  nlohmann::json j = read_json(src + "/config.json");
  j["id2label"] = nlohmann::json::object();
  j["label2id"] = nlohmann::json::object();
  for (int i = 0; i < 300; ++i) j["id2label"][std::to_string(i)] = "c" + std::to_string(i);
  std::ofstream(dir + "/config.json") << j.dump();
  fs::copy_file(src + "/preprocessor_config.json", dir + "/preprocessor_config.json");
  auto t = io::load_safetensors(src + "/model.safetensors");
  for (const char* head : {"head.head.4", "auxiliary_head.head.4"}) {
    const int64_t F = t.at(std::string(head) + ".weight").dim(1);
    t[std::string(head) + ".weight"] = Tensor::from_data({300, F, 1, 1}, random_floats(300 * F, 5, -3.f, 3.f).data());
    std::vector<float> b = random_floats(300, 6);
    for (int c = 256; c < 300; ++c) b[c] += 20.f;  // classes above 255 win most pixels
    t[std::string(head) + ".bias"] = Tensor::from_data({300}, b.data());
  }
  io::save_safetensors(dir + "/model.safetensors", std::vector<std::pair<std::string, Tensor>>(t.begin(), t.end()));
  const std::string imgs = temp_dir() + "/seg-300-images";  // two small photos
  fs::remove_all(imgs);
  fs::create_directories(imgs);
  fs::copy_file(shared_dir() + "/images/misc/vitcpp_polars_286x176.jpeg", imgs + "/polars.jpeg");
  fs::copy_file(shared_dir() + "/images/imagenet/n02091635_otterhound.JPEG", imgs + "/otterhound.jpeg");
  const std::string out = temp_dir() + "/segment-300";
  std::string log;
  ASSERT_EQ(run_command(cli() + " segment " + dir + " " + imgs + " --batch 2 --alpha 0.3 --out " + out, &log), 0) << log;
  Pipeline p = Pipeline::load(dir);
  int n = 0;
  for (const auto& e : fs::directory_iterator(imgs)) {
    const std::string stem = e.path().stem().string();
    Image im = load_image(e.path().string());
    Png png = decode_png(out + "/" + stem + ".png");
    EXPECT_EQ(png.bit_depth, 16);
    std::vector<int64_t> npy = read_npy_i64(out + "/" + stem + ".npy", im.height, im.width);
    Tensor m = p.segment({im}).at(0);
    int64_t maxv = 0;
    for (size_t i = 0; i < npy.size(); ++i) {
      EXPECT_EQ(static_cast<int64_t>(png.samples[i]), npy[i]);
      maxv = std::max(maxv, npy[i]);
    }
    EXPECT_EQ(std::memcmp(m.data<int64_t>(), npy.data(), npy.size() * 8), 0) << stem;
    EXPECT_GT(maxv, 255) << "the 16-bit range is not exercised";
    ++n;
  }
  EXPECT_GE(n, 2);
}

// `vtx run` writes every golden tensor of the DPT cases under its golden name (auxiliary_logits, backbone.*,
// feature_maps.*, neck.*), from the stored pixel_values and from the image file.
TEST(RunCli, DptGoldenNames) {
  for (const char* name : {"dpt-vit-seg", "dpt-hybrid", "dpt-model"}) {
    GoldenCase c = load_case_in(golden_beit_dpt_dir(), name);
    const std::string pv = c.dir + "/" + c.spec["tensors"].get<std::string>();
    const std::string img = c.dir + "/" + c.spec["inputs"]["images"][0].get<std::string>();
    for (const std::string input : {"--pixel-values " + pv + ":pixel_values", "--image " + img}) {
      const std::string out = temp_dir() + "/run-" + name + ".safetensors";
      std::string log;
      ASSERT_EQ(run_command(cli() + " run " + c.model_dir() + " " + input + " --hidden-states --attentions --out " + out, &log), 0)
          << log;
      auto got = io::load_safetensors(out);
      int n = 0;
      for (auto it = c.spec["stats"].begin(); it != c.spec["stats"].end(); ++it) {
        const std::string& k = it.key();
        if (k == "pixel_values" || k == "embeddings" || k.find("original_size") != std::string::npos ||
            k == "semantic_segmentation_margin")
          continue;
        ASSERT_TRUE(got.count(k)) << name << ": vtx run wrote no '" << k << "'";
        expect_close(got.at(k), c.tensors.at(k), c.atol(k), std::string(name) + " run:" + k);
        ++n;
      }
      EXPECT_GE(n, 9) << name;
    }
  }
}

TEST(SegmentCli, Errors) {
  const std::string seg = golden_beit_dpt_dir() + "/models/dpt-vit-seg";
  const std::string out = temp_dir() + "/segment-errors";
  std::string log;
  // One unreadable image among good ones: reported, the rest written, exit 3.
  const std::string bad = temp_dir() + "/not-an-image.png";
  std::ofstream(bad) << "garbage";
  const std::string good = shared_dir() + "/images/misc/vitcpp_polars_286x176.jpeg";
  EXPECT_EQ(run_command(cli() + " segment " + seg + " " + good + " " + bad + " --out " + out, &log), 3) << log;
  EXPECT_NE(log.find("not-an-image.png"), std::string::npos) << log;
  EXPECT_TRUE(fs::exists(out + "/vitcpp_polars_286x176.npy"));
  EXPECT_EQ(run_command(cli() + " segment " + seg + " " + bad + " --out " + out, &log), 1) << log;
  // Not a segmentation model.
  const std::string depth = golden_beit_dpt_dir() + "/models/dpt-hybrid";
  EXPECT_NE(run_command(cli() + " segment " + depth + " " + good + " --out " + out, &log), 0);
  EXPECT_NE(log.find("not a semantic segmentation model"), std::string::npos) << log;
  // Usage errors.
  EXPECT_NE(run_command(cli() + " segment " + seg + " " + good, &log), 0);
  EXPECT_NE(run_command(cli() + " segment " + seg + " " + good + " --out " + out + " --alpha 2", &log), 0);
  EXPECT_NE(log.find("--alpha"), std::string::npos) << log;
}

}  // namespace
}  // namespace vtx::test
