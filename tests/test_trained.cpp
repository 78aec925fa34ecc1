// The trained Fashion-MNIST checkpoints of ../shared/trained (real weights, real data):
// the model and sample images shipped in models/ and examples/ (where they come from, what the demo prints).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/safetensors.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

std::string trained_dir() { return shared_dir() + "/trained"; }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}


// models/fashion-vit-bf16 is the F32 trained checkpoint with every tensor rounded to BF16 to nearest even
// (computed here independently of models/convert_bf16.py), config.json the same but for torch_dtype.
TEST(TrainedShipped, ModelIsBf16OfTheTrainedF32) {
  const std::string src = trained_dir() + "/models/fashion-vit", ours = std::string(VTX_SOURCE_DIR) + "/models/fashion-vit-bf16";
  auto f32 = io::load_safetensors(src + "/model.safetensors");
  auto bf16 = io::load_safetensors(ours + "/model.safetensors");
  ASSERT_EQ(f32.size(), bf16.size());
  for (const auto& [name, t] : f32) {
    ASSERT_TRUE(bf16.count(name)) << name;
    const Tensor& b = bf16.at(name);
    ASSERT_EQ(t.dtype(), DType::F32) << name;
    ASSERT_EQ(b.dtype(), DType::BF16) << name;
    ASSERT_EQ(t.shape(), b.shape()) << name;
    int64_t bad = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      uint32_t u;
      std::memcpy(&u, t.data<float>() + i, 4);
      const uint16_t want = static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
      bad += b.data<uint16_t>()[i] != want;
    }
    EXPECT_EQ(bad, 0) << name << ": values that are not the nearest-even BF16 of the F32 original";
  }
  auto c1 = read_json(src + "/config.json"), c2 = read_json(ours + "/config.json");
  EXPECT_EQ(c2["torch_dtype"], "bfloat16");
  c1.erase("torch_dtype");
  c2.erase("torch_dtype");
  EXPECT_EQ(c1, c2);
  EXPECT_EQ(read_file(src + "/preprocessor_config.json"), read_file(ours + "/preprocessor_config.json"));
}

// examples/fashion-mnist: the first test image of each class, byte for byte, with its label.
TEST(TrainedShipped, ExamplesAreTheFirstTestImageOfEachClass) {
  const std::string ex = std::string(VTX_SOURCE_DIR) + "/examples/fashion-mnist";
  std::map<std::string, std::vector<std::string>> first;  // label index -> row of the first image of the class
  for (const auto& row : read_csv(trained_dir() + "/images/labels.csv"))
    if (row.size() == 3 && !first.count(row[1])) first[row[1]] = row;
  ASSERT_EQ(first.size(), 10u);
  auto ours = read_csv(ex + "/labels.csv");
  ASSERT_EQ(ours.size(), 10u);
  int pngs = 0;
  for (const auto& e : fs::directory_iterator(ex)) pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 10);
  for (const auto& row : ours) {
    ASSERT_EQ(row.size(), 3u);
    ASSERT_TRUE(first.count(row[1])) << row[0];
    EXPECT_EQ(row, first[row[1]]);
    EXPECT_EQ(read_file(ex + "/" + row[0]), read_file(trained_dir() + "/images/" + row[0])) << row[0];
  }
}

// What the demo runs: the shipped model predicts transformers' label (F32 original) for every sample image.
TEST(TrainedShipped, DemoPredictionsAreTransformers) {
  std::map<std::string, std::string> ref;  // file -> pred_label of fashion-vit
  for (const auto& row : read_csv(trained_dir() + "/reference_predictions.csv"))
    if (row.size() >= 5 && row[0] == "fashion-vit") ref[row[1]] = row[4];
  ASSERT_EQ(ref.size(), 10000u);
  const std::string out = temp_dir() + "/demo.json";
  const std::string cmd = std::string("cd ") + VTX_SOURCE_DIR + " && (" + VTX_CLI_PATH +
                          " classify models/fashion-vit-bf16 examples/fashion-mnist --top-k 1 --json > " + out + ")";
  std::string log;
  ASSERT_EQ(run_command(cmd, &log), 0) << log;
  auto j = read_json(out);
  ASSERT_EQ(j.size(), 10u);
  for (const auto& e : j) {
    const std::string file = fs::path(e["file"].get<std::string>()).filename().string();
    ASSERT_TRUE(ref.count(file)) << file;
    EXPECT_EQ(e["predictions"][0]["label"], ref[file]) << file;
  }
}

}  // namespace
}  // namespace vtx::test
