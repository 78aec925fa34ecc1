#include "support.hpp"

#include "kernels/gemm.hpp"
#include "kernels/kernels.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <random>
#include <sstream>

#include "io/safetensors.hpp"

namespace fs = std::filesystem;

namespace vtx::test {

std::string shared_dir() {
  std::string d;
  if (const char* e = std::getenv("VTX_SHARED_DIR")) d = e;
  if (d.empty()) d = VTX_SHARED_DIR_DEFAULT;
  if (!fs::is_directory(fs::path(d) / "golden")) {
    ADD_FAILURE() << "golden data not found: " << d << "/golden (set VTX_SHARED_DIR)";
    throw std::runtime_error("shared/ not found at " + d);
  }
  return fs::canonical(d).string();
}

std::string golden_dir() { return shared_dir() + "/golden"; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(f);
}

GoldenCase load_case(const std::string& name) { return load_case_in(golden_dir(), name); }

std::string golden_beit_dpt_dir() {
  const std::string d = shared_dir() + "/golden-beit-dpt";
  if (!fs::is_directory(d)) {
    ADD_FAILURE() << "golden data not found: " << d;
    throw std::runtime_error("golden-beit-dpt not found at " + d);
  }
  return d;
}

GoldenCase load_case_in(const std::string& g, const std::string& name) {
  GoldenCase c;
  c.name = name;
  c.dir = g;
  c.spec = read_json(g + "/cases/" + name + ".json");
  c.tensors = io::load_safetensors(g + "/" + c.spec["tensors"].get<std::string>());
  return c;
}

std::string GoldenCase::model_dir() const { return dir + "/" + spec["model"].get<std::string>(); }

double GoldenCase::atol(const std::string& tensor) const {
  const auto& t = spec["tolerance"];
  if (!t.contains(tensor)) throw std::runtime_error(name + ": no tolerance for " + tensor);
  return t[tensor]["atol"].get<double>();
}

Diff compare(const Tensor& got, const Tensor& ref, double atol) {
  Diff d;
  Tensor g = got.to_f32(), r = ref.to_f32();
  const float* a = g.data<float>();
  const float* b = r.data<float>();
  for (int64_t i = 0; i < r.numel(); ++i) {
    double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= atol)) ++d.bad;
    if (!(e <= d.max_abs)) {
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.worst_index = i;
    }
  }
  return d;
}

void expect_close(const Tensor& got, const Tensor& ref, double atol, const std::string& what) {
  ASSERT_FALSE(got.empty()) << what << ": output missing";
  ASSERT_EQ(got.shape(), ref.shape()) << what << ": shape " << got.shape_str() << " vs reference " << ref.shape_str();
  Diff d = compare(got, ref, atol);
  EXPECT_EQ(d.bad, 0) << what << ": " << d.bad << " elements exceed atol " << atol << " (max |diff| " << d.max_abs
                      << " at flat index " << d.worst_index << ")";
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::vector<std::string> row;
    std::stringstream s(line);
    std::string field;
    while (std::getline(s, field, ',')) row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

std::string temp_dir() {
  static std::string dir;
  if (dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "vtx-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
  }
  return dir;
}

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<int> supported_gemm_layouts() {
  using kernels::PackedWeight;
  std::vector<int> l;
  for (int x : {PackedWeight::kLayoutPortable, PackedWeight::kLayoutAvx2, PackedWeight::kLayoutAvx512})
    if (PackedWeight::layout_supported(x)) l.push_back(x);
  return l;
}

void for_each_isa(const std::function<void()>& body) {
  for (kernels::Isa isa : kernels::available_isas()) {
    SCOPED_TRACE(std::string("kernel path: ") + kernels::isa_name(isa));
    kernels::ScopedIsa use(isa);
    body();
  }
}

}  // namespace vtx::test
