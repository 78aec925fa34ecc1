#pragma once
// 2-D resampling of planar float images [C, H, W] -> [C, OH, OW], matching torch.nn.functional.interpolate.
// `scale_h`/`scale_w`: when > 0 they are the source-per-output ratio torch uses for coordinates (1/scale_factor
// when interpolate() was called with scale_factor); otherwise in/out is used.
#include <cstdint>

namespace vtx::kernels {

struct Resize {
  int64_t C = 0, H = 0, W = 0, OH = 0, OW = 0;
  double scale_h = 0, scale_w = 0;
};

// mode="bicubic", align_corners=False, antialias=False (cubic convolution a = -0.75, clamped borders).
void bicubic(const float* in, float* out, const Resize& r);
// mode="bicubic", antialias=True, align_corners=False: separable, a = -0.5, support scaled by the
// downsampling factor, weights normalised (torch's _upsample_bicubic2d_aa).
void bicubic_aa(const float* in, float* out, const Resize& r);
// mode="bilinear" with align_corners true/false.
void bilinear(const float* in, float* out, const Resize& r, bool align_corners);

// Scalar references (direct per-output-pixel formulas, double precision) for the tests.
void bicubic_ref(const float* in, float* out, const Resize& r);
void bicubic_aa_ref(const float* in, float* out, const Resize& r);
void bilinear_ref(const float* in, float* out, const Resize& r, bool align_corners);

}  // namespace vtx::kernels
