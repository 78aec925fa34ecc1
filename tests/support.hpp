#pragma once
// Shared test helpers: locating ../shared, reading golden cases, comparing tensors at the golden tolerances.
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vtx/tensor.hpp"

namespace vtx::test {

// $VTX_SHARED_DIR, else the CMake option VTX_SHARED_DIR (default <source>/../shared).
// Fails the test (ADD_FAILURE + throw) when golden data is missing: never a silent skip.
std::string shared_dir();
std::string golden_dir();
nlohmann::json read_json(const std::string& path);

struct GoldenCase {
  std::string name;
  std::string dir;                        // the suite folder (golden_dir() or golden_beit_dpt_dir())
  nlohmann::json spec;                   // cases/<name>.json
  std::map<std::string, Tensor> tensors;  // cases/<name>.safetensors (as stored)
  std::string model_dir() const;          // absolute path of spec["model"]
  double atol(const std::string& tensor) const;
};
GoldenCase load_case(const std::string& name);
// The BEiT / DiT / DPT-segmentation / DPTModel / DPT-Hybrid suite (shared/golden-beit-dpt).
std::string golden_beit_dpt_dir();
GoldenCase load_case_in(const std::string& suite_dir, const std::string& name);

struct Diff {
  double max_abs = 0;
  int64_t worst_index = -1;
  int64_t bad = 0;
};
Diff compare(const Tensor& got, const Tensor& ref, double atol);
// gtest assertion helper: shapes equal and |got - ref| <= atol everywhere.
void expect_close(const Tensor& got, const Tensor& ref, double atol, const std::string& what);

std::string temp_dir();  // a fresh folder under /tmp for this test process
int run_command(const std::string& cmd, std::string* output = nullptr);  // shell, captures stdout+stderr
// A CSV file with a header row -> its other rows as fields (no quoting: the shared label files); throws when the
// file cannot be read.
std::vector<std::vector<std::string>> read_csv(const std::string& path);

// n floats uniform in [lo, hi), reproducible from seed (mt19937).
std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);
// The PackedWeight layouts this CPU supports (portable first).
std::vector<int> supported_gemm_layouts();
// Runs body once per kernel ISA this machine can run (portable, then avx2 and avx512 where available and not
// disabled by VTX_DISABLE_*), with every kernel family forced to that ISA's path (kernels::ScopedIsa); failures
// inside name the ISA.
void for_each_isa(const std::function<void()>& body);

}  // namespace vtx::test
