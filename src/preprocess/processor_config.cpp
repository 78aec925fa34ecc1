// preprocessor_config.json -> ProcessorConfig, with the defaults and size-dict rules of transformers 4.48.3.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/files.hpp"
#include "preprocess/validate.hpp"
#include "vtx/processor.hpp"

namespace vtx {

namespace {

using json = nlohmann::json;

const std::set<std::string> kTypes = {"ViTImageProcessor", "DeiTImageProcessor", "BitImageProcessor", "DPTImageProcessor",
                                      "BeitImageProcessor"};

// Keys that are read below, plus keys that carry no image-processing meaning here.
const std::set<std::string> kKnownKeys = {
    "image_processor_type", "feature_extractor_type", "processor_class", "do_resize", "size", "resample",
    "do_center_crop", "crop_size", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std",
    "do_convert_rgb", "keep_aspect_ratio", "ensure_multiple_of", "do_pad", "size_divisor", "do_reduce_labels",
    "reduce_labels", "auto_map", "_processor_class"};

void warn_once(const std::string& msg) {
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(msg).second) std::cerr << "vtx: warning: " << msg << "\n";
}

struct Parser {
  const json& j;
  const std::string& name;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(name + ": " + key + ": " + what);
  }
  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j[k].is_boolean()) fail(k, "expected true/false, got " + j[k].dump());
    return j[k].get<bool>();
  }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    if (!j[k].is_number()) fail(k, "expected a number, got " + j[k].dump());
    return j[k].get<double>();
  }
  int positive_int(const json& v, const std::string& key) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{1} << 62) ||
        v.get<int64_t>() <= 0 || v.get<int64_t>() > kMaxProcessorSize)
      fail(key, "expected an integer in [1, " + std::to_string(kMaxProcessorSize) + "], got " + v.dump());
    return static_cast<int>(v.get<int64_t>());
  }
  std::array<double, 3> triple(const char* k, std::array<double, 3> def) const {
    if (!has(k)) return def;
    const json& v = j[k];
    if (v.is_number()) return {v.get<double>(), v.get<double>(), v.get<double>()};
    if (!v.is_array() || v.size() != 3) fail(k, "expected 3 numbers (one per RGB channel), got " + v.dump());
    std::array<double, 3> r{};
    for (int i = 0; i < 3; ++i) {
      if (!v[i].is_number()) fail(k, "expected numbers, got " + v.dump());
      r[i] = v[i].get<double>();
    }
    return r;
  }
  // transformers get_size_dict: int -> square or shortest_edge, [h, w] -> height/width, dict as is.
  // Returns {height, width, shortest_edge} (0 when absent).
  std::array<int, 3> size_dict(const char* k, bool default_to_square) const {
    const json& v = j[k];
    if (v.is_number_integer()) {
      const int s = positive_int(v, k);
      return default_to_square ? std::array<int, 3>{s, s, 0} : std::array<int, 3>{0, 0, s};
    }
    if (v.is_array() && v.size() == 2) return {positive_int(v[0], k), positive_int(v[1], k), 0};
    if (!v.is_object()) fail(k, "unsupported size " + v.dump());
    std::array<int, 3> r{0, 0, 0};
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key() == "height") r[0] = positive_int(*it, k);
      else if (it.key() == "width") r[1] = positive_int(*it, k);
      else if (it.key() == "shortest_edge") r[2] = positive_int(*it, k);
      else fail(k, "unsupported size key '" + it.key() + "' in " + v.dump());
    }
    const bool hw = r[0] && r[1];
    if (hw == (r[2] != 0) || (!hw && (r[0] || r[1])))
      fail(k, "expected {height, width} or {shortest_edge}, got " + v.dump());
    return r;
  }
};

}  // namespace

ProcessorConfig ProcessorConfig::defaults_for(const std::string& type) {
  ProcessorConfig c;
  c.type = type;
  if (type == "BitImageProcessor") {
    c.size_height = c.size_width = 0;
    c.size_shortest_edge = 224;
    c.resample = Resample::Bicubic;
    c.do_center_crop = true;
    c.image_mean = {0.48145466, 0.4578275, 0.40821073};  // OPENAI_CLIP_MEAN / STD
    c.image_std = {0.26862954, 0.26130258, 0.27577711};
    c.do_convert_rgb = true;
  } else if (type == "DeiTImageProcessor") {
    c.size_height = c.size_width = 256;
    c.resample = Resample::Bicubic;
    c.do_center_crop = true;
  } else if (type == "BeitImageProcessor") {  // do_reduce_labels only concerns segmentation maps
    c.size_height = c.size_width = 256;
    c.resample = Resample::Bicubic;
    c.do_center_crop = true;
  } else if (type == "DPTImageProcessor") {
    c.size_height = c.size_width = 384;
    c.resample = Resample::Bicubic;
  } else if (type != "ViTImageProcessor") {
    throw Error("unsupported image processor '" + type + "'");
  }
  return c;
}

namespace {

// The processor class transformers' AutoImageProcessor picks from the model's config.json model_type when
// preprocessor_config.json names none (IMAGE_PROCESSOR_MAPPING, slow classes): google/vit-base-patch16-224's
// published preprocessor_config.json, for one, has neither image_processor_type nor feature_extractor_type.
std::string processor_for_model_type(const std::string& model_type) {
  static const std::map<std::string, std::string> kByModelType = {
      {"vit", "ViTImageProcessor"},        {"deit", "DeiTImageProcessor"},  {"dinov2", "BitImageProcessor"},
      {"bit", "BitImageProcessor"},        {"beit", "BeitImageProcessor"},  {"data2vec-vision", "BeitImageProcessor"},
      {"dpt", "DPTImageProcessor"},        {"depth_anything", "DPTImageProcessor"}};
  auto it = kByModelType.find(model_type);
  return it == kByModelType.end() ? "" : it->second;
}

ImageProcessor parse_processor(const std::string& text, const std::string& name, const std::string& model_type) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(name + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(name + ": expected a JSON object");
  Parser p{j, name};

  std::string type;
  if (p.has("image_processor_type") && j["image_processor_type"].is_string()) type = j["image_processor_type"];
  else if (p.has("feature_extractor_type") && j["feature_extractor_type"].is_string()) type = j["feature_extractor_type"];
  else if (!(type = processor_for_model_type(model_type)).empty()) {
  } else
    throw Error(name + ": no image_processor_type" +
                (model_type.empty() ? std::string(" (and no config.json model_type to infer it from)")
                                    : ", and model_type '" + model_type + "' has no default image processor"));
  const std::string fe = "FeatureExtractor";  // legacy names: ViTFeatureExtractor -> ViTImageProcessor
  if (type.size() > fe.size() && type.compare(type.size() - fe.size(), fe.size(), fe) == 0)
    type = type.substr(0, type.size() - fe.size()) + "ImageProcessor";
  if (!kTypes.count(type))
    throw Error(name + ": unsupported image processor '" + type +
                "' (supported: ViTImageProcessor, DeiTImageProcessor, BitImageProcessor, DPTImageProcessor, BeitImageProcessor)");

  ProcessorConfig c = ProcessorConfig::defaults_for(type);
  const bool is_bit = type == "BitImageProcessor", is_dpt = type == "DPTImageProcessor";
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kKnownKeys.count(it.key())) warn_once(name + ": ignoring unknown preprocessor field '" + it.key() + "'");

  c.do_resize = p.boolean("do_resize", c.do_resize);
  if (p.has("size")) {
    auto s = p.size_dict("size", !is_bit);
    c.size_height = s[0], c.size_width = s[1], c.size_shortest_edge = s[2];
  }
  if (c.do_resize && c.size_shortest_edge && !is_bit)
    throw Error(name + ": size: " + type + " needs {\"height\", \"width\"}, got shortest_edge");
  if (p.has("resample")) {
    const json& r = j["resample"];
    if (!r.is_number_integer() || r.get<int>() < 0 || r.get<int>() > 5)
      p.fail("resample", "expected a PIL filter 0..5 (nearest, lanczos, bilinear, bicubic, box, hamming), got " + r.dump());
    c.resample = static_cast<Resample>(r.get<int>());
  }
  const bool has_crop = is_bit || type == "DeiTImageProcessor" || type == "BeitImageProcessor";
  for (const char* k : {"do_center_crop", "crop_size"})
    if (!has_crop && p.has(k)) warn_once(name + ": '" + k + "' is not used by " + type + "; ignored");
  for (const char* k : {"keep_aspect_ratio", "ensure_multiple_of", "do_pad", "size_divisor"})
    if (!is_dpt && p.has(k)) warn_once(name + ": '" + k + "' is not used by " + type + "; ignored");
  if (has_crop) {
    c.do_center_crop = p.boolean("do_center_crop", c.do_center_crop);
    if (p.has("crop_size")) {
      auto s = p.size_dict("crop_size", true);
      if (s[2]) p.fail("crop_size", "expected {height, width}");
      c.crop_height = s[0], c.crop_width = s[1];
    }
  }
  c.do_rescale = p.boolean("do_rescale", c.do_rescale);
  c.rescale_factor = p.number("rescale_factor", c.rescale_factor);
  c.do_normalize = p.boolean("do_normalize", c.do_normalize);
  c.image_mean = p.triple("image_mean", c.image_mean);
  c.image_std = p.triple("image_std", c.image_std);
  c.do_convert_rgb = p.boolean("do_convert_rgb", c.do_convert_rgb);
  if (is_dpt) {
    c.keep_aspect_ratio = p.boolean("keep_aspect_ratio", false);
    if (p.has("ensure_multiple_of")) c.ensure_multiple_of = p.positive_int(j["ensure_multiple_of"], "ensure_multiple_of");
    c.do_pad = p.boolean("do_pad", false);
    if (p.has("size_divisor")) c.size_divisor = p.positive_int(j["size_divisor"], "size_divisor");
    if (c.do_pad && c.size_divisor <= 0) p.fail("size_divisor", "do_pad needs a positive size_divisor");
  }
  validate_processor_config(c, name);
  return ImageProcessor(c);
}

}  // namespace

void validate_processor_config(const ProcessorConfig& c, const std::string& name) {
  auto fail = [&](const std::string& key, const std::string& what) { throw Error(name + ": " + key + ": " + what); };
  auto f32_finite = [](double v) { return std::isfinite(v) && std::isfinite(static_cast<float>(v)); };
  for (const auto& [key, v] : {std::pair<const char*, int>{"size height", c.size_height}, {"size width", c.size_width},
                               {"size shortest_edge", c.size_shortest_edge}, {"crop_size height", c.crop_height},
                               {"crop_size width", c.crop_width}, {"size_divisor", c.size_divisor},
                               {"ensure_multiple_of", c.ensure_multiple_of}})
    if (v < 0 || v > kMaxProcessorSize)
      fail(key, std::to_string(v) + " is out of range [0, " + std::to_string(kMaxProcessorSize) + "]");
  if (c.ensure_multiple_of < 1) fail("ensure_multiple_of", "must be at least 1");
  if (c.do_resize && c.size_shortest_edge == 0 && (c.size_height < 1 || c.size_width < 1))
    fail("size", "height and width must be positive");
  if (c.do_center_crop && (c.crop_height < 1 || c.crop_width < 1)) fail("crop_size", "height and width must be positive");
  if (c.do_rescale && (!f32_finite(c.rescale_factor) || !f32_finite(c.rescale_factor * 255.0) ||
                       static_cast<float>(c.rescale_factor) == 0.f))
    fail("rescale_factor", "must be a finite, nonzero float32 value");
  if (c.do_normalize) {
    for (int i = 0; i < 3; ++i) {
      if (!f32_finite(c.image_mean[i])) fail("image_mean", "values must be finite in float32");
      const float sd = static_cast<float>(c.image_std[i]);
      if (!f32_finite(c.image_std[i]) || sd == 0.f)
        fail("image_std", "values must be finite and nonzero in float32 (a standard deviation of " +
                              std::to_string(c.image_std[i]) + " divides by zero)");
      // The extreme inputs (0 and 255 after rescale) must stay finite after (x - mean) / std.
      const float hi = c.do_rescale ? static_cast<float>(255.0 * c.rescale_factor) : 255.f;
      for (float x : {0.f, hi})
        if (!std::isfinite((x - static_cast<float>(c.image_mean[i])) / sd))
          fail("image_std", "normalising gives non-finite values in float32");
    }
  }
}

ImageProcessor ImageProcessor::from_json_string(const std::string& text, const std::string& name) {
  return parse_processor(text, name, "");
}

ImageProcessor ImageProcessor::from_pretrained(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool is_dir = fs::is_directory(dir, ec);
  std::string path = is_dir ? (fs::path(dir) / "preprocessor_config.json").string() : dir;
  if (!fs::exists(fs::symlink_status(path, ec)))
    throw Error(path + ": cannot open (a model folder needs preprocessor_config.json)");
  const std::string text = io::read_file(path, "preprocessor config", uint64_t{16} << 20);
  // The model's config.json, only read when the processor config names no class (as AutoImageProcessor does).
  std::string model_type;
  const fs::path config = fs::path(path).parent_path() / "config.json";
  if (text.find("image_processor_type") == std::string::npos && text.find("feature_extractor_type") == std::string::npos &&
      fs::is_regular_file(config, ec)) {
    const json c = json::parse(io::read_file(config.string(), "model config", uint64_t{16} << 20), nullptr, false);
    if (c.is_object() && c.contains("model_type") && c["model_type"].is_string()) model_type = c["model_type"];
  }
  return parse_processor(text, path, model_type);
}

}  // namespace vtx
