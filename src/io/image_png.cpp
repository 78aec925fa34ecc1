// PNG decoding with libpng, converted to RGB the way Pillow 9.4 maps PNG types to modes and converts them:
// gray 1 -> "1", 2/4/8 -> "L" (bit-replicated), 16 -> "I" (clamped to 0..255 by convert("RGB")),
// RGB/RGBA/LA 16-bit keep the high byte, palette via PLTE (missing entries black), alpha and tRNS dropped.
// libpng errors longjmp back into small functions that own no C++ objects.
#include <png.h>

#include <array>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

#include "io/image_decode.hpp"

namespace vtx::io {
namespace {

struct PngJob {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char msg[256] = {0};
};

extern "C" void png_on_error(png_structp p, png_const_charp m) {
  auto* j = static_cast<PngJob*>(png_get_error_ptr(p));
  if (j->msg[0] == 0) std::snprintf(j->msg, sizeof j->msg, "%s", m);
  png_longjmp(p, 1);
}

extern "C" void png_on_warning(png_structp, png_const_charp) {}

extern "C" void png_on_read(png_structp p, png_bytep out, size_t n) {
  auto* j = static_cast<PngJob*>(png_get_io_ptr(p));
  if (n > j->size - j->pos) {
    std::snprintf(j->msg, sizeof j->msg, "image file is truncated");
    png_error(p, "truncated");
  }
  std::memcpy(out, j->data + j->pos, n);
  j->pos += n;
}

bool read_info(PngJob* j) {
  if (setjmp(png_jmpbuf(j->png))) return false;
  png_set_user_limits(j->png, 0x7fffffff, 0x7fffffff);  // the pixel-count guard is ours
  png_read_info(j->png, j->info);
  return true;
}

bool setup_transforms(PngJob* j, int color_type, int bit_depth) {
  if (setjmp(png_jmpbuf(j->png))) return false;
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(j->png);
  if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) png_set_packing(j->png);
  if (color_type != PNG_COLOR_TYPE_GRAY && bit_depth == 16) png_set_strip_16(j->png);
  png_set_interlace_handling(j->png);
  png_read_update_info(j->png, j->info);
  return true;
}

bool read_rows(PngJob* j, png_bytepp rows) {
  if (setjmp(png_jmpbuf(j->png))) return false;
  png_read_image(j->png, rows);
  return true;
}

// Chunks after the image data (eXIf, text). Like Pillow's load_end, problems here are not fatal.
bool read_end(PngJob* j) {
  if (setjmp(png_jmpbuf(j->png))) return false;
  png_read_end(j->png, j->info);
  return true;
}

struct PngHolder {
  PngJob j;
  PngHolder() {
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_on_error, png_on_warning);
    if (j.png) j.info = png_create_info_struct(j.png);
  }
  ~PngHolder() { png_destroy_read_struct(&j.png, j.info ? &j.info : nullptr, nullptr); }
  PngHolder(const PngHolder&) = delete;
  PngHolder& operator=(const PngHolder&) = delete;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Pillow's getexif() fallbacks for PNG: the eXIf chunk, else the ImageMagick "Raw profile type exif" text
// (hex after three header lines), else tiff:Orientation in the XMP packet.
void read_metadata(png_structp png, png_infop info, Decoded& r) {
  png_uint_32 exif_len = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif && exif_len > 0) {
    r.exif.assign(exif, exif + exif_len);
    if (r.exif.size() >= 6 && std::memcmp(r.exif.data(), "Exif\0\0", 6) == 0) r.exif.erase(r.exif.begin(), r.exif.begin() + 6);
  }
  png_textp text = nullptr;
  int ntext = 0;
  png_get_text(png, info, &text, &ntext);
  for (int i = 0; i < ntext; ++i) {
    std::string key = text[i].key ? text[i].key : "";
    std::string val(text[i].text ? text[i].text : "", text[i].text ? (text[i].itxt_length ? text[i].itxt_length : text[i].text_length) : 0);
    if (key == "Raw profile type exif" && r.exif.empty()) {
      size_t p = std::string::npos;  // the hex starts after the third newline
      for (int line = 0; line < 3; ++line) {
        p = val.find('\n', p == std::string::npos ? 0 : p + 1);
        if (p == std::string::npos) break;
      }
      if (p == std::string::npos) continue;
      std::vector<uint8_t> bytes;
      int hi = -1;
      for (size_t k = p + 1; k < val.size(); ++k) {
        int v = hex_value(val[k]);
        if (v < 0) continue;
        if (hi < 0) hi = v;
        else { bytes.push_back(static_cast<uint8_t>(hi << 4 | v)); hi = -1; }
      }
      if (bytes.size() >= 6 && std::memcmp(bytes.data(), "Exif\0\0", 6) == 0) bytes.erase(bytes.begin(), bytes.begin() + 6);
      r.exif = std::move(bytes);
    } else if (key == "XML:com.adobe.xmp") {
      for (const char* tag : {"tiff:Orientation=\"", "tiff:Orientation>"}) {
        size_t p = val.find(tag);
        if (p != std::string::npos) {
          p += std::strlen(tag);
          if (p < val.size() && val[p] >= '0' && val[p] <= '9') { r.xmp_orientation = val[p] - '0'; break; }
        }
      }
    }
  }
}

}  // namespace

Decoded decode_png(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt) {
  PngHolder h;
  PngJob* j = &h.j;
  if (!j->png || !j->info) throw Error(name + ": cannot initialise libpng");
  j->data = data;
  j->size = size;
  png_set_read_fn(j->png, j, png_on_read);
  if (!read_info(j)) fail(name, "invalid PNG: ", j->msg);

  const png_uint_32 w = png_get_image_width(j->png, j->info), ht = png_get_image_height(j->png, j->info);
  const int ct = png_get_color_type(j->png, j->info), bd = png_get_bit_depth(j->png, j->info);
  Decoded r;
  r.info.format = "PNG";
  r.info.width = static_cast<int>(w);
  r.info.height = static_cast<int>(ht);
  switch (ct) {
    case PNG_COLOR_TYPE_GRAY: r.info.mode = std::string(bd == 1 ? "1" : bd == 16 ? "I" : "L"); break;
    case PNG_COLOR_TYPE_RGB: r.info.mode = std::string("RGB"); break;
    case PNG_COLOR_TYPE_PALETTE: r.info.mode = std::string("P"); break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: r.info.mode = std::string(bd == 16 ? "RGBA" : "LA"); break;
    case PNG_COLOR_TYPE_RGB_ALPHA: r.info.mode = std::string("RGBA"); break;
    default: throw Error(name + ": unsupported PNG colour type " + std::to_string(ct));
  }
  check_dimensions(name, w, ht, opt);

  std::array<uint8_t, 256 * 3> lut{};  // palette; entries past PLTE stay black
  if (ct == PNG_COLOR_TYPE_PALETTE) {
    png_colorp pal = nullptr;
    int npal = 0;
    if (!png_get_PLTE(j->png, j->info, &pal, &npal) || !pal) throw Error(name + ": invalid PNG: palette image without PLTE");
    for (int i = 0; i < npal && i < 256; ++i) {
      lut[3 * i] = pal[i].red;
      lut[3 * i + 1] = pal[i].green;
      lut[3 * i + 2] = pal[i].blue;
    }
  }
  if (!setup_transforms(j, ct, bd)) fail(name, "invalid PNG: ", j->msg);
  const size_t row_bytes = png_get_rowbytes(j->png, j->info);
  const int channels = png_get_channels(j->png, j->info);
  const int bytes_per_sample = (ct == PNG_COLOR_TYPE_GRAY && bd == 16) ? 2 : 1;
  if (row_bytes != static_cast<size_t>(w) * channels * bytes_per_sample)
    throw Error(name + ": invalid PNG: unexpected row layout");

  std::vector<uint8_t> raw(row_bytes * ht);
  std::vector<png_bytep> rows(ht);
  for (png_uint_32 y = 0; y < ht; ++y) rows[y] = raw.data() + row_bytes * y;
  if (!read_rows(j, rows.data())) fail(name, "invalid PNG: ", j->msg);
  read_end(j);  // failures after the image data are ignored; use whatever metadata was read
  read_metadata(j->png, j->info, r);

  r.img = Image(static_cast<int>(w), static_cast<int>(ht));
  uint8_t* out = r.img.rgb.data();
  const size_t n = static_cast<size_t>(w) * ht;
  const uint8_t* in = raw.data();
  for (size_t i = 0; i < n; ++i, out += 3) {
    switch (ct) {
      case PNG_COLOR_TYPE_GRAY:
        if (bd == 16) {
          const int v = in[2 * i] << 8 | in[2 * i + 1];
          out[0] = out[1] = out[2] = static_cast<uint8_t>(v > 255 ? 255 : v);
        } else {
          out[0] = out[1] = out[2] = in[i];
        }
        break;
      case PNG_COLOR_TYPE_GRAY_ALPHA: out[0] = out[1] = out[2] = in[2 * i]; break;
      case PNG_COLOR_TYPE_PALETTE: std::memcpy(out, &lut[3 * in[i]], 3); break;
      case PNG_COLOR_TYPE_RGB: std::memcpy(out, in + 3 * i, 3); break;
      default: std::memcpy(out, in + 4 * i, 3); break;
    }
  }
  return r;
}

}  // namespace vtx::io
