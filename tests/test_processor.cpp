// Image processors against the transformers 4.48.3 goldens: for every processor config and every one of the
// 69 images, the uint8 intermediate (sha256 + stored PNG) and the float32 pixel_values (sha256 + stored
// tensors) must be bit-exact. Also the pixel_values of every model case that starts from images.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>

#include "io/safetensors.hpp"
#include "io/sha256.hpp"
#include "support.hpp"
#include "vtx/processor.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kConfigs[] = {"vit-224-bilinear", "vit-384", "bit-dinov2", "dpt-depth-anything", "dpt-dinov2"};

struct ImageCase {
  std::string stem, file;  // file relative to golden/
};

std::vector<ImageCase> image_cases() {
  std::vector<ImageCase> v;
  try {
    auto j = vtx::test::read_json(vtx::test::golden_dir() + "/processors/decoded_images.json");
    for (auto it = j["images"].begin(); it != j["images"].end(); ++it) v.push_back({it.key(), (*it)["file"]});
  } catch (const std::exception&) {
    v.push_back({"golden_data_missing", ""});  // fails in the test body
  }
  return v;
}

std::string golden(const std::string& rel) { return (fs::path(vtx::test::golden_dir()) / rel).lexically_normal().string(); }

// Per-config golden data, loaded once per process.
struct ConfigGolden {
  vtx::ImageProcessor proc;
  json index;                                // processors/<cfg>/index.json
  std::map<std::string, vtx::Tensor> tensors;  // cases/proc-<cfg>.safetensors when present
  json tolerance;
};

const ConfigGolden& config_golden(const std::string& cfg) {
  static std::map<std::string, ConfigGolden> cache;
  auto it = cache.find(cfg);
  if (it != cache.end()) return it->second;
  ConfigGolden g;
  const std::string dir = golden("processors/" + cfg);
  g.proc = vtx::ImageProcessor::from_pretrained(dir);
  g.index = vtx::test::read_json(dir + "/index.json");
  const std::string case_json = golden("cases/proc-" + cfg + ".json");
  if (fs::exists(case_json)) {
    auto c = vtx::test::load_case("proc-" + cfg);
    g.tensors = c.tensors;
    g.tolerance = c.spec["tolerance"];
  }
  return cache.emplace(cfg, std::move(g)).first->second;
}

std::string tensor_sha(const vtx::Tensor& t) { return vtx::io::sha256_hex(t.raw(), t.nbytes()); }

std::vector<int64_t> shape_of(const json& j) { return j.get<std::vector<int64_t>>(); }

// Checks one processed image against the golden entry; `prefix` is "" or "raw_pil_open_".
void check_against(const ConfigGolden& g, const json& e, const vtx::Image& loaded, const std::string& prefix,
                   const std::string& what) {
  vtx::Image u8 = g.proc.transform(loaded);
  if (e.contains(prefix + "uint8_shape_hwc")) {
    const std::vector<int64_t> got{u8.height, u8.width, 3};
    ASSERT_EQ(got, shape_of(e[prefix + "uint8_shape_hwc"])) << what << ": uint8 size";
  }
  EXPECT_EQ(vtx::io::sha256_hex(u8.rgb.data(), u8.rgb.size()), e[prefix + "uint8_sha256"].get<std::string>())
      << what << ": uint8 image differs from PIL";
  if (e.contains(prefix + "uint8_png")) {
    vtx::Image ref = vtx::load_image(golden(e[prefix + "uint8_png"]));
    ASSERT_EQ(ref.width, u8.width) << what;
    ASSERT_EQ(ref.height, u8.height) << what;
    int max_diff = 0;
    size_t bad = 0;
    for (size_t i = 0; i < ref.rgb.size(); ++i) {
      const int d = std::abs(int(ref.rgb[i]) - int(u8.rgb[i]));
      max_diff = std::max(max_diff, d);
      bad += d != 0;
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " uint8 values differ from the stored PNG, max |diff| " << max_diff;
  }
  vtx::Tensor pv = g.proc.to_tensor(u8);
  ASSERT_EQ(pv.shape(), shape_of(e[prefix + "pixel_values_shape"])) << what;
  EXPECT_EQ(tensor_sha(pv), e[prefix + "pixel_values_sha256"].get<std::string>()) << what << ": pixel_values differ";
  if (prefix.empty() && e.contains("tensor")) {
    const std::string name = e["tensor"];
    ASSERT_TRUE(g.tensors.count(name)) << what << ": tensor " << name << " missing from the case file";
    vtx::test::expect_close(pv, g.tensors.at(name), g.tolerance[name]["atol"].get<double>(), what + " " + name);
  }
}

}  // namespace

class ProcessorGolden : public ::testing::TestWithParam<ImageCase> {};

TEST_P(ProcessorGolden, AllConfigsBitExact) {
  const ImageCase& c = GetParam();
  ASSERT_FALSE(c.file.empty()) << "decoded_images.json not found under " << vtx::test::golden_dir();
  const std::string path = golden(c.file);
  const vtx::Image img = vtx::load_image(path);
  std::optional<vtx::Image> raw;  // without EXIF transpose, loaded on demand
  for (const char* cfg : kConfigs) {
    const ConfigGolden& g = config_golden(cfg);
    ASSERT_TRUE(g.index["images"].contains(c.stem)) << cfg << " has no entry for " << c.stem;
    const json& e = g.index["images"][c.stem];
    const std::string what = std::string(cfg) + "/" + c.stem;
    EXPECT_EQ((std::vector<int64_t>{img.height, img.width}), shape_of(e["loaded_size_hw"])) << what;
    check_against(g, e, img, "", what);
    // HF given PIL.Image.open() directly: we cannot skip the RGB conversion, but the EXIF-less path is ours too.
    if (e["raw_pil_open"] == "differs") {
      if (!raw) raw = vtx::load_image(path, {.exif_transpose = false});
      check_against(g, e, *raw, "raw_pil_open_", what + " (no EXIF transpose)");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Images, ProcessorGolden, ::testing::ValuesIn(image_cases()),
                         [](const auto& info) { return info.param.stem; });

// Every model case that starts from images: the processor of the model folder must give its pixel_values.
TEST(ProcessorModelCases, PixelValuesMatch) {
  int checked = 0;
  for (const auto& f : fs::directory_iterator(vtx::test::golden_dir() + "/cases")) {
    if (f.path().extension() != ".json" || f.path().stem().string().rfind("proc-", 0) == 0) continue;
    json spec = vtx::test::read_json(f.path().string());
    if (!spec["inputs"].contains("images")) continue;
    auto c = vtx::test::load_case(f.path().stem().string());
    auto proc = vtx::ImageProcessor::from_pretrained(c.model_dir());
    std::vector<vtx::Image> imgs;
    for (const auto& p : spec["inputs"]["images"]) imgs.push_back(vtx::load_image(golden(p)));
    vtx::Tensor pv = proc.preprocess(imgs);
    vtx::test::expect_close(pv, c.tensors.at("pixel_values"), c.atol("pixel_values"), c.name + " pixel_values");
    EXPECT_EQ(tensor_sha(pv), tensor_sha(c.tensors.at("pixel_values"))) << c.name << ": not bit-exact";
    ++checked;
  }
  EXPECT_GE(checked, 16);
}
