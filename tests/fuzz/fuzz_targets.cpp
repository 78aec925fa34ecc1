#include "fuzz_targets.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "io/safetensors.hpp"
#include "io/weights.hpp"
#include "vtx/image.hpp"
#include "vtx/model.hpp"
#include "vtx/processor.hpp"

#ifndef VTX_SHARED_DIR_DEFAULT
#define VTX_SHARED_DIR_DEFAULT "../shared"
#endif

namespace fs = std::filesystem;

namespace vtx::fuzz {

std::string golden_dir() {
  const char* e = std::getenv("VTX_SHARED_DIR");
  return std::string(e && *e ? e : VTX_SHARED_DIR_DEFAULT) + "/golden";
}

namespace {

// A per-process scratch folder (removed at exit).
const std::string& scratch() {
  static const std::string dir = [] {
    std::string d = (fs::temp_directory_path() / ("vtx-fuzz-" + std::to_string(::getpid()))).string();
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("vtx-fuzz-" + std::to_string(::getpid())), ec);
    });
    return d;
  }();
  return dir;
}

void write(const std::string& path, const uint8_t* d, size_t n) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(d), static_cast<std::streamsize>(n));
}

// Small decode limits keep each execution fast; the checks that enforce them are what is being tested.
ImageLoadOptions fuzz_image_options() {
  ImageLoadOptions o;
  o.max_pixels = 1 << 22;
  o.max_jpeg_scans = 100;
  return o;
}

int image_with_magic(const uint8_t* d, size_t n, const char* magic, size_t mlen, size_t at = 0) {
  std::vector<uint8_t> buf(d, d + n);
  if (buf.size() >= at + mlen) std::memcpy(buf.data() + at, magic, mlen);
  try {
    Image im = decode_image(buf.data(), buf.size(), "fuzz", fuzz_image_options());
    if (im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3) std::abort();
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace

int safetensors(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/st";
  fs::create_directories(dir);
  write(dir + "/model.safetensors", d, n);
  try {
    auto ws = io::WeightStore::open(dir);
    for (const auto& k : ws->keys()) {
      (void)ws->shape(k);
      const DType dt = ws->dtype(k);
      if (dt == DType::F32 || dt == DType::F16 || dt == DType::BF16) (void)ws->f32(k);
      else (void)ws->raw(k);
    }
    (void)ws->num_parameters();
  } catch (const Error&) {
  }
  return 0;
}

int config(const uint8_t* d, size_t n) {
  // The checkpoint matching the config's model type and architecture (small random golden models).
  std::string mt, arch;
  try {
    auto j = nlohmann::json::parse(d, d + n);
    if (j.is_object()) {
      if (j.contains("model_type") && j["model_type"].is_string()) mt = j["model_type"].get<std::string>();
      if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
          j["architectures"][0].is_string())
        arch = j["architectures"][0].get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
  }
  auto has = [&](const char* s) { return arch.find(s) != std::string::npos; };
  std::string model = "vit-pooler";
  if (mt == "vit") model = has("Classification") ? "vit-cls" : has("MaskedImage") ? "vit-mim" : "vit-pooler";
  else if (mt == "deit") model = "deit-distilled";
  else if (mt == "dinov2") model = has("Classification") ? "dinov2-cls" : has("Backbone") ? "dinov2-backbone" : "dinov2";
  else if (mt == "dinov2_with_registers")
    model = has("Classification") ? "dinov2-reg-cls" : has("Backbone") ? "dinov2-reg-backbone" : "dinov2-reg";
  else if (mt == "dpt") model = "dpt-vit";
  else if (mt == "depth_anything") model = "depth-anything";
  const std::string dir = scratch() + "/cfg-" + model;
  if (!fs::exists(dir + "/model.safetensors")) {
    fs::create_directories(dir);
    fs::create_symlink(golden_dir() + "/models/" + model + "/model.safetensors", dir + "/model.safetensors");
  }
  write(dir + "/config.json", d, n);
  try {
    auto m = Model::load(dir);
    const ModelInfo& info = m->info();
    const int64_t p = info.patch_size > 0 && info.patch_size <= 32 ? info.patch_size : 16;
    const int64_t side = info.image_size > 0 && info.image_size <= 64 ? info.image_size : 2 * p;
    Tensor x({1, info.num_channels > 0 && info.num_channels <= 4 ? info.num_channels : 3, side, side}, DType::F32);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 7) * 0.1f - 0.3f;
    ForwardOptions o;
    o.interpolate_pos_encoding = true;
    o.output_hidden_states = true;
    (void)m->forward(x, o);
  } catch (const Error&) {
  }
  return 0;
}

int processor(const uint8_t* d, size_t n) {
  try {
    ProcessorConfig c = ImageProcessor::from_json_string(std::string(reinterpret_cast<const char*>(d), n), "fuzz.json").config();
    c.max_pixels = 1 << 20;  // every intermediate size is checked against it
    ImageProcessor proc(c);
    Image im(23, 17);
    for (size_t i = 0; i < im.rgb.size(); ++i) im.rgb[i] = static_cast<uint8_t>(i * 37);
    Tensor t = proc.preprocess(im);
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!(t.data<float>()[i] == t.data<float>()[i])) std::abort();  // NaN after a validated config: a bug
  } catch (const Error&) {
  }
  return 0;
}

int jpeg(const uint8_t* d, size_t n) { return image_with_magic(d, n, "\xFF\xD8\xFF", 3); }
int png(const uint8_t* d, size_t n) { return image_with_magic(d, n, "\x89PNG\r\n\x1A\n", 8); }
int bmp(const uint8_t* d, size_t n) { return image_with_magic(d, n, "BM", 2); }
int webp(const uint8_t* d, size_t n) {
  std::vector<uint8_t> buf(d, d + n);
  if (buf.size() >= 12) {
    std::memcpy(buf.data(), "RIFF", 4);
    std::memcpy(buf.data() + 8, "WEBP", 4);
  }
  return image_with_magic(buf.data(), buf.size(), "RIFF", 4);
}

}  // namespace vtx::fuzz
