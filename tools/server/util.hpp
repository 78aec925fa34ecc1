#pragma once
// Small helpers of the server: base64, data URIs, constant-time comparison, time stamps.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vtx::server {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string base64_encode(const void* data, size_t n);
// Standard or URL-safe alphabet, padding optional, ASCII whitespace ignored. nullopt when invalid
// (`why` receives the reason).
std::optional<std::string> base64_decode(std::string_view s, std::string* why = nullptr);

// "data:[<mediatype>][;base64],<data>" -> decoded bytes; plain base64 otherwise. Throws HttpError(400) when invalid.
std::string decode_image_string(std::string_view s, const std::string& what);

// Equal strings, in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

// ISO 8601 UTC with milliseconds: 2026-12-01T11:30:00.123Z
std::string utc_timestamp();

}  // namespace vtx::server
