// `vtx preprocess` end to end: golden processor configs -> safetensors -> compared with the golden tensors.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/safetensors.hpp"
#include "io/sha256.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace {

std::string golden(const std::string& rel) { return (fs::path(vtx::test::golden_dir()) / rel).lexically_normal().string(); }

std::string run(const std::string& args, int expect_rc) {
  std::string out;
  const int rc = vtx::test::run_command(std::string(VTX_CLI_PATH) + " preprocess " + args, &out);
  EXPECT_EQ(rc, expect_rc) << out;
  return out;
}

std::string sha_of(const float* p, int64_t n) { return vtx::io::sha256_hex(p, static_cast<size_t>(n) * sizeof(float)); }

}  // namespace

TEST(CliPreprocess, BatchMatchesGolden) {
  const std::string cfg = "processors/vit-224-bilinear";
  auto index = vtx::test::read_json(golden(cfg + "/index.json"))["images"];
  auto golden_case = vtx::test::load_case("proc-vit-224-bilinear");
  const std::vector<std::string> stems = {"000000039769", "tiny_7x5_from_apple", "cmyk_from_tench"};
  std::string args = golden(cfg);
  for (const auto& s : stems) args += " " + golden(index[s]["image"]);
  const std::string out = vtx::test::temp_dir() + "/pv.safetensors";
  run(args + " --out " + out, 0);

  auto t = vtx::io::load_safetensors(out);
  ASSERT_TRUE(t.count("pixel_values"));
  const vtx::Tensor& pv = t.at("pixel_values");
  ASSERT_EQ(pv.shape(), (std::vector<int64_t>{3, 3, 224, 224}));
  const int64_t per = 3 * 224 * 224;
  for (size_t i = 0; i < stems.size(); ++i) {
    EXPECT_EQ(sha_of(pv.data<float>() + i * per, per), index[stems[i]]["pixel_values_sha256"].get<std::string>())
        << stems[i];
    const std::string name = "pixel_values." + stems[i];
    if (golden_case.tensors.count(name)) {
      vtx::Tensor one = vtx::Tensor::from_data({3, 224, 224}, pv.data<float>() + i * per);
      vtx::test::expect_close(one, golden_case.tensors.at(name), golden_case.atol(name), name);
    }
  }
}

TEST(CliPreprocess, DifferentSizesGiveOneTensorPerImage) {
  const std::string cfg = "processors/dpt-dinov2";
  auto index = vtx::test::read_json(golden(cfg + "/index.json"))["images"];
  auto golden_case = vtx::test::load_case("proc-dpt-dinov2");
  std::vector<std::string> stems;
  for (const auto& [name, tensor] : golden_case.tensors) stems.push_back(name.substr(std::string("pixel_values.").size()));
  ASSERT_GE(stems.size(), 2u);
  std::string args = golden(cfg);
  for (const auto& s : stems) args += " " + golden(index[s]["image"]);
  const std::string out = vtx::test::temp_dir() + "/pv-multi.safetensors";
  run(args + " --out " + out, 0);
  auto t = vtx::io::load_safetensors(out);
  EXPECT_EQ(t.size(), stems.size());
  for (const auto& s : stems) {
    const std::string name = "pixel_values." + s;
    ASSERT_TRUE(t.count(name)) << name;
    vtx::test::expect_close(t.at(name), golden_case.tensors.at(name), golden_case.atol(name), name);
    EXPECT_EQ(sha_of(t.at(name).data<float>(), t.at(name).numel()), index[s]["pixel_values_sha256"].get<std::string>());
  }
}

TEST(CliPreprocess, ModelDirWithOnlyPreprocessorConfig) {
  const std::string dir = vtx::test::temp_dir() + "/only-config";
  fs::create_directories(dir);
  fs::copy_file(golden("processors/bit-dinov2/preprocessor_config.json"), dir + "/preprocessor_config.json",
                fs::copy_options::overwrite_existing);
  auto index = vtx::test::read_json(golden("processors/bit-dinov2/index.json"))["images"];
  const std::string out = vtx::test::temp_dir() + "/pv-bit.safetensors";
  run(dir + " " + golden(index["vitcpp_polars_286x176"]["image"]) + " --out " + out, 0);
  auto t = vtx::io::load_safetensors(out);
  ASSERT_EQ(t.at("pixel_values").shape(), (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_EQ(sha_of(t.at("pixel_values").data<float>(), t.at("pixel_values").numel()),
            index["vitcpp_polars_286x176"]["pixel_values_sha256"].get<std::string>());
}

TEST(CliPreprocess, Errors) {
  const std::string cfg = golden("processors/vit-224-bilinear");
  const std::string missing = vtx::test::temp_dir() + "/missing.jpg";
  std::string out = run(cfg + " " + missing + " --out " + vtx::test::temp_dir() + "/x.safetensors", 1);
  EXPECT_NE(out.find(missing), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(vtx::test::temp_dir() + "/x.safetensors"));
  run(cfg + " --out x.safetensors", 2);  // no image
  run(cfg + " " + missing, 2);          // no --out
}
