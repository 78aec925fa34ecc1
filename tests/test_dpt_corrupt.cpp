// Corrupt configs / checkpoints for the DPT classes beyond depth (DPTModel, DPTForSemanticSegmentation,
// DPT-Hybrid with its BiT backbone): every case is a one-line vtx::Error naming the file and the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "io/safetensors.hpp"
#include "support.hpp"
#include "vtx/model.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

// A copy of a golden-beit-dpt model folder with config.json edited by `edit` and, optionally, the tensors too.
std::string variant(const std::string& model, const std::string& tag, const std::function<void(nlohmann::json&)>& edit,
                    const std::function<void(std::map<std::string, Tensor>&)>& edit_tensors = nullptr) {
  const std::string src = golden_beit_dpt_dir() + "/models/" + model;
  const std::string dst = temp_dir() + "/dpt-corrupt-" + tag;
  fs::remove_all(dst);
  fs::create_directories(dst);
  nlohmann::json j = read_json(src + "/config.json");
  edit(j);
  std::ofstream(dst + "/config.json") << j.dump(2);
  if (edit_tensors) {
    auto t = io::load_safetensors(src + "/model.safetensors");
    edit_tensors(t);
    std::vector<std::pair<std::string, Tensor>> v(t.begin(), t.end());
    io::save_safetensors(dst + "/model.safetensors", v);
  } else {
    fs::copy_file(src + "/model.safetensors", dst + "/model.safetensors");
  }
  return dst;
}

void expect_load_error(const std::string& dir, std::initializer_list<std::string> needles) {
  try {
    Model::load(dir);
    ADD_FAILURE() << "no error for " << dir;
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::cout << "  " << msg << "\n";
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks '" << n << "'";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

TEST(DptCorrupt, HybridFeatmapShapeAgainstWeights) {
  // backbone_featmap_shape[1] sets the projection's input channels: 32 contradicts the stored [32, 64, 1, 1].
  expect_load_error(variant("dpt-hybrid", "featmap", [](nlohmann::json& j) { j["backbone_featmap_shape"] = {1, 32, 4, 4}; }),
                    {"config.json", "backbone_featmap_shape", "dpt.embeddings.projection.weight", "model.safetensors"});
  expect_load_error(variant("dpt-hybrid", "featmap-null", [](nlohmann::json& j) { j["backbone_featmap_shape"] = nullptr; }),
                    {"config.json", "backbone_featmap_shape"});
  expect_load_error(variant("dpt-hybrid", "featmap-bad", [](nlohmann::json& j) { j["backbone_featmap_shape"] = {1, "64", 4, 4}; }),
                    {"config.json", "backbone_featmap_shape"});
  // Consistent with the weights but not with the BiT's last stage (hidden_sizes[2] = 48 -> the weights differ
  // already, so the conv3 shape is reported).
  expect_load_error(variant("dpt-hybrid", "bit-width", [](nlohmann::json& j) { j["backbone_config"]["hidden_sizes"] = {16, 32, 48}; }),
                    {"model.safetensors", "stages.2.layers.0"});
}

TEST(DptCorrupt, HybridNeckAgainstBackbone) {
  expect_load_error(variant("dpt-hybrid", "neck-width", [](nlohmann::json& j) { j["neck_hidden_sizes"] = {24, 32, 32, 32}; }),
                    {"config.json", "neck_hidden_sizes[0]", "BiT stage1"});
  expect_load_error(variant("dpt-hybrid", "ignore", [](nlohmann::json& j) { j["neck_ignore_stages"] = {0}; }),
                    {"config.json", "neck_ignore_stages"});
  expect_load_error(variant("dpt-hybrid", "readout", [](nlohmann::json& j) { j["readout_type"] = "add"; }),
                    {"config.json", "readout_type"});
  expect_load_error(variant("dpt-hybrid", "out-idx", [](nlohmann::json& j) { j["backbone_out_indices"] = {0, 1, 2}; }),
                    {"config.json", "backbone_out_indices"});
  expect_load_error(variant("dpt-hybrid", "out-features", [](nlohmann::json& j) {
                      j["backbone_config"]["out_features"] = {"stage2", "stage3"};
                      j["backbone_config"]["out_indices"] = {2, 3};
                    }),
                    {"config.json", "3 out_features"});
}

TEST(DptCorrupt, HybridBitConfig) {
  expect_load_error(variant("dpt-hybrid", "groups", [](nlohmann::json& j) { j["backbone_config"]["num_groups"] = 3; }),
                    {"config.json", "num_groups"});
  expect_load_error(variant("dpt-hybrid", "layer-type", [](nlohmann::json& j) { j["backbone_config"]["layer_type"] = "preactivation"; }),
                    {"config.json", "layer_type"});
  expect_load_error(variant("dpt-hybrid", "padding", [](nlohmann::json& j) { j["backbone_config"]["global_padding"] = nullptr; }),
                    {"config.json", "global_padding"});
  expect_load_error(variant("dpt-hybrid", "depths", [](nlohmann::json& j) { j["backbone_config"]["depths"] = "1,2,2"; }),
                    {"config.json", "depths"});
  expect_load_error(variant("dpt-hybrid", "stride", [](nlohmann::json& j) { j["backbone_config"]["output_stride"] = 8; }),
                    {"config.json", "output_stride"});
  expect_load_error(variant("dpt-hybrid", "bt", [](nlohmann::json& j) { j["backbone_config"]["model_type"] = "resnet"; }),
                    {"config.json", "resnet"});
  // A BiT weight of the wrong shape / a missing one.
  expect_load_error(variant("dpt-hybrid", "stem-shape", [](nlohmann::json&) {},
                            [](std::map<std::string, Tensor>& t) {
                              t["dpt.embeddings.backbone.bit.embedder.convolution.weight"] = Tensor({16, 3, 5, 5}, DType::F32);
                            }),
                    {"model.safetensors", "dpt.embeddings.backbone.bit.embedder.convolution.weight"});
  expect_load_error(variant("dpt-hybrid", "gn-missing", [](nlohmann::json&) {},
                            [](std::map<std::string, Tensor>& t) {
                              t.erase("dpt.embeddings.backbone.bit.encoder.stages.1.layers.1.norm2.weight");
                            }),
                    {"dpt.embeddings.backbone.bit.encoder.stages.1.layers.1.norm2.weight"});
}

TEST(DptCorrupt, SegmentationHeads) {
  // id2label with 6 labels against a 5-class head.
  expect_load_error(variant("dpt-vit-seg", "labels", [](nlohmann::json& j) { j["id2label"]["5"] = "extra"; }),
                    {"model.safetensors", "head.head.4.weight"});
  // use_auxiliary_head without its weights.
  expect_load_error(variant("dpt-vit-seg", "aux", [](nlohmann::json&) {},
                            [](std::map<std::string, Tensor>& t) { t.erase("auxiliary_head.head.4.weight"); }),
                    {"auxiliary_head.head.4.weight"});
  // BatchNorm statistics of the wrong size.
  expect_load_error(variant("dpt-vit-seg", "bn", [](nlohmann::json&) {},
                            [](std::map<std::string, Tensor>& t) { t["head.head.1.running_var"] = Tensor({4}, DType::F32); }),
                    {"model.safetensors", "head.head.1.running_var"});
  // Without the auxiliary head it loads (the weights are then unused).
  EXPECT_NO_THROW(Model::load(variant("dpt-vit-seg", "no-aux", [](nlohmann::json& j) { j["use_auxiliary_head"] = false; })));
  expect_load_error(variant("dpt-vit-seg", "arch", [](nlohmann::json& j) { j["architectures"] = {"DPTForImageClassification"}; }),
                    {"config.json", "DPTForImageClassification"});
}

}  // namespace
}  // namespace vtx::test
