#pragma once
// Building blocks shared by every architecture: config access, loaded layers (Linear, LayerNorm, patch
// embedding) and the per-call workspace. Weights are loaded once, packed, and never modified.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/weights.hpp"
#include "models/loader.hpp"
#include "kernels/bf16gemm.hpp"
#include "kernels/gemm.hpp"
#include "kernels/qgemm.hpp"
#include "vtx/error.hpp"
#include "vtx/model.hpp"

namespace vtx::models {

using json = nlohmann::json;

// Typed, range-checked config.json access; errors name the file, the key, the value and the allowed range.
// Every integer is checked before it is used: i(key, def, lo, hi) explicitly, and i(key[, def]) against the
// range kConfigRanges gives that key (sizes >= 1, counts >= 0, all bounded so that products of a few of them
// cannot overflow int64; keys not in the table: the int32 range). JSON integers past int64, floats given for
// integers, and non-finite floats (1e999) are refused. The ranges are sanity bounds only: sizes are then
// checked against the checkpoint's tensor shapes before anything is allocated from them.
struct Config {
  json j;
  std::string path;  // config.json path, for messages
  int64_t i(const std::string& key) const;
  int64_t i(const std::string& key, int64_t def) const;
  int64_t i(const std::string& key, int64_t def, int64_t lo, int64_t hi) const;
  int64_t i_required(const std::string& key, int64_t lo, int64_t hi) const;
  double f(const std::string& key, double def) const;                        // finite, range from the table
  double f(const std::string& key, double def, double lo, double hi) const;  // finite, in [lo, hi]
  bool b(const std::string& key, bool def) const;
  std::string s(const std::string& key, const std::string& def) const;
  bool has(const std::string& key) const { return j.contains(key) && !j[key].is_null(); }
  Config sub(const std::string& key) const;  // nested config (e.g. backbone_config)
};

// Allowed range of a config integer / float key (what Config::i / Config::f check by default).
struct ConfigRange {
  double lo, hi;
};
ConfigRange config_range(const std::string& key);
// Checks an integer JSON value against [lo, hi]; `where` = "<file>: <key>" for the message.
int64_t checked_int(const json& v, const std::string& where, int64_t lo, int64_t hi);

kernels::Act parse_act(const Config& c, const std::string& key, const std::string& def);

// Activation buffers of a Session, one per name ("encoder.qkv", "embeddings.patches", "neck.stage.2.up", ...),
// reused across calls: after the first forward at a given shape nothing is allocated. A pointer stays valid until
// the same name is asked for with a larger size.
class Workspace {
 public:
  float* get(const std::string& name, size_t n) {
    std::vector<float>& b = bufs_[name];
    if (b.size() < n) b.resize(n);
    return b.data();
  }
  // A buffer whose contents depend only on `key` (the interpolated position embeddings of one grid size):
  // fill(buffer) runs only when the buffer does not already hold what a completed fill stored for that key. The
  // key is recorded after fill returns, so a fill that throws half-way is never taken for a hit.
  template <class Fill>
  float* memo(const std::string& name, size_t n, const std::string& key, const Fill& fill) {
    Memo& m = memos_[name];
    if (m.key.empty() || m.key != key || m.buf.size() < n) {
      m.key.clear();
      if (m.buf.size() < n) m.buf.resize(n);
      fill(m.buf.data());
      m.key = key;
    }
    return m.buf.data();
  }
  size_t buffers() const { return bufs_.size(); }
  // Buffers are named, never numbered (a literal 0 would otherwise convert to a null std::string).
  float* get(int, size_t) = delete;
  float* get(size_t, size_t) = delete;

 private:
  struct Memo {
    std::vector<float> buf;
    std::string key;
  };
  std::map<std::string, std::vector<float>> bufs_;
  std::map<std::string, Memo> memos_;
};

// The linear layers that run in reduced precision (LoadOptions::dtype, F16/BF16 checkpoints, vtx-quantized
// folders): every encoder nn.Linear, i.e. "<...>.layer.<i>.<name>" with <name> one of
// attention.attention.{query,key,value}, attention.output.dense, intermediate.dense, output.dense,
// mlp.{fc1,fc2,weights_in,weights_out}. Patch embedding, poolers, classifier heads, MIM decoders and DPT necks
// stay f32. `vtx quantize` uses the same rule.
bool is_quantizable_linear(const std::string& prefix);

struct Linear {
  kernels::PackedWeight w;   // f32 weight (empty when qw is used)
  kernels::QuantWeight qw;   // f16 / bf16 / int8 / int4 weight (encoder linears, see is_quantizable_linear)
  kernels::Bf16Weight bw;    // bf16-compute weight (encoder linears with LinearPolicy::bf16_compute)
  std::vector<float> bias;  // empty: no bias
  int64_t in = 0, out = 0;
  // Loads "<vb>weight" [out, in] and "<vb>bias" [out] (bias optional when has_bias is false), in the precision
  // vb.policy() asks for when is_quantizable_linear(vb.name()); a vtx-quantized weight (I8 / U8 + weight_scale
  // [+ weight_zero_point]) is loaded as stored. F32 weights are packed straight from the mapped file, and
  // F16/BF16 weights kept in their precision are copied from it as they are (no f32 round trip).
  static Linear load(const Loader& vb, int64_t out, int64_t in, bool has_bias = true);
  // Layers sharing the input stacked along the output (fused q/k/v): rows of parts[0], then [1], ...
  // Missing biases are zeros when at least one layer has one.
  static Linear load_stacked(const std::vector<Loader>& parts, int64_t out_each, int64_t in, bool has_bias = true);
  // Same, with the bias of each layer stated: true = "<part>bias" is required, false = the layer has no bias
  // (zeros; a stored one is ignored, as transformers ignores unexpected keys), e.g. BEiT's key projection.
  static Linear load_stacked(const std::vector<Loader>& parts, int64_t out_each, int64_t in,
                             const std::vector<bool>& has_bias);
  kernels::WType wtype() const {
    return !bw.empty() ? kernels::WType::BF16 : qw.empty() ? kernels::WType::F32 : qw.type();
  }
  // y[M, out] = x[M, in] W^T + b, then the epilogue's act / scale / residual.
  void operator()(const float* x, int64_t M, float* y, kernels::Epilogue ep = {}) const;
};

// Reads the weight of one quantizable linear in the precision the policy asks for (F32: not quantized, returns
// false and fills f32). Pre-quantized (I8 / U8) tensors are validated against [out, in] and group_size; errors
// name file and key.
bool load_linear_weight(const Loader& vb, int64_t out, int64_t in, kernels::QuantData* q, std::vector<float>* f32);

struct LayerNorm {
  std::vector<float> gamma, beta;
  float eps = 1e-12f;
  static LayerNorm load(const Loader& vb, int64_t D, double eps);
  void operator()(const float* x, int64_t rows, float* y) const;
};

// Conv2d(C, D, kernel=p, stride=p) as im2col + GEMM. Input [B, C, H, W] -> [B, (H/p)*(W/p), D].
struct PatchEmbedding {
  Linear proj;
  int64_t C = 3, p = 16, D = 0;
  static PatchEmbedding load(const Loader& vb, int64_t C, int64_t D, int64_t p);
  // `buffer`: the workspace name of its im2col columns.
  void operator()(const float* pixels, int64_t B, int64_t H, int64_t W, float* out, Workspace& wsp,
                  const std::string& buffer) const;
};

// Checks pixel_values: F32 (or convertible) [B, C, H, W] with the expected channel count and H, W >= patch.
Tensor check_pixel_values(const Tensor& pv, int64_t channels, int64_t patch);

// Per-layer head mask: [H] or [L, H] -> L rows of H floats (empty when no mask).
std::vector<std::vector<float>> expand_head_mask(const std::optional<Tensor>& hm, int64_t L, int64_t H);

// bool_masked_pos [B, N] (any dtype) -> B*N bytes 0/1 (empty when none).
std::vector<uint8_t> read_mask(const std::optional<Tensor>& m, int64_t B, int64_t N);

Tensor tensor_from(const float* data, std::vector<int64_t> shape);

}  // namespace vtx::models
