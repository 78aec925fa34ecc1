// Replays every input under tests/fuzz/regressions/<target>/ (crashes the fuzzers found, kept after the fix)
// and tests/fuzz/seeds/<target>/ (small committed seeds) through the fuzz targets' own code (fuzz_targets.cpp),
// in the normal suite and under ASan/UBSan. A target must return for each of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "fuzz_targets.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

using Target = int (*)(const uint8_t*, size_t);

const std::map<std::string, Target>& targets() {
  static const std::map<std::string, Target> t = {
      {"safetensors", fuzz::safetensors}, {"config", fuzz::config}, {"processor", fuzz::processor},
      {"jpeg", fuzz::jpeg},               {"png", fuzz::png},       {"webp", fuzz::webp},
      {"bmp", fuzz::bmp}};
  return t;
}

std::vector<std::pair<std::string, fs::path>> inputs() {
  std::vector<std::pair<std::string, fs::path>> r;
  for (const char* kind : {"regressions", "seeds"}) {
    const fs::path root = fs::path(VTX_SOURCE_DIR) / "tests" / "fuzz" / kind;
    if (!fs::is_directory(root)) continue;
    for (const auto& t : fs::directory_iterator(root)) {
      if (!t.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(t.path()))
        if (f.is_regular_file()) r.emplace_back(t.path().filename().string(), f.path());
    }
  }
  std::sort(r.begin(), r.end());
  return r;
}

TEST(FuzzRegressions, EveryKeptInputRunsCleanly) {
  (void)shared_dir();  // the config target needs the golden checkpoints: fail, never skip, without them
  setenv("VTX_SHARED_DIR", shared_dir().c_str(), 0);
  size_t n = 0;
  for (const auto& [target, path] : inputs()) {
    auto it = targets().find(target);
    ASSERT_NE(it, targets().end()) << "unknown fuzz target folder " << target;
    std::ifstream f(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(path.string());
    EXPECT_EQ(it->second(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
    ++n;
  }
  EXPECT_GT(n, 0u) << "no seeds or regression inputs found under tests/fuzz";
}

}  // namespace
}  // namespace vtx::test
