// ImageProcessor: the transformers 4.48.3 slow image processors (ViT, DeiT, Bit, DPT) on vtx::Image.
#include "vtx/processor.hpp"

#include <cmath>
#include <cstring>
#include <string>

#include "preprocess/validate.hpp"

namespace vtx {

namespace {

// transformers' get_resize_output_image_size for DPT (keep_aspect_ratio, ensure_multiple_of).
// Image sides the processor may produce (checked in double before any conversion to int).
constexpr double kMaxSide = 1 << 30;

int to_side(double v, const char* what) {
  if (!(v <= kMaxSide)) throw Error(std::string("image processor: ") + what + " side " + std::to_string(v) + " is too large");
  return static_cast<int>(v);
}

int constrain_to_multiple_of(double val, int multiple) {
  // Python round(): half to even (nearbyint under the default rounding mode).
  const double x = std::nearbyint(val / multiple) * multiple;
  return to_side(x < 0 ? std::ceil(val / multiple) * multiple : x, "resized");
}

// Every intermediate image is held to the pixel limit, as the decoded image is.
void check_pixels(const ProcessorConfig& c, const char* stage, int64_t in_w, int64_t in_h, int64_t w, int64_t h) {
  if (c.max_pixels <= 0 || w * h <= c.max_pixels) return;
  throw Error(std::string("image processor: ") + stage + " a " + std::to_string(in_w) + "x" + std::to_string(in_h) +
              " image gives " + std::to_string(w) + "x" + std::to_string(h) + " (" + std::to_string(w * h) +
              " pixels), more than the limit of " + std::to_string(c.max_pixels) +
              " pixels; raise it with --max-pixels N (ProcessorConfig::max_pixels)");
}

}  // namespace

ImageProcessor::ImageProcessor(ProcessorConfig cfg) : cfg_(std::move(cfg)) {
  validate_processor_config(cfg_, "image processor config (" + cfg_.type + ")");
}

std::pair<int, int> ImageProcessor::resize_output_size(int h, int w) const {
  if (!cfg_.do_resize) return {h, w};
  if (cfg_.type == "DPTImageProcessor") {
    double sh = static_cast<double>(cfg_.size_height) / h, sw = static_cast<double>(cfg_.size_width) / w;
    if (cfg_.keep_aspect_ratio) {
      if (std::fabs(1 - sw) < std::fabs(1 - sh)) sh = sw;  // fit width
      else sw = sh;                                        // fit height
    }
    return {constrain_to_multiple_of(sh * h, cfg_.ensure_multiple_of),
            constrain_to_multiple_of(sw * w, cfg_.ensure_multiple_of)};
  }
  if (cfg_.size_shortest_edge > 0) {
    // get_resize_output_image_size(default_to_square=False): long edge = int(short_target * long / short).
    const int s = cfg_.size_shortest_edge;
    const bool portrait = w <= h;
    const int shorter = portrait ? w : h, longer = portrait ? h : w;
    const int new_long = to_side(std::floor(static_cast<double>(s) * longer / shorter), "resized");
    return portrait ? std::pair{new_long, s} : std::pair{s, new_long};
  }
  return {cfg_.size_height, cfg_.size_width};
}

Image ImageProcessor::transform(const Image& img) const {
  if (img.width <= 0 || img.height <= 0) throw Error("image processor: empty image");
  Image out;
  const Image* cur = &img;
  if (cfg_.do_resize) {
    auto [h, w] = resize_output_size(img.height, img.width);
    if (h <= 0 || w <= 0)
      throw Error("image processor: resize of a " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                  " image gives an empty " + std::to_string(w) + "x" + std::to_string(h) + " image");
    check_pixels(cfg_, "resizing", img.width, img.height, w, h);
    out = resize(img, w, h, cfg_.resample);
    cur = &out;
  }
  if (cfg_.do_center_crop) {
    check_pixels(cfg_, "center cropping", cur->width, cur->height, cfg_.crop_width, cfg_.crop_height);
    out = center_crop(*cur, cfg_.crop_height, cfg_.crop_width), cur = &out;
  }
  if (cfg_.do_pad && cfg_.size_divisor > 0) {
    const int64_t d = cfg_.size_divisor;
    check_pixels(cfg_, "padding", cur->width, cur->height, (cur->width + d - 1) / d * d, (cur->height + d - 1) / d * d);
  }
  return cur == &img ? img : std::move(out);
}

Tensor ImageProcessor::to_tensor(const Image& im) const {
  const int H = im.height, W = im.width;
  int top = 0, left = 0, PH = H, PW = W;
  if (cfg_.do_pad) {
    const int d = cfg_.size_divisor;
    PH = (H + d - 1) / d * d;
    PW = (W + d - 1) / d * d;
    top = (PH - H) / 2;
    left = (PW - W) / 2;
  }
  Tensor t({3, PH, PW}, DType::F32);  // zero-initialised: the padding
  float* dst = t.data<float>();
  for (int c = 0; c < 3; ++c) {
    // numpy: image.astype(float64) * scale -> float32; then (x - float32(mean)) / float32(std) in float32.
    float lut[256];
    const float mean = static_cast<float>(cfg_.image_mean[c]), std_ = static_cast<float>(cfg_.image_std[c]);
    for (int v = 0; v < 256; ++v) {
      const float r = cfg_.do_rescale ? static_cast<float>(static_cast<double>(v) * cfg_.rescale_factor)
                                         : static_cast<float>(v);
      float p = r;
      if (cfg_.do_normalize) {
        p = (p - mean) / std_;
      }
      lut[v] = p;
    }
    for (int y = 0; y < H; ++y) {
      float* row = dst + (static_cast<size_t>(c) * PH + y + top) * PW + left;
      const uint8_t* src = im.pixel(0, y) + c;
      for (int x = 0; x < W; ++x) row[x] = lut[src[3 * x]];
    }
  }
  return t;
}

Tensor ImageProcessor::preprocess(const Image& img) const { return to_tensor(transform(img)); }

Tensor ImageProcessor::preprocess(const std::vector<Image>& images) const {
  if (images.empty()) throw Error("image processor: no images");
  std::vector<Tensor> each;
  each.reserve(images.size());
  for (const Image& im : images) {
    each.push_back(preprocess(im));
    if (each.back().shape() != each.front().shape())
      throw Error("image processor: images give different sizes (" + each.front().shape_str() + " vs " +
                  each.back().shape_str() + "); process them one at a time");
  }
  const auto& s = each.front().shape();
  Tensor out({static_cast<int64_t>(images.size()), s[0], s[1], s[2]}, DType::F32);
  const size_t n = each.front().nbytes();
  for (size_t i = 0; i < each.size(); ++i) std::memcpy(out.data<float>() + i * (n / sizeof(float)), each[i].data<float>(), n);
  return out;
}

}  // namespace vtx
