// The kernel dispatch table (kernels/kernels.hpp, <vtx/cpu.hpp>) and the strict parsing of the VTX_* environment
// variables the kernels and the thread pool read: a bad value is a vtx::Error naming the variable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

#include "core/cpu.hpp"
#include "golden_runner.hpp"
#include "kernels/kernels.hpp"
#include "support.hpp"
#include "vtx/cpu.hpp"
#include "vtx/error.hpp"

namespace vtx::test {
namespace {

using kernels::Isa;
using kernels::KernelTable;

int rank(const std::string& path) {
  if (path == "portable" || path == "none") return 0;  // none: gemm_bf16 without AVX512-BF16
  if (path == "avx2") return 1;
  if (path == "avx512" || path == "avx512-vnni" || path == "avx512-bf16") return 2;
  return -1;
}

TEST(Dispatch, TableNamesEveryFamilyOnce) {
  const std::vector<KernelPath> t = kernel_dispatch_table();
  std::set<std::string> fam;
  for (const KernelPath& k : t) {
    EXPECT_TRUE(fam.insert(k.family).second) << "duplicate family " << k.family;
    EXPECT_GE(rank(k.path), 0) << k.family << ": " << k.path;
  }
  for (const char* f : {"gemm_f32", "gemm_f16_bf16_int4", "gemm_int8", "gemm_bf16", "attention", "layer_norm", "softmax", "gelu",
                        "conv", "interpolation", "int4_params", "resample"})
    EXPECT_TRUE(fam.count(f)) << "missing family " << f;
  std::printf("cpu: %s\n", cpu_isa_string().c_str());
  for (const KernelPath& k : t) std::printf("  %-20s %s\n", k.family.c_str(), k.path.c_str());
}

// The default table is the widest available ISA's; each ISA's table uses nothing wider than that ISA, and the
// widest family path of each table is that ISA (every ISA has at least its GEMM).
TEST(Dispatch, PathsFollowTheAvailableIsas) {
  const Isa best = cpu_has_avx512() ? Isa::Avx512 : cpu_has_avx2_fma() ? Isa::Avx2 : Isa::Portable;
  EXPECT_EQ(kernels::kernel_table().isa, best);
  EXPECT_EQ(kernels::available_isas().back(), best);
  for (Isa isa : kernels::available_isas()) {
    const KernelTable& t = kernels::kernel_table(isa);
    EXPECT_EQ(t.isa, isa);
    EXPECT_EQ(t.gemm_layout, static_cast<int>(isa));
    for (const auto& e : t.paths) EXPECT_LE(rank(e.path), static_cast<int>(isa)) << kernels::isa_name(isa) << " " << e.family;
    EXPECT_EQ(rank(t.paths[KernelTable::kGemmF32].path), static_cast<int>(isa));
    EXPECT_EQ(std::string(t.paths[KernelTable::kGemmInt8].path) == "avx512-vnni", isa == Isa::Avx512 && cpu_has_avx512_vnni());
    // bf16 compute has no fallback: a kernel exactly where AVX512-BF16 is usable, else "none" and no function.
    const bool bf16 = isa == Isa::Avx512 && cpu_has_avx512_bf16();
    EXPECT_STREQ(t.paths[KernelTable::kGemmBf16].path, bf16 ? "avx512-bf16" : "none");
    EXPECT_EQ(t.gemm_bf16 != nullptr, bf16);
  }
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (!kernels::isa_available(isa)) {
      EXPECT_THROW(kernels::kernel_table(isa), Error);
    }
  }
}

TEST(Dispatch, ScopedIsaForcesAndRestores) {
  const KernelTable* before = &kernels::kernel_table();
  for (Isa isa : kernels::available_isas()) {
    {
      kernels::ScopedIsa use(isa);
      EXPECT_EQ(kernels::kernel_table().isa, isa);
      EXPECT_EQ(kernel_dispatch_table()[0].path, kernels::isa_name(isa));
    }
    EXPECT_EQ(&kernels::kernel_table(), before);
  }
}

// Sets an environment variable for the scope of one check.
struct EnvVar {
  std::string name;
  EnvVar(const char* n, const char* v) : name(n) { setenv(n, v, 1); }
  ~EnvVar() { unsetenv(name.c_str()); }
};

template <class F>
void expect_error_naming(const char* var, F&& f) {
  try {
    f();
    ADD_FAILURE() << var << ": no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(var), std::string::npos) << e.what();
  }
}

TEST(Dispatch, EnvFlagAndIntAreStrict) {
  for (const char* var : {"VTX_DISABLE_AVX2", "VTX_DISABLE_AVX512", "VTX_DISABLE_VNNI"}) {
    const char* old = std::getenv(var);
    const std::string saved = old ? old : "";
    for (const char* bad : {"yes", "2", "on", " 1", "1x"}) {
      EnvVar e(var, bad);
      expect_error_naming(var, [&] { env_flag(var); });
    }
    {
      EnvVar e(var, "1");
      EXPECT_TRUE(env_flag(var));
    }
    {
      EnvVar e(var, "0");
      EXPECT_FALSE(env_flag(var));
    }
    if (old) setenv(var, saved.c_str(), 1);
  }
  for (const char* bad : {"abc", "12abc", "0", "-3", "99999999999999999999", "4.5"}) {
    EnvVar e("VTX_NUM_THREADS", bad);
    expect_error_naming("VTX_NUM_THREADS", [&] { env_int("VTX_NUM_THREADS", 0, 1, 1024); });
  }
  {
    EnvVar e("VTX_GEMM_KC", "8");  // below the minimum block
    expect_error_naming("VTX_GEMM_KC", [&] { env_int("VTX_GEMM_KC", 384, 16, 1 << 20); });
  }
  {
    EnvVar e("VTX_GEMM_KC", "");
    EXPECT_EQ(env_int("VTX_GEMM_KC", 384, 16, 1 << 20), 384);
  }
  {
    EnvVar e("VTX_GEMM_KC", "256");
    EXPECT_EQ(env_int("VTX_GEMM_KC", 384, 16, 1 << 20), 256);
  }
}

// The variables are read once per process: check the wiring end to end in a child `vtx run`, which must fail with
// a one-line message naming the variable (never crash, never ignore it).
TEST(Dispatch, BadEnvironmentFailsTheCli) {
  GoldenCase c = load_case("vit-headmask");
  const std::string cs = golden_dir() + "/cases/vit-headmask.safetensors";
  const std::string run = std::string(VTX_CLI_PATH) + " run " + c.model_dir() + " --pixel-values " + cs +
                          ":pixel_values --out " + temp_dir() + "/env.safetensors";
  std::vector<std::pair<std::string, std::string>> cases = {
      {"VTX_NUM_THREADS=two", "VTX_NUM_THREADS"},
      {"VTX_DISABLE_AVX2=yes", "VTX_DISABLE_AVX2"},
      {"VTX_DISABLE_AVX512=2", "VTX_DISABLE_AVX512"},
  };
  // The tuning variables are read by the kernel that runs: the AVX2 f32 GEMM's only where it runs.
  if (cpu_has_avx2_fma()) cases.push_back({"VTX_DISABLE_AVX512=1 VTX_GEMM_KC=big", "VTX_GEMM_KC"});
  for (const auto& [env, var] : cases) {
    std::string out;
    const int rc = run_command("env " + env + " " + run, &out);
    EXPECT_NE(rc, 0) << env << ": " << out;
    EXPECT_NE(out.find(var), std::string::npos) << env << ": " << out;
    EXPECT_EQ(out.find("terminate"), std::string::npos) << env << ": " << out;
  }
}

}  // namespace
}  // namespace vtx::test
