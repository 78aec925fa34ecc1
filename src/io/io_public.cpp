// The public file-format API (include/vtx/io.hpp), over the library's readers and writers in src/io.
#include <png.h>

#include <cstring>
#include <filesystem>

#include "io/npy.hpp"
#include "io/safetensors.hpp"
#include "vtx/io.hpp"

namespace vtx {

std::map<std::string, Tensor> load_safetensors(const std::string& path, bool as_f32) {
  return io::load_safetensors(path, as_f32);
}

Tensor load_safetensors_tensor(const std::string& spec, const std::string& default_key) {
  // "file[:key]": a spec that names an existing file is a file (its name may contain ':').
  std::string file = spec, key;
  std::error_code ec;
  const auto pos = spec.rfind(':');
  if (!std::filesystem::exists(spec, ec) && pos != std::string::npos && spec.find('/', pos) == std::string::npos) {
    file = spec.substr(0, pos);
    key = spec.substr(pos + 1);
    if (key.empty()) throw Error(spec + ": empty tensor name after ':'");
  }
  io::SafeTensorsFile f(file);
  if (key.empty()) {
    if (!default_key.empty() && f.has(default_key)) key = default_key;
    else if (f.tensors().size() == 1) key = f.tensors().begin()->first;
    else
      throw Error(file + ": no tensor '" + default_key + "' and " + std::to_string(f.tensors().size()) +
                  " tensors to choose from; name one as " + file + ":KEY");
  }
  if (!f.has(key)) throw Error(file + ": no tensor '" + key + "'");
  return f.load(key);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  io::save_safetensors(path, tensors, metadata);
}

std::string npy_bytes(const Tensor& t) { return io::npy_bytes(t.dtype() == DType::F32 ? t : t.to_f32()); }
void save_npy(const std::string& path, const Tensor& t) { io::write_file_atomic(path, npy_bytes(t)); }
Tensor load_npy(const std::string& path) { return io::load_npy(path); }
void write_file_atomic(const std::string& path, const std::string& bytes) { io::write_file_atomic(path, bytes); }

namespace {

struct PngSink {
  std::string bytes;
};
void png_write_cb(png_structp p, png_bytep data, png_size_t n) {
  static_cast<PngSink*>(png_get_io_ptr(p))->bytes.append(reinterpret_cast<const char*>(data), n);
}
void png_flush_cb(png_structp) {}

// rows: height pointers to `row_bytes` bytes each (16-bit samples already big-endian, as PNG stores them).
std::string encode(const uint8_t* pixels, int width, int height, int channels, int bit_depth, const PngText& text) {
  if (width <= 0 || height <= 0) throw Error("PNG: image size " + std::to_string(width) + "x" + std::to_string(height) + " is empty");
  const size_t row_bytes = static_cast<size_t>(width) * channels * (bit_depth / 8);
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) rows[y] = const_cast<png_bytep>(pixels + y * row_bytes);
  std::vector<std::string> keys, values;
  for (const auto& [k, v] : text) {
    keys.push_back(k);
    values.push_back(v);
  }
  std::vector<png_text> texts(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    std::memset(&texts[i], 0, sizeof(png_text));
    texts[i].compression = PNG_TEXT_COMPRESSION_NONE;
    texts[i].key = keys[i].data();
    texts[i].text = values[i].data();
  }
  PngSink sink;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) throw Error("PNG: cannot create a writer");
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    throw Error("PNG: encoding failed");
  }
  png_set_write_fn(png, &sink, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), bit_depth,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!texts.empty()) png_set_text(png, info, texts.data(), static_cast<int>(texts.size()));
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return std::move(sink.bytes);
}

}  // namespace

std::string encode_png(const Image& rgb, const PngText& text) {
  if (rgb.rgb.size() != static_cast<size_t>(rgb.width) * rgb.height * 3)
    throw Error("PNG: image buffer does not match its size");
  return encode(rgb.rgb.data(), rgb.width, rgb.height, 3, 8, text);
}

std::string encode_png_gray8(const uint8_t* samples, int width, int height, const PngText& text) {
  return encode(samples, width, height, 1, 8, text);
}

std::string encode_png_gray16(const uint16_t* samples, int width, int height, const PngText& text) {
  if (width <= 0 || height <= 0) throw Error("PNG: image size " + std::to_string(width) + "x" + std::to_string(height) + " is empty");
  const size_t n = static_cast<size_t>(width) * height;
  std::vector<uint8_t> be(n * 2);
  for (size_t i = 0; i < n; ++i) {
    be[2 * i] = static_cast<uint8_t>(samples[i] >> 8);
    be[2 * i + 1] = static_cast<uint8_t>(samples[i] & 0xff);
  }
  return encode(be.data(), width, height, 1, 16, text);
}

}  // namespace vtx
