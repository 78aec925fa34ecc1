// DPT / Depth Anything neck + heads vs the golden cases: the stored backbone maps (`feature_maps.<i>`) go into the
// neck, every stored `neck.reassemble.<i>`, `neck.fusion.<i>` and `predicted_depth` is compared at the case
// tolerance; post-processing (`depth_at_original_size`) from the stored predicted_depth.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "io/safetensors.hpp"
#include "io/weights.hpp"
#include "vtx/pipeline.hpp"
#include "models/depth.hpp"
#include "models/dpt_neck.hpp"
#include "support.hpp"
#include "vtx/error.hpp"

using namespace vtx;
using vtx::models::DepthNeckConfig;
using vtx::models::DepthNeckHead;

namespace {

const char* kCases[] = {"depth-anything", "depth-anything-metric", "dpt-dinov2", "dpt-dinov2-proj", "dpt-vit"};

int64_t patch_size_of(const nlohmann::json& cfg) {
  if (cfg.value("model_type", "") == "depth_anything") return cfg.value("patch_size", 14);
  if (cfg.contains("backbone_config") && cfg["backbone_config"].is_object())
    return cfg["backbone_config"].value("patch_size", 14);
  return cfg.value("patch_size", 16);
}

// Compares and prints max |diff| as a fraction of the tolerance (for the report).
void check(const test::GoldenCase& c, const std::string& name, const Tensor& got, int* compared) {
  const Tensor& ref = c.tensors.at(name);
  const double atol = c.atol(name);
  test::expect_close(got, ref, atol, c.name + " " + name);
  if (got.shape() == ref.shape()) {
    test::Diff d = test::compare(got, ref, atol);
    std::cout << "  " << c.name << " " << name << ": max|diff| " << d.max_abs << " atol " << atol << " ("
              << 100.0 * d.max_abs / atol << "% of atol)\n";
  }
  ++*compared;
}

class DepthNeckGolden : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST_P(DepthNeckGolden, NeckAndHeadMatchReference) {
  test::GoldenCase c = test::load_case(GetParam());
  const nlohmann::json cfgj = test::read_json(c.model_dir() + "/config.json");
  auto ws = io::WeightStore::open(c.model_dir());
  DepthNeckConfig cfg = DepthNeckConfig::from_json(cfgj, c.model_dir() + "/config.json");
  DepthNeckHead nh(cfg, models::Loader(*ws, {}));

  const Tensor& pv = c.tensors.at("pixel_values");
  const int64_t p = patch_size_of(cfgj), ph = pv.dim(2) / p, pw = pv.dim(3) / p;
  std::vector<Tensor> hidden;
  for (int64_t i = 0; i < cfg.num_stages(); ++i) hidden.push_back(c.tensors.at("feature_maps." + std::to_string(i)));

  models::DepthNeckOutput out = nh.forward(hidden, ph, pw);
  ASSERT_EQ(static_cast<int64_t>(out.reassemble.size()), cfg.num_stages());
  ASSERT_EQ(static_cast<int64_t>(out.fusion.size()), cfg.num_stages());
  int compared = 0;
  for (int64_t i = 0; i < cfg.num_stages(); ++i) {
    const std::string r = "neck.reassemble." + std::to_string(i), f = "neck.fusion." + std::to_string(i);
    if (c.tensors.count(r)) check(c, r, out.reassemble[i], &compared);
    if (c.tensors.count(f)) check(c, f, out.fusion[i], &compared);
  }
  check(c, "predicted_depth", out.predicted_depth, &compared);
  // Every case stores at least one neck intermediate besides the depth map.
  EXPECT_GE(compared, 2);
}

TEST_P(DepthNeckGolden, PostProcessMatchesDepthAtOriginalSize) {
  test::GoldenCase c = test::load_case(GetParam());
  const Tensor& ref = c.tensors.at("depth_at_original_size");
  Tensor got = post_process_depth_estimation(c.tensors.at("predicted_depth"), 0, ref.dim(0), ref.dim(1));
  int compared = 0;
  check(c, "depth_at_original_size", got, &compared);
}

INSTANTIATE_TEST_SUITE_P(Golden, DepthNeckGolden, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           std::string s = i.param;
                           for (auto& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

TEST(DepthNeck, MissingKeyNamesFileAndKey) {
  test::GoldenCase c = test::load_case("dpt-vit");
  namespace fs = std::filesystem;
  const std::string dir = test::temp_dir() + "/dpt-vit-missing";
  fs::create_directories(dir);
  fs::copy_file(c.model_dir() + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  auto all = io::load_safetensors(c.model_dir() + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> kept;
  for (auto& [k, v] : all)
    if (k != "neck.fusion_stage.layers.2.residual_layer1.convolution2.weight") kept.emplace_back(k, v);
  io::save_safetensors(dir + "/model.safetensors", kept);
  auto ws = io::WeightStore::open(dir);
  DepthNeckConfig cfg = DepthNeckConfig::from_json(test::read_json(dir + "/config.json"), dir + "/config.json");
  try {
    DepthNeckHead nh(cfg, models::Loader(*ws, {}));
    ADD_FAILURE() << "no error for a missing key";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("neck.fusion_stage.layers.2.residual_layer1.convolution2.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
  }
}

TEST(DepthNeck, WrongShapesAndConfigsThrow) {
  test::GoldenCase c = test::load_case("depth-anything-metric");
  nlohmann::json cfgj = test::read_json(c.model_dir() + "/config.json");
  auto ws = io::WeightStore::open(c.model_dir());
  DepthNeckConfig cfg = DepthNeckConfig::from_json(cfgj, "config.json");
  DepthNeckHead nh(cfg, models::Loader(*ws, {}));
  std::vector<Tensor> hidden;
  for (int i = 0; i < 4; ++i) hidden.push_back(c.tensors.at("feature_maps." + std::to_string(i)));
  // 12x19 grid is right; a wrong grid, a wrong number of maps, or a wrong channel count must throw.
  EXPECT_THROW(nh.forward(hidden, 12, 18), Error);
  EXPECT_THROW(nh.forward({hidden[0], hidden[1]}, 12, 19), Error);
  EXPECT_THROW(nh.forward({hidden[0], hidden[1], hidden[2], Tensor({1, 229, 31}, DType::F32)}, 12, 19), Error);
  // A checkpoint whose shapes disagree with the config.
  nlohmann::json bad = cfgj;
  bad["fusion_hidden_size"] = 24;
  EXPECT_THROW(DepthNeckHead(DepthNeckConfig::from_json(bad, "config.json"), models::Loader(*ws, {})), Error);
  bad = cfgj;
  bad["reassemble_factors"] = {4, 2, 1};
  EXPECT_THROW(DepthNeckConfig::from_json(bad, "config.json"), Error);
  bad = cfgj;
  bad["reassemble_factors"] = {4, 2, 1, 1.5};
  EXPECT_THROW(DepthNeckConfig::from_json(bad, "config.json"), Error);
  bad = cfgj;
  bad["depth_estimation_type"] = "absolute";
  EXPECT_THROW(DepthNeckConfig::from_json(bad, "config.json"), Error);
  bad = cfgj;
  bad["model_type"] = "vit";
  EXPECT_THROW(DepthNeckConfig::from_json(bad, "config.json"), Error);
  // post-processing input checks
  EXPECT_THROW(post_process_depth_estimation(c.tensors.at("predicted_depth"), 1, 10, 10), Error);
  EXPECT_THROW(post_process_depth_estimation(c.tensors.at("predicted_depth"), 0, 0, 10), Error);
  EXPECT_THROW(post_process_depth_estimation(Tensor({3, 4}, DType::F32), 0, 10, 10), Error);
}

TEST(DepthNeck, DptReadoutVariantsDiffer) {
  // readout_type ignore / add / project give different maps (the project weights exist in dpt-vit): the readout
  // handling is actually exercised, and ignore == add when cls is zero.
  test::GoldenCase c = test::load_case("dpt-vit");
  nlohmann::json cfgj = test::read_json(c.model_dir() + "/config.json");
  auto ws = io::WeightStore::open(c.model_dir());
  std::vector<Tensor> hidden;
  for (int i = 0; i < 4; ++i) hidden.push_back(c.tensors.at("feature_maps." + std::to_string(i)).clone());
  auto run = [&](const char* ro) {
    nlohmann::json j = cfgj;
    j["readout_type"] = ro;
    DepthNeckHead nh(DepthNeckConfig::from_json(j, "config.json"), models::Loader(*ws, {}));
    return nh.forward(hidden, 6, 6).reassemble.at(1);
  };
  Tensor ign = run("ignore"), add = run("add"), proj = run("project");
  EXPECT_GT(test::compare(ign, add, 0).max_abs, 1e-3);
  EXPECT_GT(test::compare(ign, proj, 0).max_abs, 1e-3);
  for (auto& h : hidden)
    for (int64_t k = 0; k < h.dim(2); ++k) h.data<float>()[k] = 0.f;  // cls of batch 0 := 0
  EXPECT_EQ(test::compare(run("ignore"), run("add"), 0).max_abs, 0.0);
}

// use_batch_norm_in_fusion_residual: eval BatchNorm2d after each residual conv, folded into the conv at load.
// (1) identity statistics reproduce the golden outputs (key names and wiring); (2) gamma 2, beta 0.5 equals a
// BN-free checkpoint whose residual convs have weight * 2 and bias * 2 + 0.5.
TEST(DepthNeck, BatchNormInFusionResidual) {
  namespace fs = std::filesystem;
  test::GoldenCase c = test::load_case("dpt-vit");
  nlohmann::json cfgj = test::read_json(c.model_dir() + "/config.json");
  auto all = io::load_safetensors(c.model_dir() + "/model.safetensors");
  const int64_t F = cfgj["fusion_hidden_size"].get<int64_t>();
  auto fill = [&](float v) {
    Tensor t({F}, DType::F32);
    for (int64_t i = 0; i < F; ++i) t.data<float>()[i] = v;
    return t;
  };
  auto write = [&](const std::string& name, const std::map<std::string, Tensor>& tensors, bool bn) {
    const std::string dir = test::temp_dir() + "/" + name;
    fs::create_directories(dir);
    nlohmann::json j = cfgj;
    j["use_batch_norm_in_fusion_residual"] = bn;
    j["use_bias_in_fusion_residual"] = true;
    std::ofstream(dir + "/config.json") << j.dump();
    std::vector<std::pair<std::string, Tensor>> v(tensors.begin(), tensors.end());
    io::save_safetensors(dir + "/model.safetensors", v);
    auto ws = io::WeightStore::open(dir);
    return DepthNeckHead(DepthNeckConfig::from_json(j, dir), models::Loader(*ws, {}));
  };
  auto with_bn = [&](float gamma, float beta) {
    std::map<std::string, Tensor> t = all;
    for (int l = 0; l < 4; ++l)
      for (int r = 1; r <= 2; ++r)
        for (int b = 1; b <= 2; ++b) {
          const std::string p = "neck.fusion_stage.layers." + std::to_string(l) + ".residual_layer" +
                                std::to_string(r) + ".batch_norm" + std::to_string(b) + ".";
          t[p + "weight"] = fill(gamma);
          t[p + "bias"] = fill(beta);
          t[p + "running_mean"] = fill(0.f);
          t[p + "running_var"] = fill(1.f - 1e-5f);
        }
    return t;
  };
  std::vector<Tensor> hidden;
  for (int i = 0; i < 4; ++i) hidden.push_back(c.tensors.at("feature_maps." + std::to_string(i)));

  // (1) identity
  DepthNeckHead id = write("bn-identity", with_bn(1.f, 0.f), true);
  models::DepthNeckOutput o = id.forward(hidden, 6, 6);
  for (int i = 0; i < 4; ++i)
    test::expect_close(o.fusion[i], c.tensors.at("neck.fusion." + std::to_string(i)),
                       c.atol("neck.fusion." + std::to_string(i)), "identity BN fusion " + std::to_string(i));
  test::expect_close(o.predicted_depth, c.tensors.at("predicted_depth"), c.atol("predicted_depth"), "identity BN");

  // (2) scaled BN vs pre-scaled weights
  DepthNeckHead bn = write("bn-scaled", with_bn(2.f, 0.5f), true);
  std::map<std::string, Tensor> scaled = all;
  for (auto& [k, v] : scaled) {
    if (k.find(".residual_layer") == std::string::npos) continue;
    v = v.clone();
    float* p = v.data<float>();
    const bool is_bias = k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0;
    for (int64_t i = 0; i < v.numel(); ++i) p[i] = is_bias ? p[i] * 2.f + 0.5f : p[i] * 2.f;
  }
  DepthNeckHead ref = write("bn-reference", scaled, false);
  models::DepthNeckOutput a = bn.forward(hidden, 6, 6), b = ref.forward(hidden, 6, 6);
  const double tol = 1e-5 * std::max(1.0, test::compare(b.predicted_depth, Tensor({1, 96, 96}, DType::F32), 0).max_abs);
  test::expect_close(a.predicted_depth, b.predicted_depth, tol, "scaled BN vs scaled weights");
  EXPECT_GT(test::compare(a.predicted_depth, o.predicted_depth, 0).max_abs, 1e-2) << "BN had no effect";
}
