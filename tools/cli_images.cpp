#include "cli_images.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "vtx/error.hpp"

namespace fs = std::filesystem;

namespace vtx::cli {

static bool image_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".webp" || e == ".bmp";
}

std::vector<std::string> expand_image_args(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(a, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && image_ext(it->path())) found.push_back(it->path().string());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(a);
    }
  }
  return out;
}

namespace {
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), on_(isatty(2) && total > 1), t0_(std::chrono::steady_clock::now()) {}
  void update(size_t done) {
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = s > 0 ? static_cast<double>(done) / s : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    const int width = 30, fill = static_cast<int>(width * done / std::max<size_t>(total_, 1));
    std::fprintf(stderr, "\r[%s%s] %zu/%zu  %.1f img/s  ETA %.0fs ", std::string(fill, '#').c_str(),
                 std::string(width - fill, '.').c_str(), done, total_, rate, eta);
    if (done == total_) std::fputc('\n', stderr);
  }

 private:
  size_t total_;
  bool on_;
  std::chrono::steady_clock::time_point t0_;
};
}  // namespace

std::vector<Failure> for_each_batch(const std::vector<std::string>& paths, int batch, const ImageLoadOptions& opt,
                                    const std::function<void(const std::vector<std::string>&, const std::vector<Image>&)>& fn) {
  std::vector<Failure> failures;
  Progress progress(paths.size());
  const size_t bs = static_cast<size_t>(std::max(batch, 1));
  for (size_t i = 0; i < paths.size(); i += bs) {
    std::vector<std::string> names;
    std::vector<Image> images;
    for (size_t j = i; j < std::min(paths.size(), i + bs); ++j) {
      try {
        images.push_back(load_image(paths[j], opt));
        names.push_back(paths[j]);
      } catch (const Error& e) {
        failures.push_back({paths[j], e.what()});
      }
    }
    if (!images.empty()) {
      try {
        fn(names, images);
      } catch (const Error& e) {
        if (images.size() == 1) {
          failures.push_back({names[0], e.what()});
        } else {  // retry one by one so that one odd image does not sink the batch
          for (size_t k = 0; k < images.size(); ++k) {
            try {
              fn({names[k]}, {images[k]});
            } catch (const Error& e2) {
              failures.push_back({names[k], e2.what()});
            }
          }
        }
      }
    }
    progress.update(std::min(paths.size(), i + bs));
  }
  return failures;
}

int report_failures(const std::vector<Failure>& failures, size_t total) {
  if (failures.empty()) return 0;
  std::cerr << failures.size() << " of " << total << " images failed:\n";
  for (const auto& f : failures) std::cerr << "  " << f.path << ": " << f.error << "\n";
  return failures.size() == total ? 1 : 3;
}

}  // namespace vtx::cli
