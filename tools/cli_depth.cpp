// vtx depth MODEL_DIR IMG|DIR... --out DIR [--format npy|safetensors|png16[,...]] [--colormap inferno|gray]
//
// Depth estimation (DPT / Depth Anything) on image files: load_image -> the model folder's image processor ->
// forward -> post_process_depth_estimation to the original image size. For each input <stem>:
//   <stem>.npy           raw depth, float32 [height, width] (format npy, the default)
//   <stem>.safetensors   raw depth as tensor "depth" (format safetensors; metadata "depth_units")
//   <stem>.png           with format png16: 16-bit grayscale data PNG
//                          relative models: (d - min) / (max - min) * 65535, per image (brighter = larger value)
//                          metric models:   d * 256 (metres = value / 256, KITTI convention; clamped to 65535)
//                        otherwise: 8-bit visualisation, per-image normalised, colormap inferno (RGB) or gray
// The PNG also carries the scaling in a tEXt chunk ("vtx-depth-scale").
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli.hpp"
#include "cli_load_options.hpp"
#include "io/safetensors.hpp"
#include "models/depth.hpp"
#include "vtx/image.hpp"
#include "vtx/model.hpp"
#include "vtx/processor.hpp"

namespace fs = std::filesystem;

namespace vtx::cli {
namespace {

// matplotlib's "inferno" colormap (256 entries, CC0 data by Nathaniel J. Smith and Stefan van der Walt),
// rounded to 8 bits.
constexpr uint8_t kInferno[256 * 3] = {
    0,0,4, 1,0,5, 1,1,6, 1,1,8, 2,1,10, 2,2,12, 2,2,14, 3,2,16,
    4,3,18, 4,3,20, 5,4,23, 6,4,25, 7,5,27, 8,5,29, 9,6,31, 10,7,34,
    11,7,36, 12,8,38, 13,8,41, 14,9,43, 16,9,45, 17,10,48, 18,10,50, 20,11,52,
    21,11,55, 22,11,57, 24,12,60, 25,12,62, 27,12,65, 28,12,67, 30,12,69, 31,12,72,
    33,12,74, 35,12,76, 36,12,79, 38,12,81, 40,11,83, 41,11,85, 43,11,87, 45,11,89,
    47,10,91, 49,10,92, 50,10,94, 52,10,95, 54,9,97, 56,9,98, 57,9,99, 59,9,100,
    61,9,101, 62,9,102, 64,10,103, 66,10,104, 68,10,104, 69,10,105, 71,11,106, 73,11,106,
    74,12,107, 76,12,107, 77,13,108, 79,13,108, 81,14,108, 82,14,109, 84,15,109, 85,15,109,
    87,16,110, 89,16,110, 90,17,110, 92,18,110, 93,18,110, 95,19,110, 97,19,110, 98,20,110,
    100,21,110, 101,21,110, 103,22,110, 105,22,110, 106,23,110, 108,24,110, 109,24,110, 111,25,110,
    113,25,110, 114,26,110, 116,26,110, 117,27,110, 119,28,109, 120,28,109, 122,29,109, 124,29,109,
    125,30,109, 127,30,108, 128,31,108, 130,32,108, 132,32,107, 133,33,107, 135,33,107, 136,34,106,
    138,34,106, 140,35,105, 141,35,105, 143,36,105, 144,37,104, 146,37,104, 147,38,103, 149,38,103,
    151,39,102, 152,39,102, 154,40,101, 155,41,100, 157,41,100, 159,42,99, 160,42,99, 162,43,98,
    163,44,97, 165,44,96, 166,45,96, 168,46,95, 169,46,94, 171,47,94, 173,48,93, 174,48,92,
    176,49,91, 177,50,90, 179,50,90, 180,51,89, 182,52,88, 183,53,87, 185,53,86, 186,54,85,
    188,55,84, 189,56,83, 191,57,82, 192,58,81, 193,58,80, 195,59,79, 196,60,78, 198,61,77,
    199,62,76, 200,63,75, 202,64,74, 203,65,73, 204,66,72, 206,67,71, 207,68,70, 208,69,69,
    210,70,68, 211,71,67, 212,72,66, 213,74,65, 215,75,63, 216,76,62, 217,77,61, 218,78,60,
    219,80,59, 221,81,58, 222,82,56, 223,83,55, 224,85,54, 225,86,53, 226,87,52, 227,89,51,
    228,90,49, 229,92,48, 230,93,47, 231,94,46, 232,96,45, 233,97,43, 234,99,42, 235,100,41,
    235,102,40, 236,103,38, 237,105,37, 238,106,36, 239,108,35, 239,110,33, 240,111,32, 241,113,31,
    241,115,29, 242,116,28, 243,118,27, 243,120,25, 244,121,24, 245,123,23, 245,125,21, 246,126,20,
    246,128,19, 247,130,18, 247,132,16, 248,133,15, 248,135,14, 248,137,12, 249,139,11, 249,140,10,
    249,142,9, 250,144,8, 250,146,7, 250,148,7, 251,150,6, 251,151,6, 251,153,6, 251,155,6,
    251,157,7, 252,159,7, 252,161,8, 252,163,9, 252,165,10, 252,166,12, 252,168,13, 252,170,15,
    252,172,17, 252,174,18, 252,176,20, 252,178,22, 252,180,24, 251,182,26, 251,184,29, 251,186,31,
    251,188,33, 251,190,35, 250,192,38, 250,194,40, 250,196,42, 250,198,45, 249,199,47, 249,201,50,
    249,203,53, 248,205,55, 248,207,58, 247,209,61, 247,211,64, 246,213,67, 246,215,70, 245,217,73,
    245,219,76, 244,221,79, 244,223,83, 244,225,86, 243,227,90, 243,229,93, 242,230,97, 242,232,101,
    242,234,105, 241,236,109, 241,237,113, 241,239,117, 241,241,121, 242,242,125, 242,244,130, 243,245,134,
    243,246,138, 244,248,142, 245,249,146, 246,250,150, 248,251,154, 249,252,157, 250,253,161, 252,255,164,
};

struct PngSink {
  std::string bytes;
};

void png_write_cb(png_structp p, png_bytep data, png_size_t n) {
  static_cast<PngSink*>(png_get_io_ptr(p))->bytes.append(reinterpret_cast<const char*>(data), n);
}
void png_flush_cb(png_structp) {}

// Encodes rows of `channels` samples of `bit_depth` bits (16-bit samples big-endian, as PNG stores them).
std::string encode_png(const std::vector<uint8_t>& pixels, int width, int height, int channels, int bit_depth,
                       const std::string& scale_text, const std::string& name) {
  PngSink sink;
  const size_t row_bytes = static_cast<size_t>(width) * channels * (bit_depth / 8);
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) rows[y] = const_cast<png_bytep>(pixels.data() + y * row_bytes);
  std::string key = "vtx-depth-scale", software_key = "Software", software = "vtx depth";
  std::string text = scale_text;
  png_text texts[2];
  std::memset(texts, 0, sizeof(texts));
  texts[0].compression = PNG_TEXT_COMPRESSION_NONE;
  texts[0].key = key.data();
  texts[0].text = text.data();
  texts[1].compression = PNG_TEXT_COMPRESSION_NONE;
  texts[1].key = software_key.data();
  texts[1].text = software.data();

  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) throw Error(name + ": cannot create a PNG writer");
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    throw Error(name + ": PNG encoding failed");
  }
  png_set_write_fn(png, &sink, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), bit_depth,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_text(png, info, texts, 2);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return sink.bytes;
}

// numpy .npy v1.0, little-endian float32, C order.
std::string encode_npy(const Tensor& t) {
  std::string shape = "(";
  for (int i = 0; i < t.ndim(); ++i) shape += std::to_string(t.dim(i)) + (t.ndim() == 1 || i + 1 < t.ndim() ? "," : "");
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    if (shape[i] == ',' && shape[i + 1] != ')') shape.insert(i + 1, " ");
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(t.data<float>()), t.nbytes());
  return out;
}

bool is_image_file(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::set<std::string> ok = {".jpg", ".jpeg", ".png", ".webp", ".bmp"};
  return ok.count(e) != 0;
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

int cmd_depth(const Args& args) {
  ArgParser p(args, {"--out", "--format", "--colormap", "--threads", "--dtype", "--quantize"}, {});
  const auto& pos = p.positional();
  if (pos.size() < 2 || !p.has("--out"))
    throw CliError(
        "usage: vtx depth MODEL_DIR IMAGE|DIR... --out DIR [--format npy|safetensors|png16[,...]] "
        "[--colormap inferno|gray] [--threads N] [--dtype f32|f16|bf16] [--quantize int8|int4]");
  // formats
  std::set<std::string> formats;
  {
    std::string f = p.get("--format", "npy"), item;
    std::stringstream ss(f);
    while (std::getline(ss, item, ',')) {
      if (item != "npy" && item != "safetensors" && item != "png16")
        throw CliError("--format: unknown format '" + item + "' (npy, safetensors, png16)");
      formats.insert(item);
    }
    if (formats.empty()) throw CliError("--format: empty");
  }
  const std::string cmap = p.get("--colormap", "inferno");
  if (cmap != "inferno" && cmap != "gray") throw CliError("--colormap: must be inferno or gray");
  if (p.has("--colormap") && formats.count("png16"))
    throw CliError("--colormap applies to the 8-bit PNG; png16 writes a 16-bit grayscale PNG instead");
  if (p.has("--threads")) set_num_threads(p.get_int("--threads", 0));

  const std::string model_dir = pos[0];
  // Inputs: files as given, folders expanded to their image files (sorted); output stems must be unique.
  std::vector<fs::path> inputs;
  for (size_t i = 1; i < pos.size(); ++i) {
    fs::path in(pos[i]);
    if (fs::is_directory(in)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      if (found.empty()) throw CliError(in.string() + ": no image files (.jpg .jpeg .png .webp .bmp)");
      inputs.insert(inputs.end(), found.begin(), found.end());
    } else if (fs::exists(in)) {
      inputs.push_back(in);
    } else {
      throw Error(in.string() + ": no such file or folder");
    }
  }
  std::set<std::string> stems;
  for (const auto& in : inputs)
    if (!stems.insert(in.stem().string()).second)
      throw CliError("two inputs are named '" + in.stem().string() + "': outputs would collide");

  auto model = Model::load(model_dir, load_options(p));
  if (model->info().task != "depth")
    throw CliError(model_dir + ": not a depth model (" + model->info().architecture + ")");
  auto proc = ImageProcessor::from_pretrained(model_dir);
  bool metric = false;
  {
    std::ifstream f(fs::path(model_dir) / "config.json");
    nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    metric = j.is_object() && j.value("model_type", "") == "depth_anything" &&
             j.value("depth_estimation_type", "relative") == "metric";
  }
  const fs::path out_dir(p.get("--out"));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw Error(out_dir.string() + ": cannot create the output folder");

  Session session(model);
  for (const auto& in : inputs) {
    Image img = load_image(in.string());
    Tensor pv = proc.preprocess(img);
    pv = pv.reshape({1, pv.dim(0), pv.dim(1), pv.dim(2)});
    ModelOutput out = session.forward(pv);
    Tensor depth = models::post_process_depth(out.predicted_depth, 0, img.height, img.width);
    const float* d = depth.data<float>();
    const int64_t n = depth.numel();
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, d[i]);
      hi = std::max(hi, d[i]);
    }
    const double range = hi > lo ? static_cast<double>(hi) - lo : 0.0;
    auto norm = [&](float v) { return range > 0 ? (static_cast<double>(v) - lo) / range : 0.0; };
    const std::string stem = in.stem().string();
    std::vector<std::string> written;
    if (formats.count("npy")) {
      io::write_file_atomic((out_dir / (stem + ".npy")).string(), encode_npy(depth));
      written.push_back(stem + ".npy");
    }
    if (formats.count("safetensors")) {
      io::save_safetensors((out_dir / (stem + ".safetensors")).string(), {{"depth", depth}},
                           {{"format", "pt"}, {"depth_units", metric ? "metres" : "relative"}});
      written.push_back(stem + ".safetensors");
    }
    const std::string png_path = (out_dir / (stem + ".png")).string();
    std::vector<uint8_t> px;
    std::string scale;
    if (formats.count("png16")) {
      px.resize(static_cast<size_t>(n) * 2);
      for (int64_t i = 0; i < n; ++i) {
        double v = metric ? static_cast<double>(d[i]) * 256.0 : norm(d[i]) * 65535.0;
        const uint16_t q = static_cast<uint16_t>(std::clamp(std::lround(v), 0L, 65535L));
        px[2 * i] = static_cast<uint8_t>(q >> 8);
        px[2 * i + 1] = static_cast<uint8_t>(q & 0xff);
      }
      scale = metric ? "metres = value / 256" : "relative: value / 65535 * (max - min) + min, min " + fmt(lo) + ", max " + fmt(hi);
      io::write_file_atomic(png_path, encode_png(px, img.width, img.height, 1, 16, scale, png_path));
    } else {
      const int ch = cmap == "gray" ? 1 : 3;
      px.resize(static_cast<size_t>(n) * ch);
      for (int64_t i = 0; i < n; ++i) {
        const long idx = std::clamp(std::lround(norm(d[i]) * 255.0), 0L, 255L);
        if (ch == 1) {
          px[i] = static_cast<uint8_t>(idx);
        } else {
          std::memcpy(&px[3 * i], &kInferno[3 * idx], 3);
        }
      }
      scale = "visualisation (" + cmap + "), per-image normalised: min " + fmt(lo) + ", max " + fmt(hi);
      io::write_file_atomic(png_path, encode_png(px, img.width, img.height, ch, 8, scale, png_path));
    }
    written.push_back(stem + ".png");
    std::cout << in.string() << " -> ";
    for (size_t i = 0; i < written.size(); ++i) std::cout << (i ? ", " : "") << (out_dir / written[i]).string();
    std::cout << " (" << img.width << "x" << img.height << ", depth " << lo << " .. " << hi << ")\n";
  }
  return 0;
}

}  // namespace

VTX_COMMAND("depth", "MODEL_DIR IMG|DIR... --out DIR: depth maps at the original size (npy/safetensors/png16)", cmd_depth);

}  // namespace vtx::cli
