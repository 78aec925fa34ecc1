// PIL Image.resize for 8-bit RGB, reproducing Pillow 9.4's Resample.c bit for bit: separable convolution
// (horizontal pass over only the rows the vertical pass needs, then vertical), filter support scaled by the
// downscale factor, double coefficients normalised per output pixel, converted to 22-bit fixed point, integer
// accumulation with a rounding bias, clipped to uint8 after each pass (the passes: kernels/resample.hpp). NEAREST
// follows ImagingScaleAffine.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/resample.hpp"
#include "vtx/processor.hpp"

namespace vtx {
namespace {

constexpr int kPrecisionBits = kernels::kResamplePrecisionBits;

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as in Pillow
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(Resample r) {
  switch (r) {
    case Resample::Box: return {box_filter, 0.5};
    case Resample::Bilinear: return {bilinear_filter, 1.0};
    case Resample::Hamming: return {hamming_filter, 1.0};
    case Resample::Bicubic: return {bicubic_filter, 2.0};
    case Resample::Lanczos: return {lanczos_filter, 3.0};
    default: throw Error("resize: unsupported resampling filter " + std::to_string(static_cast<int>(r)));
  }
}

// Per output pixel: first input index, number of taps, and fixed-point weights (ksize per pixel).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Coeffs precompute(int in_size, float in0, float in1, int out_size, const Filter& f) {
  double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = f.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = f.fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) w[x] /= ww;
      const double v = w[x] * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int32_t>(w[x] < 0 ? -0.5 + v : 0.5 + v);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

kernels::ResampleCoeffs view(const Coeffs& c) { return {c.ksize, c.first.data(), c.count.data(), c.k.data()}; }

// Horizontal pass over input rows [row0, row0 + rows).
Image resample_horizontal(const Image& in, int out_w, int row0, int rows, const Coeffs& c) {
  Image out(out_w, rows);
  kernels::resample_horizontal(in.pixel(0, row0), in.width, rows, out.rgb.data(), out_w, view(c));
  return out;
}

// Vertical pass; `row_offset` is subtracted from the coefficient bounds (rows skipped by the first pass).
Image resample_vertical(const Image& in, int out_h, int row_offset, const Coeffs& c) {
  Image out(in.width, out_h);
  kernels::resample_vertical(in.rgb.data(), in.width, out.rgb.data(), out_h, row_offset, view(c));
  return out;
}

Image resize_nearest(const Image& in, int w, int h) {
  Image out(w, h);  // zero-filled, like ImagingScaleAffine's fill
  const double a0 = static_cast<double>(static_cast<float>(in.width)) / w;
  const double a4 = static_cast<double>(static_cast<float>(in.height)) / h;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
  std::vector<int> xin(w, 0);
  int xmin = w, xmax = 0;
  double xo = a0 * 0.5;
  for (int x = 0; x < w; ++x, xo += a0) {
    const int xi = coord(xo);
    if (xi >= 0 && xi < in.width) {
      xmax = x + 1;
      if (x < xmin) xmin = x;
      xin[x] = xi;
    }
  }
  double yo = a4 * 0.5;
  for (int y = 0; y < h; ++y, yo += a4) {
    const int yi = coord(yo);
    if (yi < 0 || yi >= in.height) continue;
    for (int x = xmin; x < xmax; ++x) std::memcpy(out.pixel(x, y), in.pixel(xin[x], yi), 3);
  }
  return out;
}

}  // namespace

Image resize(const Image& in, int width, int height, Resample filter) {
  if (width <= 0 || height <= 0) throw Error("resize: target size must be positive, got " + std::to_string(width) + "x" + std::to_string(height));
  if (in.width <= 0 || in.height <= 0) throw Error("resize: empty input image");
  if (width == in.width && height == in.height) return in;  // PIL copies
  if (filter == Resample::Nearest) return resize_nearest(in, width, height);
  const Filter f = filter_for(filter);
  const bool need_h = width != in.width, need_v = height != in.height;
  const Coeffs cv = precompute(in.height, 0.0f, static_cast<float>(in.height), height, f);
  if (!need_h) return resample_vertical(in, height, 0, cv);
  const int first = cv.first[0];
  const int last = cv.first[height - 1] + cv.count[height - 1];
  const Coeffs ch = precompute(in.width, 0.0f, static_cast<float>(in.width), width, f);
  Image tmp = resample_horizontal(in, width, first, last - first, ch);
  if (!need_v) return tmp;
  return resample_vertical(tmp, height, first, cv);
}

Image center_crop(const Image& in, int height, int width) {
  if (height <= 0 || width <= 0) throw Error("center_crop: crop size must be positive");
  // Python floor division: top = (H - h) // 2 (negative when the crop is larger: zero padding).
  auto floor_half = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  const int top = floor_half(in.height - height), left = floor_half(in.width - width);
  Image out(width, height);
  for (int y = 0; y < height; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= in.height) continue;
    const int x0 = std::max(0, -left), x1 = std::min(width, in.width - left);
    if (x1 > x0) std::memcpy(out.pixel(x0, y), in.pixel(x0 + left, sy), static_cast<size_t>(x1 - x0) * 3);
  }
  return out;
}

}  // namespace vtx
