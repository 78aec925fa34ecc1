// Accuracy on real data for every precision: all 10,000 Fashion-MNIST test images of ../shared/trained through
// the CLI pipeline (PNG file -> load_image -> the folder's image processor -> model -> label:
// `vtx classify MODEL DIR --top-k 1 --json --logits --threads 1`), for each trained model in f32, f16, bf16, int8
// and int4 (both parameter choices: --int4-method mse, the default, and minmax, torchao's). Compared with the
// labels, with transformers' own prediction for every image (reference_predictions.csv) and with transformers'
// logits (reference_logits.safetensors).
//
// Bounds (issue 15; never loosen them, fix the quantizer or the kernels instead):
//   f32   same prediction as transformers on >= 99.9 % of the images (images whose reference top-2 margin is
//         below 1e-4 count as agreeing whatever vtx picks), accuracy equal to transformers' within 0.05 points;
//   f16 / bf16 (weights) and bf16 compute (--compute bf16, where the CPU has AVX512-BF16) accuracy within 0.1
//   points of vtx's f32, int8 within 0.3, int4 (mse and minmax) within 1.0.
// The shipped models/fashion-vit-bf16 (BF16 copy of fashion-vit) is checked the same way, with its f32 row held to
// the bf16 bound (0.1 points) against transformers' accuracy with the F32 original.
//
// One thread per run: ctest runs two tests at a time on the 2-core CI machine, and these models are so small
// (50 tokens, hidden 96) that a second thread costs more than it gains.
// Under AddressSanitizer (10-20x slower) the test runs a documented subset: every 10th test image (1,000), the
// same bounds, with transformers' accuracy on that subset as the f32 reference. The Release build runs all 10,000.
// Each table is printed and also written to <build>/tests/trained_accuracy/<model>.txt; scripts/test.sh prints
// those files after ctest, so the CI log has the table.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/safetensors.hpp"
#include "support.hpp"
#include "vtx/model.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

constexpr int kImages = 10000;
#ifdef VTX_TEST_SANITIZE
constexpr int kStride = 10;  // ASan: every 10th test image
#else
constexpr int kStride = 1;
#endif

std::string trained_dir() { return shared_dir() + "/trained"; }


// "test_01234_5.png" -> 1234
int image_index(const std::string& file) {
  const std::string name = fs::path(file).filename().string();
  if (name.size() < 10 || name.rfind("test_", 0) != 0) throw std::runtime_error("unexpected image name " + file);
  return std::stoi(name.substr(5, 5));
}

struct Reference {
  std::vector<std::string> files;  // index -> file name
  std::vector<int> labels;         // index -> true class
  std::vector<int> pred;           // index -> transformers' top-1
  std::vector<double> margin;      // index -> transformers' top-1 minus top-2 logit
  Tensor logits;                   // [10000, 10] transformers' logits
  double accuracy_all = 0;         // summary.json test_accuracy (the README's number), in %
};

Reference load_reference(const std::string& model) {
  Reference r;
  const std::string t = trained_dir();
  r.files.resize(kImages);
  r.labels.assign(kImages, -1);
  r.pred.assign(kImages, -1);
  r.margin.assign(kImages, 0);
  for (const auto& row : read_csv(t + "/images/labels.csv")) {
    const int i = image_index(row.at(0));
    r.files.at(i) = row[0];
    r.labels.at(i) = std::stoi(row.at(1));
  }
  for (const auto& row : read_csv(t + "/reference_predictions.csv")) {
    if (row.at(0) != model) continue;
    const int i = image_index(row.at(1));
    r.pred.at(i) = std::stoi(row.at(3));
    r.margin.at(i) = std::stod(row.at(6));
  }
  for (int i = 0; i < kImages; ++i)
    if (r.labels[i] < 0 || r.pred[i] < 0) throw std::runtime_error(model + ": no label or reference for image " + std::to_string(i));
  auto lg = io::load_safetensors(t + "/reference_logits.safetensors");
  r.logits = lg.at(model + ".logits").to_f32();
  if (r.logits.shape() != std::vector<int64_t>{kImages, 10}) throw std::runtime_error("reference logits: bad shape");
  r.accuracy_all = 100.0 * read_json(t + "/summary.json")["models"][model]["test_accuracy"].get<double>();
  return r;
}

struct Precision {
  const char* name;
  const char* flags;
  double bound;  // accuracy within this many points of f32 (f32: of transformers)
  bool bf16_compute = false;  // needs AVX512-BF16 (elsewhere the CLI must refuse it with a clear error)
};
const Precision kPrecisions[] = {
    {"f32", "--dtype f32", 0.05},
    {"f16", "--dtype f16", 0.1},
    {"bf16", "--dtype bf16", 0.1},
    {"bf16 compute", "--compute bf16", 0.1, true},
    {"int8", "--quantize int8", 0.3},
    {"int4 mse", "--quantize int4 --int4-method mse", 1.0},
    {"int4 minmax", "--quantize int4 --int4-method minmax", 1.0},
};

struct Result {
  int n = 0, correct = 0, agree = 0, disagree_not_tie = 0;
  double worst_cos = 1, max_abs = 0, images_per_s = 0;
};

double cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

// Runs the CLI on the image set and scores its output.
Result run(const std::string& model_dir, const Precision& p, const Reference& ref, const std::string& out_json) {
  std::string files;
  if (kStride == 1) {
    files = ".";  // the folder (10,000 names are too long for one command line)
  } else {
    for (int i = 0; i < kImages; i += kStride) files += " " + ref.files[i];
  }
  const std::string cmd = "cd " + trained_dir() + "/images && (" + std::string(VTX_CLI_PATH) + " classify " + model_dir + " " +
                          files + " --top-k 1 --batch 64 --threads 1 --json --logits " + p.flags + " > " + out_json + ")";
  std::string log;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_command(cmd, &log);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc, 0) << p.name << ": " << log;
  Result r;
  const auto j = read_json(out_json);
  std::vector<bool> seen(kImages, false);
  for (const auto& e : j) {
    const int i = image_index(e.at("file").get<std::string>());
    EXPECT_FALSE(seen[i]) << "image " << i << " twice";
    seen[i] = true;
    const int pred = e.at("predictions").at(0).at("index").get<int>();
    std::vector<float> lg = e.at("logits").get<std::vector<float>>();
    EXPECT_EQ(lg.size(), 10u);
    if (lg.size() != 10) continue;
    ++r.n;
    r.correct += pred == ref.labels[i];
    r.agree += pred == ref.pred[i];
    r.disagree_not_tie += pred != ref.pred[i] && ref.margin[i] >= 1e-4;
    const float* rl = ref.logits.data<float>() + static_cast<int64_t>(i) * 10;
    r.worst_cos = std::min(r.worst_cos, cosine(lg.data(), rl, 10));
    for (int c = 0; c < 10; ++c) r.max_abs = std::max(r.max_abs, static_cast<double>(std::fabs(lg[c] - rl[c])));
  }
  EXPECT_EQ(r.n, (kImages + kStride - 1) / kStride) << p.name << ": not every image was classified";
  r.images_per_s = r.n / secs;
  return r;
}

struct ModelCase {
  const char* name;     // test name
  const char* ref;      // reference model in ../shared/trained
  bool shipped;         // models/ of this repository, else ../shared/trained/models/<ref>
};

void PrintTo(const ModelCase& m, std::ostream* os) { *os << m.name; }

class TrainedAccuracy : public ::testing::TestWithParam<ModelCase> {};

TEST_P(TrainedAccuracy, EveryPrecision) {
  const ModelCase mc = GetParam();
  const Reference ref = load_reference(mc.ref);
  const std::string dir = mc.shipped ? std::string(VTX_SOURCE_DIR) + "/models/" + mc.name : trained_dir() + "/models/" + mc.ref;
  // transformers' accuracy on the images used (all of them: the README's number)
  int hf_correct = 0, n = 0;
  for (int i = 0; i < kImages; i += kStride, ++n) hf_correct += ref.pred[i] == ref.labels[i];
  const double hf_acc = 100.0 * hf_correct / n;
  if (kStride == 1) {
    EXPECT_NEAR(hf_acc, ref.accuracy_all, 1e-9) << "reference_predictions.csv vs summary.json";
  }

  std::ostringstream table;
  char line[512];
  std::snprintf(line, sizeof line, "%s (%s), %d test images%s; transformers (F32 %s): %.2f %%\n", mc.name,
                mc.shipped ? "models/ of this repository" : "shared/trained/models", n,
                kStride == 1 ? "" : " (ASan subset: every 10th)", mc.ref, hf_acc);
  table << line;
  std::snprintf(line, sizeof line, "| %-12s | %8s | %8s | %9s | %12s | %14s | %11s | %8s |\n", "precision", "accuracy",
                "vs f32", "agree HF", "not near-tie", "worst cos HF", "max |d| HF", "img/s");
  table << line << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  double acc_f32 = 0;
  for (const Precision& p : kPrecisions) {
    std::string slug = std::string(mc.name) + "-" + p.name;
    for (char& ch : slug)
      if (ch == ' ') ch = '-';
    const std::string out = temp_dir() + "/" + slug + ".json";
    if (p.bf16_compute && !bf16_compute_available()) {  // no AVX512-BF16 (or VTX_DISABLE_AVX512=1): a clear error
      std::string log;
      EXPECT_NE(run_command(std::string(VTX_CLI_PATH) + " classify " + dir + " " + trained_dir() + "/images/" +
                                ref.files[0] + " " + p.flags, &log), 0);
      EXPECT_NE(log.find("AVX512-BF16"), std::string::npos) << log;
      std::snprintf(line, sizeof line, "| %-12s | not available on this CPU (no AVX512-BF16 or turned off)\n", p.name);
      table << line;
      continue;
    }
    const Result r = run(dir, p, ref, out);
    if (r.n == 0) continue;
    const double acc = 100.0 * r.correct / r.n;
    const bool f32 = std::string(p.name) == "f32";
    if (f32) acc_f32 = acc;
    std::snprintf(line, sizeof line, "| %-12s | %7.2f%% | %+8.2f | %8.2f%% | %12d | %14.8f | %11.2e | %8.0f |\n", p.name, acc,
                  acc - acc_f32, 100.0 * r.agree / r.n, r.disagree_not_tie, r.worst_cos, r.max_abs, r.images_per_s);
    table << line;
    if (f32) {
      // The shipped BF16 copy has other weights than transformers' F32 model: the bf16 bound on the accuracy.
      const double bound = mc.shipped ? 0.1 : p.bound;
      EXPECT_LE(std::fabs(acc - hf_acc), bound + 1e-9) << mc.name << " f32: accuracy " << acc << " vs transformers " << hf_acc;
      if (!mc.shipped) {
        EXPECT_GE(1.0 - static_cast<double>(r.disagree_not_tie) / r.n, 0.999)
            << mc.name << " f32: " << r.disagree_not_tie << " predictions differ from transformers (not near-ties)";
      }
    } else {
      EXPECT_LE(std::fabs(acc - acc_f32), p.bound + 1e-9) << mc.name << " " << p.name << ": accuracy " << acc << " vs f32 " << acc_f32;
    }
  }
  table << "(agree HF: same top-1 as transformers; not near-tie: differing images whose reference top-2 margin is >= 1e-4;\n"
           " worst cos HF / max |d| HF: per-image logits vs transformers' F32 logits; img/s: the whole CLI run, load + decode +\n"
           " preprocess + forward, --batch 64, one thread, on this machine)\n";
  std::printf("\n%s\n", table.str().c_str());
  fs::create_directories("trained_accuracy");
  std::ofstream(std::string("trained_accuracy/") + mc.name + ".txt") << table.str() << "\n";
}

INSTANTIATE_TEST_SUITE_P(Models, TrainedAccuracy,
                         ::testing::Values(ModelCase{"fashion-vit", "fashion-vit", false},
                                           ModelCase{"fashion-dinov2", "fashion-dinov2", false},
                                           ModelCase{"fashion-dinov2-bf16", "fashion-dinov2-bf16", false},
                                           ModelCase{"fashion-vit-bf16", "fashion-vit", true}),
                         [](const auto& info) {
                           std::string s = info.param.name;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace vtx::test
