#pragma once
// Internal: per-format decoders behind vtx::decode_image. Each returns the image already converted to RGB
// the way PIL's convert("RGB") does for the file's mode, plus the raw facts and the EXIF block.
#include <cstdint>
#include <string>
#include <vector>

#include "vtx/image.hpp"

namespace vtx::io {

struct Decoded {
  Image img;                  // RGB, as stored (no EXIF transpose yet)
  ImageInfo info;             // format, mode, width, height
  std::vector<uint8_t> exif;  // TIFF-structured EXIF data (the "Exif\0\0" prefix removed), or empty
  int xmp_orientation = 0;    // tiff:Orientation from XMP (PNG only, Pillow's fallback), 0 if none
};

// Throws vtx::Error("<name>: <what><detail>").
[[noreturn]] void fail(const std::string& name, const char* what, const char* detail = "");

// Throws vtx::Error when the declared size is empty or exceeds opt.max_pixels.
void check_dimensions(const std::string& name, int64_t width, int64_t height, const ImageLoadOptions& opt);

Decoded decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt);
Decoded decode_png(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt);
Decoded decode_webp(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt);
Decoded decode_bmp(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt);

// Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 0 when absent or malformed.
int exif_orientation(const std::vector<uint8_t>& tiff);

// PIL convert("RGB") of CMYK (Convert.c cmyk2rgb).
void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, size_t pixels);

}  // namespace vtx::io
