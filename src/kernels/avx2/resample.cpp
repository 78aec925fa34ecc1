// AVX2 PIL resampling passes (resample.hpp), byte for byte those of portable/resample.cpp.
//
// Exactness: the int32 weights k (22 fraction bits; up to ~2^23 in magnitude) do not fit vpmaddwd's int16, so each
// is split as k = kh * 2^15 + kl with kh = k >> 15 and kl = k & 0x7fff, both int16 (checked: |k| < 2^30, else the
// portable path runs). With int16 pixels (0..255) every vpmaddwd pair sum is exact, and the full sum is
// (sum p * kh) << 15 + sum p * kl + rounding in wrapping int32 arithmetic: the scalar int32 sum modulo 2^32, i.e.
// the scalar sum itself. The >> 22 is arithmetic and vpackssdw + vpackuswb clamp to 0..255 like clip8.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/common/scratch.hpp"
#include "kernels/kernels.hpp"

namespace vtx::kernels::avx2 {
namespace {

constexpr int kBits = kResamplePrecisionBits;

thread_local ThreadBuf<int16_t> t_hweights;
thread_local ThreadBuf<int32_t> t_hoffset, t_vweights;
thread_local ThreadBuf<uint8_t> t_htail;

bool weights_split(const ResampleCoeffs& c, int n) {
  for (int o = 0; o < n; ++o)
    for (int x = 0; x < c.count[o]; ++x) {
      const int32_t k = c.k[static_cast<size_t>(o) * c.ksize + x];
      if (k >= (1 << 30) || k < -(1 << 30)) return false;
    }
  return true;
}
int16_t hi15(int32_t k) { return static_cast<int16_t>(k >> 15); }
int16_t lo15(int32_t k) { return static_cast<int16_t>(k & 0x7fff); }
uint32_t pair(int16_t a, int16_t b) { return static_cast<uint16_t>(a) | static_cast<uint32_t>(static_cast<uint16_t>(b)) << 16; }

// (h << 15) + l: the int32 sums of the split weights, recombined.
inline __m256i recombine(__m256i h, __m256i l) { return _mm256_add_epi32(_mm256_slli_epi32(h, 15), l); }
inline __m256i round_shift(__m256i v) {
  return _mm256_srai_epi32(_mm256_add_epi32(v, _mm256_set1_epi32(1 << (kBits - 1))), kBits);
}

}  // namespace

// One output pixel at a time, 4 taps per step: the 12 bytes of 4 input pixels, broadcast to both lanes, are
// shuffled to int16 (r0 r1 g0 g1 b0 b1 0 0 | r2 r3 g2 g3 b2 b3 0 0) and multiplied by the weights in the same
// layout (precomputed per call); lane 0 + lane 1 then holds R G B.
void resample_horizontal(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const ResampleCoeffs& c) {
  if (!weights_split(c, out_w)) return portable::resample_horizontal(src, in_w, rows, dst, out_w, c);
  const int groups = (c.ksize + 3) / 4;
  int16_t* w = t_hweights.get(static_cast<size_t>(out_w) * groups * 32);
  int32_t* off = t_hoffset.get(out_w);
  const int row_bytes = in_w * 3;
  // A group loads 16 bytes from its first pixel; pixels whose last load would pass the row's end read from a
  // zero-padded copy of the row's tail, from byte `tail0` on (an offset >= row_bytes marks them).
  int tail0 = row_bytes;
  for (int o = 0; o < out_w; ++o) {
    const int n = c.count[o], ng = (n + 3) / 4;
    const int32_t* k = c.k + static_cast<size_t>(o) * c.ksize;
    for (int g = 0; g < groups; ++g) {
      int16_t* wg = w + (static_cast<size_t>(o) * groups + g) * 32;
      std::memset(wg, 0, 32 * sizeof(int16_t));
      for (int t = 0; t < 4; ++t) {
        const int x = 4 * g + t;
        const int32_t kx = x < n ? k[x] : 0;
        for (int ch = 0; ch < 3; ++ch) {
          wg[(t / 2) * 8 + ch * 2 + t % 2] = hi15(kx);
          wg[16 + (t / 2) * 8 + ch * 2 + t % 2] = lo15(kx);
        }
      }
    }
    if (ng > 0 && 3 * c.first[o] + 12 * (ng - 1) + 16 > row_bytes) tail0 = std::min(tail0, 3 * c.first[o]);
  }
  for (int o = 0; o < out_w; ++o) {
    const int ng = (c.count[o] + 3) / 4;
    const bool tail = ng > 0 && 3 * c.first[o] + 12 * (ng - 1) + 16 > row_bytes;
    off[o] = tail ? row_bytes + 3 * c.first[o] - tail0 : 3 * c.first[o];
  }
  uint8_t* tbuf = t_htail.get(static_cast<size_t>(row_bytes - tail0) + 16);
  std::memset(tbuf + (row_bytes - tail0), 0, 16);
  const __m256i shuf = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,  //
                                        6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  const __m128i bias = _mm_set1_epi32(1 << (kBits - 1));
  for (int y = 0; y < rows; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * row_bytes;
    uint8_t* out = dst + static_cast<size_t>(y) * out_w * 3;
    if (tail0 < row_bytes) std::memcpy(tbuf, row + tail0, row_bytes - tail0);
    for (int o = 0; o < out_w; ++o) {
      const uint8_t* s = off[o] < row_bytes ? row + off[o] : tbuf + (off[o] - row_bytes);
      const __m256i* wo = reinterpret_cast<const __m256i*>(w + static_cast<size_t>(o) * groups * 32);
      __m256i h = _mm256_setzero_si256(), l = h;
      const int ng = (c.count[o] + 3) / 4;
      for (int g = 0; g < ng; ++g, s += 12) {
        const __m256i px =
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s))), shuf);
        h = _mm256_add_epi32(h, _mm256_madd_epi16(px, _mm256_load_si256(wo + 2 * g)));
        l = _mm256_add_epi32(l, _mm256_madd_epi16(px, _mm256_load_si256(wo + 2 * g + 1)));
      }
      const __m256i v = recombine(h, l);
      __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      r = _mm_srai_epi32(_mm_add_epi32(r, bias), kBits);
      r = _mm_packus_epi16(_mm_packs_epi32(r, r), r);
      const int rgbx = _mm_cvtsi128_si32(r);
      if (o + 1 < out_w) std::memcpy(out + 3 * o, &rgbx, 4);  // the 4th byte is overwritten by the next pixel
      else std::memcpy(out + 3 * o, &rgbx, 3);
    }
  }
}

// 32 bytes of the output row at a time, 2 input rows per step: their bytes, widened to int16 and interleaved,
// times the broadcast pair (k_y, k_y+1). A row that is not a multiple of 32 bytes ends with an overlapping chunk.
void resample_vertical(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset, const ResampleCoeffs& c) {
  const size_t rb = static_cast<size_t>(width) * 3;
  if (rb < 32 || !weights_split(c, out_h)) return portable::resample_vertical(src, width, dst, out_h, row_offset, c);
  uint32_t* kp = reinterpret_cast<uint32_t*>(t_vweights.get(static_cast<size_t>(c.ksize + 1) / 2 * 2));
  for (int yy = 0; yy < out_h; ++yy) {
    const int n = c.count[yy], np = (n + 1) / 2;
    const int32_t* k = c.k + static_cast<size_t>(yy) * c.ksize;
    for (int p = 0; p < np; ++p) {
      const int32_t k0 = k[2 * p], k1 = 2 * p + 1 < n ? k[2 * p + 1] : 0;
      kp[2 * p] = pair(hi15(k0), hi15(k1));
      kp[2 * p + 1] = pair(lo15(k0), lo15(k1));
    }
    const uint8_t* s = src + static_cast<size_t>(c.first[yy] - row_offset) * rb;
    uint8_t* out = dst + static_cast<size_t>(yy) * rb;
    for (size_t i = 0; i < rb; i += 32) {
      const size_t j = i + 32 <= rb ? i : rb - 32;
      __m256i h0 = _mm256_setzero_si256(), h1 = h0, h2 = h0, h3 = h0, l0 = h0, l1 = h0, l2 = h0, l3 = h0;
      for (int p = 0; p < np; ++p) {
        const uint8_t* r0 = s + 2 * p * rb + j;
        const uint8_t* r1 = 2 * p + 1 < n ? r0 + rb : r0;  // odd count: the last pair's second weight is 0
        const __m256i kh = _mm256_set1_epi32(static_cast<int>(kp[2 * p]));
        const __m256i kl = _mm256_set1_epi32(static_cast<int>(kp[2 * p + 1]));
        __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0)));
        __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1)));
        __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);  // bytes 0-3 8-11 / 4-7 12-15
        h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(lo, kh));
        l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(lo, kl));
        h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(hi, kh));
        l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(hi, kl));
        a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + 16)));
        b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + 16)));
        lo = _mm256_unpacklo_epi16(a, b);
        hi = _mm256_unpackhi_epi16(a, b);
        h2 = _mm256_add_epi32(h2, _mm256_madd_epi16(lo, kh));
        l2 = _mm256_add_epi32(l2, _mm256_madd_epi16(lo, kl));
        h3 = _mm256_add_epi32(h3, _mm256_madd_epi16(hi, kh));
        l3 = _mm256_add_epi32(l3, _mm256_madd_epi16(hi, kl));
      }
      // packs of (0-3 8-11, 4-7 12-15) is bytes 0-15 in order; packus of (0-15, 16-31) has quads 0 2 1 3.
      const __m256i x = _mm256_packs_epi32(round_shift(recombine(h0, l0)), round_shift(recombine(h1, l1)));
      const __m256i z = _mm256_packs_epi32(round_shift(recombine(h2, l2)), round_shift(recombine(h3, l3)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm256_permute4x64_epi64(_mm256_packus_epi16(x, z), 0xD8));
    }
  }
}

}  // namespace vtx::kernels::avx2
