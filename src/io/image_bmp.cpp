// BMP decoding (hand-written, every offset validated), following Pillow 9.4's BmpImagePlugin: header sizes
// 12/40/64/108/124, 1/4/8-bit palettes, 16-bit 5:5:5 (or 5:6:5 bitfields), 24-bit BGR, 32-bit BGRX and the
// bitfield layouts Pillow accepts, RLE8/RLE4. Bottom-up unless the height is negative.
#include <algorithm>
#include <array>
#include <cstring>

#include "io/image_decode.hpp"

namespace vtx::io {
namespace {

uint32_t u16(const uint8_t* p) { return p[0] | p[1] << 8; }
uint32_t u32(const uint8_t* p) { return u16(p) | u16(p + 2) << 16; }

int mask_shift(uint32_t m) {
  int s = 0;
  while (m && !(m & 1)) m >>= 1, ++s;
  return s;
}

// Pillow's unpackers for 5/6-bit fields: v * 255 / max; 8-bit fields are copied.
uint8_t field(uint32_t px, uint32_t mask) {
  if (!mask) return 0;
  const uint32_t max = mask >> mask_shift(mask);
  const uint32_t v = (px & mask) >> mask_shift(mask);
  return static_cast<uint8_t>(max == 255 ? v : v * 255 / max);
}

struct Bmp {
  const uint8_t* d;
  size_t n;
  const std::string& name;
  [[noreturn]] void fail(const std::string& what) const { throw Error(name + ": invalid BMP: " + what); }
  void need(size_t off, size_t len) const {
    if (off > n || len > n - off) throw Error(name + ": image file is truncated (BMP data ends early)");
  }
};

// RLE8/RLE4 into one index per pixel, rows in file order (bottom-up), exactly as Pillow 9.4's BmpRleDecoder:
// the pixels form one linear stream (an absolute run may spill into the next row; an encoded run is clipped
// at the row end), end-of-line pads the row with 0, a delta skips `right + up * width` pixels (Pillow reads
// the two delta bytes, then the next two as the offsets), absolute runs are word-aligned on the file offset,
// RLE4 absolute runs hold count / 2 bytes. Data that ends (or an end-of-bitmap) before every pixel is set is
// refused, as Pillow's "not enough image data".
std::vector<uint8_t> decode_rle(const Bmp& b, size_t pos, int w, int h, bool rle4) {
  const size_t total = static_cast<size_t>(w) * static_cast<size_t>(h), W = static_cast<size_t>(w);
  std::vector<uint8_t> data;
  data.reserve(total);
  size_t x = 0;
  auto avail = [&](size_t k) { return pos <= b.n && k <= b.n - pos; };
  while (data.size() < total) {
    if (!avail(2)) break;
    size_t count = b.d[pos];
    const uint8_t code = b.d[pos + 1];
    pos += 2;
    if (count) {  // encoded run
      if (x + count > W) count = x < W ? W - x : 0;
      for (size_t i = 0; i < count; ++i) data.push_back(rle4 ? static_cast<uint8_t>(i % 2 ? code & 15 : code >> 4) : code);
      x += count;
    } else if (code == 0) {  // end of line
      while (data.size() % W != 0) data.push_back(0);
      x = 0;
    } else if (code == 1) {  // end of bitmap
      break;
    } else if (code == 2) {  // delta
      if (!avail(2)) break;
      pos += 2;
      if (!avail(2)) throw Error(b.name + ": image file is truncated (BMP RLE delta ends early)");
      const size_t right = b.d[pos], up = b.d[pos + 1];
      pos += 2;
      const size_t skip = right + up * W;
      if (skip > total - std::min(total, data.size())) {  // past the last pixel: the image is complete
        data.resize(total, 0);
        break;
      }
      data.resize(data.size() + skip, 0);
      x = data.size() % W;
    } else {  // absolute run
      const size_t bytes = rle4 ? code / 2 : code;
      const size_t got = avail(bytes) ? bytes : (pos <= b.n ? b.n - pos : 0);
      for (size_t i = 0; i < got; ++i) {
        const uint8_t v = b.d[pos + i];
        if (rle4) {
          data.push_back(static_cast<uint8_t>(v >> 4));
          data.push_back(static_cast<uint8_t>(v & 15));
        } else {
          data.push_back(v);
        }
      }
      pos += got;
      if (got < bytes) break;
      x += code;
      if (pos % 2) ++pos;
    }
  }
  if (data.size() < total)
    throw Error(b.name + ": image file is truncated (BMP RLE data ends before the last pixel)");
  data.resize(total);
  return data;
}

}  // namespace

Decoded decode_bmp(const uint8_t* d, size_t n, const std::string& name, const ImageLoadOptions& opt) {
  Bmp b{d, n, name};
  b.need(0, 18);
  const uint32_t data_offset = u32(d + 10), hsize = u32(d + 14);
  if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 && hsize != 124)
    b.fail("unsupported header size " + std::to_string(hsize));
  b.need(14, hsize);
  const uint8_t* hd = d + 18;
  int64_t w, h;
  uint32_t bits, compression = 0, colors = 0;
  bool top_down = false;
  if (hsize == 12) {
    w = u16(hd);
    h = u16(hd + 2);
    bits = u16(hd + 6);
  } else {
    w = static_cast<int32_t>(u32(hd));
    h = static_cast<int32_t>(u32(hd + 4));
    bits = u16(hd + 10);
    compression = u32(hd + 12);
    colors = u32(hd + 28);
    if (h < 0) top_down = true, h = -h;
  }
  size_t pos = 14 + hsize;
  std::array<uint32_t, 4> masks{0, 0, 0, 0};  // r, g, b, a
  const bool bitfields = compression == 3;
  if (bitfields) {
    if (hsize >= 52) {
      for (int i = 0; i < 4; ++i) masks[i] = u32(hd + 36 + 4 * i);
    } else {
      b.need(pos, 12);
      for (int i = 0; i < 3; ++i) masks[i] = u32(d + pos + 4 * i);
      pos += 12;
    }
  }

  Decoded r;
  r.info.format = "BMP";
  r.info.width = static_cast<int>(w);
  r.info.height = static_cast<int>(h);
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
    b.fail("unsupported pixel depth " + std::to_string(bits));
  r.info.mode = std::string(bits <= 8 ? "P" : "RGB");
  if (bitfields) {
    using M = std::array<uint32_t, 4>;
    const std::vector<M> ok32 = {{0xFF0000, 0xFF00, 0xFF, 0}, {0xFF000000, 0xFF0000, 0xFF00, 0},
                                 {0xFF000000, 0xFF0000, 0xFF00, 0xFF}, {0xFF, 0xFF00, 0xFF0000, 0xFF000000},
                                 {0xFF0000, 0xFF00, 0xFF, 0xFF000000}, {0, 0, 0, 0}};
    const std::vector<M> ok16 = {{0xF800, 0x7E0, 0x1F, 0}, {0x7C00, 0x3E0, 0x1F, 0}};
    bool ok = false;
    if (bits == 32) {
      for (const M& m : ok32) ok |= m == masks;
      if (masks == M{0, 0, 0, 0}) masks = {0xFF0000, 0xFF00, 0xFF, 0xFF000000};
      if (masks[3]) r.info.mode = std::string("RGBA");
    } else if (bits == 24 || bits == 16) {
      masks[3] = 0;
      if (bits == 24) ok = masks == M{0xFF0000, 0xFF00, 0xFF, 0};
      for (const M& m : ok16) ok |= bits == 16 && m == masks;
    }
    if (!ok) b.fail("unsupported bitfields layout");
  } else if (bits == 16) {
    masks = {0x7C00, 0x3E0, 0x1F, 0};
  } else if (bits == 24 || bits == 32) {
    masks = {0xFF0000, 0xFF00, 0xFF, 0};
  }
  const bool rle = compression == 1 || compression == 2;
  if (compression > 3) b.fail("unsupported compression " + std::to_string(compression));
  if (rle && bits != (compression == 1 ? 8u : 4u)) b.fail("RLE compression with " + std::to_string(bits) + "-bit pixels");
  if (bitfields && bits <= 8) b.fail("bitfields with a palette");
  check_dimensions(name, w, h, opt);

  std::array<uint8_t, 256 * 3> lut{};  // palette (BGR(X) in the file); missing entries black
  if (bits <= 8) {
    if (colors == 0) colors = 1u << bits;
    // Pillow 9.4 reads up to 65536 entries, then refuses more than 256 when it sets the palette.
    if (colors > 256) b.fail("unsupported palette size " + std::to_string(colors) + " (at most 256 entries)");
    const size_t entry = hsize == 12 ? 3 : 4;
    b.need(pos, entry * colors);
    for (uint32_t i = 0; i < colors && i < 256; ++i) {
      const uint8_t* p = d + pos + entry * i;
      lut[3 * i] = p[2];
      lut[3 * i + 1] = p[1];
      lut[3 * i + 2] = p[0];
    }
  }
  if (data_offset >= n) throw Error(name + ": image file is truncated (no BMP pixel data)");

  r.img = Image(static_cast<int>(w), static_cast<int>(h));
  std::vector<uint8_t> rle_idx;
  if (rle) rle_idx = decode_rle(b, data_offset, static_cast<int>(w), static_cast<int>(h), compression == 2);
  const size_t stride = ((static_cast<size_t>(w) * bits + 31) >> 3) & ~static_cast<size_t>(3);
  if (!rle) b.need(data_offset, stride * h);
  for (int64_t fy = 0; fy < h; ++fy) {  // fy: row in file order
    const int64_t y = top_down ? fy : h - 1 - fy;
    uint8_t* out = r.img.pixel(0, static_cast<int>(y));
    const uint8_t* row = rle ? nullptr : d + data_offset + stride * fy;
    for (int64_t x = 0; x < w; ++x, out += 3) {
      if (bits <= 8) {
        uint32_t i;
        if (rle) i = rle_idx[fy * w + x];
        else if (bits == 8) i = row[x];
        else if (bits == 4) i = (row[x / 2] >> (x % 2 ? 0 : 4)) & 15;
        else i = (row[x / 8] >> (7 - x % 8)) & 1;
        std::memcpy(out, &lut[3 * i], 3);
      } else {
        const uint8_t* p = row + x * (bits / 8);
        const uint32_t px = bits == 16 ? u16(p) : bits == 24 ? (p[0] | p[1] << 8 | p[2] << 16) : u32(p);
        out[0] = field(px, masks[0]);
        out[1] = field(px, masks[1]);
        out[2] = field(px, masks[2]);
      }
    }
  }
  return r;
}

}  // namespace vtx::io
