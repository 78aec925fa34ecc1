// Corrupt and malicious inputs: every case ends in a vtx::Error that names the file and the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/safetensors.hpp"
#include "support.hpp"
#include "vtx/model.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

// A fresh copy of a small golden model folder.
std::string copy_model(const std::string& name, const std::string& tag) {
  std::string dst = temp_dir() + "/" + tag;
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (auto f : {"config.json", "model.safetensors"})
    fs::copy_file(golden_dir() + "/models/" + name + "/" + f, dst + "/" + f);
  return dst;
}

std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

// Expects load() to throw vtx::Error whose message contains every needle.
void expect_load_error(const std::string& dir, std::initializer_list<std::string> needles) {
  try {
    Model::load(dir);
    ADD_FAILURE() << "no error for " << dir;
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks '" << n << "'";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

void expect_file_error(const std::string& path, const std::string& needle) {
  try {
    io::SafeTensorsFile f(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "message '" << msg << "' lacks '" << needle << "'";
  }
}

TEST(Corrupt, TruncatedSafetensors) {
  std::string d = copy_model("vit-pooler", "trunc");
  std::string s = slurp(d + "/model.safetensors");
  spit(d + "/model.safetensors", s.substr(0, s.size() / 2));
  expect_load_error(d, {"model.safetensors", "past the end"});
  spit(d + "/model.safetensors", s.substr(0, 5));
  expect_load_error(d, {"model.safetensors", "truncated"});
  spit(d + "/model.safetensors", s.substr(0, 100));
  expect_load_error(d, {"model.safetensors", "truncated"});
}

TEST(Corrupt, OffsetsPastEnd) {
  std::string p = temp_dir() + "/past.safetensors";
  spit(p, raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4096]}})", std::string(8, '\0')));
  expect_file_error(p, "past the end");
}

TEST(Corrupt, DtypeShapeMismatch) {
  std::string p = temp_dir() + "/mismatch.safetensors";
  spit(p, raw_safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_file_error(p, "does not match dtype");
  spit(p, raw_safetensors(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_file_error(p, "unsupported dtype");
}

TEST(Corrupt, OverlapsGapsAndHeader) {
  std::string p = temp_dir() + "/overlap.safetensors";
  spit(p, raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          std::string(12, '\0')));
  expect_file_error(p, "overlaps");
  spit(p, raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')));
  expect_file_error(p, "gap");
  spit(p, raw_safetensors("{\"a\xff\":{}}", ""));
  expect_file_error(p, "invalid safetensors header JSON");
  spit(p, raw_safetensors("[1,2]", ""));
  expect_file_error(p, "not a JSON object");
  std::string huge(8, '\0');
  huge[6] = 0x7f;  // header length ~ 2^54
  spit(p, huge + "{}");
  expect_file_error(p, "exceeds");
  spit(p, raw_safetensors(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_file_error(p, "negative");
  spit(p, raw_safetensors(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_file_error(p, "too large");
  spit(p, "");
  expect_file_error(p, "truncated");
}

TEST(Corrupt, MissingTensor) {
  std::string d = copy_model("vit-pooler", "missing");
  auto all = io::load_safetensors(d + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> keep;
  for (auto& [k, v] : all)
    if (k != "encoder.layer.1.output.dense.weight") keep.emplace_back(k, v);
  io::save_safetensors(d + "/model.safetensors", keep);
  expect_load_error(d, {"model.safetensors", "missing tensor", "encoder.layer.1.output.dense.weight"});
}

TEST(Corrupt, ConfigDoesNotMatchWeights) {
  std::string d = copy_model("vit-pooler", "hidden");
  std::string cfg = slurp(d + "/config.json");
  auto j = nlohmann::json::parse(cfg);
  j["hidden_size"] = 60;  // a multiple of the 3 heads, not the checkpoint's 48
  spit(d + "/config.json", j.dump());
  expect_load_error(d, {"model.safetensors", "shape"});
  j["hidden_size"] = 48;
  j["num_hidden_layers"] = 7;
  spit(d + "/config.json", j.dump());
  expect_load_error(d, {"missing tensor", "encoder.layer.6", "num_hidden_layers"});  // checked before any layer is built
  j["num_hidden_layers"] = 2;
  j["num_attention_heads"] = 5;
  spit(d + "/config.json", j.dump());
  expect_load_error(d, {"config.json", "not a multiple"});
}

TEST(Corrupt, ConfigNotJsonOrUnknownType) {
  std::string d = copy_model("vit-pooler", "notjson");
  spit(d + "/config.json", "{ this is not json");
  expect_load_error(d, {"config.json", "invalid JSON"});
  spit(d + "/config.json", R"({"model_type": "resnet"})");
  expect_load_error(d, {"config.json", "unknown model_type", "resnet"});
  fs::remove(d + "/config.json");
  expect_load_error(d, {"config.json", "cannot open"});
  expect_load_error(temp_dir() + "/does-not-exist", {"does-not-exist"});
}

TEST(Corrupt, WrongInputShapes) {
  auto m = Model::load(golden_dir() + "/models/vit-pooler");
  auto expect_err = [&](Tensor t, const std::string& needle) {
    try {
      m->forward(t);
      ADD_FAILURE() << "no error for " << t.shape_str();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_err(Tensor({1, 1, 128, 128}, DType::F32), "channels");
  expect_err(Tensor({3, 128, 128}, DType::F32), "shape");
  expect_err(Tensor({1, 3, 8, 8}, DType::F32), "smaller than one");
  expect_err(Tensor({1, 3, 96, 128}, DType::F32), "doesn't match model");
  expect_err(Tensor({1, 3, 128, 128}, DType::I32), "float");
  ForwardOptions o;
  o.head_mask = Tensor({5}, DType::F32);
  try {
    m->forward(Tensor({1, 3, 128, 128}, DType::F32), o);
    ADD_FAILURE() << "bad head_mask accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_mask"), std::string::npos);
  }
  ForwardOptions o2;
  o2.bool_masked_pos = Tensor({1, 64}, DType::U8);  // vit-pooler has no mask token
  EXPECT_THROW(m->forward(Tensor({1, 3, 128, 128}, DType::F32), o2), Error);
}

TEST(Corrupt, ShardedIndex) {
  // A valid sharded folder loads and matches the single-file model; a bad index is reported.
  std::string d = copy_model("vit-pooler", "sharded");
  auto all = io::load_safetensors(d + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> a, b;
  nlohmann::json wm = nlohmann::json::object();
  int i = 0;
  for (auto& [k, v] : all) {
    bool first = (i++ % 2) == 0;
    (first ? a : b).emplace_back(k, v);
    wm[k] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  io::save_safetensors(d + "/model-00001-of-00002.safetensors", a);
  io::save_safetensors(d + "/model-00002-of-00002.safetensors", b);
  fs::remove(d + "/model.safetensors");
  spit(d + "/model.safetensors.index.json", nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", wm}}.dump());
  auto sharded = Model::load(d);
  auto single = Model::load(golden_dir() + "/models/vit-pooler");
  GoldenCase c = load_case("vit-pooler");
  Tensor x = c.tensors.at("pixel_values");
  Diff df = compare(sharded->forward(x).last_hidden_state, single->forward(x).last_hidden_state, 0.0);
  EXPECT_EQ(df.bad, 0);
  wm["layernorm.weight"] = "../escape.safetensors";
  spit(d + "/model.safetensors.index.json", nlohmann::json{{"weight_map", wm}}.dump());
  expect_load_error(d, {"index.json", "plain file name"});
  wm["layernorm.weight"] = "model-00003-of-00002.safetensors";
  spit(d + "/model.safetensors.index.json", nlohmann::json{{"weight_map", wm}}.dump());
  expect_load_error(d, {"model-00003-of-00002.safetensors", "cannot open"});
}

}  // namespace
}  // namespace vtx::test
