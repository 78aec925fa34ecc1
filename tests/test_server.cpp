// `vtx serve` end to end: every route against the CLI's answer for the same golden model and image, every bad
// input's status and message, limits, authentication, batching (batch 1 and 8 give the CLI's numbers).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <set>
#include <sstream>

#include "vtx/io.hpp"
#include "server_harness.hpp"
#include "vtx/image.hpp"
#include "vtx/version.hpp"

namespace vtx::test {
namespace {

using nlohmann::json;
const std::string kVtx = VTX_CLI_PATH;

std::string model(const std::string& name) { return golden_dir() + "/models/" + name; }
std::string image(const std::string& rel) { return shared_dir() + "/images/" + rel; }
const char* kCats = "coco/000000039769.png";
const std::vector<std::string> kEight = {
    "coco/000000039769.png", "coco/000000004016.png", "imagenet/n01440764_tench.JPEG",
    "imagenet/n02096051_Airedale.JPEG", "imagenet/n03297495_espresso_maker.JPEG", "imagenet/n07747607_orange.JPEG",
    "imagenet/n04254680_soccer_ball.JPEG", "imagenet/n09332890_lakeside.JPEG"};

std::string b64(const std::string& bytes) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint8_t(bytes[i]) << 16 | uint8_t(bytes[i + 1]) << 8 | uint8_t(bytes[i + 2]);
    o += t[v >> 18], o += t[(v >> 12) & 63], o += t[(v >> 6) & 63], o += t[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16 | (i + 1 < bytes.size() ? uint8_t(bytes[i + 1]) << 8 : 0);
    o += t[v >> 18], o += t[(v >> 12) & 63], o += i + 1 < bytes.size() ? t[(v >> 6) & 63] : '=', o += '=';
  }
  return o;
}

std::string b64_decode(const std::string& s) {
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(t, c);
    if (c == '=' || !p) continue;
    acc = acc << 6 | static_cast<uint32_t>(p - t);
    bits += 6;
    if (bits >= 8) bits -= 8, bytes += static_cast<char>((acc >> bits) & 0xff);
  }
  return bytes;
}

// A base64 PNG of an answer, decoded (the PIL mode of the file in `info`).
Image b64_png(const std::string& s, ImageInfo* info) {
  const std::string bytes = b64_decode(s);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "answer.png", {}, info);
}

std::vector<float> b64_floats(const std::string& s) {
  const std::string bytes = b64_decode(s);
  std::vector<float> f(bytes.size() / 4);
  std::memcpy(f.data(), bytes.data(), f.size() * 4);
  return f;
}

json cli_json(const std::string& cmd) {
  std::string out;
  EXPECT_EQ(run_command(cmd + " 2>/dev/null", &out), 0) << cmd << "\n" << out;
  return json::parse(out);
}

// The CLI's answers, computed once per process.
json cli_classify(const std::string& img, int top_k = 5) {
  return cli_json(kVtx + " classify " + model("vit-cls") + " " + image(img) + " --json --top-k " + std::to_string(top_k))[0]["predictions"];
}
std::vector<float> cli_embed(const std::string& mdl, const std::string& img, const std::string& pool) {
  const std::string out = temp_dir() + "/embed-" + pool + ".jsonl";
  std::string log;
  EXPECT_EQ(run_command(kVtx + " embed " + model(mdl) + " " + image(img) + " --pool " + pool + " --out " + out, &log), 0) << log;
  json j = json::parse(read_file(out));
  std::vector<float> v;
  for (const auto& x : j["embedding"]) v.push_back(x.get<float>());
  return v;
}
Tensor cli_run(const std::string& mdl, const std::string& args) {
  const std::string out = temp_dir() + "/run-" + mdl + ".safetensors";
  std::string log;
  EXPECT_EQ(run_command(kVtx + " run " + model(mdl) + " " + args + " --out " + out, &log), 0) << log;
  return load_safetensors(out).at(mdl == "depth-anything" ? "predicted_depth" : mdl == "vit-cls" ? "logits" : "last_hidden_state");
}

void flatten(const json& j, std::vector<float>& out) {
  if (j.is_array())
    for (const auto& x : j) flatten(x, out);
  else
    out.push_back(j.get<float>());
}

void expect_same_predictions(const json& got, const json& ref, const std::string& what) {
  ASSERT_TRUE(got.is_array()) << what << ": " << got.dump();
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(got[i]["label"], ref[i]["label"]) << what << " #" << i;
    EXPECT_EQ(got[i]["score"].get<float>(), ref[i]["score"].get<float>()) << what << " #" << i;  // bit-identical
  }
}

void expect_error(const HttpResult& r, int status, const std::string& type, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.body << r.error;
  json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j.value("error_type", ""), type) << r.body;
  EXPECT_NE(j.value("error", "").find(needle), std::string::npos) << "'" << needle << "' not in: " << r.body;
}

const std::vector<std::pair<std::string, std::string>> kPng = {{"Content-Type", "image/png"}};
const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/json"}};

std::vector<std::string> three_models() { return {model("vit-cls"), model("dinov2"), model("depth-anything"), "--log-format", "json"}; }

TEST(Server, HealthInfoMetricsAndReadyLine) {
  ServerProcess s(three_models());
  EXPECT_NE(s.ready_line().find("vit-cls, dinov2, depth-anything"), std::string::npos) << s.ready_line();
  HttpClient c(s.port());
  auto h = c.request("GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json()["status"], "ok");
  auto info = c.request("GET", "/info").json();
  ASSERT_EQ(info["models"].size(), 3u) << info.dump();
  EXPECT_EQ(info["models"][0]["architecture"], "ViTForImageClassification");
  EXPECT_EQ(info["models"][0]["task"], "image-classification");
  EXPECT_EQ(info["models"][1]["task"], "image-feature-extraction");
  EXPECT_EQ(info["models"][2]["task"], "depth-estimation");
  EXPECT_EQ(info["models"][0]["dtype"], "F32");
  EXPECT_EQ(info["limits"]["max_payload_bytes"], 16 << 20);
  EXPECT_EQ(info["models"][0]["compute"], "f32");
  EXPECT_EQ(info["batching"]["preprocess_nice"], 19);  // the default
  EXPECT_EQ(info["version"], VTX_VERSION_STRING);
  c.request("POST", "/predict", read_file(image(kCats)), kPng);
  auto m = c.request("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.headers["Content-Type"].find("text/plain"), std::string::npos);
  for (const char* needle : {"vtx_requests_total{route=\"/predict\",status=\"200\"} 1", "vtx_request_duration_seconds_bucket{stage=\"queue\"",
                             "stage=\"preprocess\"", "stage=\"inference\"", "stage=\"total\"", "vtx_queue_depth 0",
                             "vtx_batch_size_count 1", "vtx_images_total{model=\"vit-cls\"} 1"})
    EXPECT_NE(m.body.find(needle), std::string::npos) << needle << "\n" << m.body;
  // request log, JSON lines
  const std::string log = s.log();
  EXPECT_NE(log.find("\"path\":\"/predict\",\"status\":200"), std::string::npos) << log;
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST(Server, HuggingFaceClassifyMatchesCli) {
  ServerProcess s(three_models());
  HttpClient c(s.port());
  const std::string png = read_file(image(kCats));
  const json ref5 = cli_classify(kCats), ref10 = cli_classify(kCats, 10);
  // raw bytes, on every HF route
  for (const char* route : {"/", "/predict", "/models/vit-cls"}) {
    auto r = c.request("POST", route, png, kPng);
    ASSERT_EQ(r.status, 200) << route << r.body;
    expect_same_predictions(r.json(), ref5, route);
  }
  auto oct = c.request("POST", "/predict", png, {{"Content-Type", "application/octet-stream"}});
  expect_same_predictions(oct.json(), ref5, "octet-stream");
  // JSON: base64 and data URI, top_k (clamped to the 10 labels)
  auto j1 = c.request("POST", "/predict", json{{"inputs", b64(png)}, {"parameters", {{"top_k", 3}}}}.dump(), kJson);
  ASSERT_EQ(j1.status, 200) << j1.body;
  expect_same_predictions(j1.json(), json(std::vector<json>(ref5.begin(), ref5.begin() + 3)), "top_k 3");
  auto j2 = c.request("POST", "/predict", json{{"inputs", "data:image/png;base64," + b64(png)}, {"parameters", {{"top_k", 50}}}}.dump(), kJson);
  expect_same_predictions(j2.json(), ref10, "data URI, top_k 50");
  // function_to_apply: none gives the logits, sigmoid their sigmoid (independent: vtx run's logits)
  Tensor logits = cli_run("vit-cls", "--image " + image(kCats));
  auto j3 = c.request("POST", "/predict", json{{"inputs", b64(png)}, {"parameters", {{"function_to_apply", "none"}, {"top_k", 10}}}}.dump(), kJson);
  ASSERT_EQ(j3.status, 200) << j3.body;
  auto j4 = c.request("POST", "/predict", json{{"inputs", b64(png)}, {"parameters", {{"function_to_apply", "sigmoid"}, {"top_k", 10}}}}.dump(), kJson);
  for (const auto& p : j3.json()) {
    const int idx = std::stoi(p["label"].get<std::string>().substr(6));
    EXPECT_EQ(p["score"].get<float>(), logits.data<float>()[idx]);
  }
  for (const auto& p : j4.json()) {
    const int idx = std::stoi(p["label"].get<std::string>().substr(6));
    EXPECT_NEAR(p["score"].get<float>(), 1.0 / (1.0 + std::exp(-logits.data<float>()[idx])), 1e-6);
  }
  // a list of inputs gives a list of answers
  auto j5 = c.request("POST", "/predict", json{{"inputs", {b64(png), b64(png)}}}.dump(), kJson);
  ASSERT_EQ(j5.json().size(), 2u) << j5.body;
  expect_same_predictions(j5.json()[1], ref5, "list");
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, HuggingFaceEmbedAndDepthMatchCli) {
  ServerProcess s(three_models());
  HttpClient c(s.port());
  const std::string png = read_file(image(kCats));
  for (const std::string pool : {"cls", "mean", "cls+mean", "tokens"}) {
    auto r = c.request("POST", "/models/dinov2", json{{"inputs", b64(png)}, {"parameters", {{"pool", pool}}}}.dump(), kJson);
    ASSERT_EQ(r.status, 200) << r.body;
    json j = r.json();
    ASSERT_TRUE(j.is_array() && j.size() == 1) << "pipeline shape [1, ...]";
    std::vector<float> got;
    flatten(j, got);
    EXPECT_EQ(got, cli_embed("dinov2", kCats, pool)) << pool;
  }
  // default: the whole last_hidden_state, as the transformers pipeline
  auto def = c.request("POST", "/models/dinov2", png, kPng).json();
  ASSERT_EQ(def[0].size(), 257u);  // 1 + 16x16 tokens
  // depth at the original size, bit-identical to vtx depth, and its 8-bit PNG
  auto d = c.request("POST", "/models/depth-anything", png, kPng);
  ASSERT_EQ(d.status, 200) << d.body;
  json dj = d.json();
  const std::string dir = temp_dir() + "/depth";
  std::string log;
  ASSERT_EQ(run_command(kVtx + " depth " + model("depth-anything") + " " + image(kCats) + " --out " + dir, &log), 0) << log;
  Tensor ref = load_npy(dir + "/000000039769.npy");
  ASSERT_EQ(ref.shape(), (std::vector<int64_t>{480, 640}));
  ASSERT_EQ(dj["predicted_depth"].size(), 480u);
  ASSERT_EQ(dj["predicted_depth"][0].size(), 640u);
  std::vector<float> got;
  flatten(dj["predicted_depth"], got);
  ASSERT_EQ(got.size(), static_cast<size_t>(ref.numel()));
  EXPECT_EQ(0, std::memcmp(got.data(), ref.data<float>(), ref.nbytes()));
  ImageInfo pi;
  Image depth_png = b64_png(dj["depth"], &pi);
  EXPECT_EQ(pi.mode, "L");
  ASSERT_EQ(depth_png.width, 640);
  ASSERT_EQ(depth_png.height, 480);
  const float* x = ref.data<float>();
  float lo = x[0], hi = x[0];
  for (int64_t i = 0; i < ref.numel(); ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  int64_t off = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const int want = static_cast<int>((x[i] - lo) / (hi - lo) * 255.0f);
    off += std::abs(depth_png.rgb[3 * i] - want) > 0;
  }
  EXPECT_EQ(off, 0);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, KServeV2MatchesCli) {
  ServerProcess s(three_models());
  HttpClient c(s.port());
  EXPECT_EQ(c.request("GET", "/v2/health/live").status, 200);
  EXPECT_EQ(c.request("GET", "/v2/health/ready").json()["ready"], true);
  EXPECT_EQ(c.request("GET", "/v2/models/vit-cls/ready").status, 200);
  EXPECT_EQ(c.request("GET", "/v2").json()["name"], "vtx");
  json meta = c.request("GET", "/v2/models/vit-cls").json();
  EXPECT_EQ(meta["name"], "vit-cls");
  EXPECT_EQ(meta["inputs"][0]["name"], "pixel_values");
  EXPECT_EQ(meta["inputs"][0]["datatype"], "FP32");
  bool has_logits = false;
  for (const auto& o : meta["outputs"]) has_logits |= o["name"] == "logits" && o["shape"] == json({-1, 10});
  EXPECT_TRUE(has_logits) << meta.dump();

  // FP32 pixel_values: the golden case's tensor, against `vtx run --pixel-values`
  GoldenCase gc = load_case("dinov2-features");
  Tensor pv = gc.tensors.at("pixel_values");
  std::vector<float> data(pv.data<float>(), pv.data<float>() + pv.numel());
  json req = {{"id", "req-1"},
              {"inputs", {{{"name", "pixel_values"}, {"shape", pv.shape()}, {"datatype", "FP32"}, {"data", data}}}},
              {"outputs", {{{"name", "last_hidden_state"}}, {{"name", "pooler_output"}}}}};
  auto r = c.request("POST", "/v2/models/dinov2/infer", req.dump(), kJson);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 500);
  json j = r.json();
  EXPECT_EQ(j["model_name"], "dinov2");
  EXPECT_EQ(j["id"], "req-1");
  ASSERT_EQ(j["outputs"].size(), 2u);
  EXPECT_EQ(j["outputs"][0]["name"], "last_hidden_state");
  EXPECT_EQ(j["outputs"][0]["shape"], json({3, 257, 64}));
  Tensor ref = cli_run("dinov2", "--pixel-values " + golden_dir() + "/cases/dinov2-features.safetensors:pixel_values");
  std::vector<float> got;
  flatten(j["outputs"][0]["data"], got);
  ASSERT_EQ(got.size(), static_cast<size_t>(ref.numel()));
  EXPECT_EQ(0, std::memcmp(got.data(), ref.data<float>(), ref.nbytes()));
  // and the golden (transformers) within its tolerance
  Tensor gt = Tensor::from_data({3, 257, 64}, got.data());
  expect_close(gt, gc.tensors.at("last_hidden_state"), gc.atol("last_hidden_state"), "kserve last_hidden_state");
  // versions path
  EXPECT_EQ(c.request("POST", "/v2/models/dinov2/versions/1/infer", req.dump(), kJson).status, 200);

  // BYTES images, against `vtx run --image`
  const std::string png = read_file(image(kCats));
  json breq = {{"inputs", {{{"name", "image"}, {"shape", {2}}, {"datatype", "BYTES"}, {"data", {b64(png), "data:image/png;base64," + b64(png)}}}}}};
  auto br = c.request("POST", "/v2/models/vit-cls/infer", breq.dump(), kJson);
  ASSERT_EQ(br.status, 200) << br.body;
  json bj = br.json();
  ASSERT_EQ(bj["outputs"][0]["name"], "logits");
  EXPECT_EQ(bj["outputs"][0]["shape"], json({2, 10}));
  Tensor logits = cli_run("vit-cls", "--image " + image(kCats));
  std::vector<float> bl;
  flatten(bj["outputs"][0]["data"], bl);
  ASSERT_EQ(bl.size(), 20u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(bl[i], logits.data<float>()[i]);
    EXPECT_EQ(bl[10 + i], logits.data<float>()[i]);
  }
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, OpenAIEmbeddingsMatchCli) {
  ServerProcess s(three_models());
  HttpClient c(s.port());
  const std::string png = read_file(image(kCats));
  const std::vector<float> ref = cli_embed("dinov2", kCats, "cls");
  auto r = c.request("POST", "/v1/embeddings", json{{"model", "dinov2"}, {"input", {"data:image/png;base64," + b64(png), b64(png)}}}.dump(), kJson);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "dinov2");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][0]["embedding"].get<std::vector<float>>(), ref);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 2 * 257);
  auto b = c.request("POST", "/v1/embeddings", json{{"model", "dinov2"}, {"input", b64(png)}, {"encoding_format", "base64"}}.dump(), kJson);
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(b64_floats(b.json()["data"][0]["embedding"]), ref);
  auto m = c.request("POST", "/v1/embeddings", json{{"model", "dinov2"}, {"input", b64(png)}, {"pool", "mean"}}.dump(), kJson);
  EXPECT_EQ(m.json()["data"][0]["embedding"].get<std::vector<float>>(), cli_embed("dinov2", kCats, "mean"));
  EXPECT_EQ(s.stop(), 0);
}

// The label map `vtx segment` writes for one image (its 8-bit PNG: pixel = class id), at the image's size.
struct LabelMap {
  int width = 0, height = 0;
  std::vector<int64_t> ids;
};
LabelMap cli_label_map(const std::string& mdl_dir, const std::string& img) {
  const std::string out = temp_dir() + "/segment";
  std::string log;
  EXPECT_EQ(run_command(kVtx + " segment " + mdl_dir + " " + img + " --out " + out, &log), 0) << log;
  ImageInfo info;
  const Image png = load_image(out + "/" + std::filesystem::path(img).stem().string() + ".png", {}, &info);
  EXPECT_EQ(info.mode, "L");
  LabelMap m{png.width, png.height, {}};
  for (size_t i = 0; i < png.rgb.size(); i += 3) m.ids.push_back(png.rgb[i]);
  return m;
}

// An image-segmentation answer against the CLI's label map: one entry per class present, ascending class id,
// score null, label = config.json's id2label, mask = 255 exactly where the label map has that class.
void expect_segments(const json& got, const LabelMap& ref, const json& id2label, const std::string& what) {
  ASSERT_TRUE(got.is_array()) << what << ": " << got.dump().substr(0, 300);
  const std::set<int64_t> present(ref.ids.begin(), ref.ids.end());
  ASSERT_EQ(got.size(), present.size()) << what;
  auto cls = present.begin();
  for (const auto& seg : got) {
    const int64_t c = *cls++;
    EXPECT_TRUE(seg.contains("score") && seg["score"].is_null()) << what << ": " << seg.dump().substr(0, 200);
    EXPECT_EQ(seg["label"], id2label[std::to_string(c)]) << what << " class " << c;
    ImageInfo info;
    const Image mask = b64_png(seg["mask"], &info);
    EXPECT_EQ(info.mode, "L") << what;
    ASSERT_EQ(mask.width, ref.width) << what;
    ASSERT_EQ(mask.height, ref.height) << what;
    int64_t off = 0;
    for (size_t i = 0; i < ref.ids.size(); ++i) off += mask.rgb[3 * i] != (ref.ids[i] == c ? 255 : 0);
    EXPECT_EQ(off, 0) << what << " class " << c << ": mask pixels that differ from vtx segment's label map";
  }
}

TEST(Server, HuggingFaceSegmentationMatchesCli) {
  const GoldenCase gc = load_case_in(golden_beit_dpt_dir(), "dpt-vit-seg");
  const std::string mdl = gc.model_dir(), img = gc.dir + "/" + gc.spec["inputs"]["images"][0].get<std::string>();
  const json id2label = read_json(mdl + "/config.json")["id2label"];
  // The segmentation model first: POST / and /predict answer for it.
  ServerProcess s({mdl, model("vit-cls"), "--log-format", "none"});
  HttpClient c(s.port());
  const LabelMap ref = cli_label_map(mdl, img), cats = cli_label_map(mdl, image(kCats));
  ASSERT_GE(std::set<int64_t>(ref.ids.begin(), ref.ids.end()).size(), 2u) << "the golden image shows several classes";
  const std::string jpg = read_file(img), png = read_file(image(kCats));
  json first;
  for (const char* route : {"/", "/predict", "/models/dpt-vit-seg"}) {
    auto r = c.request("POST", route, jpg, {{"Content-Type", "image/jpeg"}});
    ASSERT_EQ(r.status, 200) << route << r.body.substr(0, 300);
    expect_segments(r.json(), ref, id2label, route);
    if (first.is_null()) first = r.json();
  }
  // The Inference API's parameters: subtask "semantic"; the thresholds are accepted and change nothing.
  auto p = c.request("POST", "/models/dpt-vit-seg",
                     json{{"inputs", b64(jpg)}, {"parameters", {{"subtask", "semantic"}, {"threshold", 0.99}, {"mask_threshold", 0.1},
                                                                 {"overlap_mask_area_threshold", 0.9}}}}.dump(), kJson);
  ASSERT_EQ(p.status, 200) << p.body.substr(0, 300);
  EXPECT_EQ(p.json(), first);
  // A list of images (another size too) gives a list of answers.
  auto l = c.request("POST", "/predict", json{{"inputs", {b64(png), "data:image/jpeg;base64," + b64(jpg)}}}.dump(), kJson);
  ASSERT_EQ(l.status, 200) << l.body.substr(0, 300);
  ASSERT_EQ(l.json().size(), 2u);
  expect_segments(l.json()[0], cats, id2label, "list [0] (640x480)");
  expect_segments(l.json()[1], ref, id2label, "list [1]");
  // Bad parameters.
  auto bad = [&](const json& params) {
    return c.request("POST", "/models/dpt-vit-seg", json{{"inputs", b64(jpg)}, {"parameters", params}}.dump(), kJson);
  };
  for (const char* sub : {"panoptic", "instance", "Semantic"})
    expect_error(bad({{"subtask", sub}}), 400, "invalid_parameter",
                 "subtask \"" + std::string(sub) + "\" is not supported by model 'dpt-vit-seg'");
  expect_error(bad({{"subtask", 1}}), 400, "invalid_parameter", "subtask must be a string");
  expect_error(bad({{"threshold", "high"}}), 400, "invalid_parameter", "threshold must be a number");
  expect_error(bad({{"top_k", 3}}), 400, "invalid_parameter", "unknown parameter 'top_k' for image-segmentation");
  expect_error(c.request("POST", "/v1/embeddings", json{{"model", "dpt-vit-seg"}, {"input", b64(jpg)}}.dump(), kJson), 400,
               "invalid_parameter", "does not produce embeddings");

  // /info and KServe v2: task, metadata, ready, and infer on the golden pixel_values (logits within tolerance).
  const json info = c.request("GET", "/info").json();
  EXPECT_EQ(info["models"][0]["task"], "image-segmentation") << info.dump();
  EXPECT_EQ(info["models"][0]["task_head"], "segmentation");
  EXPECT_EQ(info["models"][0]["num_labels"], id2label.size());
  auto meta = c.request("GET", "/v2/models/dpt-vit-seg");
  ASSERT_EQ(meta.status, 200) << meta.body;
  const json mj = meta.json();
  EXPECT_EQ(mj["parameters"]["task"], "image-segmentation");
  EXPECT_EQ(mj["parameters"]["default_outputs"], json({"logits"}));
  bool has_logits = false;
  for (const auto& o : mj["outputs"]) has_logits |= o["name"] == "logits" && o["shape"] == json({-1, static_cast<int>(id2label.size()), -1, -1});
  EXPECT_TRUE(has_logits) << mj.dump();
  auto ready = c.request("GET", "/v2/models/dpt-vit-seg/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json()["ready"], true);
  const Tensor& pv = gc.tensors.at("pixel_values");
  json req = {{"inputs", {{{"name", "pixel_values"}, {"shape", pv.shape()}, {"datatype", "FP32"},
                           {"data", std::vector<float>(pv.data<float>(), pv.data<float>() + pv.numel())}}}}};
  auto inf = c.request("POST", "/v2/models/dpt-vit-seg/infer", req.dump(), kJson);
  ASSERT_EQ(inf.status, 200) << inf.body.substr(0, 300);
  const json out = inf.json()["outputs"];
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["name"], "logits");
  const Tensor& gl = gc.tensors.at("logits");
  ASSERT_EQ(out[0]["shape"].get<std::vector<int64_t>>(), gl.shape());
  std::vector<float> got;
  flatten(out[0]["data"], got);
  ASSERT_EQ(got.size(), static_cast<size_t>(gl.numel()));
  expect_close(Tensor::from_data(gl.shape(), got.data()), gl, gc.atol("logits"), "kserve logits");
  EXPECT_EQ(s.stop(), 0);
}

// The same 8 images sent concurrently: batched by the server (max batch 8) or one by one (max batch 1), the
// answers are the CLI's (batch 1) bit for bit.
void batching_case(int max_batch) {
  ServerProcess s({model("vit-cls"), "--max-batch-size", std::to_string(max_batch), "--max-batch-delay-ms", "300",
                   "--log-format", "none"});
  std::vector<json> refs;
  for (const auto& img : kEight) refs.push_back(cli_classify(img, 10));
  std::vector<std::future<HttpResult>> futs;
  for (const auto& img : kEight)
    futs.push_back(std::async(std::launch::async, [&, img] {
      return http_once(s.port(), "POST", "/predict", json{{"inputs", b64(read_file(image(img)))}, {"parameters", {{"top_k", 10}}}}.dump(), kJson);
    }));
  for (size_t i = 0; i < kEight.size(); ++i) {
    auto r = futs[i].get();
    ASSERT_EQ(r.status, 200) << r.body;
    expect_same_predictions(r.json(), refs[i], kEight[i]);
  }
  const std::string m = http_once(s.port(), "GET", "/metrics").body;
  const auto at = m.find("vtx_batch_size_sum ");
  ASSERT_NE(at, std::string::npos);
  const double sum = std::stod(m.substr(at + 19));
  const auto at2 = m.find("vtx_batch_size_count ");
  const double count = std::stod(m.substr(at2 + 21));
  EXPECT_EQ(sum, 8);
  if (max_batch == 1) EXPECT_EQ(count, 8);
  else EXPECT_LT(count, 8) << "no request was batched with another:\n" << m;
  EXPECT_EQ(s.stop(), 0);
}
TEST(Server, BatchOf8MatchesCli) { batching_case(8); }
TEST(Server, BatchOf1MatchesCli) { batching_case(1); }

// A PNG whose header declares width x height, with a valid IHDR CRC and nothing else: a decompression bomb.
std::string png_header_only(uint32_t w, uint32_t h) {
  auto be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  std::string chunk = "IHDR";
  be32(chunk, w);
  be32(chunk, h);
  chunk += std::string("\x08\x02\x00\x00\x00", 5);
  uint32_t crc = 0xffffffffu;
  for (unsigned char ch : chunk) {
    crc ^= ch;
    for (int k = 0; k < 8; ++k) crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
  }
  std::string out("\x89PNG\r\n\x1a\n", 8);
  be32(out, 13);
  out += chunk;
  be32(out, crc ^ 0xffffffffu);
  be32(out, 0);  // an empty IDAT: libpng reads the header up to the first IDAT
  out += "IDAT";
  be32(out, 0x35af061e);  // CRC-32 of "IDAT"
  return out;
}

TEST(Server, BadInputsGetTheirStatusAndMessage) {
  ServerProcess s({model("vit-cls"), model("dinov2"), "--max-payload-bytes", "1M", "--max-image-pixels", "300000",
                   "--max-header-bytes", "4K", "--max-images-per-request", "4"});
  HttpClient c(s.port());
  const std::string png = read_file(image(kCats));
  const std::string jpg = read_file(image("imagenet/n01440764_tench.JPEG"));
  expect_error(c.request("POST", "/predict", "this is not an image", kPng), 400, "invalid_image", "unrecognised image format");
  expect_error(c.request("POST", "/predict", jpg.substr(0, jpg.size() / 3), {{"Content-Type", "image/jpeg"}}), 400,
               "invalid_image", "image");
  expect_error(c.request("POST", "/predict", jpg.substr(0, 300), {{"Content-Type", "image/jpeg"}}), 400, "invalid_image", "JPEG");
  expect_error(c.request("POST", "/predict", "", kPng), 400, "invalid_image", "empty");
  expect_error(c.request("POST", "/predict", R"({"inputs": "@@@not base64@@@"})", kJson), 400, "invalid_base64", "invalid base64");
  expect_error(c.request("POST", "/predict", R"({"inputs": "data:image/png,abc"})", kJson), 400, "invalid_base64", "data URI");
  expect_error(c.request("POST", "/predict", R"({"inputs": "abc", )", kJson), 400, "invalid_json", "malformed JSON");
  expect_error(c.request("POST", "/predict", R"({"image": "abc"})", kJson), 400, "invalid_input", "inputs");
  expect_error(c.request("POST", "/predict", R"({"inputs": 5})", kJson), 400, "invalid_input", "inputs");
  expect_error(c.request("POST", "/models/nope", png, kPng), 404, "unknown_model", "unknown model 'nope'");
  expect_error(c.request("POST", "/v2/models/nope/infer", "{}", kJson), 404, "unknown_model", "nope");
  expect_error(c.request("POST", "/predict", json{{"inputs", b64(png)}, {"parameters", {{"topk", 3}}}}.dump(), kJson), 400,
               "invalid_parameter", "unknown parameter 'topk'");
  expect_error(c.request("POST", "/predict", json{{"inputs", b64(png)}, {"parameters", {{"top_k", 0}}}}.dump(), kJson), 400,
               "invalid_parameter", "top_k");
  expect_error(c.request("POST", "/predict", json{{"inputs", b64(png)}, {"parameters", {{"function_to_apply", "relu"}}}}.dump(), kJson),
               400, "invalid_parameter", "function_to_apply");
  expect_error(c.request("POST", "/models/dinov2", json{{"inputs", b64(png)}, {"parameters", {{"pool", "max"}}}}.dump(), kJson), 400,
               "invalid_parameter", "pool");
  expect_error(c.request("POST", "/predict", png, {{"Content-Type", "text/plain"}}), 415, "unsupported_media_type", "text/plain");
  expect_error(c.request("POST", "/predict", png, {{"Content-Type", "image/gif"}}), 415, "unsupported_media_type", "image/gif");
  expect_error(c.request("POST", "/v1/embeddings", "{}", {{"Content-Type", "multipart/form-data"}}), 415, "unsupported_media_type", "multipart");
  // limits
  expect_error(c.request("POST", "/predict", std::string(1100000, 'x'), kPng), 413, "payload_too_large", "--max-payload-bytes 1048576");
  expect_error(c.request("POST", "/predict", png, kPng), 413, "image_too_large", "640x480 = 307200 pixels exceeds --max-image-pixels 300000");
  expect_error(c.request("POST", "/predict", png_header_only(60000, 60000), kPng), 413, "image_too_large", "60000x60000");
  expect_error(c.request("POST", "/predict", json{{"inputs", {b64(jpg), b64(jpg), b64(jpg), b64(jpg), b64(jpg)}}}.dump(), kJson), 413,
               "too_many_images", "--max-images-per-request 4");
  expect_error(c.request("GET", "/health", "", {{"X-Big", std::string(5000, 'a')}}), 431, "headers_too_large", "4096");
  // KServe tensors
  auto kreq = [](json shape, std::string dt, json data) {
    return json{{"inputs", {{{"name", "pixel_values"}, {"shape", shape}, {"datatype", dt}, {"data", data}}}}}.dump();
  };
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", kreq({1, 3, 4}, "FP32", std::vector<float>(12)), kJson), 400,
               "invalid_tensor", "[B,3,H,W]");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", kreq({1, 3, 32, 32}, "FP32", std::vector<float>(100)), kJson), 400,
               "invalid_tensor", "needs 3072 values");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", kreq({1, 3, 32, 32}, "INT64", std::vector<int>(3072)), kJson), 400,
               "invalid_tensor", "datatype INT64");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", kreq({1, 3, 32, 32}, "FP32", std::vector<std::string>(3072, "a")), kJson),
               400, "invalid_tensor", "numbers");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", kreq({1, 3, 8, 8}, "FP32", std::vector<float>(192)), kJson), 400,
               "invalid_tensor", "patch");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer",
                         json{{"inputs", {{{"name", "pixel_values"}, {"shape", {1, 3, 32, 32}}, {"datatype", "FP32"},
                                           {"data", std::vector<float>(3072)}}}}, {"outputs", {{{"name", "bogus"}}}}}.dump(), kJson),
               400, "invalid_parameter", "unknown output 'bogus'");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", kreq({1}, "BYTES", {"%%%"}), kJson), 400, "invalid_base64", "base64");
  expect_error(c.request("POST", "/v2/models/vit-cls/infer", "[1,2]", kJson), 400, "invalid_input", "JSON object");
  expect_error(c.request("POST", "/v1/embeddings", json{{"model", "vit-cls"}, {"input", b64(png)}, {"dimensions", 3}}.dump(), kJson), 400,
               "invalid_parameter", "dimensions");
  expect_error(c.request("POST", "/v1/embeddings", json{{"input", b64(png)}}.dump(), kJson), 400, "invalid_parameter", "\"model\" is required");
  // routes and methods
  expect_error(c.request("GET", "/nowhere"), 404, "not_found", "/nowhere");
  auto m = c.request("GET", "/predict");
  expect_error(m, 405, "method_not_allowed", "POST");
  EXPECT_EQ(m.headers["Allow"], "POST");
  // malformed HTTP: a 400 and the connection closed
  {
    net::io_context io;
    tcp::socket sock(io);
    sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(s.port())));
    timeval tv{10, 0};
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    net::write(sock, net::buffer(std::string("GARBAGE\r\n\r\n")));
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(sock, buf, res, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_NE(res.body().find("invalid_http"), std::string::npos) << res.body();
  }
  // No input changed a later answer; the server is alive.
  auto ok = c.request("POST", "/models/dinov2", json{{"inputs", b64(jpg)}, {"parameters", {{"pool", "cls"}}}}.dump(), kJson);
  ASSERT_EQ(ok.status, 200) << ok.body;
  std::vector<float> got;
  flatten(ok.json(), got);
  EXPECT_EQ(got, cli_embed("dinov2", "imagenet/n01440764_tench.JPEG", "cls"));
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, QueueFullTimeoutAndClientGone) {
  {  // --max-queue 1: while one image waits for its batch, the others are told to retry
    ServerProcess s({model("vit-cls"), "--max-queue", "1", "--max-batch-delay-ms", "800", "--max-batch-size", "8", "--log-format", "none"});
    const std::string png = read_file(image(kCats));
    std::vector<std::future<HttpResult>> futs;
    for (int i = 0; i < 6; ++i)
      futs.push_back(std::async(std::launch::async, [&] { return http_once(s.port(), "POST", "/predict", png, kPng); }));
    int ok = 0, full = 0;
    for (auto& f : futs) {
      auto r = f.get();
      if (r.status == 200) ++ok;
      if (r.status == 429) {
        ++full;
        EXPECT_EQ(r.headers["Retry-After"], "1");
        expect_error(r, 429, "queue_full", "--max-queue 1");
      }
    }
    EXPECT_GE(ok, 1);
    EXPECT_GE(full, 1);
    EXPECT_EQ(ok + full, 6);
    EXPECT_EQ(s.stop(), 0);
  }
  {  // --request-timeout shorter than the batch delay: 503, and the image is dropped before it runs
    ServerProcess s({model("vit-cls"), "--request-timeout", "100ms", "--max-batch-delay-ms", "1500", "--log-format", "none"});
    auto r = http_once(s.port(), "POST", "/predict", read_file(image(kCats)), kPng);
    expect_error(r, 503, "timeout", "--request-timeout 100 ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    EXPECT_NE(http_once(s.port(), "GET", "/metrics").body.find("vtx_dropped_images_total 1"), std::string::npos);
    EXPECT_EQ(s.stop(), 0);
  }
  {  // a client that leaves: noticed (499 in the log and metrics), its image dropped before it runs
    ServerProcess s({model("vit-cls"), "--max-batch-delay-ms", "1500"});
    {
      HttpClient gone(s.port(), 200);
      auto r = gone.request("POST", "/predict", read_file(image(kCats)), kPng);  // gives up after 200 ms
      EXPECT_EQ(r.status, 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    const std::string m = http_once(s.port(), "GET", "/metrics").body;
    EXPECT_NE(m.find("vtx_dropped_images_total 1"), std::string::npos) << m;
    EXPECT_NE(m.find("status=\"499\""), std::string::npos) << m;
    EXPECT_NE(m.find("vtx_batch_size_count 0"), std::string::npos) << m;
    EXPECT_NE(s.log().find(" 499 "), std::string::npos) << s.log();
    EXPECT_EQ(s.stop(), 0);
  }
}

TEST(Server, ApiKey) {
  ServerProcess s({model("vit-cls"), "--api-key", "s3cret-key", "--log-format", "none"});
  HttpClient c(s.port());
  const std::string png = read_file(image(kCats));
  expect_error(c.request("POST", "/predict", png, kPng), 401, "unauthorized", "missing");
  auto bad = c.request("POST", "/predict", png, {{"Content-Type", "image/png"}, {"Authorization", "Bearer s3cret-kez"}});
  expect_error(bad, 401, "unauthorized", "invalid API key");
  EXPECT_EQ(bad.headers["WWW-Authenticate"], "Bearer");
  EXPECT_EQ(c.request("POST", "/predict", png, {{"Content-Type", "image/png"}, {"Authorization", "Bearer s3cret-key"}}).status, 200);
  EXPECT_EQ(c.request("GET", "/info").status, 401);
  EXPECT_EQ(c.request("GET", "/health").status, 200);
  EXPECT_EQ(c.request("GET", "/metrics").status, 200);
  EXPECT_EQ(s.stop(), 0);
  ServerProcess p({model("vit-cls"), "--api-key", "k", "--protect-metrics", "--log-format", "none"});
  EXPECT_EQ(http_once(p.port(), "GET", "/metrics").status, 401);
  EXPECT_EQ(http_once(p.port(), "GET", "/health").status, 401);
  EXPECT_EQ(http_once(p.port(), "GET", "/metrics", "", {{"Authorization", "Bearer k"}}).status, 200);
  EXPECT_EQ(p.stop(), 0);
}

// The decode/preprocess pool runs niced (--preprocess-nice) and the inference threads do not: counted from the
// nice value of each of the server's threads in /proc.
TEST(Server, PreprocessPoolIsNicedBelowInference) {
  ServerProcess s({model("vit-cls"), "--preprocess-threads", "3", "--preprocess-nice", "7", "--threads", "2", "--log-format", "none"});
  HttpClient c(s.port());
  ASSERT_EQ(c.request("POST", "/predict", read_file(image(kCats)), kPng).status, 200);  // every pool has run
  int niced = 0, normal = 0;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(s.pid()) + "/task")) {
    const std::string stat = read_file(t.path().string() + "/stat");
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {  // field 19 is the nice value
    }
    if (field == "7") ++niced;
    else if (field == "0") ++normal;
    else ADD_FAILURE() << t.path() << ": nice " << field;
  }
  EXPECT_EQ(niced, 3);     // the three pool threads, nothing else
  EXPECT_GE(normal, 2);    // main / batcher, the inference worker, the HTTP loop
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST(Server, BadCommandLines) {
  std::string out;
  EXPECT_EQ(run_command(kVtx + " serve", &out), 2) << out;
  EXPECT_EQ(run_command(kVtx + " serve " + model("vit-cls") + " --max-batch-size 0", &out), 2) << out;
  EXPECT_NE(out.find("--max-batch-size"), std::string::npos) << out;
  EXPECT_EQ(run_command(kVtx + " serve " + model("vit-cls") + " --request-timeout 5parsecs", &out), 2) << out;
  EXPECT_EQ(run_command(kVtx + " serve " + model("vit-cls") + " --preprocess-nice 20", &out), 2) << out;
  EXPECT_NE(out.find("--preprocess-nice: must be 0..19"), std::string::npos) << out;
  EXPECT_EQ(run_command(kVtx + " serve /no/such/model --port 0", &out), 1) << out;
  EXPECT_NE(out.find("/no/such/model"), std::string::npos) << out;
  EXPECT_EQ(run_command(kVtx + " serve " + model("vit-cls") + " --host not-an-ip", &out), 1) << out;
}

// A hub id resolves through the Hugging Face cache as every other command does (vtx::resolve_model): --cache-dir
// and --offline are honoured, /info names the id and the snapshot's commit, and the answers equal the folder's.
TEST(Server, HubIdFromTheCacheOffline) {
  namespace fs = std::filesystem;
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const fs::path cache = fs::path(temp_dir()) / "hub-cache";
  const fs::path repo = cache / "models--test-org--vit-cls";
  const fs::path snap = repo / "snapshots" / commit;
  fs::create_directories(snap);
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << commit;
  for (const auto& e : fs::directory_iterator(model("vit-cls")))
    if (e.is_regular_file()) fs::copy_file(e.path(), snap / e.path().filename(), fs::copy_options::overwrite_existing);

  ServerProcess hub_server({"test-org/vit-cls", "--name", "m", "--cache-dir", cache.string(), "--offline"});
  ServerProcess folder_server({model("vit-cls"), "--name", "m"});
  const json info = http_once(hub_server.port(), "GET", "/info").json();
  ASSERT_EQ(info["models"].size(), 1u) << info.dump();
  EXPECT_EQ(info["models"][0]["hub_id"], "test-org/vit-cls");
  EXPECT_EQ(info["models"][0]["commit"], commit);
  EXPECT_EQ(fs::path(info["models"][0]["path"].get<std::string>()), snap);
  const std::string img = read_file(image(kCats));
  const HttpResult a = http_once(hub_server.port(), "POST", "/predict", img, {{"Content-Type", "image/png"}});
  const HttpResult b = http_once(folder_server.port(), "POST", "/predict", img, {{"Content-Type", "image/png"}});
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(a.json(), b.json());
  EXPECT_EQ(hub_server.stop(), 0);
  EXPECT_EQ(folder_server.stop(), 0);

  // Not in the cache, offline: the server refuses to start and says which id and cache it looked in.
  std::string out;
  const int rc = run_command(kVtx + " serve test-org/missing --offline --port 0 --cache-dir " + cache.string(), &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("test-org/missing"), std::string::npos) << out;
  EXPECT_NE(out.find((cache / "models--test-org--missing").string()), std::string::npos) << out;
}

}  // namespace
}  // namespace vtx::test

// ---- The answers' JSON text, split across two threads ----------------------------------------------------------

#include <random>
#include <thread>

#include "server/json_text.hpp"

namespace {

std::vector<float> json_text_values(int64_t n) {
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(g);
  v[3] = NAN, v[5] = INFINITY, v[static_cast<size_t>(n) - 1] = -INFINITY, v[7] = 1e-30f, v[9] = 3e7f;
  return v;
}

}  // namespace

TEST(ServerJsonText, SplitTextEqualsSerialTextWhicheverThreadWritesTheSecondHalf) {
  const std::vector<std::vector<int64_t>> shapes = {{1, 300, 100}, {480, 640}, {1, 1, 20000}, {2, 9000}, {3, 4}, {1, 1}};
  for (const auto& shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const std::vector<float> v = json_text_values(std::max<int64_t>(n, 10));
    std::string serial;
    vtx::server::append_nested(serial, v.data(), shape);
    // Numbers as the json library reads them back: the same floats, non-finite ones as null.
    const nlohmann::json parsed = nlohmann::json::parse(serial);
    const nlohmann::json flat_first = shape.size() == 2 ? parsed[0] : parsed[0][0];
    ASSERT_FALSE(flat_first.empty());
    if (shape.size() == 2 && shape[1] >= 10) {
      EXPECT_TRUE(parsed[0][3].is_null());
      EXPECT_TRUE(parsed[0][5].is_null());
      EXPECT_EQ(parsed[0][0].get<float>(), v[0]);
      EXPECT_EQ(parsed[0][7].get<float>(), v[7]);
      EXPECT_EQ(parsed[0][9].get<float>(), v[9]);
    }
    const std::string what = "shape [" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", ...]";
    // Another thread writes the second half at once.
    std::vector<std::thread> threads;
    std::string a;
    vtx::server::append_nested_split(a, v.data(), shape, [&](std::function<void()> fn) { threads.emplace_back(std::move(fn)); });
    for (auto& t : threads) t.join();
    EXPECT_EQ(a, serial) << what;
    // Nobody takes the offered half before this thread is done with the first: it is taken back, and the late
    // task then does nothing (the values it would read are gone).
    std::vector<std::function<void()>> later;
    std::string b;
    {
      std::vector<float> copy = v;
      vtx::server::append_nested_split(b, copy.data(), shape, [&](std::function<void()> fn) { later.push_back(std::move(fn)); });
    }
    for (auto& fn : later) fn();
    EXPECT_EQ(b, serial) << what;
    EXPECT_EQ(later.size(), n >= vtx::server::kSplitMinValues ? 1u : 0u) << what;
    // No pool at all.
    std::string c;
    vtx::server::append_nested_split(c, v.data(), shape, nullptr);
    EXPECT_EQ(c, serial) << what;
  }
}

TEST(ServerJsonText, RacingHelpersNeverChangeTheText) {
  const std::vector<int64_t> shape = {1, 257, 384};
  const std::vector<float> v = json_text_values(257 * 384);
  std::string serial;
  vtx::server::append_nested(serial, v.data(), shape);
  for (int rep = 0; rep < 40; ++rep) {
    std::vector<std::thread> threads;
    std::string s;
    vtx::server::append_nested_split(s, v.data(), shape, [&](std::function<void()> fn) {
      threads.emplace_back([fn = std::move(fn), rep] {
        std::this_thread::sleep_for(std::chrono::microseconds(37 * (rep % 8)));
        fn();
      });
    });
    for (auto& t : threads) t.join();
    ASSERT_EQ(s, serial) << "repetition " << rep;
  }
}
