#pragma once
// The pipeline commands' image plumbing on top of the library's folder walk and batch iterator
// (vtx::find_image_files, vtx::for_each_image_batch): a progress bar on a terminal, the common image flags,
// and the failure report with its exit code.
#include <string>
#include <vector>

#include "cli.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::cli {

// --no-exif-transpose, --max-pixels N (the flags every image command takes).
ImageLoadOptions image_load_options(const ArgParser& p);
// Pipeline::load with the image processor's pixel limit (every intermediate size) set from --max-pixels.
Pipeline load_pipeline(const std::string& dir, const LoadOptions& opt, const ArgParser& p);
// The folder's image processor with its pixel limit set from --max-pixels.
ImageProcessor load_processor(const std::string& dir, const ArgParser& p);
// --batch N (default 1; refused when < 1).
int batch_size(const ArgParser& p);

// The image files named by `args` (folders walked recursively); an error when there are none.
std::vector<std::string> image_files(const std::vector<std::string>& args);

// vtx::for_each_image_batch with a progress bar on stderr when it is a terminal.
std::vector<ImageFailure> for_each_batch(const std::vector<std::string>& paths, int batch, const ImageLoadOptions& opt,
                                         const ImageBatchFn& fn);

// Prints "N of M images failed" and each failure on stderr; returns the exit code (0, or 3 when some failed,
// 1 when all failed).
int report_failures(const std::vector<ImageFailure>& failures, size_t total);

}  // namespace vtx::cli
