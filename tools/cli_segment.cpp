// vtx segment MODEL_DIR IMG|DIR... --out DIR [--batch N] [--alpha A] [--threads N] [--dtype ...] [--quantize ...]
//
// Semantic segmentation (DPTForSemanticSegmentation) on image files, as transformers' image-segmentation pipeline
// with subtask "semantic": load_image -> the folder's image processor -> forward -> post_process_semantic_segmentation
// at the original image size (bilinear resize of the logits, argmax). For each input <stem>:
//   <stem>.png          the label map as a grayscale PNG, pixel = class id: 8-bit when the model has <= 256
//                       labels, 16-bit otherwise (tEXt "vtx-labels": id2label as JSON)
//   <stem>.npy          the label map, int64 [height, width] (what transformers returns)
//   <stem>_overlay.png  to look at: the image blended with one colour per class, and below it a legend of the
//                       classes present (colour, id, id2label name, share of the pixels), largest first
// Uses only the public API (<vtx/...>).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_images.hpp"
#include "cli_load_options.hpp"
#include "vtx/io.hpp"
#include "vtx/pipeline.hpp"

namespace fs = std::filesystem;

namespace vtx::cli {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Output files

// numpy .npy v1.0, little-endian int64 [h, w], C order.
std::string encode_npy_i64(const Tensor& t) {
  std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (" + std::to_string(t.dim(0)) + ", " +
                       std::to_string(t.dim(1)) + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(t.data<int64_t>()), t.nbytes());
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Overlay: class colours, a 5x7 bitmap font for the legend

// A distinct colour per class: hues stepped by the golden angle, two saturation / value levels alternating.
void class_colour(int64_t c, uint8_t rgb[3]) {
  const double h = std::fmod(static_cast<double>(c) * 0.618033988749895, 1.0) * 6.0;
  const double s = c % 2 ? 0.65 : 0.9, v = c % 3 == 2 ? 0.75 : 0.95;
  const int i = static_cast<int>(h);
  const double f = h - i, p = v * (1 - s), q = v * (1 - s * f), u = v * (1 - s * (1 - f));
  double r = v, g = u, b = p;
  switch (i % 6) {
    case 0: r = v; g = u; b = p; break;
    case 1: r = q; g = v; b = p; break;
    case 2: r = p; g = v; b = u; break;
    case 3: r = p; g = q; b = v; break;
    case 4: r = u; g = p; b = v; break;
    default: r = v; g = p; b = q; break;
  }
  rgb[0] = static_cast<uint8_t>(std::lround(r * 255));
  rgb[1] = static_cast<uint8_t>(std::lround(g * 255));
  rgb[2] = static_cast<uint8_t>(std::lround(b * 255));
}

// Glyphs 5 wide, 7 high ('#' = ink). Lowercase letters are drawn as capitals; anything else as '?'.
const std::map<char, std::array<const char*, 7>>& font() {
  static const std::map<char, std::array<const char*, 7>> f = {
      {'A', {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"}},
      {'B', {"#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "}},
      {'C', {" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "}},
      {'D', {"#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "}},
      {'E', {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"}},
      {'F', {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "}},
      {'G', {" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"}},
      {'H', {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"}},
      {'I', {" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
      {'J', {"  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "}},
      {'K', {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"}},
      {'L', {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"}},
      {'M', {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"}},
      {'N', {"#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #"}},
      {'O', {" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "}},
      {'P', {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "}},
      {'Q', {" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"}},
      {'R', {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"}},
      {'S', {" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "}},
      {'T', {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "}},
      {'U', {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "}},
      {'V', {"#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "}},
      {'W', {"#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "}},
      {'X', {"#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"}},
      {'Y', {"#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "}},
      {'Z', {"#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"}},
      {'0', {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "}},
      {'1', {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
      {'2', {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"}},
      {'3', {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "}},
      {'4', {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "}},
      {'5', {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "}},
      {'6', {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "}},
      {'7', {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "}},
      {'8', {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "}},
      {'9', {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "}},
      {' ', {"     ", "     ", "     ", "     ", "     ", "     ", "     "}},
      {'_', {"     ", "     ", "     ", "     ", "     ", "     ", "#####"}},
      {'-', {"     ", "     ", "     ", "#####", "     ", "     ", "     "}},
      {'.', {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "}},
      {',', {"     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "}},
      {':', {"     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "}},
      {'%', {"##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"}},
      {'(', {"   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "}},
      {')', {" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "}},
      {'/', {"     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "}},
      {'\'', {"  #  ", "  #  ", " #   ", "     ", "     ", "     ", "     "}},
      {'&', {" ##  ", "#  # ", "# #  ", " #   ", "# # #", "#  # ", " ## #"}},
      {'+', {"     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "}},
      {'?', {" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "}},
  };
  return f;
}

struct Canvas {
  int w = 0, h = 0;
  Image img;
  void fill_rect(int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    for (int y = std::max(0, y0); y < std::min(h, y1); ++y)
      for (int x = std::max(0, x0); x < std::min(w, x1); ++x) std::memcpy(img.pixel(x, y), c, 3);
  }
  // Draws `text` at (x, y) with pixels of `scale`; stops at max_x. Returns the x after the text.
  int text(int x, int y, const std::string& s, int scale, const uint8_t c[3], int max_x) {
    const auto& f = font();
    for (char ch : s) {
      if (x + 5 * scale > max_x) break;
      char u = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      auto it = f.find(u);
      if (it == f.end()) it = f.find('?');
      for (int r = 0; r < 7; ++r)
        for (int k = 0; k < 5; ++k)
          if (it->second[r][k] == '#') fill_rect(x + k * scale, y + r * scale, x + (k + 1) * scale, y + (r + 1) * scale, c);
      x += 6 * scale;
    }
    return x;
  }
};

std::string percent(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", v);
  return b;
}

// The image blended with the class colours, then the legend rows below it.
Canvas overlay(const Image& img, const Tensor& map, const std::vector<std::string>& id2label, double alpha) {
  const int W = img.width, H = img.height;
  const int64_t* m = map.data<int64_t>();
  std::map<int64_t, int64_t> count;
  for (int64_t i = 0; i < static_cast<int64_t>(W) * H; ++i) ++count[m[i]];
  std::vector<std::pair<int64_t, int64_t>> present(count.begin(), count.end());
  std::stable_sort(present.begin(), present.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  const int scale = std::clamp(W / 320, 1, 4), row = 10 * scale, pad = 3 * scale;
  const int legend_w = std::max(W, 160 * scale);
  Canvas cv;
  cv.w = legend_w;
  cv.h = H + pad + static_cast<int>(present.size()) * row + pad;
  cv.img = Image(cv.w, cv.h);
  std::fill(cv.img.rgb.begin(), cv.img.rgb.end(), 255);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      uint8_t c[3];
      class_colour(m[static_cast<size_t>(y) * W + x], c);
      const uint8_t* s = img.pixel(x, y);
      uint8_t* d = cv.img.pixel(x, y);
      for (int k = 0; k < 3; ++k) d[k] = static_cast<uint8_t>(std::lround((1 - alpha) * s[k] + alpha * c[k]));
    }
  const uint8_t ink[3] = {0, 0, 0};
  int y = H + pad;
  const double total = static_cast<double>(W) * H;
  for (const auto& [cls, n] : present) {
    uint8_t c[3];
    class_colour(cls, c);
    cv.fill_rect(pad, y, pad + 7 * scale, y + 7 * scale, c);
    const std::string name = cls >= 0 && cls < static_cast<int64_t>(id2label.size()) && !id2label[cls].empty()
                                 ? id2label[cls] : "LABEL_" + std::to_string(cls);
    cv.text(pad + 10 * scale, y, std::to_string(cls) + " " + name + " " + percent(100.0 * n / total), scale, ink, cv.w - pad);
    y += row;
  }
  return cv;
}

// ---------------------------------------------------------------------------------------------------------------

std::string canonical_or_absolute(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  return ec ? fs::absolute(p).lexically_normal().string() : c.string();
}

int cmd_segment(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({"--out", "--batch", "--alpha", "--max-pixels"})),
              with_hub_bool_flags({"--no-exif-transpose"}));
  const auto& pos = p.positional();
  if (pos.size() < 2 || !p.has("--out"))
    throw CliError("usage: vtx segment MODEL_DIR IMG|DIR... --out DIR [--batch N] [--alpha 0.5] " +
                   std::string(kLoadFlagsUsage));
  const int batch = batch_size(p);
  double alpha = 0.5;
  if (p.has("--alpha")) {
    try {
      alpha = std::stod(p.get("--alpha"));
    } catch (const std::exception&) {
      alpha = -1;
    }
    if (!(alpha >= 0 && alpha <= 1)) throw CliError("--alpha must be a number in [0, 1]");
  }
  const ImageLoadOptions lo = image_load_options(p);
  const fs::path out_dir(p.get("--out"));

  // Outputs are named after the inputs' stems: they must be unique and must not overwrite an input.
  const std::vector<std::string> files = image_files({pos.begin() + 1, pos.end()});
  std::set<std::string> inputs;
  for (const auto& f : files) inputs.insert(canonical_or_absolute(f));
  std::map<std::string, std::string> stem_of, owner;
  for (const auto& f : files) {
    const std::string stem = fs::path(f).stem().string();
    auto [it, fresh] = owner.emplace(stem, f);
    if (!fresh && it->second != f)
      throw CliError("two inputs are named '" + stem + "' (" + it->second + ", " + f + "): their outputs would collide");
    for (const char* suffix : {".png", ".npy", "_overlay.png"}) {
      const std::string o = canonical_or_absolute(out_dir / (stem + suffix));
      if (inputs.count(o)) throw CliError(o + ": the output would overwrite an input image; choose another --out folder");
    }
    stem_of[f] = stem;
  }

  Pipeline pipe = Pipeline::load(local_model_dir(p, pos[0]), load_options(p));  // folder or hub id
  const ModelInfo& info = pipe.model().info();
  if (info.task != Task::SemanticSegmentation)
    throw CliError(pos[0] + ": " + info.architecture + " is not a semantic segmentation model");
  nlohmann::json labels = nlohmann::json::object();
  for (size_t i = 0; i < info.id2label.size(); ++i) labels[std::to_string(i)] = info.id2label[i];
  const bool wide = info.id2label.size() > 256;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw Error(out_dir.string() + ": cannot create the output folder");

  auto failures = for_each_batch(files, batch, lo, [&](const std::vector<std::string>& names, const std::vector<Image>& imgs) {
    const std::vector<Tensor> maps = pipe.segment(imgs);
    for (size_t i = 0; i < names.size(); ++i) {
      const Image& img = imgs[i];
      const Tensor& map = maps[i];
      const std::string stem = stem_of.at(names[i]);
      const int64_t n = map.numel();
      const int64_t* m = map.data<int64_t>();
      const PngText text = {{"vtx-labels", labels.dump()}, {"Software", "vtx segment"}};
      std::string png_bytes;
      if (wide) {
        std::vector<uint16_t> px(static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k) px[k] = static_cast<uint16_t>(m[k]);
        png_bytes = encode_png_gray16(px.data(), img.width, img.height, text);
      } else {
        std::vector<uint8_t> px(static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k) px[k] = static_cast<uint8_t>(m[k]);
        png_bytes = encode_png_gray8(px.data(), img.width, img.height, text);
      }
      const std::string png = (out_dir / (stem + ".png")).string();
      write_file_atomic(png, png_bytes);
      const std::string npy = (out_dir / (stem + ".npy")).string();
      write_file_atomic(npy, encode_npy_i64(map));
      const Canvas cv = overlay(img, map, info.id2label, alpha);
      const std::string ov = (out_dir / (stem + "_overlay.png")).string();
      write_file_atomic(ov, encode_png(cv.img, {{"Software", "vtx segment"}}));
      const std::set<int64_t> present(m, m + n);
      std::cout << names[i] << " -> " << png << ", " << npy << ", " << ov << " (" << img.width << "x" << img.height
                << ", " << present.size() << " classes)\n";
      std::fflush(stdout);
    }
  });
  return report_failures(failures, files.size());
}

}  // namespace

VTX_COMMAND("segment", "MODEL_DIR IMG|DIR... --out DIR: semantic label maps at the original size (png, npy, overlay)",
            cmd_segment);

}  // namespace vtx::cli
