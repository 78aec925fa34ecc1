// vtx::load_image / decode_image: format sniffing, EXIF orientation, decompression-bomb guard.
#include "vtx/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "io/files.hpp"
#include "io/image_decode.hpp"
#include "vtx/serve_support.hpp"

namespace vtx {

namespace io {

void fail(const std::string& name, const char* what, const char* detail) {
  std::string m = name;
  m.append(": ").append(what).append(detail);
  throw Error(m);
}

void check_dimensions(const std::string& name, int64_t width, int64_t height, const ImageLoadOptions& opt) {
  if (width <= 0 || height <= 0)
    throw Error(name + ": invalid image size " + std::to_string(width) + "x" + std::to_string(height));
  if (width > (int64_t{1} << 30) || height > (int64_t{1} << 30))
    throw Error(name + ": image size " + std::to_string(width) + "x" + std::to_string(height) + " is too large");
  const int64_t pixels = width * height;
  if (opt.max_pixels > 0 && pixels > opt.max_pixels)
    throw ImageTooLargeError(name + ": image size " + std::to_string(width) + "x" + std::to_string(height) + " (" +
                                 std::to_string(pixels) + " pixels) exceeds the limit of " +
                                 std::to_string(opt.max_pixels) +
                                 " pixels (possible decompression bomb; raise the limit with --max-pixels N / "
                                 "ImageLoadOptions::max_pixels)",
                             width, height, opt.max_pixels);
}

int exif_orientation(const std::vector<uint8_t>& t) {
  const size_t n = t.size();
  if (n < 8) return 0;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 0;
  auto u16 = [&](size_t o) -> uint32_t { return le ? t[o] | t[o + 1] << 8 : t[o] << 8 | t[o + 1]; };
  auto u32 = [&](size_t o) -> uint32_t {
    return le ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2);
  };
  if (u16(2) != 42) return 0;
  const size_t ifd = u32(4);
  if (ifd > n || n - ifd < 2) return 0;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + i * 12;
    if (e > n || n - e < 12) return 0;
    if (u16(e) != 0x0112) continue;
    const uint32_t type = u16(e + 2), cnt = u32(e + 4);
    if (cnt != 1) return 0;
    if (type == 3) return static_cast<int>(u16(e + 8));        // SHORT
    if (type == 4) return static_cast<int>(std::min<uint32_t>(u32(e + 8), 1000));  // LONG
    if (type == 1) return t[e + 8];                            // BYTE
    return 0;
  }
  return 0;
}

void cmyk_to_rgb(const uint8_t* in, uint8_t* out, size_t pixels) {
  for (size_t i = 0; i < pixels; ++i, in += 4, out += 3) {
    const int nk = 255 - in[3];
    for (int c = 0; c < 3; ++c) {
      const int tmp = in[c] * nk + 128;
      const int v = nk - (((tmp >> 8) + tmp) >> 8);
      out[c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

}  // namespace io

Image apply_exif_orientation(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;  // TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90
  Image out(swap ? H : W, swap ? W : H);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = W - 1 - x; break;                    // FLIP_LEFT_RIGHT
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;    // ROTATE_180
        case 4: sy = H - 1 - y; break;                    // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                    // TRANSPOSE
        case 6: sx = y; sy = H - 1 - x; break;            // ROTATE_270 (clockwise)
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;    // TRANSVERSE
        case 8: sx = W - 1 - y; sy = x; break;            // ROTATE_90 (counter-clockwise)
      }
      std::memcpy(out.pixel(x, y), in.pixel(sx, sy), 3);
    }
  }
  return out;
}

Image decode_image(const uint8_t* d, size_t n, const std::string& name, const ImageLoadOptions& opt, ImageInfo* info) {
  auto starts = [&](const char* magic, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(d + at, magic, len) == 0;
  };
  io::Decoded r;
  if (n == 0) throw Error(name + ": empty file");
  if (starts("\xFF\xD8\xFF", 3)) r = io::decode_jpeg(d, n, name, opt);
  else if (starts("\x89PNG\r\n\x1A\n", 8)) r = io::decode_png(d, n, name, opt);
  else if (starts("RIFF", 4) && starts("WEBP", 4, 8)) r = io::decode_webp(d, n, name, opt);
  else if (starts("BM", 2)) r = io::decode_bmp(d, n, name, opt);
  else if (starts("GIF8", 4)) throw Error(name + ": GIF images are not supported");
  else if (starts("II*\0", 4) || starts("MM\0*", 4)) throw Error(name + ": TIFF images are not supported");
  else throw Error(name + ": unrecognised image format (not JPEG, PNG, WebP or BMP)");

  int orientation = io::exif_orientation(r.exif);
  if (orientation == 0) orientation = r.xmp_orientation;
  r.info.exif_orientation = orientation;
  if (info) *info = r.info;
  if (opt.exif_transpose && orientation >= 2 && orientation <= 8) return apply_exif_orientation(r.img, orientation);
  return std::move(r.img);
}

Image load_image(const std::string& path, const ImageLoadOptions& opt, ImageInfo* info) {
  // The file type is checked before open: a FIFO or device would block or never end.
  const std::string bytes = io::read_file(path, "image");
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, opt, info);
}

}  // namespace vtx
