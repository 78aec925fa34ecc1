// Hub ids and the huggingface_hub cache, against a mock hub on 127.0.0.1 (tests/hub/mock_hub.py, ephemeral port,
// started and stopped by each test). No internet.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "io/safetensors.hpp"
#include "io/sha256.hpp"
#include "support.hpp"
#include "vtx/hub.hpp"
#include "vtx/model.hpp"
#include "vtx/pipeline.hpp"

namespace fs = std::filesystem;

namespace vtx::test {
namespace {

const std::string kVtx = VTX_CLI_PATH;
const std::string kMock = std::string(VTX_SOURCE_DIR) + "/tests/hub/mock_hub.py";
const std::string C1(40, '1'), C2(40, '2'), C3(40, '3');

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void write_file(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}
std::string file_sha256(const fs::path& p) {
  const std::string s = read_file(p);
  return io::sha256_hex(s.data(), s.size());
}
// git's blob id (what the hub sends as the ETag of a non-LFS file), computed by Python's hashlib.
std::string git_sha1(const fs::path& p) {
  std::string out;
  const std::string cmd = "/usr/bin/python3 -c \"import hashlib,sys; d=open(sys.argv[1],'rb').read(); "
                          "print(hashlib.sha1(b'blob %d\\0' % len(d) + d).hexdigest())\" " + p.string();
  EXPECT_EQ(run_command(cmd, &out), 0) << out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

fs::path fresh_dir(const std::string& name) {
  static int n = 0;
  fs::path d = fs::path(temp_dir()) / (name + "-" + std::to_string(++n));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// stdout only (run_command adds 2>&1 after the command)
std::string quiet(const std::string& cmd) { return "(" + cmd + " 2>/dev/null)"; }

std::string golden_model(const std::string& name) { return golden_dir() + "/models/" + name; }
std::string test_image() { return golden_dir() + "/../images/coco/000000039769.png"; }

// A port nothing listens on (bound, then closed): connections are refused.
int dead_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

class MockHub {
 public:
  using Repos = std::map<std::string, nlohmann::json>;  // "org/name" -> {"refs", "commits", "token"}
  explicit MockHub(const Repos& repos, nlohmann::json extra = nlohmann::json::object()) {
    dir_ = fresh_dir("mock");
    nlohmann::json cfg = extra;
    cfg["repos"] = repos;
    cfg["port_file"] = (dir_ / "port").string();
    cfg["log"] = (dir_ / "log.jsonl").string();
    cfg["faults"] = (dir_ / "faults.json").string();
    write_file(dir_ / "config.json", cfg.dump());
    // Everything the child needs is prepared before fork (the test process may have threads): open, dup2, exec.
    const std::string err = (dir_ / "stderr.txt").string(), cfg_path = (dir_ / "config.json").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, 2);
      ::execl("/usr/bin/python3", "python3", kMock.c_str(), cfg_path.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(dir_ / "port")) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("mock hub did not start: " + read_file(dir_ / "stderr.txt"));
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("mock hub exited: " + read_file(dir_ / "stderr.txt"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    port_ = std::stoi(read_file(dir_ / "port"));
  }
  MockHub(const MockHub&) = delete;
  MockHub& operator=(const MockHub&) = delete;
  ~MockHub() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::vector<nlohmann::json> log() const {
    std::vector<nlohmann::json> r;
    std::ifstream f(dir_ / "log.jsonl");
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) r.push_back(nlohmann::json::parse(line));
    return r;
  }
  void clear_log() const { fs::remove(dir_ / "log.jsonl"); }
  void set_faults(const nlohmann::json& f) const { write_file(dir_ / "faults.json", f.dump()); }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

nlohmann::json one_repo(const std::string& folder, const std::string& commit = C1) {
  return {{"refs", {{"main", commit}}}, {"commits", {{commit, folder}}}};
}

// The environment of a vtx process: only what the test sets (no token, offline flag or cache of the user).
struct Env {
  std::string endpoint, cache, home;
  std::string extra;  // more VAR=value words
  std::string prefix() const {
    return "env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN -u HF_HUB_OFFLINE -u TRANSFORMERS_OFFLINE -u HF_HUB_CACHE "
           "-u HUGGINGFACE_HUB_CACHE -u HF_TOKEN_PATH -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY "
           "NO_PROXY=127.0.0.1,localhost HF_HOME=" + home + " HF_ENDPOINT=" + endpoint +
           (cache.empty() ? "" : " HF_HUB_CACHE=" + cache) + (extra.empty() ? "" : " " + extra) + " ";
  }
};

class Hub : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE",
                          "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_ENDPOINT", "XDG_CACHE_HOME", "http_proxy", "HTTP_PROXY"})
      ::unsetenv(v);
    home_ = fresh_dir("hfhome");
    ::setenv("HF_HOME", home_.c_str(), 1);
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  }
  HubOptions opts(const MockHub& hub, const fs::path& cache) const {
    HubOptions o;
    o.endpoint = hub.endpoint();
    o.cache_dir = cache.string();
    return o;
  }
  Env env(const MockHub& hub, const fs::path& cache) const { return Env{hub.endpoint(), cache.string(), home_.string(), ""}; }
  fs::path home_;
};

size_t count_requests(const std::vector<nlohmann::json>& log, const std::string& method, const std::string& needle) {
  size_t n = 0;
  for (const auto& e : log)
    if (e["method"] == method && e["path"].get<std::string>().find(needle) != std::string::npos) ++n;
  return n;
}

std::set<std::string> names_in(const fs::path& d) {
  std::set<std::string> r;
  if (!fs::exists(d)) return r;
  for (const auto& e : fs::directory_iterator(d)) r.insert(e.path().filename().string());
  return r;
}

// ------------------------------------------------------------------------------------------------ tests

TEST_F(Hub, DownloadClassifyEqualsFolderAndSecondRunMakesNoRequest) {
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}, {"test-org/dpt", one_repo(golden_model("dpt-vit"))}});
  const fs::path cache = fresh_dir("cache");
  const Env e = env(hub, cache);
  std::string folder_out, hub_out, again_out;
  ASSERT_EQ(run_command(quiet(kVtx + " classify " + golden_model("vit-cls") + " " + test_image() + " --json"), &folder_out), 0)
      << folder_out;
  ASSERT_EQ(run_command(quiet(e.prefix() + kVtx + " classify test-org/vit-cls " + test_image() + " --json"), &hub_out), 0)
      << hub_out;
  EXPECT_EQ(nlohmann::json::parse(hub_out), nlohmann::json::parse(folder_out));
  EXPECT_GE(hub.log().size(), 3u);
  EXPECT_EQ(count_requests(hub.log(), "GET", "/cdn/"), 1u);  // the LFS weights, once

  hub.clear_log();
  ASSERT_EQ(run_command(quiet(e.prefix() + kVtx + " classify test-org/vit-cls " + test_image() + " --json"), &again_out), 0)
      << again_out;
  EXPECT_EQ(nlohmann::json::parse(again_out), nlohmann::json::parse(folder_out));
  EXPECT_TRUE(hub.log().empty()) << "second run made " << hub.log().size() << " requests";

  // vtx info names the commit and the cache path.
  std::string info;
  ASSERT_EQ(run_command(e.prefix() + kVtx + " info test-org/vit-cls", &info), 0) << info;
  EXPECT_NE(info.find("commit: " + C1), std::string::npos) << info;
  EXPECT_NE(info.find("cache: " + (cache / "models--test-org--vit-cls").string()), std::string::npos) << info;
  EXPECT_NE(info.find("ViTForImageClassification"), std::string::npos) << info;
  EXPECT_TRUE(hub.log().empty());

  // Every other command takes the id too (here: cache only, no request).
  std::string out;
  const fs::path pv = fresh_dir("pv") / "pv.safetensors";
  ASSERT_EQ(run_command(e.prefix() + kVtx + " preprocess test-org/vit-cls " + test_image() + " --out " + pv.string(), &out), 0) << out;
  const fs::path runout = pv.parent_path() / "run.safetensors";
  ASSERT_EQ(run_command(e.prefix() + kVtx + " run test-org/vit-cls --offline --pixel-values " + pv.string() + " --out " +
                            runout.string(), &out), 0) << out;
  EXPECT_TRUE(io::load_safetensors(runout.string()).count("logits"));
  const fs::path tmp = pv.parent_path();
  for (const std::string cmd : {std::string(" embed test-org/vit-cls ") + test_image() + " --out " + (tmp / "e.npy").string(),
                                " quantize test-org/vit-cls --to f16 --out " + (tmp / "q").string(),
                                std::string(" bench test-org/vit-cls --iters 1 --warmup 0 --offline"),
                                " depth test-org/dpt " + test_image() + " --out " + (tmp / "d").string()})
    EXPECT_EQ(run_command(e.prefix() + kVtx + cmd, &out), 0) << cmd << ": " << out;
  EXPECT_TRUE(fs::exists(tmp / "e.npy"));
  EXPECT_TRUE(fs::exists(tmp / "q" / "model.safetensors"));
  EXPECT_EQ(count_requests(hub.log(), "HEAD", "test-org/vit-cls"), 0u);
  EXPECT_GE(count_requests(hub.log(), "HEAD", "test-org/dpt"), 3u);  // the depth model was fetched on first use
  // --revision on a local folder is refused.
  EXPECT_NE(run_command(kVtx + " info " + golden_model("vit-cls") + " --revision main", &out), 0);
  EXPECT_NE(out.find("local folder"), std::string::npos) << out;
}

TEST_F(Hub, RevisionsBranchTagAndCommit) {
  nlohmann::json repo = {{"refs", {{"main", C1}, {"dev", C2}, {"v1.0", C1}}},
                         {"commits", {{C1, golden_model("vit-cls")}, {C2, golden_model("vit-pooler")}}}};
  MockHub hub({{"test-org/multi", repo}});
  const fs::path cache = fresh_dir("cache");
  const fs::path storage = cache / "models--test-org--multi";
  HubOptions o = opts(hub, cache);

  ResolvedModel dev = resolve_model("test-org/multi@dev", o);
  EXPECT_EQ(dev.commit, C2);
  EXPECT_EQ(dev.revision, "dev");
  EXPECT_EQ(fs::path(dev.dir), storage / "snapshots" / C2);
  EXPECT_EQ(read_file(storage / "refs" / "dev"), C2);
  EXPECT_EQ(Model::load(dev.dir)->info().architecture, "ViTModel");

  ResolvedModel tag = resolve_model("test-org/multi@v1.0", o);
  EXPECT_EQ(tag.commit, C1);
  EXPECT_EQ(read_file(storage / "refs" / "v1.0"), C1);
  EXPECT_EQ(Model::load(tag.dir)->info().architecture, "ViTForImageClassification");

  ResolvedModel commit = resolve_model("test-org/multi@" + C2, o);
  EXPECT_EQ(commit.commit, C2);
  EXPECT_FALSE(fs::exists(storage / "refs" / C2)) << "a commit revision writes no ref";

  HubOptions by_flag = o;
  by_flag.revision = "dev";
  EXPECT_EQ(resolve_model("test-org/multi", by_flag).commit, C2);
  EXPECT_EQ(resolve_model("test-org/multi", o).commit, C1);  // default: main
  EXPECT_EQ(read_file(storage / "refs" / "main"), C1);

  HubOptions clash = o;
  clash.revision = "main";
  EXPECT_THROW(resolve_model("test-org/multi@dev", clash), Error);
  try {
    resolve_model("test-org/multi@nope", o);
    ADD_FAILURE() << "unknown revision accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("revision 'nope' not found"), std::string::npos) << e.what();
  }

  // LoadOptions: Model::load takes the id with revision / cache_dir fields.
  ::setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
  LoadOptions lo;
  lo.revision = "dev";
  lo.cache_dir = cache.string();
  EXPECT_EQ(Model::load("test-org/multi", lo)->info().architecture, "ViTModel");
  lo.revision = "";
  lo.offline = true;
  EXPECT_EQ(Model::load("test-org/multi@v1.0", lo)->info().architecture, "ViTForImageClassification");
}

TEST_F(Hub, ShardedModel) {
  // A sharded copy of vit-cls: two safetensors files and an index, as save_pretrained(max_shard_size=...) writes.
  const fs::path src = fresh_dir("sharded-src");
  auto tensors = io::load_safetensors(golden_model("vit-cls") + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> a, b;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  bool first = true;
  for (auto& [k, t] : tensors) {
    (first ? a : b).emplace_back(k, t);
    index["weight_map"][k] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    first = !first;
  }
  io::save_safetensors((src / "model-00001-of-00002.safetensors").string(), a);
  io::save_safetensors((src / "model-00002-of-00002.safetensors").string(), b);
  write_file(src / "model.safetensors.index.json", index.dump(2));
  fs::copy_file(golden_model("vit-cls") + "/config.json", src / "config.json");
  fs::copy_file(golden_model("vit-cls") + "/preprocessor_config.json", src / "preprocessor_config.json");

  MockHub hub({{"test-org/sharded", one_repo(src.string())}});
  const fs::path cache = fresh_dir("cache");
  ResolvedModel r = resolve_model("test-org/sharded", opts(hub, cache));
  const std::vector<std::string> want = {"config.json", "preprocessor_config.json", "model.safetensors.index.json",
                                         "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  EXPECT_EQ(r.files, want);
  EXPECT_TRUE(fs::exists(cache / "models--test-org--sharded" / ".no_exist" / C1 / "model.safetensors"))
      << "the 404 for model.safetensors is recorded as huggingface_hub does";
  EXPECT_EQ(count_requests(hub.log(), "GET", "/cdn/"), 2u);

  GoldenCase c = load_case("vit-cls");
  auto sharded = Model::load(r.dir);
  auto folder = Model::load(golden_model("vit-cls"));
  const Tensor pv = c.tensors.at("pixel_values");
  expect_close(sharded->forward(pv).logits, folder->forward(pv).logits, 0.0, "logits");

  // Second resolution: from the cache (the .no_exist marker says model.safetensors is absent), no request.
  hub.clear_log();
  EXPECT_EQ(resolve_model("test-org/sharded", opts(hub, cache)).files, want);
  EXPECT_TRUE(hub.log().empty());
}

TEST_F(Hub, OfflineWithAndWithoutCache) {
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}});
  const fs::path cache = fresh_dir("cache"), empty = fresh_dir("empty-cache");
  resolve_model("test-org/vit-cls", opts(hub, cache));
  hub.clear_log();

  HubOptions off = opts(hub, cache);
  off.offline = true;
  off.refresh = true;  // offline wins: no request even when asked to refresh
  ResolvedModel r = resolve_model("test-org/vit-cls", off);
  EXPECT_EQ(r.commit, C1);
  EXPECT_EQ(r.files.size(), 3u);
  for (const char* var : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) {
    ::setenv(var, "1", 1);
    EXPECT_EQ(download_model("test-org/vit-cls", opts(hub, cache)).commit, C1) << var;
    ::unsetenv(var);
  }
  EXPECT_TRUE(hub.log().empty());

  // Not cached: the error names the id, the revision and the cache path searched; still no request.
  for (const std::string how : {"--offline", "env"}) {
    std::string out;
    Env e = env(hub, empty);
    if (how == "env") e.extra = "HF_HUB_OFFLINE=1";
    const int rc = run_command(e.prefix() + kVtx + " classify test-org/vit-cls@v2 " + test_image() +
                                   (how == "--offline" ? " --offline" : ""), &out);
    EXPECT_NE(rc, 0);
    EXPECT_NE(out.find("test-org/vit-cls@v2"), std::string::npos) << out;
    EXPECT_NE(out.find((empty / "models--test-org--vit-cls").string()), std::string::npos) << out;
    EXPECT_NE(out.find("offline"), std::string::npos) << out;
  }
  // HF_HUB_OFFLINE=0 is not offline (TRANSFORMERS_OFFLINE is only read when HF_HUB_OFFLINE is unset).
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  ::setenv("TRANSFORMERS_OFFLINE", "1", 1);
  EXPECT_EQ(resolve_model("test-org/vit-cls", opts(hub, empty)).commit, C1);
  EXPECT_FALSE(hub.log().empty());
}

TEST_F(Hub, TokenGoesOnlyToTheEndpointHost) {
  nlohmann::json repo = one_repo(golden_model("vit-cls"));
  repo["token"] = "hf_testtoken";
  MockHub hub({{"test-org/gated", repo}}, {{"cdn_host", "localhost"}});
  const fs::path cache = fresh_dir("cache");

  // Without a token: 401, a message about gated/private repos and how to give a token.
  std::string out;
  Env e = env(hub, cache);
  EXPECT_NE(run_command(e.prefix() + kVtx + " download test-org/gated", &out), 0);
  EXPECT_NE(out.find("401"), std::string::npos) << out;
  EXPECT_NE(out.find("gated or private"), std::string::npos) << out;
  EXPECT_NE(out.find("HF_TOKEN"), std::string::npos) << out;

  hub.clear_log();
  e.extra = "HF_TOKEN=hf_testtoken";
  ASSERT_EQ(run_command(quiet(e.prefix() + kVtx + " download test-org/gated"), &out), 0) << out;
  EXPECT_EQ(out, (cache / "models--test-org--gated" / "snapshots" / C1).string() + "\n");
  size_t to_endpoint = 0, to_cdn = 0;
  for (const auto& r : hub.log()) {
    const std::string host = r["host"].get<std::string>();
    if (host.rfind("127.0.0.1:", 0) == 0) {
      ++to_endpoint;
      EXPECT_EQ(r["auth"], "Bearer hf_testtoken") << r.dump();
    } else {
      ++to_cdn;
      EXPECT_EQ(host.rfind("localhost:", 0), 0u) << r.dump();
      EXPECT_TRUE(r["auth"].is_null()) << "token sent to another host: " << r.dump();
    }
  }
  EXPECT_GE(to_endpoint, 3u);
  EXPECT_EQ(to_cdn, 1u);

  // The token file ($HF_TOKEN_PATH, else $HF_HOME/token) works the same.
  const fs::path cache2 = fresh_dir("cache");
  write_file(home_ / "token", "hf_testtoken\n");
  Env e2 = env(hub, cache2);
  ASSERT_EQ(run_command(quiet(e2.prefix() + kVtx + " download test-org/gated"), &out), 0) << out;
}

TEST_F(Hub, DownloadCutHalfwayLeavesNoBlobAndRetrySucceeds) {
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}});
  const fs::path cache = fresh_dir("cache");
  const fs::path storage = cache / "models--test-org--vit-cls";
  const std::string sha = file_sha256(golden_model("vit-cls") + "/model.safetensors");
  const Env e = env(hub, cache);

  hub.set_faults({{"cut", {{"model.safetensors", 1000}}}});  // every attempt is cut
  std::string out;
  EXPECT_NE(run_command(e.prefix() + kVtx + " download test-org/vit-cls", &out), 0);
  EXPECT_NE(out.find("model.safetensors"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(storage / "blobs" / sha));
  EXPECT_FALSE(fs::exists(fs::symlink_status(storage / "snapshots" / C1 / "model.safetensors")));
  for (const auto& f : names_in(storage / "blobs")) EXPECT_EQ(f.find(".incomplete"), std::string::npos) << f;
  EXPECT_GE(count_requests(hub.log(), "GET", "/cdn/"), 2u) << "cut downloads are retried";

  hub.set_faults(nlohmann::json::object());
  ASSERT_EQ(run_command(e.prefix() + kVtx + " download test-org/vit-cls 2>&1", &out), 0) << out;
  EXPECT_EQ(file_sha256(storage / "snapshots" / C1 / "model.safetensors"), sha);

  // One cut: the same run resumes with a Range request and succeeds.
  const fs::path cache2 = fresh_dir("cache");
  hub.set_faults({{"cut", {{"model.safetensors", 1}}}});
  hub.clear_log();
  ResolvedModel r = resolve_model("test-org/vit-cls", opts(hub, cache2));
  EXPECT_EQ(file_sha256(fs::path(r.dir) / "model.safetensors"), sha);
  bool ranged = false;
  for (const auto& x : hub.log()) ranged = ranged || (x["range"].is_string() && x["status"] == 206);
  EXPECT_TRUE(ranged) << "no resumed (206) request";
}

TEST_F(Hub, TwoProcessesDownloadingAtOnceShareOneBlob) {
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}});
  hub.set_faults({{"slow", 0.01}});  // ~0.4 s for the weights, so both processes overlap
  const fs::path cache = fresh_dir("cache"), outs = fresh_dir("outs");
  const std::string cmd = env(hub, cache).prefix() + kVtx + " download test-org/vit-cls";
  const std::string script = cmd + " > " + (outs / "a").string() + " 2>&1 & p1=$!; " + cmd + " > " +
                             (outs / "b").string() + " 2>&1 & p2=$!; wait $p1; e1=$?; wait $p2; e2=$?; echo $e1 $e2";
  std::string rc;
  ASSERT_EQ(run_command("sh -c '" + script + "'", &rc), 0) << rc;
  EXPECT_EQ(rc, "0 0\n") << read_file(outs / "a") << read_file(outs / "b");
  const std::string snap = (cache / "models--test-org--vit-cls" / "snapshots" / C1).string() + "\n";
  EXPECT_NE(read_file(outs / "a").find(snap), std::string::npos) << read_file(outs / "a");
  EXPECT_NE(read_file(outs / "b").find(snap), std::string::npos) << read_file(outs / "b");
  const auto blobs = names_in(cache / "models--test-org--vit-cls" / "blobs");
  EXPECT_EQ(blobs.size(), 3u) << "one blob per file, no leftovers";
  EXPECT_EQ(count_requests(hub.log(), "GET", "/cdn/"), 1u) << "the second process waited for the lock";
}

TEST_F(Hub, WrongSha256IsRejected) {
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}});
  hub.set_faults({{"corrupt", {"model.safetensors"}}});
  const fs::path cache = fresh_dir("cache");
  const fs::path storage = cache / "models--test-org--vit-cls";
  try {
    resolve_model("test-org/vit-cls", opts(hub, cache));
    ADD_FAILURE() << "corrupt download accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(fs::symlink_status(storage / "snapshots" / C1 / "model.safetensors")));
  for (const auto& f : names_in(storage / "blobs")) EXPECT_EQ(f.size(), 40u) << "only the two git blobs: " << f;
}

TEST_F(Hub, ShardNamesWithPathsAreRefused) {
  for (const std::string bad : {"../evil.safetensors", "sub/model.safetensors"}) {
    const fs::path src = fresh_dir("badshard");
    fs::copy_file(golden_model("vit-cls") + "/config.json", src / "config.json");
    fs::copy_file(golden_model("vit-cls") + "/model.safetensors", src / "model-00001-of-00001.safetensors");
    write_file(src / "model.safetensors.index.json",
               nlohmann::json({{"weight_map", {{"a", "model-00001-of-00001.safetensors"}, {"b", bad}}}}).dump());
    MockHub hub({{"test-org/bad", one_repo(src.string())}});
    const fs::path cache = fresh_dir("cache");
    try {
      resolve_model("test-org/bad", opts(hub, cache));
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
    }
    for (const auto& r : hub.log()) EXPECT_EQ(r["path"].get<std::string>().find("evil"), std::string::npos) << r.dump();
    EXPECT_EQ(count_requests(hub.log(), "HEAD", "model-00001"), 0u) << "nothing fetched after a bad index";
  }
}

// A cache laid out by huggingface_hub's rules (written here by hand): blobs named by etag, relative symlinks,
// refs/main without a newline. vtx reads it offline and through the HF_HOME / XDG_CACHE_HOME defaults.
TEST_F(Hub, ReadsACacheWrittenByHuggingFaceHubRules) {
  const fs::path root = fresh_dir("hfcache");
  const fs::path hub_dir = root / "huggingface" / "hub";
  const fs::path storage = hub_dir / "models--acme--vit";
  const std::string src = golden_model("vit-cls");
  fs::create_directories(storage / "blobs");
  fs::create_directories(storage / "snapshots" / C3);
  for (const std::string f : {"config.json", "preprocessor_config.json", "model.safetensors"}) {
    const std::string etag = f == "model.safetensors" ? file_sha256(src + "/" + f) : git_sha1(src + "/" + f);
    fs::copy_file(src + "/" + f, storage / "blobs" / etag);
    fs::create_symlink("../../blobs/" + etag, storage / "snapshots" / C3 / f);
  }
  write_file(storage / "refs" / "main", C3);

  std::string folder_out, out;
  ASSERT_EQ(run_command(quiet(kVtx + " classify " + src + " " + test_image() + " --json"), &folder_out), 0);
  // HF_HOME=root/huggingface: the cache is $HF_HOME/hub. The endpoint is dead: nothing may be asked.
  Env e{"http://127.0.0.1:" + std::to_string(dead_port()), "", (root / "huggingface").string(), ""};
  for (const std::string flags : {"", " --offline"}) {
    ASSERT_EQ(run_command(quiet(e.prefix() + kVtx + " classify acme/vit " + test_image() + " --json" + flags), &out), 0)
        << out;
    EXPECT_EQ(nlohmann::json::parse(out), nlohmann::json::parse(folder_out));
  }
  ::unsetenv("HF_HOME");
  ::setenv("XDG_CACHE_HOME", root.c_str(), 1);
  EXPECT_EQ(hub_cache_dir(), hub_dir.string());
  HubOptions o;
  o.offline = true;
  EXPECT_EQ(resolve_model("acme/vit", o).commit, C3);
  ::setenv("HF_HOME", "/somewhere/hf", 1);
  EXPECT_EQ(hub_cache_dir(), "/somewhere/hf/hub");
  ::setenv("HUGGINGFACE_HUB_CACHE", "/legacy/cache", 1);
  EXPECT_EQ(hub_cache_dir(), "/legacy/cache");
  ::setenv("HF_HUB_CACHE", "/new/cache", 1);
  EXPECT_EQ(hub_cache_dir(), "/new/cache");
  EXPECT_EQ(hub_cache_dir("/flag/dir"), "/flag/dir");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("XDG_CACHE_HOME");
}

// The tree vtx writes is exactly huggingface_hub's.
TEST_F(Hub, WritesExactlyTheHuggingFaceHubLayout) {
  const fs::path noproc = fresh_dir("noproc");  // a repo without preprocessor_config.json
  fs::copy_file(golden_model("vit-pooler") + "/config.json", noproc / "config.json");
  fs::copy_file(golden_model("vit-pooler") + "/model.safetensors", noproc / "model.safetensors");
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}, {"test-org/noproc", one_repo(noproc.string(), C2)}});
  const fs::path cache = fresh_dir("cache");
  std::string out;
  ASSERT_EQ(run_command(quiet(env(hub, cache).prefix() + kVtx + " download test-org/vit-cls"), &out), 0) << out;

  const fs::path storage = cache / "models--test-org--vit-cls";
  EXPECT_EQ(names_in(cache), (std::set<std::string>{"models--test-org--vit-cls", ".locks"}));
  EXPECT_EQ(names_in(storage), (std::set<std::string>{"blobs", "refs", "snapshots"}));
  EXPECT_EQ(names_in(storage / "refs"), std::set<std::string>{"main"});
  EXPECT_EQ(read_file(storage / "refs" / "main"), C1);  // exactly the commit, no newline
  EXPECT_EQ(names_in(storage / "snapshots"), std::set<std::string>{C1});
  std::set<std::string> etags, locks;
  for (const std::string f : {"config.json", "preprocessor_config.json", "model.safetensors"}) {
    const fs::path src = golden_model("vit-cls") + "/" + f, link = storage / "snapshots" / C1 / f;
    const std::string etag = f == "model.safetensors" ? file_sha256(src) : git_sha1(src);
    ASSERT_TRUE(fs::is_symlink(link)) << link;
    EXPECT_EQ(fs::read_symlink(link).string(), "../../blobs/" + etag);
    EXPECT_EQ(read_file(storage / "blobs" / etag), read_file(src));
    etags.insert(etag);
    locks.insert(etag + ".lock");
  }
  EXPECT_EQ(names_in(storage / "snapshots" / C1), (std::set<std::string>{"config.json", "preprocessor_config.json", "model.safetensors"}));
  EXPECT_EQ(names_in(storage / "blobs"), etags);
  EXPECT_EQ(names_in(cache / ".locks"), std::set<std::string>{"models--test-org--vit-cls"});
  EXPECT_EQ(names_in(cache / ".locks" / "models--test-org--vit-cls"), locks);

  // A missing optional file is recorded under .no_exist/<commit>/, and the next load asks nothing.
  ResolvedModel r = resolve_model("test-org/noproc", opts(hub, cache));
  const fs::path np = cache / "models--test-org--noproc";
  EXPECT_EQ(names_in(np), (std::set<std::string>{"blobs", "refs", "snapshots", ".no_exist"}));
  EXPECT_EQ(names_in(np / ".no_exist" / C2), std::set<std::string>{"preprocessor_config.json"});
  EXPECT_EQ(fs::file_size(np / ".no_exist" / C2 / "preprocessor_config.json"), 0u);
  EXPECT_EQ(names_in(np / "snapshots" / C2), (std::set<std::string>{"config.json", "model.safetensors"}));
  hub.clear_log();
  EXPECT_EQ(resolve_model("test-org/noproc", opts(hub, cache)).commit, C2);
  EXPECT_TRUE(hub.log().empty());
}

TEST_F(Hub, RenamedRepoServerErrorAndCacheFallback) {
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}}, {{"renames", {{"old-org/vit", "test-org/vit-cls"}}}});
  hub.set_faults({{"fail_once", {"config.json"}}});
  const fs::path cache = fresh_dir("cache");
  ResolvedModel r = resolve_model("old-org/vit", opts(hub, cache));
  EXPECT_EQ(r.commit, C1);
  EXPECT_EQ(fs::path(r.dir), cache / "models--old-org--vit" / "snapshots" / C1);  // stored under the name asked for
  int n500 = 0, n307 = 0;
  for (const auto& x : hub.log()) {
    n500 += x["status"] == 500;
    n307 += x["status"] == 307;
  }
  EXPECT_EQ(n500, 1);
  EXPECT_GE(n307, 3);

  // The hub unreachable: a refresh falls back to the cached snapshot, as huggingface_hub does.
  HubOptions dead = opts(hub, cache);
  dead.endpoint = "http://127.0.0.1:" + std::to_string(dead_port());
  ResolvedModel f = download_model("old-org/vit", dead);
  EXPECT_TRUE(f.from_cache_fallback);
  EXPECT_EQ(f.commit, C1);
  // ... and says so when nothing is cached.
  try {
    download_model("old-org/other", dead);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not in the cache"), std::string::npos) << e.what();
  }
}

TEST_F(Hub, ClearErrors) {
  const fs::path bin = fresh_dir("bin");
  fs::copy_file(golden_model("vit-cls") + "/config.json", bin / "config.json");
  write_file(bin / "pytorch_model.bin", "not really");
  MockHub hub({{"test-org/vit-cls", one_repo(golden_model("vit-cls"))}, {"test-org/torch-only", one_repo(bin.string())}});
  const fs::path cache = fresh_dir("cache");
  auto message = [&](const std::string& id) {
    try {
      resolve_model(id, opts(hub, cache));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  std::string m = message("test-org/torch-only");
  EXPECT_NE(m.find("safetensors"), std::string::npos) << m;
  EXPECT_NE(m.find("pytorch_model.bin"), std::string::npos) << m;
  m = message("test-org/missing");
  EXPECT_NE(m.find("repository not found"), std::string::npos) << m;
  EXPECT_NE(m.find("404"), std::string::npos) << m;
  for (const std::string bad : {"a/b/c", "org/..", "org/na--me", "org/name.git", "-org/name", "org/name@../x", "org/name@"}) {
    m = message(bad);
    EXPECT_NE(m.find(bad), std::string::npos) << bad << ": " << m;
  }
  EXPECT_NE(message("/no/such/folder").find("not a model folder"), std::string::npos);
  EXPECT_TRUE(is_hub_id("facebook/dinov2-small@main"));
  EXPECT_FALSE(is_hub_id(golden_model("vit-cls")));
  EXPECT_FALSE(is_hub_id("./x/y"));
  EXPECT_EQ(resolve_model(golden_model("vit-cls")).dir, golden_model("vit-cls"));  // a folder stays a folder
  EXPECT_EQ(count_requests(hub.log(), "HEAD", "/a/b"), 0u);
}

}  // namespace
}  // namespace vtx::test
