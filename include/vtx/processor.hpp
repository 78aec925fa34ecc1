#pragma once
// Image processors, bit-exact with the slow (PIL/NumPy) transformers 4.48.3 processors:
// ViTImageProcessor, DeiTImageProcessor, BitImageProcessor (DINOv2) and DPTImageProcessor.
//
//   auto proc = vtx::ImageProcessor::from_pretrained("path/to/model");   // reads preprocessor_config.json
//   vtx::Tensor pv = proc.preprocess({vtx::load_image("a.jpg"), vtx::load_image("b.png")});  // F32 [2,3,H,W]
//
// Pipeline: resize (PIL Image.resize, uint8) -> center crop (zero padding when the crop is larger) ->
// rescale (double multiply, rounded to float32) -> normalize (float32) -> DPT pad to multiples of size_divisor.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "vtx/export.hpp"
#include "vtx/image.hpp"
#include "vtx/tensor.hpp"

namespace vtx {

// PIL resampling filters, with PIL's numbering (the `resample` value in preprocessor_config.json).
enum class Resample : int { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

// PIL Image.resize((width, height), resample) of an RGB image (Pillow 9.4, reducing_gap=None).
VTX_API Image resize(const Image& img, int width, int height, Resample filter);

// transformers image_transforms.center_crop on a uint8 image: top = (H - h) // 2, left = (W - w) // 2, pixels
// outside the source are 0.
VTX_API Image center_crop(const Image& img, int height, int width);

// Largest size / crop_size / size_divisor / ensure_multiple_of accepted from a preprocessor_config.json.
inline constexpr int kMaxProcessorSize = 16384;

struct VTX_API ProcessorConfig {
  std::string type = "ViTImageProcessor";  // ViTImageProcessor, DeiTImageProcessor, BitImageProcessor, DPTImageProcessor
  bool do_resize = true;
  int size_height = 224, size_width = 224;  // used when size_shortest_edge == 0
  int size_shortest_edge = 0;               // > 0: resize the shortest edge to this (BitImageProcessor)
  Resample resample = Resample::Bilinear;
  bool do_center_crop = false;
  int crop_height = 224, crop_width = 224;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<double, 3> image_mean{0.5, 0.5, 0.5}, image_std{0.5, 0.5, 0.5};
  bool do_convert_rgb = false;   // informative: images are always RGB after load_image
  bool keep_aspect_ratio = false;  // DPT
  int ensure_multiple_of = 1;      // DPT
  bool do_pad = false;             // DPT
  int size_divisor = 0;            // DPT (0 = None)
  // Pixel limit of every intermediate image (resize output, crop, pad): a 1x40000 PNG resized to a shortest
  // edge of 256 would be 256x10240000. Error above it (the CLI's --max-pixels sets it); <= 0 disables.
  int64_t max_pixels = kDefaultMaxImagePixels;

  // The defaults of the transformers class `type` (what from_pretrained assumes for absent keys).
  static ProcessorConfig defaults_for(const std::string& type);
};

class VTX_API ImageProcessor {
 public:
  ImageProcessor() = default;
  explicit ImageProcessor(ProcessorConfig cfg);
  // Reads <dir>/preprocessor_config.json (or `dir` itself when it is a .json file).
  static ImageProcessor from_pretrained(const std::string& dir);
  // Parses the JSON text of a preprocessor_config.json; `name` is used in messages.
  static ImageProcessor from_json_string(const std::string& json_text, const std::string& name = "preprocessor_config.json");

  const ProcessorConfig& config() const { return cfg_; }

  // Output (height, width) of the resize step for an input of the given size (the input size if no resize).
  std::pair<int, int> resize_output_size(int height, int width) const;
  // The uint8 stages: resize and center crop.
  Image transform(const Image& img) const;
  // Rescale, normalize and pad a transformed uint8 image -> F32 [3,H,W].
  Tensor to_tensor(const Image& transformed) const;
  // Whole pipeline for one image -> F32 [3,H,W].
  Tensor preprocess(const Image& img) const;
  // Whole pipeline for a batch -> F32 [B,3,H,W]; throws vtx::Error if the images end with different sizes.
  Tensor preprocess(const std::vector<Image>& images) const;

 private:
  ProcessorConfig cfg_;
};

}  // namespace vtx
