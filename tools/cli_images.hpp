#pragma once
// Image-file plumbing for the pipeline commands: expanding files and folders, batching, a progress bar on
// a terminal, and per-image error collection (a bad image is reported and skipped, never fatal).
#include <functional>
#include <string>
#include <vector>

#include "vtx/image.hpp"

namespace vtx::cli {

// Files as given, folders walked recursively for image files (by extension: jpg jpeg png webp bmp),
// sorted within each folder. A path that does not exist is kept, so that it is reported as a failure.
std::vector<std::string> expand_image_args(const std::vector<std::string>& args);

struct Failure {
  std::string path, error;
};

// Loads images `batch` at a time and calls fn(paths, images) for each batch of successfully loaded images.
// Loading errors and errors thrown by fn (vtx::Error) are recorded per image; returns them.
std::vector<Failure> for_each_batch(const std::vector<std::string>& paths, int batch, const ImageLoadOptions& opt,
                                    const std::function<void(const std::vector<std::string>&, const std::vector<Image>&)>& fn);

// Prints "N of M images failed" and each failure on stderr; returns the exit code (0, or 3 when some failed,
// 1 when all failed).
int report_failures(const std::vector<Failure>& failures, size_t total);

}  // namespace vtx::cli
