#include "cli_images.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace vtx::cli {

ImageLoadOptions image_load_options(const ArgParser& p) {
  ImageLoadOptions lo;
  lo.exif_transpose = !p.has("--no-exif-transpose");
  if (p.has("--max-pixels")) {
    const std::string v = p.get("--max-pixels");
    try {
      size_t used = 0;
      lo.max_pixels = std::stoll(v, &used);
      if (used != v.size() || lo.max_pixels < 0) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      throw CliError("--max-pixels: expected a pixel count >= 0 (0 = no limit), got '" + v + "'");
    }
  }
  return lo;
}

ImageProcessor load_processor(const std::string& dir, const ArgParser& p) {
  ProcessorConfig pc = ImageProcessor::from_pretrained(dir).config();
  pc.max_pixels = image_load_options(p).max_pixels;
  return ImageProcessor(pc);
}

Pipeline load_pipeline(const std::string& dir, const LoadOptions& opt, const ArgParser& p) {
  ImageProcessor proc = load_processor(dir, p);
  return Pipeline(Model::load(dir, opt), std::move(proc));
}

int batch_size(const ArgParser& p) {
  const int b = p.get_int("--batch", 1);
  if (b < 1) throw CliError("--batch must be at least 1 (got " + std::to_string(b) + ")");
  return b;
}

std::vector<std::string> image_files(const std::vector<std::string>& args) {
  std::vector<std::string> files = find_image_files(args);
  if (files.empty()) {
    std::string names;
    for (const auto& a : args) names += (names.empty() ? "" : ", ") + a;
    throw Error("no images found in " + names + " (.jpg .jpeg .png .webp .bmp)");
  }
  return files;
}

namespace {
class Progress {
 public:
  explicit Progress(size_t total) : on_(isatty(2) && total > 1), t0_(std::chrono::steady_clock::now()) {}
  void update(size_t done, size_t total) {
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = s > 0 ? static_cast<double>(done) / s : 0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    const int width = 30, fill = static_cast<int>(width * done / std::max<size_t>(total, 1));
    std::fprintf(stderr, "\r[%s%s] %zu/%zu  %.1f img/s  ETA %.0fs ", std::string(fill, '#').c_str(),
                 std::string(width - fill, '.').c_str(), done, total, rate, eta);
    if (done == total) std::fputc('\n', stderr);
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point t0_;
};
}  // namespace

std::vector<ImageFailure> for_each_batch(const std::vector<std::string>& paths, int batch, const ImageLoadOptions& opt,
                                         const ImageBatchFn& fn) {
  Progress progress(paths.size());
  return for_each_image_batch(paths, batch, opt, fn, [&](size_t done, size_t total) { progress.update(done, total); });
}

int report_failures(const std::vector<ImageFailure>& failures, size_t total) {
  if (failures.empty()) return 0;
  std::cerr << failures.size() << " of " << total << " images failed:\n";
  for (const auto& f : failures) std::cerr << "  " << f.path << ": " << f.error << "\n";
  return failures.size() == total ? 1 : 3;
}

}  // namespace vtx::cli
