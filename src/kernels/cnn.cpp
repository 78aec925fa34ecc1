// GroupNorm, weight standardisation, TF-SAME padding and max pooling (BiT backbone), plus scalar references.
#include "kernels/cnn.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/threadpool.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

namespace {

void check_groups(int64_t C, int64_t groups, const char* what) {
  if (groups <= 0 || C <= 0 || C % groups != 0)
    throw Error(std::string(what) + ": " + std::to_string(C) + " channels are not divisible into " +
                std::to_string(groups) + " groups");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// GroupNorm

void group_norm(const float* x, int64_t N, int64_t C, int64_t HW, int64_t groups, const float* gamma,
                const float* beta, double eps, float* y, const float* residual, bool relu) {
  check_groups(C, groups, "group_norm");
  const int64_t cg = C / groups, len = cg * HW;
  global_pool().parallel_for(N * groups, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / groups, g = t % groups;
      const int64_t off = (n * C + g * cg) * HW;
      const float* xs = x + off;
      // Two passes: the mean, then the centred sum of squares (no cancellation), both accumulated in double
      // in four independent lanes.
      double s[4] = {0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 4 <= len; i += 4)
        for (int l = 0; l < 4; ++l) s[l] += xs[i + l];
      for (; i < len; ++i) s[0] += xs[i];
      const double mean = (s[0] + s[1] + s[2] + s[3]) / static_cast<double>(len);
      double q[4] = {0, 0, 0, 0};
      i = 0;
      for (; i + 4 <= len; i += 4)
        for (int l = 0; l < 4; ++l) {
          const double d = xs[i + l] - mean;
          q[l] += d * d;
        }
      for (; i < len; ++i) {
        const double d = xs[i] - mean;
        q[0] += d * d;
      }
      const double var = (q[0] + q[1] + q[2] + q[3]) / static_cast<double>(len);
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (int64_t c = 0; c < cg; ++c) {
        const int64_t ch = g * cg + c;
        // (x - mean) * (gamma * rstd) + beta: centring first keeps small groups (var ~ 0, rstd ~ 1/sqrt(eps))
        // exact, where x * a + (beta - mean * a) would cancel catastrophically.
        const float a = static_cast<float>(gamma[ch] * rstd);
        const float b = beta[ch];
        const float m = static_cast<float>(mean);
        const float* xr = xs + c * HW;
        float* yr = y + off + c * HW;
        const float* rr = residual ? residual + off + c * HW : nullptr;
        if (rr && relu) {
          for (int64_t p = 0; p < HW; ++p) yr[p] = std::max((xr[p] - m) * a + b + rr[p], 0.f);
        } else if (rr) {
          for (int64_t p = 0; p < HW; ++p) yr[p] = (xr[p] - m) * a + b + rr[p];
        } else if (relu) {
          for (int64_t p = 0; p < HW; ++p) yr[p] = std::max((xr[p] - m) * a + b, 0.f);
        } else {
          for (int64_t p = 0; p < HW; ++p) yr[p] = (xr[p] - m) * a + b;
        }
      }
    }
  });
}

void group_norm_ref(const float* x, int64_t N, int64_t C, int64_t HW, int64_t groups, const float* gamma,
                    const float* beta, double eps, float* y, const float* residual, bool relu) {
  check_groups(C, groups, "group_norm_ref");
  const int64_t cg = C / groups;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0, cnt = 0;
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
        for (int64_t p = 0; p < HW; ++p) {
          sum += x[(n * C + c) * HW + p];
          cnt += 1;
        }
      const double mean = sum / cnt;
      double ss = 0;
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
        for (int64_t p = 0; p < HW; ++p) {
          const double d = x[(n * C + c) * HW + p] - mean;
          ss += d * d;
        }
      const double var = ss / cnt;
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
        for (int64_t p = 0; p < HW; ++p) {
          const int64_t k = (n * C + c) * HW + p;
          double v = (x[k] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
          if (residual) v += residual[k];
          if (relu && v < 0) v = 0;
          y[k] = static_cast<float>(v);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Weight standardisation

void standardize_weights(const float* w, int64_t cout, int64_t per, double eps, float* out) {
  if (cout <= 0 || per <= 0) throw Error("standardize_weights: empty weight");
  for (int64_t o = 0; o < cout; ++o) {
    const float* r = w + o * per;
    double s = 0;
    for (int64_t i = 0; i < per; ++i) s += r[i];
    const double mean = s / static_cast<double>(per);
    double q = 0;
    for (int64_t i = 0; i < per; ++i) q += (r[i] - mean) * (r[i] - mean);
    const double rstd = 1.0 / std::sqrt(q / static_cast<double>(per) + eps);
    float* d = out + o * per;
    for (int64_t i = 0; i < per; ++i) d[i] = static_cast<float>((r[i] - mean) * rstd);
  }
}

void standardize_weights_ref(const float* w, int64_t cout, int64_t per, double eps, float* out) {
  // Variance as E[x^2] - E[x]^2 (a different formula than the kernel; exact enough in double for O(1) weights).
  for (int64_t o = 0; o < cout; ++o) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < per; ++i) {
      s += w[o * per + i];
      s2 += static_cast<double>(w[o * per + i]) * w[o * per + i];
    }
    const double mean = s / static_cast<double>(per);
    const double var = std::max(s2 / static_cast<double>(per) - mean * mean, 0.0);
    for (int64_t i = 0; i < per; ++i) out[o * per + i] = static_cast<float>((w[o * per + i] - mean) / std::sqrt(var + eps));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Padding

PadAmount tf_same_pad(int64_t n, int64_t k, int64_t stride, int64_t dilation) {
  if (n <= 0 || k <= 0 || stride <= 0 || dilation <= 0)
    throw Error("tf_same_pad: invalid size " + std::to_string(n) + ", kernel " + std::to_string(k) + ", stride " +
                std::to_string(stride));
  const int64_t out = (n + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (k - 1) * dilation + 1 - n, 0);
  return PadAmount{total / 2, total - total / 2};
}

void pad2d(const float* x, int64_t NC, int64_t H, int64_t W, int64_t top, int64_t bottom, int64_t left,
           int64_t right, float value, float* y) {
  if (top < 0 || bottom < 0 || left < 0 || right < 0) throw Error("pad2d: negative padding");
  const int64_t OH = H + top + bottom, OW = W + left + right;
  global_pool().parallel_for(NC, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float* o = y + c * OH * OW;
      const float* s = x + c * H * W;
      std::fill(o, o + top * OW, value);
      for (int64_t r = 0; r < H; ++r) {
        float* orow = o + (top + r) * OW;
        std::fill(orow, orow + left, value);
        std::memcpy(orow + left, s + r * W, static_cast<size_t>(W) * sizeof(float));
        std::fill(orow + left + W, orow + OW, value);
      }
      std::fill(o + (top + H) * OW, o + OH * OW, value);
    }
  });
}

void pad2d_ref(const float* x, int64_t NC, int64_t H, int64_t W, int64_t top, int64_t bottom, int64_t left,
               int64_t right, float value, float* y) {
  const int64_t OH = H + top + bottom, OW = W + left + right;
  for (int64_t c = 0; c < NC; ++c)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        const int64_t iy = oy - top, ix = ox - left;
        y[(c * OH + oy) * OW + ox] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(c * H + iy) * W + ix] : value;
      }
}

// ---------------------------------------------------------------------------------------------------------------
// Max pooling

void max_pool2d(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t s, float* y) {
  if (k <= 0 || s <= 0 || H < k || W < k)
    throw Error("max_pool2d: input " + std::to_string(H) + "x" + std::to_string(W) + " is smaller than the " +
                std::to_string(k) + "x" + std::to_string(k) + " kernel");
  const int64_t OH = (H - k) / s + 1, OW = (W - k) / s + 1;
  global_pool().parallel_for(NC, [&](int64_t c0, int64_t c1) {
    std::vector<float> row(static_cast<size_t>(W));
    for (int64_t c = c0; c < c1; ++c) {
      const float* p = x + c * H * W;
      for (int64_t oy = 0; oy < OH; ++oy) {
        // Vertical max of the k rows, then horizontal max over the window (NaN propagates, as in torch).
        const float* r0 = p + oy * s * W;
        std::copy(r0, r0 + W, row.begin());
        for (int64_t ky = 1; ky < k; ++ky) {
          const float* r = r0 + ky * W;
          for (int64_t i = 0; i < W; ++i) row[i] = (r[i] > row[i] || std::isnan(r[i])) ? r[i] : row[i];
        }
        float* o = y + (c * OH + oy) * OW;
        for (int64_t ox = 0; ox < OW; ++ox) {
          float m = row[ox * s];
          for (int64_t kx = 1; kx < k; ++kx) {
            const float v = row[ox * s + kx];
            if (v > m || std::isnan(v)) m = v;
          }
          o[ox] = m;
        }
      }
    }
  });
}

void max_pool2d_ref(const float* x, int64_t NC, int64_t H, int64_t W, int64_t k, int64_t s, float* y) {
  const int64_t OH = (H - k) / s + 1, OW = (W - k) / s + 1;
  for (int64_t c = 0; c < NC; ++c)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        float m = -INFINITY;
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < k; ++kx) m = std::max(m, x[(c * H + oy * s + ky) * W + ox * s + kx]);
        y[(c * OH + oy) * OW + ox] = m;
      }
}

}  // namespace vtx::kernels
