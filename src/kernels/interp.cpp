#include "kernels/interp.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threadpool.hpp"

namespace vtx::kernels {

namespace {

double src_scale(int64_t in, int64_t out, double given, bool align_corners) {
  if (align_corners) return out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  return given > 0 ? given : static_cast<double>(in) / static_cast<double>(out);
}

// Cubic convolution kernel with parameter a (torch/PIL).
inline double cubic(double x, double a) {
  x = std::fabs(x);
  if (x <= 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per-output index: list of (source index, weight) along one axis.
struct Taps {
  std::vector<int64_t> start;  // first source index per output
  std::vector<int64_t> count;
  int64_t width = 0;           // max taps
  std::vector<float> w;        // [out, width]
  std::vector<int64_t> idx;    // [out, width] (clamped source indices)
};

Taps cubic_taps(int64_t in, int64_t out, double given) {
  Taps t;
  t.width = 4;
  t.w.resize(out * 4);
  t.idx.resize(out * 4);
  const double scale = src_scale(in, out, given, false);
  for (int64_t o = 0; o < out; ++o) {
    // torch: area_pixel_compute_source_index(cubic=true): no clamping of negative coordinates.
    const float src = static_cast<float>(scale * (o + 0.5) - 0.5);
    const float fl = std::floor(src);
    const int64_t i0 = static_cast<int64_t>(fl);
    const float tt = src - fl;
    // torch computes the four coefficients in float (scalar_t) with A = -0.75.
    const float A = -0.75f;
    auto c1 = [&](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
    auto c2 = [&](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
    float ws[4] = {c2(tt + 1.0f), c1(tt), c1(1.0f - tt), c2(2.0f - tt)};
    for (int k = 0; k < 4; ++k) {
      t.idx[o * 4 + k] = std::clamp<int64_t>(i0 - 1 + k, 0, in - 1);
      t.w[o * 4 + k] = ws[k];
    }
  }
  return t;
}

Taps aa_taps(int64_t in, int64_t out, double given) {
  Taps t;
  const double scale = src_scale(in, out, given, false);
  const double support = (scale >= 1.0 ? scale : 1.0) * 2.0;  // bicubic interp_size 4 -> half-width 2
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  t.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.w.assign(out * t.width, 0.f);
  t.idx.assign(out * t.width, 0);
  for (int64_t o = 0; o < out; ++o) {
    const double center = scale * (o + 0.5);
    int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    int64_t n = std::min<int64_t>(xmax - xmin, t.width);
    double total = 0;
    std::vector<double> ws(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      ws[j] = cubic((j + xmin - center + 0.5) * invscale, -0.5);
      total += ws[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      t.idx[o * t.width + j] = xmin + j;
      t.w[o * t.width + j] = static_cast<float>(total != 0 ? ws[j] / total : 0.0);
    }
    for (int64_t j = n; j < t.width; ++j) t.idx[o * t.width + j] = xmin;  // zero weight
  }
  return t;
}

Taps linear_taps(int64_t in, int64_t out, double given, bool align_corners) {
  Taps t;
  t.width = 2;
  t.w.resize(out * 2);
  t.idx.resize(out * 2);
  const double scale = src_scale(in, out, given, align_corners);
  for (int64_t o = 0; o < out; ++o) {
    float src = align_corners ? static_cast<float>(scale * o) : static_cast<float>(scale * (o + 0.5) - 0.5);
    if (src < 0) src = 0;
    int64_t i0 = std::min<int64_t>(static_cast<int64_t>(src), in - 1);
    int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    float l1 = src - static_cast<float>(i0);
    t.idx[o * 2] = i0;
    t.idx[o * 2 + 1] = i1;
    t.w[o * 2] = 1.0f - l1;
    t.w[o * 2 + 1] = l1;
  }
  return t;
}

// Separable application: rows (W axis) then columns (H axis), one channel per task.
void separable(const float* in, float* out, const Resize& r, const Taps& th, const Taps& tw) {
  global_pool().parallel_for(r.C, [&](int64_t c0, int64_t c1) {
    std::vector<float> tmp(static_cast<size_t>(r.H * r.OW));
    for (int64_t c = c0; c < c1; ++c) {
      const float* src = in + c * r.H * r.W;
      for (int64_t y = 0; y < r.H; ++y)
        for (int64_t x = 0; x < r.OW; ++x) {
          float s = 0;
          for (int64_t k = 0; k < tw.width; ++k) s += tw.w[x * tw.width + k] * src[y * r.W + tw.idx[x * tw.width + k]];
          tmp[y * r.OW + x] = s;
        }
      float* dst = out + c * r.OH * r.OW;
      for (int64_t y = 0; y < r.OH; ++y)
        for (int64_t x = 0; x < r.OW; ++x) {
          float s = 0;
          for (int64_t k = 0; k < th.width; ++k) s += th.w[y * th.width + k] * tmp[th.idx[y * th.width + k] * r.OW + x];
          dst[y * r.OW + x] = s;
        }
    }
  });
}

}  // namespace

void bicubic(const float* in, float* out, const Resize& r) {
  // torch's non-antialiased bicubic is a 4x4 2-D kernel evaluated as rows then column; separable is equivalent.
  separable(in, out, r, cubic_taps(r.H, r.OH, r.scale_h), cubic_taps(r.W, r.OW, r.scale_w));
}

void bicubic_aa(const float* in, float* out, const Resize& r) {
  separable(in, out, r, aa_taps(r.H, r.OH, r.scale_h), aa_taps(r.W, r.OW, r.scale_w));
}

void bilinear(const float* in, float* out, const Resize& r, bool align_corners) {
  separable(in, out, r, linear_taps(r.H, r.OH, r.scale_h, align_corners), linear_taps(r.W, r.OW, r.scale_w, align_corners));
}

// ---- references: direct 2-D sums in double ----

namespace {
template <class WeightFn>
void direct(const float* in, float* out, const Resize& r, WeightFn fn) {
  for (int64_t c = 0; c < r.C; ++c)
    for (int64_t y = 0; y < r.OH; ++y)
      for (int64_t x = 0; x < r.OW; ++x) {
        double s = 0;
        for (int64_t sy = 0; sy < r.H; ++sy) {
          double wy = fn(true, y, sy);
          if (wy == 0) continue;
          for (int64_t sx = 0; sx < r.W; ++sx) s += wy * fn(false, x, sx) * in[(c * r.H + sy) * r.W + sx];
        }
        out[(c * r.OH + y) * r.OW + x] = static_cast<float>(s);
      }
}

// Weight of source index s for output o along an axis with clamped-border cubic interpolation.
double cubic_weight(int64_t in, int64_t out, double given, int64_t o, int64_t s) {
  double scale = src_scale(in, out, given, false);
  double src = scale * (o + 0.5) - 0.5;
  double fl = std::floor(src);
  double w = 0;
  for (int k = -1; k <= 2; ++k) {
    int64_t i = std::clamp<int64_t>(static_cast<int64_t>(fl) + k, 0, in - 1);
    if (i == s) w += cubic(src - (fl + k), -0.75);
  }
  return w;
}

double aa_weight(int64_t in, int64_t out, double given, int64_t o, int64_t s) {
  double scale = src_scale(in, out, given, false);
  double support = std::max(scale, 1.0) * 2.0, inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  double center = scale * (o + 0.5);
  int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
  int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
  if (s < lo || s >= hi) return 0;
  double total = 0;
  for (int64_t j = lo; j < hi; ++j) total += cubic((j - center + 0.5) * inv, -0.5);
  return cubic((s - center + 0.5) * inv, -0.5) / total;
}

double linear_weight(int64_t in, int64_t out, double given, bool ac, int64_t o, int64_t s) {
  double scale = src_scale(in, out, given, ac);
  double src = ac ? scale * o : std::max(0.0, scale * (o + 0.5) - 0.5);
  int64_t i0 = std::min<int64_t>(static_cast<int64_t>(src), in - 1), i1 = std::min<int64_t>(i0 + 1, in - 1);
  double l = src - i0, w = 0;
  if (s == i0) w += 1 - l;
  if (s == i1) w += l;
  return w;
}
}  // namespace

void bicubic_ref(const float* in, float* out, const Resize& r) {
  direct(in, out, r, [&](bool vert, int64_t o, int64_t s) {
    return vert ? cubic_weight(r.H, r.OH, r.scale_h, o, s) : cubic_weight(r.W, r.OW, r.scale_w, o, s);
  });
}

void bicubic_aa_ref(const float* in, float* out, const Resize& r) {
  direct(in, out, r, [&](bool vert, int64_t o, int64_t s) {
    return vert ? aa_weight(r.H, r.OH, r.scale_h, o, s) : aa_weight(r.W, r.OW, r.scale_w, o, s);
  });
}

void bilinear_ref(const float* in, float* out, const Resize& r, bool ac) {
  direct(in, out, r, [&](bool vert, int64_t o, int64_t s) {
    return vert ? linear_weight(r.H, r.OH, r.scale_h, ac, o, s) : linear_weight(r.W, r.OW, r.scale_w, ac, o, s);
  });
}

}  // namespace vtx::kernels
