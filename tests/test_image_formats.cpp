// Decoder coverage beyond the golden images: every PNG colour type / bit depth (written with libpng), BMP
// variants (written by hand), WebP (libwebp encoder), EXIF in PNG. Expected pixels follow Pillow 9.4's
// mode mapping and convert("RGB") rules.
#include <gtest/gtest.h>
#include <png.h>
#include <webp/encode.h>

#include <cstring>
#include <random>

#include "vtx/image.hpp"

namespace {

struct PngSpec {
  int w, h, color_type, bit_depth;
  bool interlace = false;
  std::vector<png_color> palette = {};
  std::vector<uint8_t> trns = {};
  std::vector<uint8_t> exif = {};
};

extern "C" void png_write_to_vector(png_structp p, png_bytep data, size_t n) {
  auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
  v->insert(v->end(), data, data + n);
}
extern "C" void png_flush_noop(png_structp) {}

int channels_of(int ct) { return ct == 0 || ct == 3 ? 1 : ct == 4 ? 2 : ct == 2 ? 3 : 4; }

// samples: w*h*channels values, already in range for the bit depth.
std::vector<uint8_t> write_png(const PngSpec& s, const std::vector<int>& samples) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "libpng write failed";
    return {};
  }
  png_set_write_fn(png, &out, png_write_to_vector, png_flush_noop);
  png_set_IHDR(png, info, s.w, s.h, s.bit_depth, s.color_type, s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  if (!s.trns.empty()) png_set_tRNS(png, info, s.trns.data(), static_cast<int>(s.trns.size()), nullptr);
  if (!s.exif.empty()) png_set_eXIf_1(png, info, static_cast<png_uint_32>(s.exif.size()), const_cast<png_bytep>(s.exif.data()));
  const int ch = channels_of(s.color_type);
  const size_t row_bytes = (static_cast<size_t>(s.w) * ch * s.bit_depth + 7) / 8;
  std::vector<std::vector<uint8_t>> rows(s.h, std::vector<uint8_t>(row_bytes, 0));
  std::vector<png_bytep> ptrs;
  for (int y = 0; y < s.h; ++y) {
    for (int i = 0; i < s.w * ch; ++i) {
      const int v = samples[static_cast<size_t>(y) * s.w * ch + i];
      if (s.bit_depth == 16) {
        rows[y][2 * i] = static_cast<uint8_t>(v >> 8);
        rows[y][2 * i + 1] = static_cast<uint8_t>(v);
      } else if (s.bit_depth == 8) {
        rows[y][i] = static_cast<uint8_t>(v);
      } else {
        const int per = 8 / s.bit_depth;
        rows[y][i / per] |= static_cast<uint8_t>(v << (8 - s.bit_depth * (i % per + 1)));
      }
    }
    ptrs.push_back(rows[y].data());
  }
  png_write_info(png, info);
  png_write_image(png, ptrs.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

vtx::Image decode(const std::vector<uint8_t>& b, vtx::ImageInfo* info = nullptr) {
  return vtx::decode_image(b.data(), b.size(), "mem", {}, info);
}

std::vector<int> random_samples(size_t n, int max, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> v(n);
  for (auto& x : v) x = static_cast<int>(rng() % (max + 1));
  return v;
}

}  // namespace

TEST(PngFormats, GrayAllDepths) {
  for (int bd : {1, 2, 4, 8, 16}) {
    for (bool interlace : {false, true}) {
      PngSpec s{13, 7, PNG_COLOR_TYPE_GRAY, bd, interlace};
      const int max = (1 << bd) - 1;
      auto v = random_samples(13 * 7, max, bd);
      if (bd == 16) v[0] = 255, v[1] = 256, v[2] = 65535, v[3] = 0;
      vtx::ImageInfo info;
      vtx::Image im = decode(write_png(s, v), &info);
      EXPECT_EQ(info.mode, bd == 1 ? "1" : bd == 16 ? "I" : "L");
      for (size_t i = 0; i < v.size(); ++i) {
        // L;2 / L;4 / "1" scale to 0..255; mode I is clamped to 0..255 by convert("RGB").
        const int want = bd == 16 ? std::min(v[i], 255) : v[i] * 255 / max;
        for (int c = 0; c < 3; ++c) ASSERT_EQ(im.rgb[3 * i + c], want) << "bit depth " << bd << " pixel " << i;
      }
    }
  }
}

TEST(PngFormats, ColourAndAlphaTypes) {
  struct T { int ct, bd; const char* mode; };
  for (T t : {T{PNG_COLOR_TYPE_RGB, 8, "RGB"}, T{PNG_COLOR_TYPE_RGB, 16, "RGB"}, T{PNG_COLOR_TYPE_RGBA, 8, "RGBA"},
              T{PNG_COLOR_TYPE_RGBA, 16, "RGBA"}, T{PNG_COLOR_TYPE_GRAY_ALPHA, 8, "LA"},
              T{PNG_COLOR_TYPE_GRAY_ALPHA, 16, "RGBA"}}) {
    PngSpec s{9, 5, t.ct, t.bd, t.bd == 16};
    const int ch = channels_of(t.ct);
    auto v = random_samples(9 * 5 * ch, (1 << t.bd) - 1, t.ct * 100 + t.bd);
    vtx::ImageInfo info;
    vtx::Image im = decode(write_png(s, v), &info);
    EXPECT_EQ(info.mode, t.mode);
    for (int i = 0; i < 9 * 5; ++i)
      for (int c = 0; c < 3; ++c) {
        int sample = v[static_cast<size_t>(i) * ch + (ch <= 2 ? 0 : c)];  // alpha dropped, gray replicated
        if (t.bd == 16) sample >>= 8;                                      // 16-bit: high byte
        ASSERT_EQ(im.rgb[3 * i + c], sample) << t.mode << " " << t.bd << " pixel " << i;
      }
  }
}

TEST(PngFormats, PaletteWithTransparencyAndShortPalette) {
  for (int bd : {1, 2, 4, 8}) {
    std::vector<png_color> pal;
    const int n = std::max(1, (1 << bd) - 1);  // fewer entries than the bit depth allows
    for (int i = 0; i < n; ++i) pal.push_back({static_cast<uint8_t>(i * 7), static_cast<uint8_t>(255 - i), static_cast<uint8_t>(i * 3)});
    PngSpec s{11, 6, PNG_COLOR_TYPE_PALETTE, bd, false, pal, {128}};
    auto v = random_samples(11 * 6, n - 1, bd);
    vtx::ImageInfo info;
    vtx::Image im = decode(write_png(s, v), &info);
    EXPECT_EQ(info.mode, "P");
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(im.rgb[3 * i], pal[v[i]].red);
      ASSERT_EQ(im.rgb[3 * i + 1], pal[v[i]].green);
      ASSERT_EQ(im.rgb[3 * i + 2], pal[v[i]].blue);
    }
  }
}

TEST(PngFormats, ExifChunkOrientation) {
  // Little-endian TIFF, one IFD entry: Orientation (0x0112) SHORT 1 = 8 (rotate 90 counter-clockwise).
  const std::vector<uint8_t> exif = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0};
  PngSpec s{4, 2, PNG_COLOR_TYPE_GRAY, 8, false, {}, {}, exif};
  std::vector<int> v = {0, 1, 2, 3, 4, 5, 6, 7};
  vtx::ImageInfo info;
  vtx::Image im = decode(write_png(s, v), &info);
  EXPECT_EQ(info.exif_orientation, 8);
  ASSERT_EQ(im.width, 2);
  ASSERT_EQ(im.height, 4);
  EXPECT_EQ(im.pixel(0, 0)[0], 3);  // ROTATE_90: out(x, y) = in(W - 1 - y, x)
  EXPECT_EQ(im.pixel(1, 0)[0], 7);
  EXPECT_EQ(im.pixel(0, 3)[0], 0);
}

namespace {

// A BMP file: 14-byte file header + BITMAPINFOHEADER (+ masks) + palette + pixel rows as given.
std::vector<uint8_t> make_bmp(int w, int h, int bits, uint32_t compression, const std::vector<uint8_t>& palette_bgrx,
                              const std::vector<uint32_t>& masks, const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> b(54, 0);
  auto put32 = [&](size_t o, uint32_t v) { for (int i = 0; i < 4; ++i) b[o + i] = static_cast<uint8_t>(v >> (8 * i)); };
  b[0] = 'B', b[1] = 'M', b[14] = 40, b[26] = 1, b[28] = static_cast<uint8_t>(bits);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  put32(30, compression);
  put32(46, static_cast<uint32_t>(palette_bgrx.size() / 4));
  for (uint32_t m : masks) for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(m >> (8 * i)));
  b.insert(b.end(), palette_bgrx.begin(), palette_bgrx.end());
  put32(10, static_cast<uint32_t>(b.size()));
  b.insert(b.end(), pixels.begin(), pixels.end());
  put32(2, static_cast<uint32_t>(b.size()));
  return b;
}

}  // namespace

TEST(BmpFormats, TrueColourVariants) {
  // 2x2, bottom-up 24-bit: rows padded to 8 bytes.
  auto b24 = make_bmp(2, 2, 24, 0, {}, {}, {1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0});
  vtx::Image im = decode(b24);
  ASSERT_EQ(im.width, 2);
  EXPECT_EQ(std::vector<uint8_t>(im.rgb.begin(), im.rgb.end()),
            (std::vector<uint8_t>{9, 8, 7, 12, 11, 10, 3, 2, 1, 6, 5, 4}));
  // Top-down 32-bit BGRX.
  auto b32 = make_bmp(1, -2, 32, 0, {}, {}, {1, 2, 3, 99, 4, 5, 6, 99});
  im = decode(b32);
  EXPECT_EQ(im.rgb, (std::vector<uint8_t>{3, 2, 1, 6, 5, 4}));
  // 32-bit RGBA bitfields -> mode RGBA, alpha dropped.
  vtx::ImageInfo info;
  auto bf = make_bmp(1, 1, 32, 3, {}, {0xFF, 0xFF00, 0xFF0000}, {10, 20, 30, 40});
  EXPECT_THROW(decode(bf), vtx::Error);  // 40-byte header + 3 masks: alpha mask 0 -> (FF, FF00, FF0000, 0) unsupported
  auto bgr = make_bmp(1, 1, 32, 3, {}, {0xFF0000, 0xFF00, 0xFF}, {10, 20, 30, 40});
  im = decode(bgr, &info);
  EXPECT_EQ(info.mode, "RGB");
  EXPECT_EQ(im.rgb, (std::vector<uint8_t>{30, 20, 10}));
  // 16-bit: default 5:5:5 and 5:6:5 bitfields; Pillow scales v * 255 / max.
  const uint16_t px = (31 << 10) | (16 << 5) | 1;  // r=31 g=16 b=1
  im = decode(make_bmp(1, 1, 16, 0, {}, {}, {static_cast<uint8_t>(px), static_cast<uint8_t>(px >> 8), 0, 0}));
  EXPECT_EQ(im.rgb, (std::vector<uint8_t>{255, 16 * 255 / 31, 255 / 31}));
  const uint16_t p565 = (3 << 11) | (40 << 5) | 30;
  im = decode(make_bmp(1, 1, 16, 3, {}, {0xF800, 0x7E0, 0x1F}, {static_cast<uint8_t>(p565), static_cast<uint8_t>(p565 >> 8), 0, 0}));
  EXPECT_EQ(im.rgb, (std::vector<uint8_t>{3 * 255 / 31, 40 * 255 / 63, 30 * 255 / 31}));
}

TEST(BmpFormats, PaletteAndRle) {
  const std::vector<uint8_t> pal = {0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 10, 20, 30, 0};  // BGRX: red, green, blue, (30,20,10)
  auto expect_idx = [&](const vtx::Image& im, const std::vector<int>& idx) {
    ASSERT_EQ(im.rgb.size(), idx.size() * 3);
    for (size_t i = 0; i < idx.size(); ++i)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(im.rgb[3 * i + c], pal[4 * idx[i] + 2 - c]) << "pixel " << i;
  };
  // 8-bit, 3x2 bottom-up, rows padded to 4.
  expect_idx(decode(make_bmp(3, 2, 8, 0, pal, {}, {3, 2, 1, 0, 0, 1, 2, 0})), {0, 1, 2, 3, 2, 1});
  // 4-bit and 1-bit, top-down single row.
  expect_idx(decode(make_bmp(3, -1, 4, 0, pal, {}, {0x31, 0x20, 0, 0})), {3, 1, 2});
  expect_idx(decode(make_bmp(10, -1, 1, 0, pal, {}, {0xA5, 0x80, 0, 0})), {1, 0, 1, 0, 0, 1, 0, 1, 1, 0});
  // RLE8: row 0 (bottom): run of 3 x idx1; EOL; row 1: absolute 2,3,1 (padded); end of bitmap.
  expect_idx(decode(make_bmp(3, 2, 8, 1, pal, {}, {3, 1, 0, 0, 0, 3, 2, 3, 1, 0, 0, 1})), {2, 3, 1, 1, 1, 1});
  // RLE4: run of 3 alternating 2,1; EOL; run of 3 alternating 1,2; end of bitmap. An end of bitmap before the
  // last pixel is refused, as Pillow 9.4 refuses it ("not enough image data"; see test_hardening).
  expect_idx(decode(make_bmp(3, 2, 4, 2, pal, {}, {3, 0x21, 0, 0, 3, 0x12, 0, 1})), {1, 2, 1, 2, 1, 2});
  EXPECT_THROW(decode(make_bmp(3, 2, 4, 2, pal, {}, {3, 0x21, 0, 1})), vtx::Error);
  // Truncated pixel data is an error.
  EXPECT_THROW(decode(make_bmp(3, 2, 8, 0, pal, {}, {3, 2, 1})), vtx::Error);
}

TEST(WebpFormats, LosslessRoundTrip) {
  const int w = 17, h = 9;
  auto rgb = random_samples(w * h * 3, 255, 5);
  std::vector<uint8_t> px(rgb.begin(), rgb.end());
  uint8_t* enc = nullptr;
  size_t n = WebPEncodeLosslessRGB(px.data(), w, h, w * 3, &enc);
  ASSERT_GT(n, 0u);
  std::vector<uint8_t> file(enc, enc + n);
  WebPFree(enc);
  vtx::ImageInfo info;
  vtx::Image im = decode(file, &info);
  EXPECT_EQ(info.format, "WEBP");
  EXPECT_EQ(im.rgb, px);
  // With alpha: RGB kept, alpha dropped (lossless keeps RGB under non-zero alpha exactly).
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < px.size() / 3; ++i) rgba.insert(rgba.end(), {px[3 * i], px[3 * i + 1], px[3 * i + 2], 200});
  n = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &enc);
  file.assign(enc, enc + n);
  WebPFree(enc);
  im = decode(file, &info);
  EXPECT_EQ(info.mode, "RGBA");
  EXPECT_EQ(im.rgb, px);
  file.resize(file.size() / 2);
  EXPECT_THROW(decode(file), vtx::Error);
}
