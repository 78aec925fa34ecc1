// Portable PIL resampling passes (resample.hpp): the scalar loops of Pillow's Resample.c, the reference of the
// other paths.
#include <algorithm>
#include <vector>

#include "kernels/kernels.hpp"

namespace vtx::kernels::portable {
namespace {

constexpr int kBits = kResamplePrecisionBits;

inline uint8_t clip8(int v) {
  v >>= kBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

void resample_horizontal(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const ResampleCoeffs& c) {
  for (int y = 0; y < rows; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * in_w * 3;
    uint8_t* out = dst + static_cast<size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      const uint8_t* s = row + static_cast<size_t>(c.first[xx]) * 3;
      int s0 = 1 << (kBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < c.count[xx]; ++x, s += 3) {
        s0 += s[0] * k[x];
        s1 += s[1] * k[x];
        s2 += s[2] * k[x];
      }
      out[3 * xx] = clip8(s0);
      out[3 * xx + 1] = clip8(s1);
      out[3 * xx + 2] = clip8(s2);
    }
  }
}

void resample_vertical(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset, const ResampleCoeffs& c) {
  const size_t row_bytes = static_cast<size_t>(width) * 3;
  std::vector<int> acc(row_bytes);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    const uint8_t* s = src + static_cast<size_t>(c.first[yy] - row_offset) * row_bytes;
    std::fill(acc.begin(), acc.end(), 1 << (kBits - 1));
    // Integer sums: accumulating row by row gives the same result as Pillow's per-pixel loop.
    for (int y = 0; y < c.count[yy]; ++y, s += row_bytes) {
      const int32_t ky = k[y];
      for (size_t i = 0; i < row_bytes; ++i) acc[i] += s[i] * ky;
    }
    uint8_t* out = dst + static_cast<size_t>(yy) * row_bytes;
    for (size_t i = 0; i < row_bytes; ++i) out[i] = clip8(acc[i]);
  }
}

}  // namespace vtx::kernels::portable
