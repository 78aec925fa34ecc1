#pragma once
// vtx public model API.
//
//   auto model = vtx::Model::load("path/to/facebook-dinov2-small");   // config.json + safetensors
//   vtx::Session session(model);                                        // per-thread state
//   vtx::ForwardOptions opt; opt.output_hidden_states = true;
//   vtx::ModelOutput out = session.forward(pixel_values, opt);          // pixel_values: F32 [B,3,H,W]
//
// A Model holds immutable, packed weights and may be shared by any number of threads. Each forward call
// uses its own per-call state (vtx::Session); keep a Session per thread to reuse its activation arena.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vtx/error.hpp"
#include "vtx/export.hpp"
#include "vtx/tensor.hpp"
#include "vtx/version.hpp"

namespace vtx {

// What a model's head computes (the transformers pipeline task it serves).
enum class Task : uint8_t {
  Features,             // *Model: last_hidden_state (+ pooler_output)      -> image-feature-extraction
  Classification,       // *ForImageClassification (+ DeiT with teacher)    -> image-classification
  Backbone,             // *Backbone: feature_maps
  MaskedImageModeling,  // *ForMaskedImageModeling: reconstruction / logits over visual tokens
  DepthEstimation,      // DPT / Depth Anything: predicted_depth            -> depth-estimation
  SemanticSegmentation, // DPTForSemanticSegmentation: logits [B, C, H, W]  -> image-segmentation
};
VTX_API const char* task_name(Task t);  // "features", "classification", "backbone", "mim", "depth", "segmentation"
// The transformers pipeline name of the task ("image-classification", ...), or "" when there is none.
VTX_API const char* pipeline_task_name(Task t);

// Precision of the encoder linear weights (docs/quantization.md).
enum class WeightType : uint8_t { F32, F16, BF16, Int8, Int4 };
VTX_API const char* weight_type_name(WeightType t);        // "f32", "f16", "bf16", "int8", "int4"
VTX_API WeightType parse_weight_type(const std::string& s);  // the names above; throws vtx::Error naming s

// Arithmetic of the encoder linear layers (docs/quantization.md "bf16 compute").
enum class ComputeType : uint8_t {
  F32,   // f32 multiply-adds (every weight type; f16/bf16/int4 weights are widened inside the GEMM)
  BF16,  // bf16 x bf16 products with f32 sums (AVX512-BF16 vdpbf16ps); weights and activations rounded to bf16
};
VTX_API const char* compute_type_name(ComputeType t);          // "f32", "bf16"
VTX_API ComputeType parse_compute_type(const std::string& s);  // the names above; throws vtx::Error naming s
// True when this process can run ComputeType::BF16 (the CPU has AVX512-BF16 and no VTX_DISABLE_* turns it off).
VTX_API bool bf16_compute_available();

// How int4 scales / zero points are chosen (the stored format is torchao's either way).
enum class Int4Method : uint8_t {
  Mse,     // error-minimising search per group (default)
  MinMax,  // torchao's min/max
};
VTX_API const char* int4_method_name(Int4Method m);  // "mse", "minmax"
VTX_API Int4Method parse_int4_method(const std::string& s);

struct ModelInfo {
  std::string model_type;        // "vit", "deit", "dinov2", "dinov2_with_registers", "dpt", "depth_anything", ...
  std::string architecture;      // the transformers class emulated, e.g. "Dinov2ForImageClassification"
  Task task = Task::Features;
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
  // Encoder linears as loaded. mixed_precision: an F16/BF16 checkpoint whose layers differ (kept per layer).
  WeightType weights = WeightType::F32;
  bool mixed_precision = false;
  Int4Method int4_method = Int4Method::Mse;       // meaningful when weights == Int4
  ComputeType compute = ComputeType::F32;         // arithmetic of the encoder linears (LoadOptions::compute)
  // Depth models: metric depth (Depth Anything depth_estimation_type "metric") and its max_depth.
  bool metric_depth = false;
  double max_depth = 0;
  std::string source_dir;                         // the folder the model was loaded from
};

struct LoadOptions {
  // Precision of the encoder linear layers (fused q/k/v, attention output, MLP; docs/quantization.md):
  //   nullopt   keep the checkpoint's: F16/BF16 weights stay half in memory (converted to f32 inside the GEMM),
  //             F32 stays f32, a `vtx quantize` folder loads as quantized;
  //   F32, F16, BF16  convert at load (computation stays f32);
  //   Int8      int8 per-output-channel weights, dynamic per-token int8 activations, int32 accumulation;
  //   Int4      int4 weight-only, groups of 128 along the input dimension (torchao Int4WeightOnlyConfig).
  // Patch embedding, poolers, classifier heads, MIM decoders and depth necks/heads always stay f32; so do
  // LayerNorm, softmax/attention, residuals and activations.
  std::optional<WeightType> dtype;
  // int4 parameter choice when quantizing at load; nullopt: the environment variable VTX_INT4_METHOD
  // ("mse" | "minmax") if set, else Mse.
  std::optional<Int4Method> int4_method;
  // Arithmetic of the encoder linear layers; nullopt = F32. BF16 rounds their weights (once, at load, from
  // F32/F16/BF16 storage) and their inputs (per call) to bf16 and sums the products in f32; patch embedding,
  // heads, LayerNorm, attention, residuals and the bias/activation epilogue stay f32. Needs AVX512-BF16
  // (bf16_compute_available()); elsewhere Model::load throws vtx::Error. Combines with dtype nullopt or BF16
  // only (int8/int4/f16/f32 storage is refused).
  std::optional<ComputeType> compute;

  // --- hub ids (vtx/hub.hpp): Model::load / Pipeline::load also take "org/name[@revision]" ---
  std::string revision;   // branch, tag or commit; overrides the id's @revision; default "main"
  std::string cache_dir;  // default: huggingface_hub's cache (HF_HUB_CACHE, HF_HOME, ...)
  bool offline = false;   // local_files_only: use the cache only (also HF_HUB_OFFLINE=1)
};

struct ForwardOptions {
  bool output_hidden_states = false;
  bool output_attentions = false;
  bool interpolate_pos_encoding = false;   // ViT/DeiT only; DINOv2 always interpolates
  std::optional<Tensor> head_mask;         // [H] or [L, H] (any float dtype)
  std::optional<Tensor> bool_masked_pos;   // [B, N] (U8/BOOL/any 0/1)
};

// Output fields carry the transformers names; unset tensors are empty().
struct VTX_API ModelOutput {
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
struct SessionAccess;

class VTX_API Model {
 public:
  virtual ~Model();
  // Loads a hub model folder: config.json + model.safetensors or model.safetensors.index.json shards.
  // `dir` may also be a hub id "org/name[@revision]" (vtx/hub.hpp: cache, download, offline).
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
class VTX_API Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ModelOutput forward(const Tensor& pixel_values, const ForwardOptions& opt = {});
  const Model& model() const { return *model_; }

 private:
  friend struct SessionAccess;  // the library's models reach the arena through it (src/models)
  struct Impl;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
};

// FLOPs (2 x multiply-adds of every matmul and the patch convolution) of one image at H x W through the
// transformer trunk and its classifier, as shared/bench/flops.py counts them. Depth necks/heads are not counted.
VTX_API double forward_flops(const ModelInfo& info, int64_t height, int64_t width);

// `vtx quantize`: writes OUT_DIR with config.json (+ "quantization_config"), model.safetensors (the encoder
// linears as F16/BF16, or I8 / U8-nibbles + weight_scale [+ weight_zero_point]; every other tensor unchanged)
// and preprocessor_config.json, loadable by Model::load without the original.
struct QuantizeReport {
  int64_t modules = 0;                   // linear layers converted
  int64_t bytes_in = 0, bytes_out = 0;   // model.safetensors sizes (input: sum of its files)
};
struct QuantizeOptions {
  std::optional<Int4Method> int4_method;  // as LoadOptions::int4_method
};
VTX_API QuantizeReport quantize_checkpoint(const std::string& dir, const std::string& out_dir, WeightType to,
                                           const QuantizeOptions& opt = {});

// Number of threads used by the kernels (default: VTX_NUM_THREADS or hardware concurrency).
VTX_API void set_num_threads(int n);
VTX_API int num_threads();

// Measured fp32 multiply-add peak of this CPU (GFLOP/s) with the widest FMA path the GEMM uses, on one thread or
// on every thread of the kernel pool at once (all_threads); for "% of peak" figures. Takes about 0.3 s.
VTX_API double fma_peak_gflops(bool all_threads);

}  // namespace vtx
