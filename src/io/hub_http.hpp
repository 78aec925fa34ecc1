#pragma once
// A thin libcurl wrapper for the hub client (src/io/hub.cpp): one request, no automatic redirects (the caller
// decides which redirects to follow and where the Authorization header may go), headers by lower-case name.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vtx::io::http {

struct Response;

struct Request {
  std::string method = "GET";         // "GET" or "HEAD"
  std::string url;
  std::vector<std::string> headers;   // "Name: value"
  long connect_timeout_s = 10;
  long total_timeout_s = 0;           // 0 = none (HEAD uses this)
  long low_speed_time_s = 0;          // > 0: abort when no byte arrives for this long (read timeout)
  // Body of a 2xx response: called for each chunk; return false to abort. Without it the body is kept in
  // Response::body (up to body_limit bytes). Non-2xx bodies always go to Response::body.
  std::function<bool(const char*, size_t)> sink;
  // Called once before the first byte of a 2xx body reaches the sink (status and headers are set); false aborts.
  std::function<bool(const Response&)> on_start;
  size_t body_limit = 1 << 20;
  std::function<void(int64_t received)> progress;  // bytes of the 2xx body so far
};

struct Response {
  long status = 0;                             // 0: no HTTP response (see error)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool transport_error = false;   // connection refused/reset, DNS, timeout, body cut short
  bool aborted_by_sink = false;
  std::string error;              // curl's message when transport_error
  std::string header(const std::string& lower_name) const;
};

Response perform(const Request& r);

// URL helpers (libcurl's URL parser).
struct Origin {
  std::string scheme, host, port;  // lower-case scheme/host, port always set (default port of the scheme)
  bool operator==(const Origin& o) const { return scheme == o.scheme && host == o.host && port == o.port; }
};
Origin origin_of(const std::string& url);              // throws vtx::Error on a malformed URL
std::string resolve_url(const std::string& base, const std::string& location);  // relative or absolute Location
bool is_relative_location(const std::string& location);  // no scheme and no host ("/a/b", "b")
std::string percent_encode(const std::string& s, bool keep_slash);

}  // namespace vtx::io::http
