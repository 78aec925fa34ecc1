// WebP decoding with libwebp (still images; Pillow decodes these to RGB or RGBA, alpha is then dropped).
#include <webp/decode.h>

#include <cstring>

#include "io/image_decode.hpp"

namespace vtx::io {

namespace {

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

// The EXIF chunk of the RIFF container, if any.
std::vector<uint8_t> find_exif(const uint8_t* d, size_t n) {
  size_t pos = 12;
  while (pos + 8 <= n) {
    const uint32_t len = le32(d + pos + 4);
    if (len > n - pos - 8) break;
    if (std::memcmp(d + pos, "EXIF", 4) == 0) {
      std::vector<uint8_t> e(d + pos + 8, d + pos + 8 + len);
      if (e.size() >= 6 && std::memcmp(e.data(), "Exif\0\0", 6) == 0) e.erase(e.begin(), e.begin() + 6);
      return e;
    }
    pos += 8 + len + (len & 1);
  }
  return {};
}

const char* status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "image file is truncated";
    default: return "error";
  }
}

}  // namespace

Decoded decode_webp(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt) {
  WebPBitstreamFeatures f;
  VP8StatusCode st = WebPGetFeatures(data, size, &f);
  if (st != VP8_STATUS_OK) throw Error(name + ": invalid WebP: " + status_text(st));
  if (f.has_animation) throw Error(name + ": animated WebP images are not supported");
  Decoded r;
  r.info.format = "WEBP";
  r.info.mode = std::string(f.has_alpha ? "RGBA" : "RGB");
  r.info.width = f.width;
  r.info.height = f.height;
  check_dimensions(name, f.width, f.height, opt);
  r.exif = find_exif(data, size);

  const size_t w = f.width, h = f.height;
  r.img = Image(f.width, f.height);
  if (!f.has_alpha) {
    if (!WebPDecodeRGBInto(data, size, r.img.rgb.data(), r.img.rgb.size(), static_cast<int>(w * 3)))
      throw Error(name + ": invalid WebP: cannot decode (corrupt or truncated)");
    return r;
  }
  std::vector<uint8_t> rgba(w * h * 4);
  if (!WebPDecodeRGBAInto(data, size, rgba.data(), rgba.size(), static_cast<int>(w * 4)))
    throw Error(name + ": invalid WebP: cannot decode (corrupt or truncated)");
  for (size_t i = 0; i < w * h; ++i) std::memcpy(&r.img.rgb[3 * i], &rgba[4 * i], 3);
  return r;
}

}  // namespace vtx::io
