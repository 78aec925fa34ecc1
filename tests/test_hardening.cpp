// Issue 16: hostile configs, images and output paths end in a clear vtx::Error (never a crash, a hang, a
// memory blow-up or lost data). One test (or more) per finding; they also run under ASan/UBSan.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/threadpool.hpp"
#include "io/atomic_file.hpp"
#include "io/files.hpp"
#include "io/safetensors.hpp"
#include "support.hpp"
#include "vtx/image.hpp"
#include "vtx/model.hpp"
#include "vtx/pipeline.hpp"
#include "vtx/processor.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vtx::test {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

std::string copy_model(const std::string& name, const std::string& tag) {
  std::string dst = temp_dir() + "/" + tag;
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (auto f : {"config.json", "model.safetensors", "preprocessor_config.json"})
    if (fs::exists(golden_dir() + "/models/" + name + "/" + f))
      fs::copy_file(golden_dir() + "/models/" + name + "/" + f, dst + "/" + f);
  return dst;
}

json config_of(const std::string& d) { return json::parse(slurp(d + "/config.json")); }
void set_config(const std::string& d, const json& j) { spit(d + "/config.json", j.dump(2)); }

// The message of the vtx::Error fn throws ("" and a test failure when it does not throw).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
    return m;
  }
  ADD_FAILURE() << "no vtx::Error";
  return "";
}

void expect_has(const std::string& msg, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << msg << "' lacks '" << n << "'";
}

// A hang fails the test instead of blocking CI: SIGALRM ends the process.
struct Watchdog {
  explicit Watchdog(unsigned s) { ::alarm(s); }
  ~Watchdog() { ::alarm(0); }
};

std::string cli(const std::string& args, int* rc = nullptr) {
  std::string out;
  const int r = run_command(std::string(VTX_CLI_PATH) + " " + args, &out);
  if (rc) *rc = r;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. id2label keys

TEST(Hardening, Id2LabelKeysArePlainDecimalClassIndices) {
  const std::string d = copy_model("vit-cls", "id2label");
  json j = config_of(d);
  const int64_t n = static_cast<int64_t>(io::SafeTensorsFile(d + "/model.safetensors").info("classifier.weight").shape[0]);
  for (const std::string& key : std::vector<std::string>{"-1", "18446744073709551615", "1.5", "0x10", "3abc", "100000000",
                                                         "01", "", " 1", "+1", std::to_string(n)}) {
    j["id2label"] = {{"0", "a"}, {key, "x"}};
    set_config(d, j);
    expect_has(error_of([&] { Model::load(d); }), {"config.json", "id2label key \"" + key + "\""});
  }
  j["id2label"] = {{"0", "zero"}, {std::to_string(n - 1), "last"}};
  set_config(d, j);
  auto m = Model::load(d);
  ASSERT_EQ(static_cast<int64_t>(m->info().id2label.size()), n);
  EXPECT_EQ(m->info().id2label[0], "zero");
  EXPECT_EQ(m->info().id2label[n - 1], "last");
}

// ---------------------------------------------------------------------------------------------------------------
// 2. config integers: ranges, overflow, divisibility, indices

TEST(Hardening, ConfigIntegersAreRangeChecked) {
  const std::string d = copy_model("dinov2-reg", "ranges");
  const json good = config_of(d);
  auto expect_bad = [&](const std::string& key, const json& v, std::initializer_list<std::string> needles) {
    json j = good;
    j[key] = v;
    set_config(d, j);
    std::string m = error_of([&] { Model::load(d); });
    expect_has(m, {"config.json"});
    expect_has(m, needles);
  };
  expect_bad("num_register_tokens", -1, {"num_register_tokens", "out of range"});
  expect_bad("num_register_tokens", 5000, {"num_register_tokens", "out of range"});
  expect_bad("hidden_size", 0, {"hidden_size", "out of range"});
  expect_bad("hidden_size", 48.0, {"hidden_size", "not an integer"});
  expect_bad("hidden_size", json::parse("18446744073709551615"), {"hidden_size", "out of range"});
  expect_bad("num_hidden_layers", -3, {"num_hidden_layers", "out of range"});
  expect_bad("num_attention_heads", 5, {"not a multiple"});
  expect_bad("patch_size", json::parse("9223372036854775807"), {"patch_size", "out of range"});
  expect_bad("mlp_ratio", 9.2e18, {"mlp_ratio", "out of range"});
  expect_bad("mlp_ratio", -1, {"mlp_ratio", "out of range"});
  expect_bad("layer_norm_eps", -1e-5, {"layer_norm_eps", "out of range"});
  // SwiGLU with a huge mlp_ratio used to overflow int64 in the hidden-size formula.
  const std::string s = copy_model("dinov2-swiglu", "ranges-swiglu");
  json js = config_of(s);
  js["mlp_ratio"] = 9223372036854775807.0;
  set_config(s, js);
  expect_has(error_of([&] { Model::load(s); }), {"mlp_ratio", "out of range"});
}

TEST(Hardening, BackboneIndicesAreChecked) {
  const std::string d = copy_model("dinov2-reg-backbone", "outidx");
  const json good = config_of(d);
  json j = good;
  j["out_indices"] = {2, 9};
  j.erase("out_features");
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"out_indices", "out of range"});
  j = good;
  j["out_features"] = {"stage1", "stage4"};  // out_indices says [2, 4]
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"out_features and out_indices disagree"});
  j = good;
  j["out_features"] = {"stage4", "stage2"};
  j.erase("out_indices");
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"stage order"});
  j = good;
  j["out_indices"] = {-3, -1};  // = [2, 4], agrees with out_features
  set_config(d, j);
  EXPECT_NO_THROW(Model::load(d));
  const std::string p = copy_model("dpt-vit", "dptidx");
  json jp = config_of(p);
  jp["backbone_out_indices"] = {0, 1, -1, 2};
  set_config(p, jp);
  expect_has(error_of([&] { Model::load(p); }), {"backbone_out_indices"});
}

// ---------------------------------------------------------------------------------------------------------------
// 3. nothing is allocated from a config value before the checkpoint agrees with it

TEST(Hardening, HugeConfigSizesFailFastWithoutAllocating) {
  const std::string d = copy_model("vit-pooler", "alloc");
  const json good = config_of(d);
  const auto t0 = std::chrono::steady_clock::now();
  json j = good;
  j["num_hidden_layers"] = 1000;  // within the sanity range, far more than the checkpoint
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"missing tensor", "encoder.layer.999", "num_hidden_layers"});
  j = good;
  j["num_hidden_layers"] = 10000000;
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"num_hidden_layers", "out of range"});
  j = good;
  j["intermediate_size"] = 1000000;  // would be a 4 MB bias per layer and a 190 MB weight before the shape check
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"model.safetensors", "intermediate.dense", "shape"});
  j["intermediate_size"] = 1000000000;
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"intermediate_size", "out of range"});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 20.0) << "the checks must come before any large allocation";
}

// ---------------------------------------------------------------------------------------------------------------
// 4. config and checkpoint disagree

TEST(Hardening, UnusedCheckpointTensorsAreReported) {
  const std::string d = copy_model("vit-pooler", "unused-layers");
  json j = config_of(d);
  j["num_hidden_layers"] = j["num_hidden_layers"].get<int>() - 1;
  set_config(d, j);
  expect_has(error_of([&] { Model::load(d); }), {"num_hidden_layers", "layers"});

  const std::string r = copy_model("dinov2-reg", "unused-registers");
  json jr = config_of(r);
  jr["num_register_tokens"] = 0;
  set_config(r, jr);
  expect_has(error_of([&] { Model::load(r); }), {"register_tokens", "not used"});

  // An extra tensor the architecture does not know: loads, with a warning naming it (as transformers prints).
  const std::string e = copy_model("vit-pooler", "unused-extra");
  auto all = io::load_safetensors(e + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> t(all.begin(), all.end());
  t.emplace_back("some_head.weight", Tensor({2}, DType::F32));
  io::save_safetensors(e + "/model.safetensors", t);
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW(Model::load(e));
  const std::string warn = testing::internal::GetCapturedStderr();
  expect_has(warn, {"warning", "some_head.weight", "not used"});
  // Every golden model uses every tensor of its checkpoint (no warning).
  for (const char* name : {"vit-pooler", "dinov2-reg-cls", "dinov2-backbone", "deit-distilled", "vit-mim", "dpt-vit",
                           "depth-anything"}) {
    testing::internal::CaptureStderr();
    Model::load(golden_dir() + "/models/" + name);
    EXPECT_EQ(testing::internal::GetCapturedStderr().find("not used"), std::string::npos) << name;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. resize bombs

TEST(Hardening, ProcessorPixelLimitCoversEveryIntermediateSize) {
  ProcessorConfig c = ProcessorConfig::defaults_for("BitImageProcessor");  // shortest edge 224, then crop
  ImageProcessor proc(c);
  Image thin(1, 40000);
  expect_has(error_of([&] { proc.preprocess(thin); }), {"resizing", "1x40000", "--max-pixels"});
  // The limit is an option: a 1x100 image resizes to 224x22400 (5 M pixels), refused below that, fine when disabled.
  c.max_pixels = 1000000;
  expect_has(error_of([&] { ImageProcessor(c).preprocess(Image(1, 100)); }), {"224x22400", "limit of 1000000"});
  c.max_pixels = 0;
  EXPECT_NO_THROW(ImageProcessor(c).preprocess(Image(1, 100)));
  // Crop and pad sizes are held to the limit too.
  ProcessorConfig cc = ProcessorConfig::defaults_for("DeiTImageProcessor");
  cc.do_resize = false;
  cc.crop_height = cc.crop_width = 16000;
  expect_has(error_of([&] { ImageProcessor(cc).preprocess(Image(8, 8)); }), {"center cropping", "--max-pixels"});
  // Through the CLI: a small BMP file whose shortest-edge resize is huge.
  std::vector<uint8_t> b(54, 0);
  auto put32 = [&](size_t o, uint32_t v) { for (int i = 0; i < 4; ++i) b[o + i] = static_cast<uint8_t>(v >> (8 * i)); };
  b[0] = 'B', b[1] = 'M', b[14] = 40, b[26] = 1, b[28] = 24;
  put32(10, 54);
  put32(18, 1);
  put32(22, 40000);
  b.resize(54 + 4 * 40000, 0x80);
  const std::string img = temp_dir() + "/thin.bmp";
  spit(img, std::string(b.begin(), b.end()));
  int rc = 0;
  std::string out = cli("preprocess " + golden_dir() + "/models/dinov2 " + img + " --out " + temp_dir() + "/thin.safetensors", &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"thin.bmp", "--max-pixels"});
  EXPECT_FALSE(fs::exists(temp_dir() + "/thin.safetensors"));
}

TEST(Hardening, ProcessorSizesAreBounded) {
  for (const std::string& cfg : std::vector<std::string>{
        R"({"image_processor_type":"ViTImageProcessor","size":{"height":1048576,"width":224}})",
        R"({"image_processor_type":"BitImageProcessor","size":{"shortest_edge":1048576}})",
        R"({"image_processor_type":"BitImageProcessor","crop_size":{"height":1048576,"width":1048576}})",
        R"({"image_processor_type":"DPTImageProcessor","do_pad":true,"size_divisor":1048576})",
        R"({"image_processor_type":"DPTImageProcessor","ensure_multiple_of":18446744073709551615})"})
    expect_has(error_of([&] { ImageProcessor::from_json_string(cfg, "pp.json"); }), {"pp.json", "16384"});
}

// ---------------------------------------------------------------------------------------------------------------
// 6. progressive-JPEG scan bomb

// The JPEG with one of its progressive scans (SOS segment + entropy data) repeated `copies` more times.
std::string repeat_scan(const std::string& jpg, int copies) {
  size_t pos = 2, sos_begin = 0, sos_end = 0;
  int scans = 0;
  while (pos + 4 <= jpg.size()) {
    if (static_cast<uint8_t>(jpg[pos]) != 0xFF) break;
    const uint8_t m = static_cast<uint8_t>(jpg[pos + 1]);
    if (m == 0xD9) break;
    const size_t len = (static_cast<uint8_t>(jpg[pos + 2]) << 8) | static_cast<uint8_t>(jpg[pos + 3]);
    size_t next = pos + 2 + len;
    if (m == 0xDA) {  // entropy-coded data up to the next marker that is not a stuffed byte or RSTn
      while (next + 1 < jpg.size()) {
        const uint8_t a = static_cast<uint8_t>(jpg[next]), c = static_cast<uint8_t>(jpg[next + 1]);
        if (a == 0xFF && c != 0 && !(c >= 0xD0 && c <= 0xD7)) break;
        ++next;
      }
      if (++scans == 2) sos_begin = pos, sos_end = next;
    }
    pos = next;
  }
  EXPECT_GT(sos_end, sos_begin) << "no second scan";
  std::string seg = jpg.substr(sos_begin, sos_end - sos_begin), out = jpg.substr(0, sos_end);
  for (int i = 0; i < copies; ++i) out += seg;
  return out + jpg.substr(sos_end);
}

TEST(Hardening, ProgressiveJpegScanLimit) {
  const std::string jpg = slurp(shared_dir() + "/images/misc/vitcpp_tench_progressive.jpg");
  const auto* d = reinterpret_cast<const uint8_t*>(jpg.data());
  EXPECT_NO_THROW(decode_image(d, jpg.size(), "tench.jpg"));
  const std::string bomb = repeat_scan(jpg, 600);
  const auto t0 = std::chrono::steady_clock::now();
  expect_has(error_of([&] { decode_image(reinterpret_cast<const uint8_t*>(bomb.data()), bomb.size(), "bomb.jpg"); }),
             {"bomb.jpg", "more than 500 scans", "max_jpeg_scans"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  // The limit is an option: raised, the same file decodes (libjpeg only warns about the repeated scans, and
  // the warnings are ignored as Pillow ignores them).
  ImageLoadOptions o;
  o.max_jpeg_scans = 1000;
  Image im = decode_image(reinterpret_cast<const uint8_t*>(bomb.data()), bomb.size(), "bomb.jpg", o);
  EXPECT_GT(im.width, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// 7. hangs: FIFOs and other special files, thread pool

TEST(Hardening, FifosAreRefusedBeforeOpen) {
  Watchdog w(60);
  const std::string d = copy_model("vit-pooler", "fifo");
  const std::string fifo = temp_dir() + "/a.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_has(error_of([&] { load_image(fifo); }), {fifo, "FIFO", "not a regular file"});
  expect_has(error_of([&] { io::SafeTensorsFile f(fifo); }), {fifo, "FIFO"});
  expect_has(error_of([&] { ImageProcessor::from_pretrained(fifo); }), {fifo, "FIFO"});
  expect_has(error_of([&] { load_image("/dev/zero"); }), {"/dev/zero", "character device"});
  // As config.json, model.safetensors, the index and a shard of a model folder.
  for (const char* name : {"config.json", "model.safetensors", "preprocessor_config.json"}) {
    const std::string m = copy_model("vit-pooler", std::string("fifo-") + name);
    fs::remove(m + "/" + name);
    ASSERT_EQ(::mkfifo((m + "/" + name).c_str(), 0600), 0);
    expect_has(error_of([&] { Pipeline::load(m); }), {name, "FIFO"});
  }
  const std::string s = copy_model("vit-pooler", "fifo-index");
  ASSERT_EQ(::mkfifo((s + "/model.safetensors.index.json").c_str(), 0600), 0);
  expect_has(error_of([&] { Model::load(s); }), {"model.safetensors.index.json", "FIFO"});
  fs::remove(s + "/model.safetensors.index.json");
  spit(s + "/model.safetensors.index.json", R"({"weight_map":{"layernorm.weight":"shard.safetensors"}})");
  ASSERT_EQ(::mkfifo((s + "/shard.safetensors").c_str(), 0600), 0);
  expect_has(error_of([&] { Model::load(s); }), {"shard.safetensors", "FIFO"});
}

TEST(Hardening, ThreadPoolCapAndCleanStartFailure) {
  Watchdog w(60);
  expect_has(error_of([] { ThreadPool p(100000); }), {"100000", "VTX_MAX_THREADS"});
  expect_has(error_of([] { set_num_threads(100000); }), {"100000", "VTX_MAX_THREADS"});
  EXPECT_GE(num_threads(), 1);  // the old pool is still there
  // Thread creation failing half-way: the started workers are stopped and joined, nothing deadlocks.
  ThreadPool::fail_start_at_for_testing = 3;
  expect_has(error_of([] { ThreadPool p(std::min(6, max_threads())); }), {"cannot start", "threads"});
  ThreadPool::fail_start_at_for_testing = -1;
  ThreadPool ok(std::min(4, max_threads()));
  std::atomic<int64_t> sum{0};
  ok.parallel_for(100, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 100);
  int rc = 0;
  const std::string out = cli("bench " + golden_dir() + "/models/vit-pooler --threads 100000 --iters 1", &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"VTX_MAX_THREADS"});
}

// ---------------------------------------------------------------------------------------------------------------
// 8. data loss: outputs never replace inputs or special files

TEST(Hardening, AtomicWriteOnlyReplacesRegularFiles) {
  const std::string t = temp_dir() + "/atomic";
  fs::remove_all(t);
  fs::create_directories(t);
  // New file, then an existing one (its permission bits are kept).
  io::write_file_atomic(t + "/a.bin", "one");
  ::chmod((t + "/a.bin").c_str(), 0600);
  io::write_file_atomic(t + "/a.bin", "two");
  EXPECT_EQ(slurp(t + "/a.bin"), "two");
  struct stat st{};
  ASSERT_EQ(::stat((t + "/a.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A symlink is written through: the link stays, its target gets the bytes.
  fs::create_symlink(t + "/a.bin", t + "/link.bin");
  io::write_file_atomic(t + "/link.bin", "three");
  EXPECT_TRUE(fs::is_symlink(t + "/link.bin"));
  EXPECT_EQ(slurp(t + "/a.bin"), "three");
  fs::create_symlink(t + "/nowhere.bin", t + "/dangling.bin");
  expect_has(error_of([&] { io::write_file_atomic(t + "/dangling.bin", "x"); }), {"dangling.bin", "does not exist"});
  // FIFO, folder, device, read-only file: refused and left as they were.
  ASSERT_EQ(::mkfifo((t + "/p.fifo").c_str(), 0600), 0);
  expect_has(error_of([&] { io::write_file_atomic(t + "/p.fifo", "x"); }), {"p.fifo", "FIFO", "refusing"});
  EXPECT_TRUE(fs::is_fifo(t + "/p.fifo"));
  fs::create_directories(t + "/dir");
  expect_has(error_of([&] { io::write_file_atomic(t + "/dir", "x"); }), {"folder", "refusing"});
  EXPECT_TRUE(fs::is_directory(t + "/dir"));
  expect_has(error_of([] { io::atomic_write_target("/dev/null"); }), {"/dev/null", "character device", "refusing"});
  // A read-only file of one's own is replaced as mv / install replace it, keeping its mode; one of another user
  // is refused unless writable (root may write anything, so that case is only checked for other users).
  io::write_file_atomic(t + "/ro.bin", "old");
  ::chmod((t + "/ro.bin").c_str(), 0444);
  io::write_file_atomic(t + "/ro.bin", "new");
  EXPECT_EQ(slurp(t + "/ro.bin"), "new");
  ASSERT_EQ(::stat((t + "/ro.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  if (::geteuid() != 0) {
    struct stat pw{};
    ASSERT_EQ(::stat("/etc/passwd", &pw), 0);  // root's, not writable by us; its folder is not ours either
    expect_has(error_of([] { io::atomic_write_target("/etc/passwd"); }), {"/etc/passwd", "another user"});
  }
  // No temporary file is left behind by any of the failures.
  for (const auto& e : fs::directory_iterator(t))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  // Writers use it: safetensors onto a FIFO is refused.
  expect_has(error_of([&] { io::save_safetensors(t + "/p.fifo", {{"x", Tensor({1}, DType::F32)}}); }), {"FIFO"});
}

TEST(Hardening, CommandsNeverWriteOverTheirInputs) {
  // vtx depth DIR --out DIR would replace DIR's PNG photos with depth pictures.
  const std::string dir = temp_dir() + "/photos";
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(shared_dir() + "/images/misc/tiny_7x5_from_apple.png", dir + "/apple.png");
  const std::string before = slurp(dir + "/apple.png");
  int rc = 0;
  std::string out = cli("depth " + golden_dir() + "/models/depth-anything " + dir + " --out " + dir, &rc);
  EXPECT_NE(rc, 0) << out;
  expect_has(out, {"apple.png", "input"});
  EXPECT_EQ(slurp(dir + "/apple.png"), before);
  // Into the model folder: an image named like a checkpoint file would replace it.
  const std::string dm = copy_model("depth-anything", "depth-into-model");
  fs::copy_file(shared_dir() + "/images/misc/tiny_7x5_from_apple.png", dir + "/model.png");
  out = cli("depth " + dm + " " + dir + "/model.png --format safetensors --out " + dm, &rc);
  EXPECT_NE(rc, 0) << out;
  expect_has(out, {"model.safetensors", "is one of the inputs"});
  EXPECT_NO_THROW(Model::load(dm));
  // embed / preprocess / run onto an input file or into the model folder.
  const std::string model = copy_model("vit-pooler", "cli-inputs");
  out = cli("embed " + model + " " + dir + "/apple.png --out " + model + "/model.safetensors", &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"is one of the inputs"});
  out = cli("preprocess " + model + " " + dir + "/apple.png --out " + model + "/model.safetensors", &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"is one of the inputs"});
  const std::string pv = temp_dir() + "/pv.safetensors";
  io::save_safetensors(pv, {{"pixel_values", load_case("vit-pooler").tensors.at("pixel_values")}});
  out = cli("run " + model + " --pixel-values " + pv + " --out " + pv, &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"is one of the inputs"});
  out = cli("run " + model + " --pixel-values " + pv + " --out /dev/null", &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"/dev/null", "refusing"});
  EXPECT_EQ(io::load_safetensors(pv).size(), 1u);
  EXPECT_EQ(Model::load(model)->info().model_type, "vit");
}

TEST(Hardening, QuantizeIntoAFolderWithShardsIsRefused) {
  const std::string out = temp_dir() + "/quant-out";
  fs::remove_all(out);
  fs::create_directories(out);
  spit(out + "/model.safetensors.index.json", R"({"weight_map":{}})");
  expect_has(error_of([&] { quantize_checkpoint(golden_dir() + "/models/vit-pooler", out, WeightType::Int8); }),
             {"model.safetensors.index.json", "sharded"});
  fs::remove(out + "/model.safetensors.index.json");
  quantize_checkpoint(golden_dir() + "/models/vit-pooler", out, WeightType::Int8);
  EXPECT_EQ(Model::load(out)->info().weights, WeightType::Int8);
}

// ---------------------------------------------------------------------------------------------------------------
// 9. silently wrong results

TEST(Hardening, ProcessorValuesFiniteAndNonzeroInFloat32) {
  for (const std::string& cfg : std::vector<std::string>{
        R"({"image_processor_type":"ViTImageProcessor","image_std":[1e-300,0.5,0.5]})",
        R"({"image_processor_type":"ViTImageProcessor","image_std":0})",
        R"({"image_processor_type":"ViTImageProcessor","image_mean":[1e300,0,0]})",
        R"({"image_processor_type":"ViTImageProcessor","image_std":[1e-44,1,1]})",
        R"({"image_processor_type":"ViTImageProcessor","rescale_factor":1e300})"})
    expect_has(error_of([&] { ImageProcessor::from_json_string(cfg, "pp.json"); }), {"pp.json", "float32"});
}

TEST(Hardening, NonFiniteValuesAreErrorsSayingWhere) {
  auto m = Model::load(golden_dir() + "/models/vit-pooler");
  Tensor x = load_case("vit-pooler").tensors.at("pixel_values").clone();
  x.data<float>()[5] = std::nanf("");
  expect_has(error_of([&] { m->forward(x); }), {"pixel_values", "NaN", "[0, 0, 0, 5]"});
  x.data<float>()[5] = INFINITY;
  expect_has(error_of([&] { m->forward(x); }), {"pixel_values", "+inf"});
  // Absurd (finite) int4 scales overflow inside the model: the error names the first output affected.
  const std::string q = temp_dir() + "/q4-absurd";
  fs::remove_all(q);
  quantize_checkpoint(golden_dir() + "/models/vit-pooler", q, WeightType::Int4);
  auto all = io::load_safetensors(q + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> t;
  for (auto& [k, v] : all) {
    if (k == "encoder.layer.0.intermediate.dense.weight_scale")
      for (int64_t i = 0; i < v.numel(); ++i) v.data<float>()[i] = 3e38f;
    t.emplace_back(k, v);
  }
  io::save_safetensors(q + "/model.safetensors", t);
  auto mq = Model::load(q);
  ForwardOptions o;
  o.output_hidden_states = true;
  Tensor ok = load_case("vit-pooler").tensors.at("pixel_values");
  expect_has(error_of([&] { mq->forward(ok, o); }), {"non-finite", "first in hidden_states.1"});
}

TEST(Hardening, CliRefusesEmptyFoldersAndBadCounts) {
  const std::string empty = temp_dir() + "/empty-folder";
  fs::create_directories(empty);
  const std::string model = golden_dir() + "/models/vit-cls";
  int rc = 0;
  std::string out = cli("classify " + model + " " + empty, &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"no images found in " + empty});
  out = cli("embed " + model + " " + empty + " --out " + temp_dir() + "/e.npy", &rc);
  EXPECT_NE(rc, 0);
  expect_has(out, {"no images found in " + empty});
  const std::string img = shared_dir() + "/images/misc/tiny_7x5_from_apple.png";
  for (const std::string bad : {"--top-k 0", "--top-k -2", "--batch 0", "--batch -1"}) {
    out = cli("classify " + model + " " + img + " " + bad, &rc);
    EXPECT_EQ(rc, 2) << bad << ": " << out;
    expect_has(out, {bad.substr(0, bad.find(' ')), "at least 1"});
  }
  out = cli("embed " + model + " " + img + " --batch 0 --out " + temp_dir() + "/e.npy", &rc);
  EXPECT_EQ(rc, 2);
  expect_has(out, {"--batch", "at least 1"});
}

// ---------------------------------------------------------------------------------------------------------------
// 10. messages name the file and the problem in plain words

TEST(Hardening, PlainMessages) {
  const std::string d = copy_model("vit-pooler", "msg-index-folder");
  fs::create_directories(d + "/model.safetensors.index.json");
  expect_has(error_of([&] { Model::load(d); }), {"model.safetensors.index.json", "is a folder"});
  // An index that omits a tensor: the message names the index, not a model.safetensors that does not exist.
  const std::string s = copy_model("vit-pooler", "msg-index-omits");
  auto all = io::load_safetensors(s + "/model.safetensors");
  json wm = json::object();
  std::vector<std::pair<std::string, Tensor>> keep;
  for (auto& [k, v] : all)
    if (k != "layernorm.weight") keep.emplace_back(k, v), wm[k] = "model-00001-of-00001.safetensors";
  io::save_safetensors(s + "/model-00001-of-00001.safetensors", keep);
  fs::remove(s + "/model.safetensors");
  spit(s + "/model.safetensors.index.json", json{{"weight_map", wm}}.dump());
  const std::string m = error_of([&] { Model::load(s); });
  expect_has(m, {"model.safetensors.index.json", "missing tensor 'layernorm.weight'"});
  // A huge id2label key: a plain sentence, not "vector::_M_default_append".
  const std::string c = copy_model("vit-cls", "msg-id2label");
  json j = config_of(c);
  j["id2label"] = {{"99999999999", "x"}};
  set_config(c, j);
  expect_has(error_of([&] { Model::load(c); }), {"id2label key \"99999999999\"", "out of range"});
}

// ---------------------------------------------------------------------------------------------------------------
// 11. BMP parity with Pillow 9.4 (expected values: what Pillow 9.4's BmpImagePlugin gives for these files)

std::string make_bmp(int w, int h, int bits, uint32_t compression, const std::vector<uint8_t>& palette_bgrx,
                     const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> b(54, 0);
  auto put32 = [&](size_t o, uint32_t v) { for (int i = 0; i < 4; ++i) b[o + i] = static_cast<uint8_t>(v >> (8 * i)); };
  b[0] = 'B', b[1] = 'M', b[14] = 40, b[26] = 1, b[28] = static_cast<uint8_t>(bits);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  put32(30, compression);
  put32(46, static_cast<uint32_t>(palette_bgrx.size() / 4));
  b.insert(b.end(), palette_bgrx.begin(), palette_bgrx.end());
  put32(10, static_cast<uint32_t>(b.size()));
  b.insert(b.end(), pixels.begin(), pixels.end());
  put32(2, static_cast<uint32_t>(b.size()));
  return std::string(b.begin(), b.end());
}

Image decode_str(const std::string& s) { return decode_image(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "x.bmp"); }

TEST(Hardening, BmpRleAndPaletteParityWithPillow) {
  const std::vector<uint8_t> pal = {0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 10, 20, 30, 0};
  auto idx_of = [&](const Image& im) {
    std::vector<int> r;
    for (size_t i = 0; i < im.rgb.size(); i += 3)
      for (int k = 0; k < 4; ++k)
        if (im.rgb[i] == pal[4 * k + 2] && im.rgb[i + 1] == pal[4 * k + 1] && im.rgb[i + 2] == pal[4 * k]) {
          r.push_back(k);
          break;
        }
    return r;
  };
  // Truncated RLE data, or an end of bitmap before the last pixel: "not enough image data" in Pillow.
  expect_has(error_of([&] { decode_str(make_bmp(3, 2, 8, 1, pal, {3, 1, 0, 0, 0, 3, 2})); }), {"x.bmp", "truncated"});
  expect_has(error_of([&] { decode_str(make_bmp(3, 2, 4, 2, pal, {3, 0x21, 0, 1})); }), {"x.bmp", "truncated"});
  expect_has(error_of([&] { decode_str(make_bmp(2, 2, 8, 1, pal, {0, 3, 1, 2, 3, 0, 1, 1})); }), {"truncated"});
  // Complete streams decode as Pillow does: a delta reads its two bytes, then the next two as the offsets.
  EXPECT_EQ(idx_of(decode_str(make_bmp(3, 2, 8, 1, pal, {1, 1, 0, 2, 9, 9, 1, 1, 2, 2}))),
            (std::vector<int>{0, 0, 2, 1, 0, 0}));
  // RLE4 absolute runs of odd length hold count / 2 bytes.
  EXPECT_EQ(idx_of(decode_str(make_bmp(3, 2, 4, 2, pal, {0, 3, 0x12, 0x30, 0, 0, 3, 0x21, 0, 1}))),
            (std::vector<int>{2, 1, 2, 1, 2, 0}));
  // More than 256 palette entries: Pillow's "invalid palette size".
  std::vector<uint8_t> big = pal;
  big.resize(4 * 300, 0);
  expect_has(error_of([&] { decode_str(make_bmp(1, 1, 8, 0, big, {1, 0, 0, 0})); }), {"palette size 300"});
  big.resize(4 * 256);
  EXPECT_NO_THROW(decode_str(make_bmp(1, 1, 8, 0, big, {1, 0, 0, 0})));
}

}  // namespace
}  // namespace vtx::test
