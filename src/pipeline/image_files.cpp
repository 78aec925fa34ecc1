// Image files for the pipelines (include/vtx/pipeline.hpp): the folder walk and the batch iterator with
// per-image error reporting, shared by every command and the bindings.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "vtx/pipeline.hpp"

namespace fs = std::filesystem;

namespace vtx {

bool is_image_file_name(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".webp" || e == ".bmp";
}

std::vector<std::string> find_image_files(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(a, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && is_image_file_name(it->path().string())) found.push_back(it->path().string());
      if (ec) throw Error(a + ": cannot list the folder (" + ec.message() + ")");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(a);
    }
  }
  return out;
}

std::vector<ImageFailure> for_each_image_batch(const std::vector<std::string>& paths, int batch_size,
                                               const ImageLoadOptions& opt, const ImageBatchFn& fn,
                                               const std::function<void(size_t, size_t)>& progress) {
  if (batch_size <= 0) throw Error("batch size must be positive, got " + std::to_string(batch_size));
  std::vector<ImageFailure> failures;
  const size_t bs = static_cast<size_t>(batch_size);
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
    if (progress) progress(std::min(paths.size(), i + bs), paths.size());
  }
  return failures;
}

}  // namespace vtx
