// Reduced precision / quantization on whole models: agreement of every golden model case with its fp32
// golden outputs per precision (cosine bounds set from measured values, table in docs/quantization.md),
// `vtx quantize` folders (bit-identical to quantizing at load, validation errors naming file and key,
// size on disk), LoadOptions handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "golden_runner.hpp"
#include "io/safetensors.hpp"
#include "support.hpp"
#include "vtx/model.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

double cosine(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to_f32(), y = b.to_f32();
  EXPECT_EQ(x.numel(), y.numel());
  double xy = 0, xx = 0, yy = 0;
  for (int64_t i = 0; i < std::min(x.numel(), y.numel()); ++i) {
    const double p = x.data<float>()[i], q = y.data<float>()[i];
    xy += p * q;
    xx += p * p;
    yy += q * q;
  }
  return xx > 0 && yy > 0 ? xy / std::sqrt(xx * yy) : (xx == yy ? 1.0 : 0.0);
}

std::vector<int64_t> argmax_rows(const Tensor& t) {
  const Tensor x = t.to_f32();
  const int64_t B = x.dim(0), C = x.numel() / B;
  std::vector<int64_t> r;
  for (int64_t b = 0; b < B; ++b) {
    const float* p = x.data<float>() + b * C;
    r.push_back(std::max_element(p, p + C) - p);
  }
  return r;
}

// Regression guards on random-weight checkpoints: lower bounds on the cosine with the fp32 golden, per precision and
// output, at the measured minimum over all cases below (docs/quantization.md has the table). They catch a wiring
// or kernel regression in any architecture / head; they are not the accuracy criterion. The accuracy criterion
// of every precision is measured on real data: tests/test_trained_accuracy.cpp (trained Fashion-MNIST models,
// 10,000 real test images: f16/bf16 within 0.1 points of f32, int8 0.3, int4 1.0). That real-data bound replaces
// the earlier int4 >= 0.99 cosine target on these stress-init checkpoints (O(1) random weights, rows of 32-64 =
// one group each), which no 4-bit rounding met. Never loosen these.
// int4 uses the default parameter choice, Int4Method::Mse (kernels/int4_params.hpp); VTX_INT4_METHOD=minmax
// (torchao's min/max) does not meet the tighter int4 guards.
double bound(const std::string& dtype, const std::string& output) {
  const bool pooler = output == "pooler_output";
  if (dtype == "f16") return 0.99999;   // measured >= 0.99999986
  if (dtype == "bf16") return 0.9999;   // measured >= 0.99999147
  if (dtype == "bf16c") return 0.99995;  // bf16 compute, measured >= 0.99998116 (vit-pooler pooler_output)
  if (dtype == "int8") return output == "logits" || pooler ? 0.999 : 0.9995;  // measured >= 0.99954 / 0.99983
  // int4, measured worst (Mse; torchao min/max before it):
  //   last_hidden_state 0.98633 (0.98402), logits 0.98312 (0.98930), pooler 0.97487 (0.97620),
  //   feature maps 0.99147 (0.99097), predicted_depth 0.99225 (0.98565), reconstruction 0.98901 (0.98491)
  if (pooler) return 0.97;
  if (output == "logits") return 0.98;
  if (output == "last_hidden_state" || output == "reconstruction") return 0.985;
  return 0.99;  // feature maps, predicted_depth
}

// Segmentation: lower bound on the share of pixels whose argmax class matches the fp32 golden's (measured).
// dpt-vit-seg measured 0.9998 / 0.9974 / 0.9911 / 0.9308 (the label map of random stress weights is busy: 5
// classes on a 176x286 photo, many pixels near a class boundary).
double pixel_bound(const std::string& dtype) {
  if (dtype == "f16") return 0.999;
  if (dtype == "bf16" || dtype == "bf16c") return 0.995;  // bf16c measured 0.9971
  if (dtype == "int8") return 0.985;
  return 0.92;
}

// Bounds for the golden-beit-dpt cases (hidden 32-48: every int4 row is a single group of <= 48 weights, hence
// lower int4 agreement than the suite above), measured worst and rounded down:
//   int8: auxiliary_logits 0.99948, logits 0.99939 (seg), the rest >= 0.99965;
//   int4: last_hidden_state 0.97344 (seg) / 0.98476 / 0.98481, pooler 0.98173, logits 0.97852, feature maps 0.97539,
//         auxiliary_logits 0.96469, predicted_depth 0.98879 (hybrid).
double bound_beit_dpt(const std::string& dtype, const std::string& output) {
  if (dtype == "f16") return 0.99999;  // measured >= 0.9999993
  if (dtype == "bf16") return 0.9999;  // measured >= 0.99994987
  if (dtype == "bf16c") return 0.9998;  // bf16 compute, measured >= 0.99991323 (dpt-vit-seg auxiliary_logits)
  if (dtype == "int8") return 0.999;
  if (output == "auxiliary_logits") return 0.96;
  if (output == "predicted_depth") return 0.985;
  if (output == "pooler_output") return 0.98;
  if (output == "logits") return 0.975;
  return 0.97;  // last_hidden_state, feature maps
}

// The precisions compared: weight types f16 / bf16 / int8 / int4 (f32 compute) and, where the CPU has AVX512-BF16,
// "bf16c" = LoadOptions::compute BF16 (bf16 x bf16 encoder linears, f32 sums; QuantLoad.Bf16Compute checks the
// error elsewhere).
std::vector<std::string> precisions() {
  std::vector<std::string> p = {"f16", "bf16", "int8", "int4"};
  if (bf16_compute_available()) p.push_back("bf16c");
  return p;
}
LoadOptions load_for(const std::string& precision) {
  LoadOptions lo;
  if (precision == "bf16c") lo.compute = ComputeType::BF16;
  else lo.dtype = parse_weight_type(precision);
  return lo;
}
std::string weights_of(const std::string& precision) { return precision == "bf16c" ? "bf16" : precision; }

const char* kCases[] = {"vit-cls",        "vit-f16",         "vit-bf16",         "vit-headmask",       "vit-interp",
                        "vit-mim",        "vit-pooler",      "deit-distilled",   "dinov2-518",         "dinov2-backbone",
                        "dinov2-backbone-flat", "dinov2-cls", "dinov2-features", "dinov2-mask",        "dinov2-rect",
                        "dinov2-swiglu",  "reg-backbone",    "reg-cls",          "reg-features",       "reg-rect",
                        "depth-anything", "depth-anything-metric", "dpt-dinov2", "dpt-dinov2-proj",    "dpt-vit"};
// Cases of shared/golden-beit-dpt.
const char* kBeitDptCases[] = {"dpt-model", "dpt-vit-seg", "dpt-hybrid"};

// The outputs whose agreement is bounded: the final representation and the task head.
std::vector<std::string> bounded_outputs(const ModelOutput& o) {
  std::vector<std::string> r;
  for (const auto& [k, v] : o.named())
    if (k == "last_hidden_state" || k == "logits" || k == "predicted_depth" || k == "reconstruction" ||
        k == "pooler_output" || k == "auxiliary_logits" || k.rfind("feature_maps.", 0) == 0)
      r.push_back(k);
  return r;
}

// The case's model loaded in `dtype` (a precisions() name; checked), run on the stored pixel_values without attentions or hidden
// states: only the bounded outputs are compared.
ModelOutput forward_in(const GoldenCase& c, const std::string& dtype) {
  ForwardOptions opt = case_options(c);
  opt.output_attentions = false;
  opt.output_hidden_states = false;
  auto model = Model::load(c.model_dir(), load_for(dtype));
  EXPECT_EQ(weight_type_name(model->info().weights), weights_of(dtype)) << c.name;
  return model->forward(c.tensors.at("pixel_values"), opt);
}

TEST(QuantGolden, AgreementWithFp32Golden) {
  std::printf("%-22s %-6s %-20s %12s %s\n", "case", "dtype", "output", "cosine", "top-1");
  std::map<std::string, double> worst;
  std::vector<std::pair<bool, std::string>> cases;  // (golden-beit-dpt?, name)
  for (const char* name : kCases) cases.emplace_back(false, name);
  for (const char* name : kBeitDptCases) cases.emplace_back(true, name);
  for (const auto& [new_suite, case_name] : cases) {
    const char* name = case_name.c_str();
    GoldenCase c = new_suite ? load_case_in(golden_beit_dpt_dir(), name) : load_case(name);
    for (const std::string& dtype : precisions()) {
      ModelOutput out = forward_in(c, dtype);
      std::map<std::string, Tensor> got;
      for (auto& [k, v] : out.named()) got[k] = v;
      for (const std::string& k : bounded_outputs(out)) {
        if (!c.tensors.count(k)) continue;
        const double cs = cosine(got[k], c.tensors.at(k));
        std::string top1;
        if (k == "logits" && got[k].ndim() == 4) {  // segmentation: the share of pixels whose class is unchanged
          const Tensor& r = c.tensors.at(k);
          const int64_t B = r.dim(0), C = r.dim(1), P = r.dim(2) * r.dim(3);
          int64_t same = 0;
          for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < P; ++i) {
              int64_t ag = 0, ar = 0;
              for (int64_t q = 1; q < C; ++q) {
                if (got[k].data<float>()[(b * C + q) * P + i] > got[k].data<float>()[(b * C + ag) * P + i]) ag = q;
                if (r.data<float>()[(b * C + q) * P + i] > r.data<float>()[(b * C + ar) * P + i]) ar = q;
              }
              same += ag == ar;
            }
          const double share = static_cast<double>(same) / static_cast<double>(B * P);
          char buf[64];
          std::snprintf(buf, sizeof buf, "pixels %.4f", share);
          top1 = buf;
          EXPECT_GE(share, pixel_bound(dtype)) << name << " " << dtype << ": label map agreement";
        } else if (k == "logits") {
          const bool same = argmax_rows(got[k]) == argmax_rows(c.tensors.at(k));
          top1 = same ? "same" : "DIFFERENT";
          EXPECT_TRUE(same) << name << " " << dtype << ": top-1 differs from the fp32 golden";
        }
        std::printf("%-22s %-6s %-20s %12.8f %s\n", name, dtype.c_str(), k.c_str(), cs, top1.c_str());
        EXPECT_GE(cs, new_suite ? bound_beit_dpt(dtype, k) : bound(dtype, k)) << name << " " << dtype << " " << k;
        const std::string wk = dtype + " " + (k.rfind("feature_maps.", 0) == 0 ? "feature_maps" : k);
        worst[wk] = worst.count(wk) ? std::min(worst[wk], cs) : cs;
      }
    }
  }
  std::printf("\nworst cosine per precision and output:\n");
  for (const auto& [k, v] : worst) std::printf("  %-32s %.8f\n", k.c_str(), v);
}

// The BEiT / DiT cases of ../shared/golden-beit-dpt. Bounds = the measured worst over these 5 cases rounded down
// (docs/quantization.md): f16 0.99999995, bf16 0.9999960, int8 0.999959 logits / 0.999976 last_hidden_state /
// 0.999984 pooler, int4 0.99476 logits / 0.99769 last_hidden_state / 0.99863 pooler. BEiT MIM logits are per
// patch over the visual-token vocabulary: cosine over all of them, no per-image top-1.
double beit_bound(const std::string& dtype, const std::string& output) {
  if (dtype == "f16" || dtype == "bf16" || dtype == "bf16c") return 0.99999;  // bf16c measured >= 0.99999658
  if (dtype == "int8") return 0.9999;
  return output == "logits" ? 0.994 : output == "pooler_output" ? 0.998 : 0.997;  // int4
}

TEST(QuantGolden, AgreementBeit) {
  std::map<std::string, double> worst;
  for (const char* name : {"beit-cls", "beit-features", "beit-rect", "beit-shared-rel", "dit-cls"}) {
    GoldenCase c = load_case_in(golden_beit_dpt_dir(), name);
    for (const std::string& dtype : precisions()) {
      ModelOutput out = forward_in(c, dtype);
      for (const auto& [k, v] : out.named()) {
        if (!(k == "last_hidden_state" || k == "logits" || k == "pooler_output") || !c.tensors.count(k)) continue;
        const double cs = cosine(v, c.tensors.at(k));
        if (k == "logits" && v.ndim() == 2) {  // top-1 per image, except where the fp32 golden is a near-tie
          const Tensor& ref = c.tensors.at(k);
          const int64_t C = ref.dim(1);
          const auto got1 = argmax_rows(v), ref1 = argmax_rows(ref);
          for (int64_t b = 0; b < ref.dim(0); ++b) {
            std::vector<float> row(ref.data<float>() + b * C, ref.data<float>() + (b + 1) * C);
            std::sort(row.rbegin(), row.rend());
            const double margin = row[0] - row[1];
            if (margin > 0.01) EXPECT_EQ(got1[b], ref1[b]) << name << " " << dtype << ": top-1 differs in row " << b;
            else std::printf("%-22s %-6s row %lld: golden top-2 margin %.2g, top-1 not compared\n", name, dtype.c_str(), static_cast<long long>(b), margin);
          }
        }
        std::printf("%-22s %-6s %-20s %12.8f\n", name, dtype.c_str(), k.c_str(), cs);
        EXPECT_GE(cs, beit_bound(dtype, k)) << name << " " << dtype << " " << k;
        const std::string wk = dtype + " " + k;
        worst[wk] = worst.count(wk) ? std::min(worst[wk], cs) : cs;
      }
    }
  }
  std::printf("\nworst cosine per precision and output (BEiT / DiT):\n");
  for (const auto& [k, v] : worst) std::printf("  %-32s %.8f\n", k.c_str(), v);
}

// f32 stays f32 and reproduces the fp32 goldens at their tolerances; F16/BF16 checkpoints keep their precision
// by default and still pass at the fp32 tolerances (the half -> f32 conversion is exact).
TEST(QuantGolden, DefaultPrecision) {
  for (const char* name : {"vit-f16", "vit-bf16", "vit-cls"}) {
    GoldenCase c = load_case(name);
    auto model = Model::load(c.model_dir());
    const std::string want = std::string(name) == "vit-f16" ? "f16" : std::string(name) == "vit-bf16" ? "bf16" : "f32";
    EXPECT_EQ(weight_type_name(model->info().weights), want) << name;
    EXPECT_FALSE(model->info().mixed_precision) << name;
    compare_outputs(c, model->forward(c.tensors.at("pixel_values"), case_options(c)));
    LoadOptions lo;
    lo.dtype = WeightType::F32;
    auto m32 = Model::load(c.model_dir(), lo);
    EXPECT_EQ(m32->info().weights, WeightType::F32);
    compare_outputs(c, m32->forward(c.tensors.at("pixel_values"), case_options(c)));
  }
}

TEST(QuantLoad, RejectsUnknownDtype) {
  EXPECT_THROW(parse_weight_type("int3"), Error);
  EXPECT_THROW(parse_int4_method("median"), Error);
  for (WeightType t : {WeightType::F32, WeightType::F16, WeightType::BF16, WeightType::Int8, WeightType::Int4})
    EXPECT_EQ(parse_weight_type(weight_type_name(t)), t);
}

// LoadOptions::compute BF16 / `--compute bf16`: on a CPU with AVX512-BF16 the model reports bf16 compute and bf16
// weights (also from an F16 `vtx quantize` folder and with dtype BF16); elsewhere (or with VTX_DISABLE_AVX512=1,
// the avx2: rerun of this test) Model::load and the CLI end in a vtx::Error that names the missing instructions and
// the bf16-storage fallback, and that fallback (dtype BF16, f32 compute) loads. Combinations that cannot mean bf16
// compute (dtype int8 / f16, a quantized folder) are refused on every CPU.
TEST(QuantLoad, Bf16Compute) {
  EXPECT_EQ(parse_compute_type("bf16"), ComputeType::BF16);
  EXPECT_EQ(parse_compute_type(compute_type_name(ComputeType::F32)), ComputeType::F32);
  EXPECT_THROW(parse_compute_type("f16"), Error);
  GoldenCase c = load_case("vit-cls");
  const std::string tmp = temp_dir();
  quantize_checkpoint(c.model_dir(), tmp + "/f16", WeightType::F16);
  quantize_checkpoint(c.model_dir(), tmp + "/int8", WeightType::Int8);
  LoadOptions lo;
  lo.compute = ComputeType::BF16;
  std::string cli_out;
  const int rc = run_command(std::string(VTX_CLI_PATH) + " info " + c.model_dir() + " --compute bf16", &cli_out);
  if (bf16_compute_available()) {
    for (const std::string& dir : {c.model_dir(), tmp + "/f16"}) {
      auto m = Model::load(dir, lo);
      EXPECT_EQ(m->info().compute, ComputeType::BF16) << dir;
      EXPECT_EQ(m->info().weights, WeightType::BF16) << dir;
    }
    lo.dtype = WeightType::BF16;
    EXPECT_EQ(Model::load(c.model_dir(), lo)->info().compute, ComputeType::BF16);
    EXPECT_EQ(rc, 0) << cli_out;
    EXPECT_NE(cli_out.find("compute: bf16"), std::string::npos) << cli_out;
  } else {
    try {
      Model::load(c.model_dir(), lo);
      ADD_FAILURE() << "bf16 compute loaded without AVX512-BF16";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("AVX512-BF16"), std::string::npos) << m;
      EXPECT_NE(m.find("--dtype bf16"), std::string::npos) << m;
    }
    EXPECT_NE(rc, 0);
    EXPECT_NE(cli_out.find("AVX512-BF16"), std::string::npos) << cli_out;
  }
  LoadOptions storage;  // the fallback: bf16 weights, f32 compute, on every CPU
  storage.dtype = WeightType::BF16;
  auto m = Model::load(c.model_dir(), storage);
  EXPECT_EQ(m->info().compute, ComputeType::F32);
  EXPECT_EQ(m->info().weights, WeightType::BF16);
  for (WeightType t : {WeightType::Int8, WeightType::F16, WeightType::F32}) {
    LoadOptions bad = lo;
    bad.dtype = t;
    EXPECT_THROW(Model::load(c.model_dir(), bad), Error) << weight_type_name(t);
  }
  LoadOptions q;
  q.compute = ComputeType::BF16;
  EXPECT_THROW(Model::load(tmp + "/int8", q), Error);
  EXPECT_NE(run_command(std::string(VTX_CLI_PATH) + " info " + c.model_dir() + " --compute bf17", &cli_out), 0);
  EXPECT_NE(cli_out.find("--compute must be f32 or bf16"), std::string::npos) << cli_out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// `vtx quantize` (library function) -> folder -> load -> run == quantize at load, bit for bit; the CLI too.
TEST(QuantFolder, RoundTripBitIdentical) {
  const std::string tmp = temp_dir();
  for (const char* name : {"vit-cls", "dinov2-swiglu", "reg-cls", "dpt-vit"}) {
    GoldenCase c = load_case(name);
    for (const std::string to : {"int8", "int4", "f16", "bf16"}) {
      const std::string out = tmp + "/" + name + "-" + to;
      QuantizeReport r = quantize_checkpoint(c.model_dir(), out, parse_weight_type(to));
      EXPECT_GT(r.modules, 0);
      auto folder = Model::load(out);
      EXPECT_EQ(weight_type_name(folder->info().weights), to);
      LoadOptions lo;
      lo.dtype = parse_weight_type(to);
      auto at_load = Model::load(c.model_dir(), lo);
      ModelOutput a = folder->forward(c.tensors.at("pixel_values"), case_options(c));
      ModelOutput b = at_load->forward(c.tensors.at("pixel_values"), case_options(c));
      auto na = a.named(), nb = b.named();
      ASSERT_EQ(na.size(), nb.size());
      for (size_t i = 0; i < na.size(); ++i) EXPECT_TRUE(same_bits(na[i].second, nb[i].second)) << name << " " << to << " " << na[i].first;
      EXPECT_TRUE(fs::exists(out + "/preprocessor_config.json"));
      // Loading a quantized folder with a different quantization is refused; the same one is accepted.
      if (to == "int8" || to == "int4") {
        LoadOptions other;
        other.dtype = to == "int8" ? WeightType::Int4 : WeightType::F16;
        EXPECT_THROW(Model::load(out, other), Error);
        EXPECT_NO_THROW(Model::load(out, lo));
      }
    }
  }
  // CLI
  GoldenCase c = load_case("vit-pooler");
  std::string output;
  ASSERT_EQ(run_command(std::string(VTX_CLI_PATH) + " quantize " + c.model_dir() + " --to int4 --out " + tmp + "/cli-int4", &output), 0) << output;
  ASSERT_EQ(run_command(std::string(VTX_CLI_PATH) + " info " + tmp + "/cli-int4", &output), 0) << output;
  EXPECT_NE(output.find("quantization: int4"), std::string::npos) << output;
  EXPECT_NE(output.find("int4_method: mse"), std::string::npos) << output;  // recorded in quantization_config
  EXPECT_EQ(read_json(tmp + "/cli-int4/config.json")["quantization_config"]["int4_method"], "mse");
  EXPECT_NE(run_command(std::string(VTX_CLI_PATH) + " quantize " + c.model_dir() + " --to int2 --out " + tmp + "/x", &output), 0);
  ASSERT_EQ(run_command(std::string(VTX_CLI_PATH) + " info " + c.model_dir() + " --quantize int8", &output), 0) << output;
  EXPECT_NE(output.find("quantization: int8"), std::string::npos) << output;
  EXPECT_NE(run_command(std::string(VTX_CLI_PATH) + " info " + c.model_dir() + " --dtype int8", &output), 0);
}

// A damaged quantized folder gives a vtx::Error naming the file and the key.
TEST(QuantFolder, ValidationErrorsNameFileAndKey) {
  const std::string tmp = temp_dir();
  GoldenCase c = load_case("vit-pooler");
  const std::string base = tmp + "/base-int4";
  quantize_checkpoint(c.model_dir(), base, WeightType::Int4);
  auto tensors = io::load_safetensors(base + "/model.safetensors");
  const std::string key = "encoder.layer.0.attention.attention.query";
  ASSERT_TRUE(tensors.count(key + ".weight_scale")) << "unexpected key layout";
  auto expect_error = [&](const std::map<std::string, Tensor>& t, const std::string& what, const std::string& needle) {
    const std::string dir = tmp + "/bad-" + what;
    fs::create_directories(dir);
    fs::copy_file(base + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
    std::vector<std::pair<std::string, Tensor>> v(t.begin(), t.end());
    io::save_safetensors(dir + "/model.safetensors", v);
    try {
      Model::load(dir);
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("model.safetensors"), std::string::npos) << what << ": " << m;
      EXPECT_NE(m.find(needle), std::string::npos) << what << ": " << m;
    }
  };
  {  // scale of the wrong shape
    auto t = tensors;
    t[key + ".weight_scale"] = Tensor({1, 1}, DType::F32);
    expect_error(t, "scale-shape", key + ".weight_scale");
  }
  {  // zero point missing
    auto t = tensors;
    t.erase(key + ".weight_zero_point");
    expect_error(t, "zero-missing", key + ".weight_zero_point");
  }
  {  // weight of the wrong dtype (config says int4)
    auto t = tensors;
    const Tensor w = t[key + ".weight"];
    t[key + ".weight"] = Tensor(w.shape(), DType::I8);
    expect_error(t, "weight-dtype", key + ".weight");
  }
  {  // packed weight of the wrong shape
    auto t = tensors;
    t[key + ".weight"] = Tensor({3, 3}, DType::U8);
    expect_error(t, "weight-shape", key + ".weight");
  }
  {  // scale stored as F16
    auto t = tensors;
    const Tensor s = t[key + ".weight_scale"];
    t[key + ".weight_scale"] = Tensor(s.shape(), DType::F16);
    expect_error(t, "scale-dtype", key + ".weight_scale");
  }
  // Bad quantization_config
  {
    const std::string dir = tmp + "/bad-config";
    fs::create_directories(dir);
    fs::copy_file(base + "/model.safetensors", dir + "/model.safetensors", fs::copy_options::overwrite_existing);
    auto j = read_json(base + "/config.json");
    j["quantization_config"]["weights"] = "int3";
    std::ofstream(dir + "/config.json") << j.dump();
    try {
      Model::load(dir);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    }
  }
}

// Size on disk of a model whose linear layers dominate like the real ones (hidden 384, MLP 1536, 4 layers:
// 7.1 M linear parameters of 7.5 M): int4 <= 0.3x fp32, int8 <= 0.3x.
TEST(QuantFolder, SizeOnDisk) {
  const std::string tmp = temp_dir(), src = tmp + "/synthetic";
  fs::create_directories(src);
  const int64_t D = 384, F = 1536, L = 4, p = 16, img = 32;
  nlohmann::json cfg = {{"model_type", "vit"}, {"architectures", {"ViTModel"}}, {"hidden_size", D},
                        {"num_hidden_layers", L}, {"num_attention_heads", 6}, {"intermediate_size", F},
                        {"hidden_act", "gelu"}, {"layer_norm_eps", 1e-12}, {"image_size", img}, {"patch_size", p},
                        {"num_channels", 3}, {"qkv_bias", true}};
  std::ofstream(src + "/config.json") << cfg.dump();
  std::mt19937 g(1);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<std::pair<std::string, Tensor>> t;
  auto add = [&](const std::string& k, std::vector<int64_t> shape) {
    Tensor x(shape, DType::F32);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(g);
    t.emplace_back(k, x);
  };
  const int64_t T = (img / p) * (img / p) + 1;
  add("embeddings.cls_token", {1, 1, D});
  add("embeddings.position_embeddings", {1, T, D});
  add("embeddings.patch_embeddings.projection.weight", {D, 3, p, p});
  add("embeddings.patch_embeddings.projection.bias", {D});
  for (int64_t l = 0; l < L; ++l) {
    const std::string pre = "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"attention.attention.query", "attention.attention.key", "attention.attention.value",
                          "attention.output.dense"}) {
      add(pre + n + ".weight", {D, D});
      add(pre + n + ".bias", {D});
    }
    add(pre + "intermediate.dense.weight", {F, D});
    add(pre + "intermediate.dense.bias", {F});
    add(pre + "output.dense.weight", {D, F});
    add(pre + "output.dense.bias", {D});
    for (const char* n : {"layernorm_before", "layernorm_after"}) {
      add(pre + n + ".weight", {D});
      add(pre + n + ".bias", {D});
    }
  }
  add("layernorm.weight", {D});
  add("layernorm.bias", {D});
  io::save_safetensors(src + "/model.safetensors", t);
  const double f32 = static_cast<double>(fs::file_size(src + "/model.safetensors"));
  std::map<std::string, double> ratio;
  for (const std::string to : {"int4", "int8", "f16"}) {
    QuantizeReport r = quantize_checkpoint(src, tmp + "/" + to, parse_weight_type(to));
    ratio[to] = static_cast<double>(fs::file_size(tmp + "/" + to + "/model.safetensors")) / f32;
    EXPECT_EQ(r.modules, 6 * L);
    std::printf("%s: %.3fx fp32 on disk\n", to.c_str(), ratio[to]);
    auto m = Model::load(tmp + "/" + to);  // loads without the original
    Tensor x({1, 3, img, img}, DType::F32);
    EXPECT_EQ(m->forward(x).last_hidden_state.dim(1), T);
  }
  EXPECT_LE(ratio["int4"], 0.3);
  EXPECT_LE(ratio["int8"], 0.3);
  EXPECT_LE(ratio["f16"], 0.55);
}

}  // namespace
}  // namespace vtx::test
