// The vtx CLI as the acceptance checks call it: info, run (outputs under golden names), exit codes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "golden_runner.hpp"
#include "io/safetensors.hpp"

namespace vtx::test {
namespace {

const std::string kVtx = VTX_CLI_PATH;

TEST(CliRun, InfoPrintsArchitectureAndLabels) {
  std::string out;
  ASSERT_EQ(run_command(kVtx + " info " + golden_dir() + "/models/vit-cls", &out), 0) << out;
  EXPECT_NE(out.find("ViTForImageClassification"), std::string::npos) << out;
  EXPECT_NE(out.find("parameters: "), std::string::npos);
  EXPECT_NE(out.find("F32="), std::string::npos);
  EXPECT_NE(out.find("patch_size: 16"), std::string::npos);
  EXPECT_NE(out.find("class_0009"), std::string::npos);
}

TEST(CliRun, RunWritesGoldenNames) {
  GoldenCase c = load_case("vit-headmask");
  std::string out = temp_dir() + "/cli-headmask.safetensors";
  std::string cs = golden_dir() + "/cases/vit-headmask.safetensors";
  std::string cmd = kVtx + " run " + c.model_dir() + " --pixel-values " + cs + ":pixel_values --out " + out +
                    " --hidden-states --attentions --head-mask " + cs + ":head_mask";
  std::string log;
  ASSERT_EQ(run_command(cmd, &log), 0) << log;
  auto got = io::load_safetensors(out);
  int n = 0;
  for (auto it = c.spec["stats"].begin(); it != c.spec["stats"].end(); ++it) {
    const std::string& k = it.key();
    if (k == "pixel_values" || k == "head_mask" || k == "embeddings") continue;
    ASSERT_TRUE(got.count(k)) << "missing " << k;
    expect_close(got.at(k), c.tensors.at(k), c.atol(k), k);
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(CliRun, MaskedImageModelingAndInterpolation) {
  for (std::string name : {"vit-mim", "vit-interp"}) {
    GoldenCase c = load_case(name);
    std::string out = temp_dir() + "/cli-" + name + ".safetensors";
    std::string cs = golden_dir() + "/cases/" + name + ".safetensors";
    std::string cmd = kVtx + " run " + c.model_dir() + " --pixel-values " + cs + " --out " + out;
    if (name == "vit-mim") cmd += " --bool-masked-pos " + cs + ":bool_masked_pos";
    else cmd += " --interpolate-pos-encoding";
    std::string log;
    ASSERT_EQ(run_command(cmd, &log), 0) << log;
    auto got = io::load_safetensors(out);
    EXPECT_EQ(got.count("hidden_states.0"), 0u) << "hidden states written without --hidden-states";
    for (std::string k : {"last_hidden_state", "reconstruction", "loss"}) {
      if (!c.tensors.count(k)) continue;
      ASSERT_TRUE(got.count(k)) << name << " missing " << k;
      expect_close(got.at(k), c.tensors.at(k), c.atol(k), name + ":" + k);
    }
  }
}

TEST(CliRun, ErrorsExitNonZeroWithOneLine) {
  const std::string model = golden_dir() + "/models/vit-pooler";
  const std::string pv = golden_dir() + "/cases/vit-pooler.safetensors";
  const std::string out = temp_dir() + "/cli-err.safetensors";
  const std::string bad = temp_dir() + "/cli-bad.safetensors";
  { std::ofstream(bad) << "garbage"; }
  const std::string wrong_c = temp_dir() + "/cli-wrongc.safetensors";
  io::save_safetensors(wrong_c, {{"pixel_values", Tensor({1, 1, 128, 128}, DType::F32)}});
  struct Case { std::string cmd, needle; };
  std::vector<Case> cases = {
      {kVtx + " run /nonexistent/model --pixel-values " + pv + " --out " + out, "/nonexistent/model"},
      {kVtx + " run " + model + " --pixel-values /nonexistent.safetensors --out " + out, "/nonexistent.safetensors"},
      {kVtx + " run " + model + " --pixel-values " + bad + " --out " + out, "cli-bad.safetensors"},
      {kVtx + " run " + model + " --pixel-values " + wrong_c + " --out " + out, "channels"},
      {kVtx + " run " + model + " --pixel-values " + pv + ":nope --out " + out, "nope"},
      {kVtx + " run " + model + " --out " + out, "usage"},
      {kVtx + " info " + temp_dir(), "config.json"},
      {kVtx + " frobnicate", "unknown command"},
  };
  for (const auto& c : cases) {
    std::string log;
    int rc = run_command(c.cmd, &log);
    EXPECT_NE(rc, 0) << c.cmd;
    EXPECT_NE(log.find(c.needle), std::string::npos) << c.cmd << " -> " << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << "not one line: " << log;
  }
  EXPECT_FALSE(std::filesystem::exists(out)) << "failed runs must not leave an output file";
}

// `vtx CMD --help` prints that command's usage and exits 0 (it used to be "unknown option --help", exit 2).
TEST(CliRun, EveryCommandHasHelp) {
  for (const char* cmd : {"bench", "classify", "depth", "download", "embed", "info", "preprocess", "quantize", "run",
                          "segment", "serve"}) {
    std::string out;
    EXPECT_EQ(run_command(kVtx + " " + cmd + " --help", &out), 0) << cmd << ": " << out;
    EXPECT_EQ(out.rfind(std::string("usage: vtx ") + cmd, 0), 0u) << cmd << ": " << out;
    std::string out2;
    EXPECT_EQ(run_command(kVtx + " " + cmd + " -h", &out2), 0) << cmd;
    EXPECT_EQ(out2, out) << cmd;
  }
}

}  // namespace
}  // namespace vtx::test
