// The resample family (resample.hpp): the passes run the dispatch table's path.
#include "kernels/resample.hpp"

#include "kernels/kernels.hpp"

namespace vtx::kernels {

void resample_horizontal(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const ResampleCoeffs& c) {
  kernel_table().resample_horizontal(src, in_w, rows, dst, out_w, c);
}

void resample_vertical(const uint8_t* src, int width, uint8_t* dst, int out_h, int row_offset, const ResampleCoeffs& c) {
  kernel_table().resample_vertical(src, width, dst, out_h, row_offset, c);
}

}  // namespace vtx::kernels
