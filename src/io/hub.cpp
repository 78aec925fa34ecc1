// Hub ids and the huggingface_hub cache (include/vtx/hub.hpp).
//
// Cache layout (as huggingface_hub's file_download.py writes it):
//   <cache>/models--org--name/blobs/<etag>                      file contents (etag: git sha1, or sha256 for LFS)
//   <cache>/models--org--name/snapshots/<commit>/<file>         relative symlink ../../blobs/<etag> (copy if no symlinks)
//   <cache>/models--org--name/refs/<revision>                   the commit of a branch / tag (no newline)
//   <cache>/models--org--name/.no_exist/<commit>/<file>         empty: the file is known not to exist at that commit
//   <cache>/.locks/models--org--name/<etag>.lock                flock while a blob is downloaded
// Downloads go to blobs/<etag>.<random>.incomplete, are checked (size; sha256 for LFS files) and renamed.
#include "vtx/hub.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "io/hub_http.hpp"
#include "io/sha256.hpp"
#include "vtx/error.hpp"

namespace fs = std::filesystem;

namespace vtx {

namespace {

constexpr int kMaxRetries = 4;  // attempts after the first, on 429 / 5xx / connection problems (backoff 0.125 s doubling)
constexpr int kMaxRedirects = 10;
constexpr const char* kDefaultEndpoint = "https://huggingface.co";

// ---------------------------------------------------------------------------------------------- environment

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" in any case.
bool env_true(const std::string& v) {
  std::string u;
  for (char c : v) u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u == "1" || u == "ON" || u == "YES" || u == "TRUE";
}

std::string expand_user(const std::string& p) {
  if (p == "~" || p.rfind("~/", 0) == 0) {
    const std::string home = env("HOME");
    if (!home.empty()) return home + p.substr(1);
  }
  return p;
}

std::string hf_home() {
  const std::string h = env("HF_HOME");
  if (!h.empty()) return expand_user(h);
  const std::string xdg = env("XDG_CACHE_HOME");
  return expand_user((xdg.empty() ? std::string("~/.cache") : xdg) + "/huggingface");
}

long env_seconds(const char* name, long def) {
  const std::string v = env(name);
  if (v.empty()) return def;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(d > 0)) throw Error(std::string(name) + "=" + v + ": not a positive number of seconds");
  return std::max(1L, static_cast<long>(d + 0.5));
}

bool offline_from_env() {
  // HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE (the first one that is set and non-empty decides).
  std::string v = env("HF_HUB_OFFLINE");
  if (v.empty()) v = env("TRANSFORMERS_OFFLINE");
  return env_true(v);
}

std::string token_path() {
  const std::string p = env("HF_TOKEN_PATH");
  return p.empty() ? hf_home() + "/token" : expand_user(p);
}

std::string clean_token(std::string t) {
  t.erase(std::remove(t.begin(), t.end(), '\r'), t.end());
  t.erase(std::remove(t.begin(), t.end(), '\n'), t.end());
  size_t b = 0, e = t.size();
  while (b < e && std::isspace(static_cast<unsigned char>(t[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(t[e - 1]))) --e;
  return t.substr(b, e - b);
}

// HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the token file; none when HF_HUB_DISABLE_IMPLICIT_TOKEN is true.
std::string find_token(const HubOptions& o) {
  if (!o.token.empty()) return clean_token(o.token);
  if (env_true(env("HF_HUB_DISABLE_IMPLICIT_TOKEN"))) return "";
  std::string t = env("HF_TOKEN");
  if (t.empty()) t = env("HUGGING_FACE_HUB_TOKEN");
  t = clean_token(t);
  if (!t.empty()) return t;
  std::ifstream f(token_path());
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return clean_token(ss.str());
}

// ---------------------------------------------------------------------------------------------- validation

bool is_hex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
bool is_commit(const std::string& s) { return is_hex(s, 40); }
bool is_sha256(const std::string& s) { return is_hex(s, 64); }

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// huggingface_hub's validate_repo_id, restricted to "namespace/name": at most 96 characters of [A-Za-z0-9_.-],
// each part starting and ending with a letter, digit or '_', no "--" or "..", not ending in ".git".
std::string repo_id_problem(const std::string& id) {
  if (id.empty()) return "empty id";
  if (id.size() > 96) return "longer than 96 characters";
  const size_t slash = id.find('/');
  if (slash == std::string::npos) return "a hub id is namespace/name";
  if (id.find('/', slash + 1) != std::string::npos) return "more than one '/'";
  for (const std::string& part : {id.substr(0, slash), id.substr(slash + 1)}) {
    if (part.empty()) return "empty namespace or name";
    for (char c : part)
      if (!word_char(c) && c != '-' && c != '.') return std::string("character '") + c + "' not allowed";
    if (!word_char(part.front()) || !word_char(part.back())) return "'" + part + "' must start and end with a letter, digit or '_'";
  }
  if (id.find("--") != std::string::npos || id.find("..") != std::string::npos) return "'--' and '..' are not allowed";
  if (id.size() >= 4 && id.compare(id.size() - 4, 4, ".git") == 0) return "ends with .git";
  return "";
}

// A branch, tag or commit; also a path under refs/, so no empty, "." or ".." component and a tame alphabet.
std::string revision_problem(const std::string& rev) {
  if (rev.empty()) return "empty revision";
  if (rev.size() > 255) return "revision longer than 255 characters";
  for (char c : rev)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == '+'))
      return std::string("character '") + c + "' not allowed in a revision";
  std::stringstream ss(rev);
  std::string part;
  size_t parts = 0;
  while (std::getline(ss, part, '/')) {
    ++parts;
    if (part.empty() || part == "." || part == ".." || part.front() == '.') return "bad revision component '" + part + "'";
  }
  if (rev.back() == '/' || parts == 0) return "bad revision";
  return "";
}

// A file name of the snapshot: a plain name (shards come from the repo's index and must not escape the folder).
std::string file_name_problem(const std::string& f) {
  if (f.empty()) return "empty file name";
  if (f.size() > 255) return "file name longer than 255 characters";
  if (f == "." || f == "..") return "not a file name";
  for (char c : f)
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return "not a plain file name (path separator or control character)";
  return "";
}

// An etag names a blob: hex (git sha1 / sha256) in practice; refuse anything that is not a tame file name.
std::string normalize_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  e.erase(std::remove(e.begin(), e.end(), '"'), e.end());
  return e;
}
bool safe_etag(const std::string& e) {
  if (e.empty() || e.size() > 128 || e.front() == '.') return false;
  for (char c : e)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return e.find("..") == std::string::npos;
}

// ---------------------------------------------------------------------------------------------- files

std::string random_hex() {
  static thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid()) ^
           static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string sys_error(const std::string& what, const std::string& path) {
  return path + ": " + what + " (" + std::strerror(errno) + ")";
}

void make_dirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec && !fs::is_directory(p)) throw Error(p.string() + ": cannot create folder (" + ec.message() + ")");
}

std::optional<std::string> read_small(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

// Writes `content` to a temporary file next to `path` and renames it over `path`.
void write_atomic(const fs::path& path, const std::string& content) {
  make_dirs(path.parent_path());
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + "." + random_hex() + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(sys_error("cannot create", tmp.string()));
  const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = sys_error("cannot write", path.string());
    ::unlink(tmp.c_str());
    throw Error(msg);
  }
}

void touch(const fs::path& p) {
  make_dirs(p.parent_path());
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
  if (fd >= 0) ::close(fd);
}

// An exclusive flock (what Python's filelock uses on Unix, so vtx and huggingface_hub exclude each other).
class FileLock {
 public:
  FileLock(const fs::path& path, long timeout_s) {
    make_dirs(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(sys_error("cannot open lock file", path.string()));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        const std::string msg = sys_error("cannot lock", path.string());
        ::close(fd_);
        throw Error(msg);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::close(fd_);
        throw Error(path.string() + ": still locked by another download after " + std::to_string(timeout_s) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// snapshots/<commit>/<file> -> ../../blobs/<etag>, made atomically (temporary link + rename); a copy of the blob
// where the file system refuses symlinks.
void make_pointer(const fs::path& blob, const fs::path& pointer, const std::string& file) {
  make_dirs(pointer.parent_path());
  std::string target;
  for (size_t i = 0, n = 2 + static_cast<size_t>(std::count(file.begin(), file.end(), '/')); i < n; ++i) target += "../";
  target += "blobs/" + blob.filename().string();
  const fs::path tmp = pointer.parent_path() / ("." + pointer.filename().string() + "." + random_hex() + ".tmp");
  if (::symlink(target.c_str(), tmp.c_str()) == 0) {
    if (::rename(tmp.c_str(), pointer.c_str()) == 0) return;
    const std::string msg = sys_error("cannot create", pointer.string());
    ::unlink(tmp.c_str());
    throw Error(msg);
  }
  if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS && errno != EACCES)
    throw Error(sys_error("cannot create symlink", tmp.string()));
  std::error_code ec;
  fs::copy_file(blob, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec || ::rename(tmp.c_str(), pointer.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error(pointer.string() + ": cannot copy the blob (" + (ec ? ec.message() : std::string(std::strerror(errno))) + ")");
  }
}

// huggingface_hub warns (and goes on) when the disk looks too small for a download.
void warn_if_no_space(const fs::path& dir, int64_t need, const std::string& file) {
  std::error_code ec;
  const fs::space_info s = fs::space(dir, ec);
  if (!ec && need > 0 && s.available < static_cast<uintmax_t>(need))
    std::fprintf(stderr, "vtx: %s needs %.1f MB but only %.1f MB are free in %s\n", file.c_str(), need / 1e6,
                 static_cast<double>(s.available) / 1e6, dir.c_str());
}

// ---------------------------------------------------------------------------------------------- progress bar

class Progress {
 public:
  Progress(bool on, std::string name, int64_t total) : on_(on), name_(std::move(name)), total_(total) {}
  void update(int64_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && done < total_) return;
    last_ = now;
    print(done);
  }
  void finish(int64_t done) {
    if (!on_ || !printed_) return;
    print(done);
    std::fputc('\n', stderr);
  }

 private:
  void print(int64_t done) {
    printed_ = true;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r%s  %.1f/%.1f MB  %.1f MB/s   ", name_.c_str(), done / 1e6, total_ / 1e6,
                 s > 0 ? done / 1e6 / s : 0.0);
    std::fflush(stderr);
  }
  bool on_, printed_ = false;
  std::string name_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

// ---------------------------------------------------------------------------------------------- HTTP client

struct Head {
  enum Kind { Ok, EntryMissing, RevisionMissing, RepoMissing, Auth, Network, Bad } kind = Bad;
  std::string commit, etag, location, message;
  int64_t size = -1;
};

bool retryable_status(long s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

void backoff(int attempt) {
  const double s = std::min(4.0, 0.125 * static_cast<double>(1 << attempt));
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

class Client {
 public:
  Client(const HubOptions& o, std::string repo) : repo_(std::move(repo)) {
    endpoint_ = !o.endpoint.empty() ? o.endpoint : env("HF_ENDPOINT");
    if (endpoint_.empty()) endpoint_ = kDefaultEndpoint;
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    try {
      origin_ = io::http::origin_of(endpoint_);
    } catch (const Error&) {
      throw Error("hub endpoint '" + endpoint_ + "' (HF_ENDPOINT): not a URL");
    }
    token_ = find_token(o);
    etag_timeout_ = env_seconds("HF_HUB_ETAG_TIMEOUT", 10);
    download_timeout_ = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
    progress_ = o.progress && ::isatty(2) && !env_true(env("HF_HUB_DISABLE_PROGRESS_BARS"));
  }
  const std::string& endpoint() const { return endpoint_; }
  bool progress() const { return progress_; }

  // Headers for a request to `url`: the token only goes to the endpoint's own scheme://host:port.
  std::vector<std::string> headers_for(const std::string& url) const {
    std::vector<std::string> h = {"User-Agent: vtx/0.1; hf_hub-compatible", "Accept-Encoding: identity"};
    if (!token_.empty() && io::http::origin_of(url) == origin_) h.push_back("Authorization: Bearer " + token_);
    return h;
  }

  std::string resolve_url(const std::string& rev, const std::string& file) const {
    return endpoint_ + "/" + repo_ + "/resolve/" + io::http::percent_encode(rev, false) + "/" +
           io::http::percent_encode(file, true);
  }

  // HEAD {endpoint}/{repo}/resolve/{rev}/{file}: relative redirects (renamed repos) are followed, an absolute one
  // (CDN) is the download location. Retries 429/5xx/connection errors `retries` times.
  Head head(const std::string& rev, const std::string& file, int retries) const {
    const std::string first = resolve_url(rev, file);
    Head h;
    for (int attempt = 0;; ++attempt) {
      std::string url = first;
      io::http::Response r;
      for (int hop = 0;; ++hop) {
        io::http::Request q;
        q.method = "HEAD";
        q.url = url;
        q.headers = headers_for(url);
        q.connect_timeout_s = etag_timeout_;
        q.total_timeout_s = etag_timeout_;
        r = io::http::perform(q);
        const std::string loc = r.header("location");
        if (!r.transport_error && r.status >= 300 && r.status < 400 && !loc.empty() && io::http::is_relative_location(loc)) {
          if (hop >= kMaxRedirects) break;
          url = io::http::resolve_url(url, loc);
          continue;
        }
        break;
      }
      h = classify(r, url, rev, file);
      if (h.kind == Head::Network && attempt < retries) {
        backoff(attempt);
        continue;
      }
      return h;
    }
  }

  // GET `url` into the open file `fd` (empty), following redirects (the token only to the endpoint's host),
  // resuming with Range after a cut connection. Returns the number of bytes written; `hash` sees every byte.
  int64_t get(const std::string& first_url, int fd, io::Sha256* hash, const std::string& display, int64_t expected) const {
    int64_t written = 0;
    std::unique_ptr<io::Sha256> fresh;
    std::string last_error;
    for (int attempt = 0; attempt <= kMaxRetries; ++attempt) {
      if (attempt > 0) backoff(attempt - 1);
      std::string url = first_url;
      io::http::Response r;
      Progress bar(progress_, display, expected);
      bool io_failed = false;
      for (int hop = 0; hop <= kMaxRedirects; ++hop) {
        io::http::Request q;
        q.method = "GET";
        q.url = url;
        q.headers = headers_for(url);
        if (written > 0) q.headers.push_back("Range: bytes=" + std::to_string(written) + "-");
        q.connect_timeout_s = download_timeout_;
        q.low_speed_time_s = download_timeout_;
        bool bad_range = false;
        q.on_start = [&](const io::http::Response& resp) {
          if (resp.status == 206) {  // must continue exactly where the file ends
            const std::string cr = resp.header("content-range");  // "bytes N-M/T"
            if (cr.rfind("bytes " + std::to_string(written) + "-", 0) == 0) return true;
            return bad_range = true, false;
          }
          // A full body: start again from zero.
          if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) return io_failed = true, false;
          written = 0;
          if (hash) *hash = io::Sha256();
          return true;
        };
        q.sink = [&](const char* p, size_t n) {
          if (expected >= 0 && written + static_cast<int64_t>(n) > expected) return false;  // more than announced
          size_t off = 0;
          while (off < n) {
            const ssize_t k = ::write(fd, p + off, n - off);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) return io_failed = true, false;
            off += static_cast<size_t>(k);
          }
          if (hash) hash->update(p, n);
          written += static_cast<int64_t>(n);
          bar.update(written);
          return true;
        };
        r = io::http::perform(q);
        if (bad_range) throw Error(display + ": " + url + " answered a Range request with Content-Range '" +
                                   r.header("content-range") + "'");
        const std::string loc = r.header("location");
        if (!r.transport_error && r.status >= 300 && r.status < 400 && !loc.empty()) {
          url = io::http::resolve_url(url, loc);
          continue;
        }
        break;
      }
      bar.finish(written);
      if (io_failed) throw Error(display + ": cannot write the download (" + std::strerror(errno) + ")");
      if (r.aborted_by_sink) throw Error(display + ": " + url + " sent more than the " + std::to_string(expected) + " bytes announced");
      if (!r.transport_error && (r.status == 200 || r.status == 206)) return written;
      if (!r.transport_error && !retryable_status(r.status))
        throw Error(display + ": " + url + ": HTTP " + std::to_string(r.status) + status_hint(r.status));
      last_error = r.transport_error ? r.error : "HTTP " + std::to_string(r.status);
    }
    throw Error(display + ": download failed after " + std::to_string(kMaxRetries + 1) + " attempts (" + last_error + ")");
  }

  // GET a small JSON document from the endpoint (the file list of a revision); nullopt on any failure.
  std::optional<nlohmann::json> get_json(const std::string& url) const {
    io::http::Request q;
    q.url = url;
    q.headers = headers_for(url);
    q.connect_timeout_s = etag_timeout_;
    q.total_timeout_s = etag_timeout_;
    std::string body;
    q.sink = [&](const char* p, size_t n) {
      body.append(p, n);
      return body.size() < (8u << 20);
    };
    const io::http::Response r = io::http::perform(q);
    if (r.transport_error || r.status != 200) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  std::string token_advice() const {
    return token_.empty() ? "no token was sent: set HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), or write it to " + token_path() +
                                " (huggingface-cli login)"
                          : "the token sent (HF_TOKEN, HUGGING_FACE_HUB_TOKEN or " + token_path() +
                                ") has no access to it";
  }

 private:
  static std::string status_hint(long s) {
    if (s == 401 || s == 403) return " (access denied)";
    if (s == 404) return " (not found)";
    return "";
  }

  Head classify(const io::http::Response& r, const std::string& url, const std::string& rev, const std::string& file) const {
    Head h;
    const std::string who = repo_ + "@" + rev;
    if (r.transport_error) {
      h.kind = Head::Network;
      h.message = who + ": cannot reach " + endpoint_ + " for " + file + " (" + r.error + ")";
      return h;
    }
    const std::string code = r.header("x-error-code");
    h.commit = r.header("x-repo-commit");
    if ((r.status >= 200 && r.status < 300) || (r.status >= 300 && r.status < 400)) {
      h.etag = normalize_etag(!r.header("x-linked-etag").empty() ? r.header("x-linked-etag") : r.header("etag"));
      std::string size = r.header("x-linked-size");
      if (size.empty()) size = r.header("content-length");
      const std::string loc = r.header("location");
      h.location = (r.status >= 300 && !loc.empty()) ? io::http::resolve_url(url, loc) : url;
      h.kind = Head::Bad;
      if (!is_commit(h.commit))
        h.message = who + ": " + url + " sent no valid X-Repo-Commit header: is " + endpoint_ + " a Hugging Face hub?";
      else if (!safe_etag(h.etag))
        h.message = who + ": " + url + " sent no usable ETag / X-Linked-Etag ('" + h.etag + "')";
      else if (size.empty() || size.find_first_not_of("0123456789") != std::string::npos || size.size() > 18)
        h.message = who + ": " + url + " sent no file size (X-Linked-Size / Content-Length)";
      else {
        h.size = std::stoll(size);
        h.kind = Head::Ok;
      }
      return h;
    }
    const std::string server_msg = r.header("x-error-message");
    const std::string st = "HTTP " + std::to_string(r.status) + (server_msg.empty() ? "" : ": " + server_msg);
    if (retryable_status(r.status)) {
      h.kind = Head::Network;
      h.message = who + ": " + endpoint_ + " answered " + st + " for " + file;
    } else if (code == "EntryNotFound" || (r.status == 404 && code.empty() && is_commit(h.commit))) {
      h.kind = Head::EntryMissing;
      h.message = who + ": the repo has no file '" + file + "' (" + st + ")";
    } else if (code == "RevisionNotFound") {
      h.kind = Head::RevisionMissing;
      h.message = repo_ + ": revision '" + rev + "' not found on " + endpoint_ + " (" + st + ")";
    } else if (code == "RepoNotFound") {  // the hub answers 401 for missing and for private repos alike
      h.kind = Head::RepoMissing;
      h.message = repo_ + ": repository not found on " + endpoint_ + " (" + st + "); if it is private or gated, " + token_advice();
    } else if (code == "GatedRepo" || r.status == 401 || r.status == 403) {
      h.kind = Head::Auth;
      h.message = repo_ + ": " + endpoint_ + " answered " + st + "; the repo may be gated or private; " + token_advice() +
                  (code == "GatedRepo" || r.status == 403 ? "; for a gated repo, accept its conditions on " + endpoint_ + "/" + repo_
                                                          : "");
    } else if (r.status == 404) {
      h.kind = Head::RepoMissing;
      h.message = repo_ + ": repository not found on " + endpoint_ + " (" + st + "); if it is private, " + token_advice();
    } else {
      h.kind = Head::Bad;
      h.message = who + ": " + url + ": " + st;
    }
    return h;
  }

  std::string repo_, endpoint_, token_;
  io::http::Origin origin_;
  long etag_timeout_ = 10, download_timeout_ = 10;
  bool progress_ = false;
};

// ---------------------------------------------------------------------------------------------- resolver

struct HubId {
  std::string repo, revision;
};

class Resolver {
 public:
  Resolver(HubId id, const HubOptions& o) : id_(std::move(id)), o_(o) {
    cache_ = hub_cache_dir(o.cache_dir);
    const size_t slash = id_.repo.find('/');
    folder_ = "models--" + id_.repo.substr(0, slash) + "--" + id_.repo.substr(slash + 1);
    storage_ = fs::path(cache_) / folder_;
    offline_ = o.offline || offline_from_env();
  }

  ResolvedModel run() {
    res_.from_hub = true;
    res_.repo_id = id_.repo;
    res_.revision = id_.revision;
    res_.cache_dir = cache_;
    res_.repo_cache = storage_.string();
    if (offline_) {
      const auto c = cached_commit();
      std::string problem = c ? "" : "no refs/" + id_.revision + " and no snapshot";
      std::vector<std::string> files;
      if (c) files = cached_files(*c, false, &problem);
      if (!problem.empty())
        throw Error(id_.repo + "@" + id_.revision + ": not in the cache " + storage_.string() + " (" + problem +
                    "), and offline mode is on (--offline, HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)");
      return done(*c, files);
    }
    if (!o_.refresh) {  // a complete snapshot of the revision: no request at all
      if (const auto c = cached_commit()) {
        std::string problem;
        std::vector<std::string> files = cached_files(*c, true, &problem);
        if (problem.empty()) return done(*c, files);
      }
    }
    client_.emplace(o_, id_.repo);
    std::vector<std::string> files;
    fetch("config.json", false);
    files.push_back("config.json");
    if (fetch("preprocessor_config.json", true)) files.push_back("preprocessor_config.json");
    if (fetch("model.safetensors", true)) {
      files.push_back("model.safetensors");
    } else if (fetch("model.safetensors.index.json", true)) {
      files.push_back("model.safetensors.index.json");
      for (const std::string& shard : shards(snapshot() / "model.safetensors.index.json")) {
        fetch(shard, false);
        files.push_back(shard);
      }
    } else if (fallback_) {
      throw Error(fallback_error_ + "; and the cache " + storage_.string() + " has no model.safetensors or "
                  "model.safetensors.index.json for " + id_.repo + "@" + id_.revision);
    } else {
      throw Error(id_.repo + "@" + id_.revision + ": no model.safetensors or model.safetensors.index.json; vtx loads "
                  "safetensors checkpoints only (" + repo_listing() + ")");
    }
    return done(commit_, files);
  }

 private:
  fs::path snapshot() const { return storage_ / "snapshots" / commit_; }

  ResolvedModel done(const std::string& commit, const std::vector<std::string>& files) {
    res_.commit = commit;
    res_.dir = (storage_ / "snapshots" / commit).string();
    res_.files = files;
    return res_;
  }

  // The commit of the requested revision in the cache: the revision itself, or refs/<revision>.
  std::optional<std::string> cached_commit() const {
    if (is_commit(id_.revision)) return id_.revision;
    const auto s = read_small(storage_ / "refs" / id_.revision);
    if (!s) return std::nullopt;
    std::string c = clean_token(*s);
    if (!is_commit(c)) return std::nullopt;
    return c;
  }

  bool cached(const std::string& commit, const std::string& file) const {
    return fs::exists(storage_ / "snapshots" / commit / file);  // follows the symlink: a dangling one is absent
  }
  bool known_missing(const std::string& commit, const std::string& file) const {
    return fs::exists(storage_ / ".no_exist" / commit / file);
  }

  // The files of a usable snapshot, or *problem set. strict: the processor config must be known (present or
  // recorded in .no_exist); otherwise config.json and the weights are enough.
  std::vector<std::string> cached_files(const std::string& c, bool strict, std::string* problem) const {
    std::vector<std::string> files;
    const fs::path snap = storage_ / "snapshots" / c;
    if (!cached(c, "config.json")) return *problem = "snapshot " + c + " has no config.json", files;
    files.push_back("config.json");
    if (cached(c, "preprocessor_config.json")) files.push_back("preprocessor_config.json");
    else if (strict && !known_missing(c, "preprocessor_config.json"))
      return *problem = "snapshot " + c + " has no preprocessor_config.json", files;
    if (cached(c, "model.safetensors")) {
      files.push_back("model.safetensors");
    } else if (cached(c, "model.safetensors.index.json")) {
      files.push_back("model.safetensors.index.json");
      for (const std::string& s : shards(snap / "model.safetensors.index.json")) {
        if (!cached(c, s)) return *problem = "snapshot " + c + " lacks the shard " + s, files;
        files.push_back(s);
      }
    } else {
      return *problem = "snapshot " + c + " has no model.safetensors or model.safetensors.index.json", files;
    }
    return files;
  }

  // The shard files named by an index, checked to be plain file names.
  std::vector<std::string> shards(const fs::path& index) const {
    std::ifstream f(index);
    if (!f) throw Error(index.string() + ": cannot open");
    nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": not a safetensors index (no weight_map object)");
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(index.string() + ": weight_map entry '" + it.key() + "' is not a string");
      const std::string s = it.value().get<std::string>();
      const std::string p = file_name_problem(s);
      if (!p.empty()) throw Error(id_.repo + ": model.safetensors.index.json names the shard '" + s + "': " + p + "; refused");
      if (seen.insert(s).second) out.push_back(s);
    }
    if (out.empty()) throw Error(index.string() + ": weight_map is empty");
    return out;
  }

  void write_ref(const std::string& commit) {
    if (id_.revision == commit) return;
    const fs::path ref = storage_ / "refs" / id_.revision;
    const auto cur = read_small(ref);
    if (cur && *cur == commit) return;
    write_atomic(ref, commit);
  }

  // One file of the snapshot. Returns false when the repo does not have it (optional files only).
  bool fetch(const std::string& file, bool optional) {
    const std::optional<std::string> cached_c = commit_.empty() ? cached_commit() : std::optional<std::string>(commit_);
    const bool have = cached_c && cached(*cached_c, file);
    if (fallback_) {  // the hub could not be reached: the cached snapshot only
      if (have) return true;
      if (optional) return false;  // as transformers does: an optional file that cannot be fetched is absent
      throw Error(fallback_error_ + "; and " + file + " of " + id_.repo + "@" + id_.revision + " is not in the cache " +
                  storage_.string());
    }
    const Head h = client_->head(commit_.empty() ? id_.revision : commit_, file, have ? 0 : kMaxRetries);
    switch (h.kind) {
      case Head::Ok:
        if (commit_.empty()) {
          commit_ = h.commit;
          write_ref(commit_);
        } else if (h.commit != commit_) {
          throw Error(id_.repo + ": " + file + " is at commit " + h.commit + ", expected " + commit_);
        }
        store(h, file);
        return true;
      case Head::EntryMissing:
        if (is_commit(h.commit)) {
          touch(storage_ / ".no_exist" / h.commit / file);
          if (commit_.empty()) {
            commit_ = h.commit;
            write_ref(commit_);
          }
        }
        if (optional) return false;
        throw Error(h.message);
      case Head::RevisionMissing:
        throw Error(h.message);
      default:  // network, 5xx, 401/403, repo not found, odd answer: fall back to the cache as huggingface_hub does
        if (cached_c && (have || (optional && known_missing(*cached_c, file)))) {
          fallback_ = true;
          fallback_error_ = h.message;
          res_.from_cache_fallback = true;
          if (commit_.empty()) commit_ = *cached_c;
          std::fprintf(stderr, "vtx: %s; using the cached snapshot %s\n", h.message.c_str(), commit_.c_str());
          return have;
        }
        throw Error(h.message + (h.kind == Head::Network || h.kind == Head::Bad
                                     ? "; and " + file + " of " + id_.repo + "@" + id_.revision + " is not in the cache " +
                                           storage_.string()
                                     : ""));
    }
  }

  // Blob + snapshot pointer for a file whose metadata is known.
  void store(const Head& h, const std::string& file) {
    const fs::path blob = storage_ / "blobs" / h.etag, pointer = storage_ / "snapshots" / commit_ / file;
    if (fs::exists(pointer)) return;
    make_dirs(blob.parent_path());
    FileLock lock(fs::path(cache_) / ".locks" / folder_ / (h.etag + ".lock"), 3600);
    if (!fs::exists(blob)) download(h, blob, file);
    if (!fs::exists(pointer)) make_pointer(blob, pointer, file);
  }

  void download(const Head& h, const fs::path& blob, const std::string& file) {
    const fs::path tmp = blob.parent_path() / (h.etag + "." + random_hex() + ".incomplete");
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);  // the umask decides, as in Python
    if (fd < 0) throw Error(sys_error("cannot create", tmp.string()));
    warn_if_no_space(blob.parent_path(), h.size, file);
    try {
      std::optional<io::Sha256> hash;
      if (is_sha256(h.etag)) hash.emplace();  // LFS: the etag is the sha256 of the content
      const int64_t n = client_->get(h.location, fd, hash ? &*hash : nullptr, file, h.size);
      if (n != h.size)
        throw Error(id_.repo + ": " + file + ": downloaded " + std::to_string(n) + " bytes, the hub announced " +
                    std::to_string(h.size));
      if (hash) {
        const std::string got = hash->hex_digest();
        if (got != h.etag)
          throw Error(id_.repo + ": " + file + ": sha256 of the download is " + got + ", the hub announced " + h.etag +
                      "; refused");
      }
      if (::fsync(fd) != 0) throw Error(sys_error("cannot write", tmp.string()));
      ::close(fd);
      if (::rename(tmp.c_str(), blob.c_str()) != 0) throw Error(sys_error("cannot rename onto", blob.string()));
      res_.bytes_downloaded += n;
    } catch (...) {
      ::close(fd);  // harmless EBADF when already closed
      ::unlink(tmp.c_str());
      throw;
    }
  }

  // "the repo has: a, b, c" from the hub API, for the no-safetensors error.
  std::string repo_listing() const {
    const std::string url = client_->endpoint() + "/api/models/" + id_.repo + "/revision/" +
                            io::http::percent_encode(commit_.empty() ? id_.revision : commit_, false);
    const auto j = client_->get_json(url);
    if (!j || !j->is_object() || !j->contains("siblings") || !(*j)["siblings"].is_array()) return "the file list is unavailable";
    std::string names;
    for (const auto& s : (*j)["siblings"])
      if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string())
        names += (names.empty() ? "" : ", ") + s["rfilename"].get<std::string>();
    return "the repo has: " + (names.empty() ? std::string("no files") : names);
  }

  HubId id_;
  HubOptions o_;
  std::string cache_, folder_;
  fs::path storage_;
  bool offline_ = false;
  std::optional<Client> client_;
  std::string commit_;
  bool fallback_ = false;
  std::string fallback_error_;
  ResolvedModel res_;
};

// Splits "org/name[@revision]" and checks both parts; throws with `arg` in the message.
HubId parse_id(const std::string& arg, const HubOptions& o) {
  HubId id;
  const size_t at = arg.find('@');
  id.repo = arg.substr(0, at);
  std::string rev = at == std::string::npos ? "" : arg.substr(at + 1);
  if (at != std::string::npos && rev.empty()) throw Error(arg + ": empty revision after '@'");
  if (!o.revision.empty()) {
    if (!rev.empty() && rev != o.revision)
      throw Error(arg + ": the id names revision '" + rev + "' but --revision is '" + o.revision + "'");
    rev = o.revision;
  }
  id.revision = rev.empty() ? "main" : rev;
  const std::string p = revision_problem(id.revision);
  if (!p.empty()) throw Error(arg + ": bad revision '" + id.revision + "': " + p);
  return id;
}

bool looks_like_path(const std::string& s) {
  return s.empty() || s.front() == '/' || s.front() == '.' || s.front() == '~' || s.find('\\') != std::string::npos;
}

}  // namespace

std::string hub_cache_dir(const std::string& override_dir) {
  if (!override_dir.empty()) return expand_user(override_dir);
  std::string c = env("HF_HUB_CACHE");
  if (c.empty()) c = env("HUGGINGFACE_HUB_CACHE");
  return c.empty() ? hf_home() + "/hub" : expand_user(c);
}

HubOptions hub_options(const LoadOptions& opt) {
  HubOptions h;
  h.revision = opt.revision;
  h.cache_dir = opt.cache_dir;
  h.offline = opt.offline;
  return h;
}

bool is_hub_id(const std::string& s) {
  std::error_code ec;
  if (fs::is_directory(s, ec) || looks_like_path(s)) return false;
  const size_t at = s.find('@');
  return repo_id_problem(s.substr(0, at)).empty() && (at == std::string::npos || revision_problem(s.substr(at + 1)).empty());
}

ResolvedModel resolve_model(const std::string& arg, const HubOptions& opt) {
  std::error_code ec;
  if (fs::is_directory(arg, ec)) {
    ResolvedModel r;
    r.dir = arg;
    return r;
  }
  if (looks_like_path(arg) || fs::exists(arg, ec)) throw Error(arg + ": not a model folder");
  const std::string repo = arg.substr(0, arg.find('@'));
  const std::string p = repo_id_problem(repo);
  if (!p.empty()) throw Error(arg + ": not a model folder, nor a hub id org/name[@revision] (" + p + ")");
  return Resolver(parse_id(arg, opt), opt).run();
}

ResolvedModel download_model(const std::string& id, const HubOptions& opt) {
  std::error_code ec;
  if (fs::is_directory(id, ec)) throw Error(id + ": a local folder, not a hub id (org/name[@revision])");
  HubOptions o = opt;
  o.refresh = true;
  return resolve_model(id, o);
}

}  // namespace vtx
