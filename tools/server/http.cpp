// The HTTP side of `vtx serve`, on Boost.Beast / Asio: accepting, reading requests under the header, body and
// idle timeouts and the size limits, handing them to the Service, writing answers, noticing clients that have
// gone, the request log, and the SIGTERM/SIGINT drain.
#include <malloc.h>
#include <sys/socket.h>

#include <utility>  // before Boost 1.74 asio: its awaitable.hpp uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "engine.hpp"
#include "options.hpp"
#include "service.hpp"
#include "util.hpp"
#include "vtx/error.hpp"
#include "vtx/model.hpp"

namespace vtx::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Session;

struct Server : std::enable_shared_from_this<Server> {
  const ServerOptions& opt;
  Metrics& metrics;
  Service& service;
  Engine& engine;
  net::io_context& ioc;
  std::optional<tcp::acceptor> acceptor;  // reset before the io_context goes
  std::atomic<bool> draining{false};
  std::atomic<int64_t> sessions{0};
  std::atomic<int64_t> answered{0}, accepted{0}, abandoned{0};
  std::mutex reg_mu;
  std::list<std::weak_ptr<Session>> registry;
  std::mutex log_mu;

  Server(const ServerOptions& o, Metrics& m, Service& s, Engine& e, net::io_context& io)
      : opt(o), metrics(m), service(s), engine(e), ioc(io) {
    acceptor.emplace(net::make_strand(io));
  }

  void accept();
  void begin_drain();
  void log(const std::string& remote, const std::string& method, const std::string& target, int status, size_t bytes,
           double ms, const std::string& model, const std::string& error_type);
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<Server> srv, bool reject)
      : keep_(std::move(srv)), srv_(*keep_), stream_(std::move(socket)), timer_(stream_.get_executor()), reject_(reject) {
    ++srv_.sessions;
    ++srv_.metrics.connections;
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() {
    {
      std::lock_guard<std::mutex> l(srv_.reg_mu);
      srv_.registry.erase(self_it_);
    }
    --srv_.metrics.connections;
    --srv_.sessions;
  }

  void start() {
    {
      std::lock_guard<std::mutex> l(srv_.reg_mu);
      self_it_ = srv_.registry.insert(srv_.registry.end(), weak_from_this());
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->reject_) {
        self->t_start_ = Clock::now();
        self->method_ = "-";
        self->target_ = "-";
        self->reply_and_linger(error_response(503, "too_many_connections",
                                              "too many open connections (--max-connections " +
                                                  std::to_string(self->srv_.opt.max_connections) + ")"));
        return;
      }
      self->read_header();
    });
  }

  // Drain: close connections that have no request in progress.
  void drain() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_ == Phase::Idle) self->close();
    });
  }

 private:
  enum class Phase { Idle, Reading, Processing, Writing, Lingering, Closed };

  // Keep-alive: wait up to the idle timeout for the next request's first byte, then read it under the
  // header timeout. A new connection goes straight to the header timeout.
  void wait_next() {
    phase_ = Phase::Idle;
    if (srv_.draining) return close();
    if (buffer_.size() > 0) return read_header();  // pipelined request already buffered
    timer_.expires_after(std::chrono::milliseconds(srv_.opt.idle_timeout_ms));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->phase_ == Phase::Idle) self->close();
    });
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->timer_.cancel();
      if (ec || self->phase_ != Phase::Idle) return self->close();
      self->read_header();
    });
  }

  void read_header() {
    phase_ = Phase::Idle;  // until the header is complete, the request is not accepted
    if (srv_.draining) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opt.max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(srv_.opt.max_payload_bytes));
    stream_.expires_after(std::chrono::milliseconds(srv_.opt.header_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (phase_ == Phase::Closed) return;
    t_start_ = Clock::now();
    if (ec) {
      if (ec == http::error::body_limit) {  // Content-Length above the limit: known from the header
        method_ = target_ = "-";
        if (parser_) {
          method_ = std::string(parser_->get().method_string());
          target_ = std::string(parser_->get().target());
        }
        // (the header is not complete yet, so read the declared length from the field, not content_length())
        std::uint64_t declared = 0;
        if (parser_) {
          const auto v = parser_->get()[http::field::content_length];
          declared = std::strtoull(std::string(v).c_str(), nullptr, 10);
        }
        return reply_and_linger(payload_too_large(declared));
      }
      if (ec == http::error::header_limit) {
        method_ = target_ = "-";
        return reply_and_linger(error_response(431, "headers_too_large",
                                               "request headers exceed " + std::to_string(srv_.opt.max_header_bytes) + " bytes"));
      }
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
          ec == net::error::connection_reset || ec == net::error::operation_aborted || ec == net::error::bad_descriptor)
        return close();
      method_ = target_ = "-";
      return reply_and_linger(error_response(400, "invalid_http", "malformed HTTP request: " + ec.message()));
    }
    phase_ = Phase::Reading;
    auto& req = parser_->get();
    method_ = std::string(req.method_string());
    target_ = std::string(req.target());
    if (srv_.draining) {  // read, and answered: counted as accepted
      ++srv_.accepted;
      accepted_req_ = true;
      return reply_and_linger(error_response(503, "unavailable", "the server is shutting down"));
    }
    if (auto cl = parser_->content_length(); cl && *cl > static_cast<std::uint64_t>(srv_.opt.max_payload_bytes))
      return reply_and_linger(payload_too_large(*cl));
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  Response payload_too_large(std::uint64_t n) const {
    return error_response(413, "payload_too_large",
                          "request body of " + (n ? std::to_string(n) + " bytes" : std::string("more bytes")) +
                              " exceeds --max-payload-bytes " + std::to_string(srv_.opt.max_payload_bytes));
  }

  void read_body() {
    stream_.expires_after(std::chrono::milliseconds(std::max(srv_.opt.header_timeout_ms, srv_.opt.request_timeout_ms)));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (phase_ == Phase::Closed) return;
    if (ec == http::error::body_limit) return reply_and_linger(payload_too_large(0));
    if (ec) {
      if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
          ec == net::error::connection_reset || ec == net::error::operation_aborted)
        return close();
      return reply_and_linger(error_response(400, "invalid_http", "malformed HTTP request body: " + ec.message()));
    }
    stream_.expires_never();
    phase_ = Phase::Processing;
    ++srv_.accepted;
    accepted_req_ = true;
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    Request r;
    r.method = head_ ? "GET" : method_;
    r.target = target_;
    r.content_type = std::string(req[http::field::content_type]);
    r.authorization = std::string(req[http::field::authorization]);
    r.body = std::move(req.body());
    parser_.reset();
    std::weak_ptr<Session> weak = weak_from_this();
    auto self = shared_from_this();
    pending_ = srv_.service.handle(std::move(r), [self](Response resp) {
      net::post(self->stream_.get_executor(),
                [self, resp = std::move(resp)]() mutable { self->on_response(std::move(resp)); });
    });
    if (pending_->done()) return;  // answered already (posted)
    timer_.expires_after(std::chrono::milliseconds(srv_.opt.request_timeout_ms));
    timer_.async_wait([self](beast::error_code ec) {
      if (ec || self->phase_ != Phase::Processing) return;
      self->pending_->answer(error_response(503, "timeout",
                                            "request not answered within --request-timeout " +
                                                std::to_string(self->srv_.opt.request_timeout_ms) + " ms"));
    });
    watch_client();
  }

  // While the request is processed, notice a client that closes its connection: its work is dropped.
  void watch_client() {
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (ec || self->phase_ != Phase::Processing) return;
      char c;
      const ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // a pipelined request: stop watching
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch_client();
      self->pending_->cancel();
      self->timer_.cancel();
      self->finish_log(499, 0, "", "client_closed");
      self->close();
    });
  }

  void on_response(Response resp) {
    if (phase_ != Phase::Processing) return;
    timer_.cancel();
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // the client watch
    write(std::move(resp), keep_alive_ && !srv_.draining, false);
  }

  void write(Response resp, bool keep_alive, bool linger) {
    phase_ = Phase::Writing;
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(resp.status), 11);
    res->set(http::field::server, "vtx");
    res->set(http::field::content_type, resp.content_type);
    for (const auto& [k, v] : resp.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    const size_t bytes = resp.body.size();
    res->body() = std::move(resp.body);
    res->prepare_payload();
    if (head_) res->body().clear();  // Content-Length stays that of the GET answer
    res_status_ = resp.status;
    res_model_ = resp.model;
    res_error_ = resp.error_type;
    res_bytes_ = bytes;
    stream_.expires_after(std::chrono::milliseconds(std::max(srv_.opt.request_timeout_ms, 10000)));
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive, linger](beast::error_code ec, std::size_t) {
      self->finish_log(self->res_status_, self->res_bytes_, self->res_model_, self->res_error_);
      if (ec) return self->close();
      if (linger) return self->linger();
      if (!keep_alive) return self->close();
      self->head_ = false;
      self->wait_next();
    });
  }

  // An answer sent before the body was read (413, 431, 400, 503): say so, then read and discard what the
  // client is still sending for a short while, so that it can read the answer instead of a reset.
  void reply_and_linger(Response resp) { write(std::move(resp), false, true); }

  void linger() {
    phase_ = Phase::Lingering;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    lingered_ = 0;
    stream_.expires_after(std::chrono::milliseconds(2000));
    discard();
  }

  void discard() {
    if (!scratch_) scratch_ = std::make_unique<std::array<char, 16384>>();
    stream_.async_read_some(net::buffer(*scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > (static_cast<size_t>(64) << 20)) return self->close();
      self->discard();
    });
  }

  void finish_log(int status, size_t bytes, const std::string& model, const std::string& error_type) {
    const double ms = ms_since(t_start_);
    const std::string route = Service::route_of(method_, target_);
    srv_.metrics.request(route, status, ms / 1e3);
    if (accepted_req_) ++(status == 499 ? srv_.abandoned : srv_.answered);
    accepted_req_ = false;
    srv_.log(remote_, method_, target_, status, bytes, ms, model, error_type);
  }

  void close() {
    if (phase_ == Phase::Closed) return;
    phase_ = Phase::Closed;
    timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  std::shared_ptr<Server> keep_;  // the server state outlives every connection
  Server& srv_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  net::steady_timer timer_;
  std::shared_ptr<Pending> pending_;
  std::list<std::weak_ptr<Session>>::iterator self_it_;
  Phase phase_ = Phase::Idle;
  bool reject_ = false, keep_alive_ = false, head_ = false, accepted_req_ = false;
  Clock::time_point t_start_ = Clock::now();
  std::string method_ = "-", target_ = "-", remote_ = "-";
  int res_status_ = 0;
  size_t res_bytes_ = 0, lingered_ = 0;
  std::string res_model_, res_error_;
  std::unique_ptr<std::array<char, 16384>> scratch_;
};

void Server::accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      // EMFILE and friends: back off briefly instead of spinning
      auto t = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(50));
      t->async_wait([this, t](beast::error_code) { if (acceptor->is_open()) accept(); });
      return;
    }
    if (draining) return;
    const bool reject = sessions.load() >= opt.max_connections;
    std::make_shared<Session>(std::move(socket), shared_from_this(), reject)->start();
    accept();
  });
}

void Server::begin_drain() {
  if (draining.exchange(true)) return;
  service.set_state(State::Draining);
  net::post(acceptor->get_executor(), [this] {
    beast::error_code ec;
    acceptor->close(ec);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> l(reg_mu);
    for (auto& w : registry)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->drain();
}

std::string json_escape(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void Server::log(const std::string& remote, const std::string& method, const std::string& target, int status, size_t bytes,
                 double ms, const std::string& model, const std::string& error_type) {
  if (opt.log_format == "none") return;
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.3f", ms);
  std::string line;
  if (opt.log_format == "json") {
    line = "{\"ts\":\"" + utc_timestamp() + "\",\"remote\":" + json_escape(remote) + ",\"method\":" + json_escape(method) +
           ",\"path\":" + json_escape(target) + ",\"status\":" + std::to_string(status) +
           ",\"bytes\":" + std::to_string(bytes) + ",\"ms\":" + dur;
    if (!model.empty()) line += ",\"model\":" + json_escape(model);
    if (!error_type.empty()) line += ",\"error_type\":" + json_escape(error_type);
    line += "}\n";
  } else {
    line = utc_timestamp() + " " + remote + " " + method + " " + target + " " + std::to_string(status) + " " +
           std::to_string(bytes) + "B " + dur + "ms";
    if (!model.empty()) line += " model=" + model;
    if (!error_type.empty()) line += " error=" + error_type;
    line += "\n";
  }
  std::lock_guard<std::mutex> l(log_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

int serve(const ServerOptions& opt) {
  std::signal(SIGPIPE, SIG_IGN);
  // Memory stays bounded under load, without a page fault per buffer per request. Request bodies, decoded images,
  // batch tensors and 1 MB answers are large, short-lived and allocated on several threads. A fixed mmap threshold
  // of 32 MiB (glibc otherwise raises it to the largest block freed) keeps them in the heap, where freed blocks are
  // reused, and the top is trimmed beyond 64 MiB (with a 128 KiB threshold every such block was mmap'd and
  // unmapped: ~1,200 page faults and ~7 ms per DINOv2-S request). One arena: with two, the settled RSS after a
  // load round was 29 or 38 MB at random (which threads shared an arena); with one it is 23 MB every time, for
  // about 2 % of throughput under full load (lock contention). After a second without work the batcher gives all
  // free memory back (malloc_trim), so RSS settles when the load stops.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_ARENA_MAX, 1);
  if (opt.models.empty()) throw Error("serve: no model given");
  Metrics metrics;
  Engine engine(opt, metrics);
  Service service(opt, metrics, engine);
  net::io_context ioc(std::max(1, opt.io_threads));
  auto srv_ptr = std::make_shared<Server>(opt, metrics, service, engine, ioc);
  Server& srv = *srv_ptr;

  beast::error_code ec;
  const auto addr = net::ip::make_address(opt.host, ec);
  if (ec) throw Error("--host: not an IP address: '" + opt.host + "'");
  const tcp::endpoint ep(addr, static_cast<unsigned short>(opt.port));
  srv.acceptor->open(ep.protocol(), ec);
  if (!ec) srv.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) srv.acceptor->bind(ep, ec);
  if (!ec) srv.acceptor->listen(1024, ec);
  if (ec) throw Error("--host/--port: cannot listen on " + opt.host + ":" + std::to_string(opt.port) + ": " + ec.message());
  const int port = srv.acceptor->local_endpoint().port();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  std::function<void(beast::error_code, int)> on_signal = [&](beast::error_code e, int sig) {
    if (e) return;
    if (srv.draining) {  // second signal: stop now
      std::fprintf(stderr, "vtx serve: second signal, stopping without waiting\n");
      ioc.stop();
      return;
    }
    std::fprintf(stderr, "vtx serve: %s received, draining (%lld connections open)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 static_cast<long long>(srv.sessions.load()));
    srv.begin_drain();
    signals.async_wait(on_signal);
    // Stop when every connection is closed, or after --drain-timeout.
    auto deadline = Clock::now() + std::chrono::milliseconds(opt.drain_timeout_ms);
    auto timer = std::make_shared<net::steady_timer>(ioc);
    auto check = std::make_shared<std::function<void(beast::error_code)>>();
    *check = [&, timer, check, deadline](beast::error_code) {
      if (srv.sessions.load() == 0 || Clock::now() >= deadline) {
        if (srv.sessions.load() != 0)
          std::fprintf(stderr, "vtx serve: --drain-timeout reached with %lld connections open\n",
                       static_cast<long long>(srv.sessions.load()));
        ioc.stop();
        *check = nullptr;  // break the cycle
        return;
      }
      timer->expires_after(std::chrono::milliseconds(20));
      timer->async_wait(*check);
    };
    timer->expires_after(std::chrono::milliseconds(1));
    timer->async_wait(*check);
  };
  signals.async_wait(on_signal);
  srv.accept();

  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, opt.io_threads); ++i) threads.emplace_back([&] { ioc.run(); });

  int rc = 0;
  try {
    engine.load_models();
    if (!srv.draining) {
      service.set_state(State::Ready);
      std::string names;
      for (const auto& m : engine.models()) names += (names.empty() ? "" : ", ") + m->name;
      std::printf("vtx serve: listening on http://%s:%d (models: %s)\n", opt.host.c_str(), port, names.c_str());
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vtx serve: %s\n", e.what());
    rc = 1;
    ioc.stop();
  }
  for (auto& t : threads) t.join();
  engine.stop();
  engine.drop_all();     // queued work holds connections: release it while the io_context is alive
  srv.acceptor.reset();
  if (rc == 0)
    std::fprintf(stderr, "vtx serve: stopped; %lld requests accepted, %lld answered, %lld abandoned by their clients\n",
                 static_cast<long long>(srv.accepted.load()), static_cast<long long>(srv.answered.load()),
                 static_cast<long long>(srv.abandoned.load()));
  return rc;
}

}  // namespace vtx::server
