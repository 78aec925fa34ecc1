#pragma once
// Test harness for `vtx serve`: starts the built CLI on an ephemeral loopback port, and a small synchronous
// HTTP client on Boost.Beast. Every wait is bounded.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace vtx::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A `vtx serve` child process. The ready line on stdout gives the port; stderr (the request log) goes to a file.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& args, int ready_timeout_s = 120) {
    log_path_ = temp_dir() + "/serve-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + ".log";
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int err = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(out[0]);
      std::vector<std::string> full = {VTX_CLI_PATH, "serve"};
      full.insert(full.end(), args.begin(), args.end());
      bool has_port = false;
      for (const auto& a : args) has_port |= a == "--port";
      if (!has_port) {
        full.push_back("--port");
        full.push_back("0");
      }
      std::vector<char*> argv;
      for (auto& a : full) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_fd_ = out[0];
    try {
      wait_ready(ready_timeout_s);
    } catch (...) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      ::close(out_fd_);
      throw;
    }
  }

  void wait_ready(int ready_timeout_s) {
    std::string line;
    const double deadline = now_ms() + ready_timeout_s * 1000.0;
    while (line.find('\n') == std::string::npos) {
      pollfd p{out_fd_, POLLIN, 0};
      const int left = static_cast<int>(deadline - now_ms());
      if (left <= 0 || ::poll(&p, 1, left) <= 0) throw std::runtime_error("vtx serve: no ready line; log:\n" + log());
      char buf[512];
      const ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("vtx serve exited before it was ready; log:\n" + log());
      line.append(buf, static_cast<size_t>(n));
    }
    ready_line_ = line.substr(0, line.find('\n'));
    const auto colon = ready_line_.rfind(':', ready_line_.find(" (models"));
    port_ = std::stoi(ready_line_.substr(colon + 1));
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& ready_line() const { return ready_line_; }
  std::string log() const {
    try {
      return read_file(log_path_);
    } catch (...) {
      return "";
    }
  }
  // Sends `sig` and waits (bounded) for the exit; returns the exit code, or -1 on timeout / killed.
  int stop(int sig = SIGTERM, int timeout_s = 60) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, sig);
    return wait_exit(timeout_s);
  }
  int wait_exit(int timeout_s) {
    const double deadline = now_ms() + timeout_s * 1000.0;
    while (now_ms() < deadline) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  // Resident set size in kB (/proc/<pid>/status VmRSS).
  long rss_kb() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string k;
    long v = 0;
    while (f >> k) {
      if (k == "VmRSS:") {
        f >> v;
        return v;
      }
    }
    return -1;
  }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  pid_t pid_ = -1;
  int out_fd_ = -1, port_ = 0, exit_code_ = -1;
  std::string log_path_, ready_line_;
};

struct HttpResult {
  int status = 0;  // 0: no answer (connection failed / closed / timed out)
  std::string body, error;
  std::map<std::string, std::string> headers;
  double ms = 0;
  nlohmann::json json() const {
    try {
      return nlohmann::json::parse(body);
    } catch (...) {
      return nlohmann::json();
    }
  }
};

// One connection (keep-alive); reconnects when the server closed it. Every call is bounded by timeout_ms
// (Beast stream timeouts on a private io_context).
class HttpClient {
 public:
  explicit HttpClient(int port, int timeout_ms = 60000) : port_(port), timeout_ms_(timeout_ms) {}

  HttpResult request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    HttpResult r;
    const double t0 = now_ms();
    try {
      if (!stream_) connect();
      http::request<http::string_body> req(http::string_to_verb(method), target, 11);
      req.set(http::field::host, "127.0.0.1");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      if (method != "GET" || !body.empty()) req.prepare_payload();
      beast::error_code wec, rec;
      stream_->expires_after(std::chrono::milliseconds(timeout_ms_));
      // Write and read at the same time: a server answering early (413) may stop reading our body.
      beast::flat_buffer buf;
      http::response_parser<http::string_body> p;
      p.body_limit(1ull << 30);
      bool wrote = false, read = false;
      http::async_write(*stream_, req, [&](beast::error_code ec, std::size_t) { wec = ec; wrote = true; });
      http::async_read(*stream_, buf, p, [&](beast::error_code ec, std::size_t) {
        rec = ec;
        read = true;
        if (!wrote) stream_->socket().shutdown(tcp::socket::shutdown_send, ec);
      });
      ioc_.restart();
      while (!(read && wrote) && ioc_.run_one() > 0) {
        if (read && !wrote) {  // answered before our body was sent: stop sending
          beast::error_code ignored;
          stream_->socket().cancel(ignored);
        }
      }
      if (rec) {
        r.error = (wec ? "write: " + wec.message() + "; " : "") + "read: " + rec.message();
        stream_.reset();
        r.ms = now_ms() - t0;
        return r;
      }
      auto& res = p.get();
      r.status = res.result_int();
      r.body = res.body();
      for (const auto& f : res) r.headers[std::string(f.name_string())] = std::string(f.value());
      if (!res.keep_alive() || wec) stream_.reset();
    } catch (const std::exception& e) {
      r.error = e.what();
      stream_.reset();
    }
    r.ms = now_ms() - t0;
    return r;
  }

  void close() { stream_.reset(); }

 private:
  void connect() {
    stream_ = std::make_unique<beast::tcp_stream>(ioc_);
    stream_->expires_after(std::chrono::milliseconds(timeout_ms_));
    beast::error_code cec;
    stream_->async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)),
                           [&](beast::error_code ec) { cec = ec; });
    ioc_.restart();
    ioc_.run();
    if (cec) {
      stream_.reset();
      throw std::runtime_error("connect: " + cec.message());
    }
  }
  net::io_context ioc_;
  std::unique_ptr<beast::tcp_stream> stream_;
  int port_, timeout_ms_;
};

inline HttpResult http_once(int port, const std::string& method, const std::string& target, const std::string& body = "",
                            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  HttpClient c(port);
  return c.request(method, target, body, headers);
}

inline bool under_asan() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

}  // namespace vtx::test
