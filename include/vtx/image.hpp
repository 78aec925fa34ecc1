#pragma once
// Image loading, matching transformers.image_utils.load_image (Pillow 9.4):
//   PIL.Image.open -> ImageOps.exif_transpose -> convert("RGB")
//
//   vtx::Image img = vtx::load_image("cat.jpg");        // HWC RGB uint8
//
// Formats are detected from the content (magic bytes), never from the file name: JPEG (libjpeg-turbo, the
// decoder settings Pillow uses), PNG (libpng), WebP (libwebp, still images) and BMP. Every failure (missing,
// truncated or corrupt file, unsupported variant, too many pixels) is a vtx::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vtx/error.hpp"
#include "vtx/export.hpp"

namespace vtx {

// An 8-bit RGB image, rows top to bottom, pixels interleaved: rgb[(y * width + x) * 3 + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;

  Image() = default;
  Image(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3) {}
  const uint8_t* pixel(int x, int y) const { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

// Pillow's default Image.MAX_IMAGE_PIXELS.
inline constexpr int64_t kDefaultMaxImagePixels = 89478485;

// Progressive JPEGs with more scans than this are refused: each scan re-reads the whole coefficient buffer,
// so a small file with thousands of scans takes minutes (libjpeg-turbo's fuzzers use the same bound). Real
// encoders write about 10.
inline constexpr int kDefaultMaxJpegScans = 500;

struct ImageLoadOptions {
  bool exif_transpose = true;                   // apply the EXIF orientation (ImageOps.exif_transpose)
  int64_t max_pixels = kDefaultMaxImagePixels;  // decompression-bomb guard: error above this; <= 0 disables
  int max_jpeg_scans = kDefaultMaxJpegScans;    // progressive-JPEG scan limit (libjpeg progress monitor); <= 0 disables
};

// What the file held before the RGB conversion (what PIL.Image.open reports).
struct ImageInfo {
  std::string format;        // "JPEG", "PNG", "WEBP", "BMP"
  std::string mode;          // PIL mode of the decoded file: "1", "L", "I", "LA", "P", "RGB", "RGBA", "CMYK"
  int width = 0, height = 0;  // as stored, before the EXIF transpose
  int exif_orientation = 0;  // EXIF tag 0x0112 (0 when absent)
};

// Loads a file. `info`, when given, receives the raw decode facts.
VTX_API Image load_image(const std::string& path, const ImageLoadOptions& opt = {}, ImageInfo* info = nullptr);

// Decodes an in-memory file; `name` is used in error messages.
VTX_API Image decode_image(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt = {},
                   ImageInfo* info = nullptr);

// PIL Image.transpose methods, as selected by exif_transpose for orientations 2..8.
// Returns the image unchanged for any other orientation value.
VTX_API Image apply_exif_orientation(const Image& img, int orientation);

}  // namespace vtx
