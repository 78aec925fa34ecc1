#include "util.hpp"

#include <array>
#include <ctime>

#include "http_error.hpp"

namespace vtx::server {

static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view s, std::string* why) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kB64[i])] = static_cast<int8_t>(i);
    t['-'] = 62;  // URL-safe alphabet
    t['_'] = 63;
    return t;
  }();
  std::string out;
  out.reserve(s.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0, symbols = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    const int v = table[c];
    if (v < 0 || pad > 0) {
      if (why) *why = pad > 0 ? "data after '=' padding" : "invalid character at offset " + std::to_string(i);
      return std::nullopt;
    }
    ++symbols;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (symbols % 4 == 1 || pad > 2 || (pad > 0 && (symbols + pad) % 4 != 0)) {
    if (why) *why = "truncated input (" + std::to_string(symbols) + " symbols)";
    return std::nullopt;
  }
  return out;
}

std::string decode_image_string(std::string_view s, const std::string& what) {
  std::string_view payload = s;
  if (s.substr(0, 5) == "data:") {
    const size_t comma = s.find(',');
    if (comma == std::string_view::npos)
      throw HttpError(400, "invalid_base64", what + ": data URI without ','");
    const std::string_view meta = s.substr(5, comma - 5);
    if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64")
      throw HttpError(400, "invalid_base64", what + ": data URI must be base64-encoded (\"data:<type>;base64,...\")");
    payload = s.substr(comma + 1);
  } else if (s.substr(0, 7) == "http://" || s.substr(0, 8) == "https://") {
    throw HttpError(400, "invalid_input", what + ": image URLs are not fetched; send the image bytes (base64 or data URI)");
  }
  std::string why;
  auto bytes = base64_decode(payload, &why);
  if (!bytes) throw HttpError(400, "invalid_base64", what + ": invalid base64: " + why);
  if (bytes->empty()) throw HttpError(400, "invalid_image", what + ": empty image");
  return std::move(*bytes);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Compare over the longer length so that time does not reveal where they differ.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  volatile unsigned sink = diff;
  return sink == 0;
}

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

}  // namespace vtx::server
