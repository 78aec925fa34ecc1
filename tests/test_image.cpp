// Image decoding against Pillow 9.4 (processors/decoded_images.json), EXIF handling, and robustness against
// corrupt / truncated / oversized files (every failure is a vtx::Error naming the file, never a crash).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "io/sha256.hpp"
#include "support.hpp"
#include "vtx/image.hpp"

namespace fs = std::filesystem;

namespace {

struct DecodedCase {
  std::string stem;
  nlohmann::json spec;
};

std::vector<DecodedCase> decoded_cases() {
  std::vector<DecodedCase> v;
  try {
    auto j = vtx::test::read_json(vtx::test::golden_dir() + "/processors/decoded_images.json");
    for (auto it = j["images"].begin(); it != j["images"].end(); ++it) v.push_back({it.key(), *it});
  } catch (const std::exception&) {
    v.push_back({"golden_data_missing", nullptr});  // the test body then fails loudly
  }
  return v;
}

std::string image_path(const nlohmann::json& spec) {
  return (fs::path(vtx::test::golden_dir()) / spec["file"].get<std::string>()).lexically_normal().string();
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string p = vtx::test::temp_dir() + "/" + name;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return p;
}

// Loading must throw a vtx::Error whose message names the file.
void expect_load_error(const std::string& path, const std::string& fragment = "") {
  try {
    vtx::load_image(path);
    ADD_FAILURE() << path << ": expected a vtx::Error";
  } catch (const vtx::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    if (!fragment.empty()) {
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    }
  }
}

// Either decodes or throws vtx::Error: anything else (other exception, crash under ASan) fails.
void expect_no_crash(const std::vector<uint8_t>& bytes, const std::string& what) {
  try {
    vtx::Image im = vtx::decode_image(bytes.data(), bytes.size(), what);
    EXPECT_EQ(im.rgb.size(), static_cast<size_t>(im.width) * im.height * 3) << what;
  } catch (const vtx::Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": unexpected exception type: " << e.what();
  }
}

const std::string kMisc = "/images/misc/";

}  // namespace

class DecodeGolden : public ::testing::TestWithParam<DecodedCase> {};

TEST_P(DecodeGolden, MatchesPillow) {
  const auto& c = GetParam();
  ASSERT_FALSE(c.spec.is_null()) << "decoded_images.json not found under " << vtx::test::golden_dir();
  vtx::ImageInfo info;
  vtx::Image im = vtx::load_image(image_path(c.spec), {}, &info);
  EXPECT_EQ(info.format, c.spec["format"].get<std::string>());
  EXPECT_EQ(info.mode, c.spec["mode"].get<std::string>());
  EXPECT_EQ(info.width, c.spec["size_wh"][0].get<int>());
  EXPECT_EQ(info.height, c.spec["size_wh"][1].get<int>());
  EXPECT_EQ(std::max(info.exif_orientation, 1), c.spec["exif_orientation"].get<int>());
  ASSERT_EQ(im.height, c.spec["load_image_size_hw"][0].get<int>());
  ASSERT_EQ(im.width, c.spec["load_image_size_hw"][1].get<int>());
  EXPECT_EQ(vtx::io::sha256_hex(im.rgb.data(), im.rgb.size()), c.spec["load_image_rgb_sha256"].get<std::string>())
      << c.stem << " (" << info.format << " " << info.mode << ") RGB bytes differ from Pillow";
}

INSTANTIATE_TEST_SUITE_P(Images, DecodeGolden, ::testing::ValuesIn(decoded_cases()),
                         [](const auto& info) { return info.param.stem; });

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(vtx::io::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(vtx::io::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string m(1000, 'a');
  vtx::io::Sha256 s;
  for (int i = 0; i < 1000; ++i) s.update(m.data(), m.size());  // 10^6 x 'a'
  EXPECT_EQ(s.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Exif, TransposeCanBeDisabled) {
  const std::string p = vtx::test::shared_dir() + kMisc + "exif_orientation6_from_desk.jpg";
  vtx::ImageInfo info;
  vtx::Image raw = vtx::load_image(p, {.exif_transpose = false}, &info);
  vtx::Image rot = vtx::load_image(p);
  EXPECT_EQ(info.exif_orientation, 6);
  ASSERT_EQ(raw.width, 1024);
  ASSERT_EQ(raw.height, 680);
  ASSERT_EQ(rot.width, 680);
  ASSERT_EQ(rot.height, 1024);
  // orientation 6 = ROTATE_270 (clockwise): rot(x, y) = raw(y, H - 1 - x)
  for (int y : {0, 17, 500, 1023})
    for (int x : {0, 3, 300, 679}) ASSERT_EQ(0, std::memcmp(rot.pixel(x, y), raw.pixel(y, raw.height - 1 - x), 3));
}

TEST(Exif, AllOrientations) {
  vtx::Image im(3, 2);
  for (size_t i = 0; i < im.rgb.size(); ++i) im.rgb[i] = static_cast<uint8_t>(i);
  auto at = [](const vtx::Image& m, int x, int y) { return m.pixel(x, y)[0]; };
  // PIL: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 270, 7 transverse, 8 rotate 90.
  const int W = 3, H = 2;
  for (int o = 1; o <= 8; ++o) {
    vtx::Image t = vtx::apply_exif_orientation(im, o);
    ASSERT_EQ(t.width, o >= 5 ? H : W) << o;
    for (int y = 0; y < t.height; ++y)
      for (int x = 0; x < t.width; ++x) {
        int sx = x, sy = y;
        if (o == 2) sx = W - 1 - x;
        if (o == 3) sx = W - 1 - x, sy = H - 1 - y;
        if (o == 4) sy = H - 1 - y;
        if (o == 5) sx = y, sy = x;
        if (o == 6) sx = y, sy = H - 1 - x;
        if (o == 7) sx = W - 1 - y, sy = H - 1 - x;
        if (o == 8) sx = W - 1 - y, sy = x;
        EXPECT_EQ(at(t, x, y), at(im, sx, sy)) << "orientation " << o;
      }
  }
  // Corners: rotating 90 then 270 degrees is the identity.
  vtx::Image back = vtx::apply_exif_orientation(vtx::apply_exif_orientation(im, 6), 8);
  EXPECT_EQ(back.rgb, im.rgb);
}

TEST(ImageErrors, MissingFileAndDirectory) {
  expect_load_error(vtx::test::temp_dir() + "/does-not-exist.jpg", "cannot open");
  expect_load_error(vtx::test::temp_dir());
}

TEST(ImageErrors, EmptyAndRandomBytes) {
  expect_load_error(write_temp("empty.png", {}), "empty");
  std::mt19937 rng(42);
  std::vector<uint8_t> junk(4096);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  junk[0] = 'x';
  expect_load_error(write_temp("random.jpg", junk), "unrecognised image format");
  // Valid magic followed by garbage.
  for (auto magic : {std::string("\xFF\xD8\xFF", 3), std::string("\x89PNG\r\n\x1A\n", 8), std::string("RIFF\0\0\0\0WEBP", 12),
                     std::string("BM")}) {
    std::vector<uint8_t> b(junk);
    std::copy(magic.begin(), magic.end(), b.begin());
    expect_load_error(write_temp("magic.img", b));
  }
}

TEST(ImageErrors, TruncatedFiles) {
  const std::string d = vtx::test::shared_dir();
  for (const char* f : {"/images/imagenet/n01440764_tench.JPEG", "/images/misc/vitcpp_tench_progressive.jpg",
                        "/images/misc/grayscale_L_from_canyon.png", "/images/misc/tiny_7x5_from_apple.png",
                        "/images/misc/cmyk_from_tench.jpg"}) {
    auto bytes = read_bytes(d + f);
    ASSERT_GT(bytes.size(), 100u) << f;
    for (double frac : {0.02, 0.5, 0.9}) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() * frac));
      expect_load_error(write_temp("truncated" + fs::path(f).extension().string(), cut), "truncated");
    }
  }
}

TEST(ImageErrors, HugeDeclaredDimensions) {
  // JPEG: patch the SOF frame size of a real file to 60000 x 60000.
  auto jpg = read_bytes(vtx::test::shared_dir() + "/images/misc/vitcpp_apple_256.jpg");
  bool patched = false;
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
      jpg[i + 5] = 0xEA, jpg[i + 6] = 0x60, jpg[i + 7] = 0xEA, jpg[i + 8] = 0x60;  // height, width = 60000
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  expect_load_error(write_temp("huge.jpg", jpg), "exceeds the limit");
  // BMP header declaring 200000 x 200000 24-bit pixels.
  std::vector<uint8_t> bmp(54, 0);
  bmp[0] = 'B', bmp[1] = 'M', bmp[10] = 54, bmp[14] = 40, bmp[26] = 1, bmp[28] = 24;
  for (int o : {18, 22}) bmp[o] = 0x40, bmp[o + 1] = 0x0D, bmp[o + 2] = 0x03;  // 200000
  expect_load_error(write_temp("huge.bmp", bmp), "exceeds the limit");
  // The limit is configurable.
  const std::string apple = vtx::test::shared_dir() + "/images/misc/vitcpp_apple_256.jpg";
  EXPECT_THROW(vtx::load_image(apple, {.max_pixels = 256 * 256 - 1}), vtx::Error);
  EXPECT_NO_THROW(vtx::load_image(apple, {.max_pixels = 256 * 256}));
}

TEST(ImageErrors, CorruptDataNeverCrashes) {
  const std::string d = vtx::test::shared_dir();
  std::mt19937 rng(7);
  for (const char* f : {"/images/misc/vitcpp_polars_286x176.jpeg", "/images/misc/tiny_7x5_from_apple.png",
                        "/images/imagenet/n03796401_moving_van.JPEG"}) {
    const auto bytes = read_bytes(d + f);
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<uint8_t> b = bytes;
      const int flips = 1 + trial % 8;
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      if (trial % 5 == 0) b.resize(rng() % b.size());
      expect_no_crash(b, std::string(f) + "#" + std::to_string(trial));
    }
  }
}
