#pragma once
// ---------------------------------------------------------------------------------------------------------------
// Addition made for `vtx serve` (issue 12), pending its place in the public API (issue 10): a distinct error type
// for the decompression-bomb guard, so that a server can answer 413 ("too many pixels") instead of 400.
// ---------------------------------------------------------------------------------------------------------------
#include <cstdint>
#include <string>

#include "vtx/error.hpp"
#include "vtx/export.hpp"

namespace vtx {

// Thrown by decode_image / load_image when the size declared in the image header exceeds
// ImageLoadOptions::max_pixels. It is raised right after the header is read and before any pixel buffer is
// allocated, so a decompression bomb costs nothing. Still a vtx::Error (same one-line message).
class VTX_API ImageTooLargeError : public Error {
 public:
  ImageTooLargeError(const std::string& what, int64_t width, int64_t height, int64_t limit)
      : Error(what), width(width), height(height), limit(limit) {}
  int64_t width, height, limit;
};

}  // namespace vtx
