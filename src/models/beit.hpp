#pragma once
// BEiT / DiT (model_type "beit"): BeitModel, BeitForImageClassification, BeitForMaskedImageModeling.
// The trunk is the shared VisionTransformer (embeddings without position embeddings, or DiT's absolute ones;
// encoder with layer scale lambda_1/2 and a key projection without bias); the relative position bias is an
// additive attention-score bias per layer (or one shared by all layers), resized to the input window.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "models/common.hpp"

namespace vtx::models {

// transformers 4.48.3 BeitRelativePositionBias for an input window of h x w patches, from the table
// [(2Wh-1)(2Ww-1) + 3, heads] of the trained window Wh x Ww: the first (2Wh-1)(2Ww-1) rows, viewed as
// [heads, 2Ww-1, 2Wh-1] (torch's reshape(1, old_width, old_height, -1).permute(0, 3, 1, 2)), are resized with
// bilinear interpolation (align_corners=False) to [heads, 2h-1, 2w-1]; the 3 rows cls->token, token->cls and
// cls->cls are kept. Returns the bias [heads, T, T], T = 1 + h*w, tokens [cls, patches row-major]:
//   bias[., 1+a, 1+b] = resized[., dy + h-1, dx + w-1] with (dy, dx) = position(a) - position(b),
//   bias[., 0, 1..] = cls->token, bias[., 1.., 0] = token->cls, bias[., 0, 0] = cls->cls.
std::vector<float> relative_position_bias(const float* table, int64_t heads, int64_t Wh, int64_t Ww, int64_t h,
                                          int64_t w);

// One relative_position_bias_table with its per-window cache (the Model is shared between threads: the cache
// is guarded by a mutex and hands out shared, immutable biases). The oldest windows are dropped beyond
// kMaxWindows sizes or kMaxBytes (the newest is always kept): BEiT-base at 224 holds 1.9 MB per layer and window,
// at 384 16 MB.
class RelativePositionBias {
 public:
  RelativePositionBias() = default;
  // vb: the "...relative_position_bias." scope holding relative_position_bias_table; checks its shape against
  // heads and the window. config_key: the config.json switch that asked for it (for messages).
  RelativePositionBias(const Loader& vb, int64_t heads, int64_t Wh, int64_t Ww, const std::string& config_key);
  bool empty() const { return table_.empty(); }
  std::shared_ptr<const std::vector<float>> get(int64_t h, int64_t w) const;  // [heads, T, T]

  static constexpr size_t kMaxWindows = 8;
  static constexpr size_t kMaxBytes = size_t{32} << 20;

 private:
  std::vector<float> table_;
  int64_t heads_ = 0, Wh_ = 0, Ww_ = 0;
  mutable std::mutex mu_;
  mutable std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const std::vector<float>>> cache_;
  mutable std::vector<std::pair<int64_t, int64_t>> order_;  // insertion order, for eviction
  mutable size_t bytes_ = 0;
};

}  // namespace vtx::models
