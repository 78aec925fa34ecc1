// `vtx depth`: image file -> depth at the original size, end to end (processor + model + post-processing) against
// the golden depth_at_original_size; the PNG outputs are decoded and checked for size, scaling and monotonic order
// with respect to the raw depth written in the same run.
#include <gtest/gtest.h>
#include <png.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "io/safetensors.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace vtx;

namespace {

struct Png {
  int width = 0, height = 0, channels = 0, bit_depth = 0;
  std::vector<uint32_t> samples;  // row-major, interleaved
  std::string scale_text;
};

Png read_png(const std::string& path) {
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
  for (int i = 0; i < nt; ++i)
    if (std::string(text[i].key) == "vtx-depth-scale") r.scale_text = text[i].text;
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(f);
  return r;
}

// Minimal .npy reader for float32 2-D arrays; checks the header.
Tensor read_npy(const std::string& path, int64_t h, int64_t w) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t hl = static_cast<unsigned char>(s[8]) | (static_cast<unsigned char>(s[9]) << 8);
  const std::string header = s.substr(10, hl);
  EXPECT_EQ((10 + hl) % 64, 0u) << "npy header not 64-byte aligned";
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (" + std::to_string(h) + ", " + std::to_string(w) + ")"), std::string::npos)
      << header;
  Tensor t({h, w}, DType::F32);
  EXPECT_EQ(s.size(), 10 + hl + t.nbytes());
  if (s.size() == 10 + hl + t.nbytes()) std::memcpy(t.data<float>(), s.data() + 10 + hl, t.nbytes());
  return t;
}

// PNG sample values must be non-decreasing in the raw depth (quantisation of a monotone map).
void expect_monotonic(const Tensor& depth, const Png& png) {
  ASSERT_EQ(png.channels, 1);
  ASSERT_EQ(static_cast<int64_t>(png.samples.size()), depth.numel());
  const float* d = depth.data<float>();
  std::vector<int64_t> idx(static_cast<size_t>(depth.numel()));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return d[a] < d[b]; });
  int64_t bad = 0;
  for (size_t i = 1; i < idx.size(); ++i)
    if (png.samples[idx[i]] < png.samples[idx[i - 1]]) ++bad;
  EXPECT_EQ(bad, 0) << "PNG values not monotonic in depth";
  const uint32_t maxv = png.bit_depth == 16 ? 65535 : 255;
  EXPECT_EQ(png.samples[idx.front()], 0u);
  EXPECT_EQ(png.samples[idx.back()], maxv);
}

std::string cli() { return VTX_CLI_PATH; }

std::string image_of(const test::GoldenCase& c) {
  return test::golden_dir() + "/" + c.spec["inputs"]["images"][0].get<std::string>();
}

int run(const std::string& args, std::string* out) { return test::run_command(cli() + " depth " + args, out); }

}  // namespace

TEST(DepthCli, RelativeModelPng16MonotonicAndEndToEndParity) {
  test::GoldenCase c = test::load_case("depth-anything");
  const Tensor& ref = c.tensors.at("depth_at_original_size");
  const std::string out_dir = test::temp_dir() + "/cli-rel";
  std::string log;
  ASSERT_EQ(run(c.model_dir() + " " + image_of(c) + " --out " + out_dir + " --format png16,npy --threads 2", &log), 0)
      << log;
  const std::string stem = fs::path(image_of(c)).stem().string();
  Tensor depth = read_npy(out_dir + "/" + stem + ".npy", ref.dim(0), ref.dim(1));
  // From the JPEG through the processor, the model and post-processing: equal to transformers' result.
  test::expect_close(depth, ref, c.atol("depth_at_original_size"), "vtx depth npy");
  Png png = read_png(out_dir + "/" + stem + ".png");
  EXPECT_EQ(png.width, ref.dim(1));
  EXPECT_EQ(png.height, ref.dim(0));
  EXPECT_EQ(png.bit_depth, 16);
  EXPECT_NE(png.scale_text.find("relative"), std::string::npos) << png.scale_text;
  expect_monotonic(depth, png);
}

TEST(DepthCli, MetricModelPng16IsMetresTimes256) {
  test::GoldenCase c = test::load_case("depth-anything-metric");
  const Tensor& ref = c.tensors.at("depth_at_original_size");
  const std::string out_dir = test::temp_dir() + "/cli-metric";
  std::string log;
  ASSERT_EQ(run(c.model_dir() + " " + image_of(c) + " --out " + out_dir + " --format png16,safetensors", &log), 0)
      << log;
  const std::string stem = fs::path(image_of(c)).stem().string();
  auto st = io::load_safetensors(out_dir + "/" + stem + ".safetensors");
  ASSERT_TRUE(st.count("depth"));
  const Tensor& depth = st.at("depth");
  test::expect_close(depth, ref, c.atol("depth_at_original_size"), "vtx depth safetensors");
  io::SafeTensorsFile sf(out_dir + "/" + stem + ".safetensors");
  EXPECT_EQ(sf.metadata().at("depth_units"), "metres");
  Png png = read_png(out_dir + "/" + stem + ".png");
  ASSERT_EQ(png.width, ref.dim(1));
  ASSERT_EQ(png.height, ref.dim(0));
  ASSERT_EQ(png.bit_depth, 16);
  EXPECT_EQ(png.scale_text, "metres = value / 256");
  double worst = 0;
  for (int64_t i = 0; i < depth.numel(); ++i) {
    const double d = std::clamp(static_cast<double>(depth.data<float>()[i]), 0.0, 65535.0 / 256);
    worst = std::max(worst, std::fabs(png.samples[i] / 256.0 - d));
  }
  EXPECT_LE(worst, 0.5 / 256 + 1e-6);
}

TEST(DepthCli, GrayAndInfernoVisualisations) {
  test::GoldenCase c = test::load_case("dpt-vit");
  const std::string img = image_of(c), stem = fs::path(img).stem().string();
  const std::string gray_dir = test::temp_dir() + "/cli-gray", inf_dir = test::temp_dir() + "/cli-inferno";
  std::string log;
  ASSERT_EQ(run(c.model_dir() + " " + img + " --out " + gray_dir + " --format safetensors --colormap gray", &log), 0)
      << log;
  Tensor depth = io::load_safetensors(gray_dir + "/" + stem + ".safetensors").at("depth");
  // DPT-ViT end to end from the JPEG (square DPTImageProcessor resize to 96x96) equals transformers.
  test::expect_close(depth, c.tensors.at("depth_at_original_size"), c.atol("depth_at_original_size"), "dpt-vit cli");
  Png g = read_png(gray_dir + "/" + stem + ".png");
  EXPECT_EQ(g.bit_depth, 8);
  EXPECT_EQ(g.width, 256);
  EXPECT_EQ(g.height, 256);
  expect_monotonic(depth, g);

  // Default: npy + inferno RGB; the darkest / brightest pixels carry inferno's end colours.
  ASSERT_EQ(run(c.model_dir() + " " + img + " --out " + inf_dir, &log), 0) << log;
  EXPECT_TRUE(fs::exists(inf_dir + "/" + stem + ".npy"));
  Png p = read_png(inf_dir + "/" + stem + ".png");
  ASSERT_EQ(p.channels, 3);
  ASSERT_EQ(p.width, 256);
  ASSERT_EQ(p.height, 256);
  const float* d = depth.data<float>();
  const int64_t lo = std::min_element(d, d + depth.numel()) - d, hi = std::max_element(d, d + depth.numel()) - d;
  EXPECT_EQ((std::vector<uint32_t>{p.samples[3 * lo], p.samples[3 * lo + 1], p.samples[3 * lo + 2]}),
            (std::vector<uint32_t>{0, 0, 4}));
  EXPECT_EQ((std::vector<uint32_t>{p.samples[3 * hi], p.samples[3 * hi + 1], p.samples[3 * hi + 2]}),
            (std::vector<uint32_t>{252, 255, 164}));
}

TEST(DepthCli, FolderInputAndErrors) {
  test::GoldenCase c = test::load_case("depth-anything-metric");
  const std::string in_dir = test::temp_dir() + "/cli-folder-in", out_dir = test::temp_dir() + "/cli-folder-out";
  fs::create_directories(in_dir);
  fs::copy_file(image_of(c), in_dir + "/a.jpeg", fs::copy_options::overwrite_existing);
  fs::copy_file(test::shared_dir() + "/images/misc/tiny_7x5_from_apple.png", in_dir + "/b.png",
                fs::copy_options::overwrite_existing);
  { std::ofstream(in_dir + "/notes.txt") << "not an image"; }
  std::string log;
  ASSERT_EQ(run(c.model_dir() + " " + in_dir + " --out " + out_dir, &log), 0) << log;
  EXPECT_TRUE(fs::exists(out_dir + "/a.npy"));
  EXPECT_TRUE(fs::exists(out_dir + "/b.png"));
  EXPECT_FALSE(fs::exists(out_dir + "/notes.png"));
  Png tiny = read_png(out_dir + "/b.png");
  EXPECT_EQ(tiny.width, 7);
  EXPECT_EQ(tiny.height, 5);

  // Not a depth model / bad flags / missing or corrupt input: non-zero exit and a message naming the problem.
  EXPECT_NE(run(test::golden_dir() + "/models/vit-cls " + image_of(c) + " --out " + out_dir, &log), 0);
  EXPECT_NE(log.find("not a depth model"), std::string::npos) << log;
  EXPECT_EQ(run(c.model_dir() + " " + image_of(c) + " --out " + out_dir + " --format jpeg", &log), 2);
  EXPECT_NE(log.find("jpeg"), std::string::npos) << log;
  EXPECT_NE(run(c.model_dir() + " " + in_dir + "/missing.jpg --out " + out_dir, &log), 0);
  EXPECT_NE(log.find("missing.jpg"), std::string::npos) << log;
  { std::ofstream(in_dir + "/broken.jpg") << "\xff\xd8\xff garbage"; }
  EXPECT_NE(run(c.model_dir() + " " + in_dir + "/broken.jpg --out " + out_dir, &log), 0);
  EXPECT_NE(log.find("broken.jpg"), std::string::npos) << log;
  EXPECT_EQ(run(c.model_dir() + " --out " + out_dir, &log), 2);  // no image
}

// The same folder walk and batch iterator as classify / embed: folders are walked recursively, a bad image is
// reported and skipped with exit code 3 while the others are written, an empty folder is an error, and an
// output that would overwrite an input image is refused before anything runs.
TEST(DepthCli, RecursiveWalkSkipsBadImagesAndProtectsInputs) {
  test::GoldenCase c = test::load_case("depth-anything");
  const std::string root = test::temp_dir() + "/walk", in_dir = root + "/in", out_dir = root + "/out";
  fs::create_directories(in_dir + "/sub/deeper");
  fs::copy_file(image_of(c), in_dir + "/sub/deeper/good.jpeg", fs::copy_options::overwrite_existing);
  fs::copy_file(test::shared_dir() + "/images/misc/tiny_7x5_from_apple.png", in_dir + "/tiny.png",
                fs::copy_options::overwrite_existing);
  { std::ofstream(in_dir + "/sub/corrupt.jpg") << "\xff\xd8\xff not a jpeg"; }
  std::string log;
  EXPECT_EQ(run(c.model_dir() + " " + in_dir + " --out " + out_dir + " --batch 2", &log), 3) << log;
  EXPECT_NE(log.find("corrupt.jpg"), std::string::npos) << log;
  EXPECT_NE(log.find("1 of 3 images failed"), std::string::npos) << log;
  EXPECT_TRUE(fs::exists(out_dir + "/good.npy")) << log;
  EXPECT_TRUE(fs::exists(out_dir + "/tiny.png")) << log;
  EXPECT_FALSE(fs::exists(out_dir + "/corrupt.png"));

  // Only bad images: exit 1. No images at all: an error naming the folder.
  EXPECT_EQ(run(c.model_dir() + " " + in_dir + "/sub/corrupt.jpg --out " + out_dir, &log), 1) << log;
  fs::create_directories(root + "/empty");
  EXPECT_NE(run(c.model_dir() + " " + root + "/empty --out " + out_dir, &log), 0);
  EXPECT_NE(log.find("no images found"), std::string::npos) << log;

  // --out pointing at the input folder would replace tiny.png with its depth picture: refused, input intact.
  const auto before = fs::file_size(in_dir + "/tiny.png");
  EXPECT_NE(run(c.model_dir() + " " + in_dir + "/tiny.png --out " + in_dir, &log), 0);
  EXPECT_NE(log.find("overwrite an input"), std::string::npos) << log;
  EXPECT_EQ(fs::file_size(in_dir + "/tiny.png"), before);
}
