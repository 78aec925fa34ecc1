// The installed package: `cmake --install` into a temporary prefix, then a small consumer project (tests/consumer)
// is built against it twice, with find_package(vtx) and with pkg-config, and classifies the golden vit-cls images.
// Its logits must match transformers' within the case tolerance, and its top label must be the golden argmax.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support.hpp"
#include "vtx/tensor.hpp"

namespace fs = std::filesystem;
using namespace vtx;
using namespace vtx::test;

namespace {

#ifdef VTX_TEST_SANITIZE
const std::string kFlags = "-fsanitize=address,undefined -fno-omit-frame-pointer";
#else
const std::string kFlags = "";
#endif

std::string q(const std::string& s) { return "'" + s + "'"; }

struct Installed {
  std::string prefix;
};

const Installed& install_once() {
  static Installed inst = [] {
    Installed i;
    i.prefix = temp_dir() + "/prefix";
    std::string out;
    const int rc = run_command("cmake --install " + q(VTX_BINARY_DIR) + " --prefix " + q(i.prefix), &out);
    if (rc != 0) ADD_FAILURE() << "cmake --install failed:\n" << out;
    return i;
  }();
  return inst;
}

// Runs the consumer on the vit-cls images and checks every line against the golden logits.
void check_consumer(const std::string& exe, const std::string& env) {
  GoldenCase c = load_case("vit-cls");
  std::string cmd = env + " " + q(exe) + " " + q(c.model_dir());
  const fs::path cases = fs::path(golden_dir());  // image paths are relative to golden/README.md
  for (const auto& img : c.spec["inputs"]["images"]) cmd += " " + q((cases / img.get<std::string>()).lexically_normal().string());
  std::string out;
  ASSERT_EQ(run_command(cmd, &out), 0) << cmd << "\n" << out;
  const Tensor& ref = c.tensors.at("logits");
  const int64_t B = ref.dim(0), C = ref.dim(1);
  const double atol = c.atol("logits");
  const nlohmann::json id2label = read_json(c.model_dir() + "/config.json")["id2label"];
  std::istringstream lines(out);
  std::string line;
  int64_t b = 0;
  while (std::getline(lines, line) && b < B) {
    const auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    std::istringstream vals(line.substr(tab + 1));
    const float* r = ref.data<float>() + b * C;
    int64_t best = 0;
    for (int64_t k = 0; k < C; ++k) {
      double v = 0;
      ASSERT_TRUE(vals >> v) << line;
      EXPECT_NEAR(v, r[k], atol) << "image " << b << " logit " << k;
      if (r[k] > r[best]) best = k;
    }
    EXPECT_EQ(line.substr(0, tab), id2label[std::to_string(best)].get<std::string>()) << "image " << b;
    ++b;
  }
  EXPECT_EQ(b, B) << out;
}

}  // namespace

TEST(Install, PackageFilesInPlace) {
  const Installed& i = install_once();
  for (const char* f : {"include/vtx/vtx.hpp", "include/vtx/model.hpp", "include/vtx/io.hpp", "include/vtx/version.hpp",
                        "lib/libvtx.a", "lib/libvtx.so", "bin/vtx", "lib/cmake/vtx/vtxConfig.cmake",
                        "lib/cmake/vtx/vtxConfigVersion.cmake", "lib/cmake/vtx/vtxTargets.cmake", "lib/pkgconfig/vtx.pc"})
    EXPECT_TRUE(fs::exists(fs::path(i.prefix) / f)) << f;
  // The installed CLI finds its library through its RUNPATH ($ORIGIN/../lib).
  std::string out;
  GoldenCase c = load_case("vit-cls");
  EXPECT_EQ(run_command(q(i.prefix + "/bin/vtx") + " info " + q(c.model_dir()), &out), 0) << out;
  EXPECT_NE(out.find("architecture: ViTForImageClassification"), std::string::npos) << out;
}

TEST(Install, OnlyApiSymbolsExported) {
  const Installed& i = install_once();
  std::string out;
  ASSERT_EQ(run_command("nm -D --defined-only " + q(i.prefix + "/lib/libvtx.so") + " | c++filt", &out), 0) << out;
  std::istringstream lines(out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const auto sp = line.find(' ', line.find(' ') + 1);
    const std::string sym = line.substr(sp + 1);
    const bool api = sym.rfind("vtx::", 0) == 0 || sym.rfind("typeinfo for vtx::", 0) == 0 ||
                     sym.rfind("typeinfo name for vtx::", 0) == 0 || sym.rfind("vtable for vtx::", 0) == 0;
    EXPECT_TRUE(api) << "exported symbol outside the API: " << sym;
    const bool internal = sym.find("vtx::models::") != std::string::npos || sym.find("vtx::kernels::") != std::string::npos ||
                          sym.find("vtx::io::") != std::string::npos;
    EXPECT_FALSE(internal) << "internal symbol exported: " << sym;
    ++n;
  }
  EXPECT_GT(n, 20) << out;
}

TEST(Install, ConsumerWithFindPackage) {
  const Installed& i = install_once();
  const std::string build = temp_dir() + "/consumer-cmake";
  std::string out;
  const std::string src = std::string(VTX_SOURCE_DIR) + "/tests/consumer";
  ASSERT_EQ(run_command("cmake -S " + q(src) + " -B " + q(build) + " -DCMAKE_PREFIX_PATH=" + q(i.prefix) +
                            " -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=" + q(kFlags),
                        &out), 0) << out;
  ASSERT_EQ(run_command("cmake --build " + q(build), &out), 0) << out;
  check_consumer(build + "/vtx_consumer", "");
}

TEST(Install, ConsumerWithPkgConfig) {
  const Installed& i = install_once();
  const std::string exe = temp_dir() + "/consumer-pc";
  std::string out;
  const std::string pc = "PKG_CONFIG_PATH=" + q(i.prefix + "/lib/pkgconfig");
  ASSERT_EQ(run_command(pc + " pkg-config --modversion vtx", &out), 0) << out;
  const std::string cmd = "c++ -std=c++20 -O1 " + kFlags + " " + q(std::string(VTX_SOURCE_DIR) + "/tests/consumer/consumer.cpp") +
                          " -o " + q(exe) + " $(" + pc + " pkg-config --cflags --libs vtx)";
  ASSERT_EQ(run_command(cmd, &out), 0) << cmd << "\n" << out;
  check_consumer(exe, "LD_LIBRARY_PATH=" + q(i.prefix + "/lib"));
}
