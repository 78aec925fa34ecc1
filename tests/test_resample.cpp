// The resample kernels (kernels/resample.hpp, PIL's fixed-point resize passes): every ISA path against the portable
// one byte for byte, through vtx::resize (the real coefficients of every filter: up- and downscaling, one pass or
// both, widths 1..70, large and 1x1 outputs, pixels all 0 / all 255 / random / 0-255 checkerboards) and through the
// kernels directly with random weights (the int16 split of the AVX2 path at the extremes of the weight range).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "kernels/kernels.hpp"
#include "support.hpp"
#include "vtx/processor.hpp"

namespace vtx::test {
namespace {

using kernels::Isa;

const Resample kFilters[] = {Resample::Bilinear, Resample::Bicubic, Resample::Lanczos, Resample::Box, Resample::Hamming};

// kind 0: all 0, 1: all 255, 2: random, 3: 0/255 checkerboard per pixel, 4: 0/255 random per byte.
Image make_image(int w, int h, int kind, std::mt19937& rng) {
  Image im(w, h);
  for (size_t i = 0; i < im.rgb.size(); ++i) {
    const size_t px = i / 3, x = px % w, y = px / w;
    switch (kind) {
      case 0: im.rgb[i] = 0; break;
      case 1: im.rgb[i] = 255; break;
      case 2: im.rgb[i] = static_cast<uint8_t>(rng()); break;
      case 3: im.rgb[i] = (x + y) % 2 ? 255 : 0; break;
      default: im.rgb[i] = rng() % 2 ? 255 : 0; break;
    }
  }
  return im;
}

// Empty when equal, else where the first byte differs.
std::string diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int w) {
  if (a.size() != b.size()) return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i])
      return "pixel (" + std::to_string(i / 3 % w) + ", " + std::to_string(i / 3 / w) + ") channel " +
             std::to_string(i % 3) + ": " + std::to_string(a[i]) + " vs portable " + std::to_string(b[i]);
  return "";
}

// resize() on every ISA path equals the portable path.
void expect_same_resize(const Image& in, int w, int h, Resample f) {
  Image ref;
  {
    kernels::ScopedIsa use(Isa::Portable);
    ref = resize(in, w, h, f);
  }
  for (Isa isa : kernels::available_isas()) {
    kernels::ScopedIsa use(isa);
    const Image out = resize(in, w, h, f);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    const std::string d = diff(out.rgb, ref.rgb, w);
    ASSERT_TRUE(d.empty()) << kernels::isa_name(isa) << ": " << in.width << "x" << in.height << " -> " << w << "x" << h
                           << " filter " << static_cast<int>(f) << ": " << d;
  }
}

TEST(Resample, SmallSizesEveryFilter) {
  std::mt19937 rng(7);
  for (int w = 1; w <= 70; ++w)
    for (Resample f : kFilters)
      for (int rep = 0; rep < 3; ++rep) {
        const int h = 1 + static_cast<int>(rng() % 12);
        const Image in = make_image(w, h, static_cast<int>(rng() % 5), rng);
        const int ow = 1 + static_cast<int>(rng() % (2 * w + 8)), oh = 1 + static_cast<int>(rng() % (2 * h + 8));
        expect_same_resize(in, ow, oh, f);  // both passes (or one, when a size happens to match)
        expect_same_resize(in, ow, h, f);   // horizontal only
        expect_same_resize(in, w, oh, f);   // vertical only
        expect_same_resize(in, 1, 1, f);
      }
}

TEST(Resample, LargeSizesEveryFilter) {
  std::mt19937 rng(11);
  struct Case {
    int w, h, ow, oh;
  };
  const Case cases[] = {{640, 480, 341, 256}, {640, 480, 224, 224}, {480, 640, 256, 341}, {97, 61, 640, 480},
                        {1001, 3, 17, 9},     {3001, 5, 1, 1},      {5, 2003, 3, 1},      {333, 77, 331, 79},
                        {64, 64, 65, 63},     {200, 150, 199, 600}, {11, 11, 1000, 2}};
  for (const Case& c : cases)
    for (Resample f : kFilters)
      for (int kind : {0, 1, 2, 4}) expect_same_resize(make_image(c.w, c.h, kind, rng), c.ow, c.oh, f);
}

// Random first/count and weights over the whole range the int32 sums allow (|sum| < 2^31), negative included;
// and weights of 2^30 and more (pixels 0 / 1 so the sums still fit), which the AVX2 path hands to the portable one.
TEST(Resample, KernelsRandomWeights) {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 400; ++iter) {
    const bool huge = iter % 50 == 49;
    const int in_w = 1 + static_cast<int>(rng() % 90), rows = 1 + static_cast<int>(rng() % 40);
    const int out_n = 1 + static_cast<int>(rng() % 90), ksize = 1 + static_cast<int>(rng() % std::min(in_w, rows) + rng() % 3);
    for (int pass = 0; pass < 2; ++pass) {  // 0: horizontal (taps over in_w), 1: vertical (over rows)
      const int span = pass == 0 ? in_w : rows;
      std::vector<int> first(out_n), count(out_n);
      std::vector<int32_t> k(static_cast<size_t>(out_n) * ksize);
      for (int o = 0; o < out_n; ++o) {
        count[o] = 1 + static_cast<int>(rng() % std::min(ksize, span));
        first[o] = static_cast<int>(rng() % (span - count[o] + 1));
        const int64_t lim = huge ? (int64_t{1} << 30) + (int64_t{1} << 28)
                                 : ((int64_t{1} << 31) - (int64_t{1} << 22)) / (255 * count[o]);
        for (int x = 0; x < ksize; ++x) {
          int64_t v = static_cast<int64_t>(rng() % (2 * lim + 1)) - lim;
          if (rng() % 4 == 0) v = rng() % 2 ? lim : -lim;
          k[static_cast<size_t>(o) * ksize + x] = static_cast<int32_t>(huge && x > 0 ? 0 : v);
        }
      }
      const kernels::ResampleCoeffs c{ksize, first.data(), count.data(), k.data()};
      Image in = make_image(in_w, rows, iter % 5, rng);
      if (huge)
        for (auto& b : in.rgb) b &= 1;
      const int ow = pass == 0 ? out_n : in_w, oh = pass == 0 ? rows : out_n;
      Image ref(ow, oh);
      if (pass == 0) kernels::portable::resample_horizontal(in.rgb.data(), in_w, rows, ref.rgb.data(), out_n, c);
      else kernels::portable::resample_vertical(in.rgb.data(), in_w, ref.rgb.data(), out_n, 0, c);
      for (Isa isa : kernels::available_isas()) {
        const kernels::KernelTable& t = kernels::kernel_table(isa);
        Image out(ow, oh);
        if (pass == 0) t.resample_horizontal(in.rgb.data(), in_w, rows, out.rgb.data(), out_n, c);
        else t.resample_vertical(in.rgb.data(), in_w, out.rgb.data(), out_n, 0, c);
        const std::string d = diff(out.rgb, ref.rgb, ow);
        ASSERT_TRUE(d.empty()) << kernels::isa_name(isa) << " iter " << iter << (pass ? " vertical" : " horizontal")
                               << " " << in_w << "x" << rows << " ksize " << ksize << ": " << d;
      }
    }
  }
}

// The vertical pass with row_offset: the rows of src start at row `off` of the image the weights index.
TEST(Resample, VerticalRowOffset) {
  std::mt19937 rng(5);
  const int w = 37, rows = 9, off = 4;
  std::vector<int> first = {4, 5, 6, 8, 4}, count = {3, 4, 5, 5, 9};
  const int ksize = 9;
  std::vector<int32_t> k(first.size() * ksize);
  for (auto& v : k) v = static_cast<int32_t>(rng() % (1 << 20)) - (1 << 19);  // 9 * 255 * 2^19 < 2^31
  const kernels::ResampleCoeffs c{ksize, first.data(), count.data(), k.data()};
  const Image in = make_image(w, rows, 2, rng);
  Image ref(w, 5);
  kernels::portable::resample_vertical(in.rgb.data(), w, ref.rgb.data(), 5, off, c);
  for (Isa isa : kernels::available_isas()) {
    Image out(w, 5);
    kernels::kernel_table(isa).resample_vertical(in.rgb.data(), w, out.rgb.data(), 5, off, c);
    EXPECT_EQ(diff(out.rgb, ref.rgb, w), "") << kernels::isa_name(isa);
  }
}

}  // namespace
}  // namespace vtx::test
