#pragma once
// vtx public model API.
//
//   auto model = vtx::Model::load("path/to/facebook-dinov2-small");   // config.json + safetensors
//   vtx::ForwardOptions opt; opt.output_hidden_states = true;
//   vtx::ModelOutput out = model->forward(pixel_values, opt);          // pixel_values: F32 [B,3,H,W]
//
// A Model holds immutable, packed weights and may be shared by any number of threads. Each forward call
// uses its own per-call state (vtx::Session); keep a Session per thread to reuse its activation arena.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vtx/error.hpp"
#include "vtx/tensor.hpp"

namespace vtx {

struct ModelInfo {
  std::string model_type;        // "vit", "deit", "dinov2", "dinov2_with_registers", "dpt", "depth_anything"
  std::string architecture;      // the transformers class emulated, e.g. "Dinov2ForImageClassification"
  std::string task;              // "features", "classify", "backbone", "mim", "depth"
  int64_t hidden_size = 0, num_layers = 0, num_heads = 0;
  int64_t image_size = 0, patch_size = 0, num_channels = 3;
  int64_t num_register_tokens = 0;
  int64_t mlp_hidden_size = 0;                    // effective MLP width (SwiGLU: width of one branch)
  bool swiglu = false;
  int64_t num_special_tokens = 1;                 // cls (+ DeiT distillation token)
  int64_t num_parameters = 0;                     // as stored in the checkpoint
  std::map<std::string, int64_t> dtype_counts;    // checkpoint dtype -> number of tensors
  std::vector<std::string> id2label;              // index -> label (classifiers), empty otherwise
  std::vector<std::string> out_features;          // backbones
  std::string quantization;                       // encoder linears: "" (f32), "f16", "bf16", "int8", "int4"
};

struct LoadOptions {
  // Precision of the encoder linear layers (fused q/k/v, attention output, MLP; docs/quantization.md):
  //   ""              keep the checkpoint's: F16/BF16 weights stay half in memory (converted to f32 inside the
  //                   GEMM), F32 stays f32, a `vtx quantize` folder loads as quantized;
  //   "f32", "f16", "bf16"  convert at load (computation stays f32);
  //   "int8"          int8 per-output-channel weights, dynamic per-token int8 activations, int32 accumulation;
  //   "int4"          int4 weight-only, groups of 128 along the input dimension (torchao Int4WeightOnlyConfig).
  // Patch embedding, poolers, classifier heads, MIM decoders and depth necks/heads always stay f32; so do
  // LayerNorm, softmax/attention, residuals and activations.
  std::string dtype;
};

struct ForwardOptions {
  bool output_hidden_states = false;
  bool output_attentions = false;
  bool interpolate_pos_encoding = false;   // ViT/DeiT only; DINOv2 always interpolates
  std::optional<Tensor> head_mask;         // [H] or [L, H] (any float dtype)
  std::optional<Tensor> bool_masked_pos;   // [B, N] (U8/BOOL/any 0/1)
};

// Output fields carry the transformers names; unset tensors are empty().
struct ModelOutput {
  Tensor last_hidden_state;             // [B, T, D]
  Tensor pooler_output;                 // [B, D]
  std::vector<Tensor> hidden_states;    // L+1 x [B, T, D] (output_hidden_states)
  std::vector<Tensor> attentions;       // L x [B, H, T, T] (output_attentions)
  Tensor logits;                        // [B, C]
  Tensor cls_logits, distillation_logits;  // DeiT with teacher
  std::vector<Tensor> feature_maps;     // backbones / depth models
  Tensor reconstruction;                // MIM [B, C, H, W]
  Tensor loss;                          // MIM [1] (only with bool_masked_pos)
  Tensor predicted_depth;               // depth [B, H', W']
  std::map<std::string, Tensor> extra;  // further named intermediates (e.g. "neck.fusion.0")

  // Every set tensor under its golden/safetensors name: "last_hidden_state", "hidden_states.3", ...
  std::vector<std::pair<std::string, Tensor>> named() const;
};

class Session;

class Model {
 public:
  virtual ~Model();
  // Loads a hub model folder: config.json + model.safetensors or model.safetensors.index.json shards.
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& opt = {});

  const ModelInfo& info() const { return info_; }
  // Convenience: runs with a temporary Session.
  ModelOutput forward(const Tensor& pixel_values, const ForwardOptions& opt = {}) const;

 protected:
  friend class Session;
  Model() = default;
  virtual ModelOutput run(Session& s, const Tensor& pixel_values, const ForwardOptions& opt) const = 0;
  ModelInfo info_;
};

// Per-call state (activation arena). Not thread-safe; use one per thread.
class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  ModelOutput forward(const Tensor& pixel_values, const ForwardOptions& opt = {});
  const Model& model() const { return *model_; }
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
};

// FLOPs (2 x multiply-adds of every matmul and the patch convolution) of one image at H x W through the
// transformer trunk and its classifier, as shared/bench/flops.py counts them. Depth necks/heads are not counted.
double forward_flops(const ModelInfo& info, int64_t height, int64_t width);

// `vtx quantize`: writes OUT_DIR with config.json (+ "quantization_config"), model.safetensors (the encoder
// linears as F16/BF16, or I8 / U8-nibbles + weight_scale [+ weight_zero_point]; every other tensor unchanged)
// and preprocessor_config.json, loadable by Model::load without the original. to: "f16", "bf16", "int8", "int4".
struct QuantizeReport {
  int64_t modules = 0;                   // linear layers converted
  int64_t bytes_in = 0, bytes_out = 0;   // model.safetensors sizes (input: sum of its files)
};
QuantizeReport quantize_checkpoint(const std::string& dir, const std::string& out_dir, const std::string& to);

// Number of threads used by the kernels (default: VTX_NUM_THREADS or hardware concurrency).
void set_num_threads(int n);
int num_threads();

}  // namespace vtx
