#include "io/hub_http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "vtx/error.hpp"

namespace vtx::io::http {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw Error("libcurl: curl_global_init failed");
  });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

struct State {
  const Request* req;
  Response* resp;
  CURL* curl;
  int64_t received = 0;
  bool started = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<State*>(user);
  const std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    st->resp->headers.clear();  // a new response (e.g. after "100 Continue")
  } else {
    const size_t colon = line.find(':');
    if (colon != std::string::npos) st->resp->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<State*>(user);
  const size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300 && st->req->sink) {
    if (!st->started) {
      st->started = true;
      st->resp->status = code;
      if (st->req->on_start && !st->req->on_start(*st->resp)) {
        st->resp->aborted_by_sink = true;
        return 0;
      }
    }
    if (!st->req->sink(data, len)) {
      st->resp->aborted_by_sink = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    st->received += static_cast<int64_t>(len);
    if (st->req->progress) st->req->progress(st->received);
    return len;
  }
  const size_t room = st->req->body_limit > st->resp->body.size() ? st->req->body_limit - st->resp->body.size() : 0;
  st->resp->body.append(data, std::min(room, len));
  return len;
}

struct UrlHandle {
  CURLU* h = curl_url();
  ~UrlHandle() { curl_url_cleanup(h); }
  std::string get(CURLUPart part, unsigned flags = 0) const {
    char* s = nullptr;
    if (curl_url_get(h, part, &s, flags) != CURLUE_OK || !s) return "";
    std::string r(s);
    curl_free(s);
    return r;
  }
};

}  // namespace

std::string Response::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

Response perform(const Request& r) {
  global_init();
  Response resp;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw Error("libcurl: curl_easy_init failed");
  CURL* c = curl.get();
  State st{&r, &resp, c};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* hdrs = nullptr;
  for (const auto& h : r.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hdr_guard(hdrs, curl_slist_free_all);

  curl_easy_setopt(c, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, r.connect_timeout_s);
  // The CA bundle variables Python's requests honours (else the system store).
  for (const char* v : {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const char* path = std::getenv(v);
    if (path && *path) {
      curl_easy_setopt(c, CURLOPT_CAINFO, path);
      break;
    }
  }
  if (r.total_timeout_s > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT, r.total_timeout_s);
  if (r.low_speed_time_s > 0) {
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, r.low_speed_time_s);
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  if (r.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (r.method != "GET") throw Error("http: unsupported method " + r.method);

  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (rc != CURLE_OK && !resp.aborted_by_sink) {
    resp.transport_error = true;
    resp.error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  }
  return resp;
}

Origin origin_of(const std::string& url) {
  UrlHandle u;
  if (curl_url_set(u.h, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) throw Error("malformed URL '" + url + "'");
  Origin o;
  o.scheme = lower(u.get(CURLUPART_SCHEME));
  o.host = lower(u.get(CURLUPART_HOST));
  o.port = u.get(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (o.scheme.empty() || o.host.empty()) throw Error("malformed URL '" + url + "'");
  return o;
}

std::string resolve_url(const std::string& base, const std::string& location) {
  UrlHandle u;
  if (curl_url_set(u.h, CURLUPART_URL, base.c_str(), 0) != CURLUE_OK) throw Error("malformed URL '" + base + "'");
  if (curl_url_set(u.h, CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
    throw Error("malformed redirect Location '" + location + "' from " + base);
  return u.get(CURLUPART_URL);
}

bool is_relative_location(const std::string& loc) {
  if (loc.rfind("//", 0) == 0) return false;  // scheme-relative: names a host
  size_t i = 0;
  if (i < loc.size() && std::isalpha(static_cast<unsigned char>(loc[i]))) {
    while (i < loc.size() && (std::isalnum(static_cast<unsigned char>(loc[i])) || loc[i] == '+' || loc[i] == '-' || loc[i] == '.')) ++i;
    if (i < loc.size() && loc[i] == ':') return false;  // "scheme:..."
  }
  return true;
}

std::string percent_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string r;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      r += static_cast<char>(c);
    } else {
      r += '%';
      r += hex[c >> 4];
      r += hex[c & 15];
    }
  }
  return r;
}

}  // namespace vtx::io::http
