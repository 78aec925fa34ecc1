#pragma once
// The two passes of PIL's fixed-point resampling of 8-bit RGB images (Pillow 9.4 Resample.c, reproduced bit for
// bit by src/preprocess/resample.cpp, which computes the coefficients). Every output value is
//   clip8((1 << (kResamplePrecisionBits - 1) + sum_i pixel_i * k_i) >> kResamplePrecisionBits)
// in int32 arithmetic; every path (portable, avx2) gives the same bytes.
#include <cstdint>

namespace vtx::kernels {

constexpr int kResamplePrecisionBits = 32 - 8 - 2;

// Per output pixel (or row) o: taps count[o] input pixels (rows) from first[o], weights k[o * ksize + 0 ..
// count[o]) in kResamplePrecisionBits fixed point (the rest of each ksize block is ignored).
struct ResampleCoeffs {
  int ksize = 0;
  const int* first = nullptr;
  const int* count = nullptr;
  const int32_t* k = nullptr;
};

// Horizontal pass: `rows` rows of in_w RGB pixels (contiguous, in_w * 3 bytes each) -> rows of out_w pixels;
// c has out_w entries and reads only input pixels [0, in_w).
void resample_horizontal(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const ResampleCoeffs& c);
// Vertical pass over rows of `width` RGB pixels: output row o sums the rows first[o] - row_offset + [0, count[o])
// of src (row_offset: rows of the full image that src starts after); out_h output rows.
void resample_vertical(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset, const ResampleCoeffs& c);

}  // namespace vtx::kernels
