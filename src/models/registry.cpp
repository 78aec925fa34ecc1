// Model::load: reads config.json, opens the checkpoint, and picks the architecture.
#include "models/registry.hpp"

#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <iostream>

#include "core/threadpool.hpp"
#include "kernels/kernels.hpp"
#include "io/files.hpp"
#include "vtx/hub.hpp"

namespace fs = std::filesystem;

namespace vtx {

Model::~Model() = default;

const char* version_string() { return VTX_VERSION_STRING; }

const char* task_name(Task t) {
  switch (t) {
    case Task::Features: return "features";
    case Task::Classification: return "classification";
    case Task::Backbone: return "backbone";
    case Task::MaskedImageModeling: return "mim";
    case Task::DepthEstimation: return "depth";
    case Task::SemanticSegmentation: return "segmentation";
  }
  return "?";
}

const char* pipeline_task_name(Task t) {
  switch (t) {
    case Task::Features: return "image-feature-extraction";
    case Task::Classification: return "image-classification";
    case Task::DepthEstimation: return "depth-estimation";
    case Task::SemanticSegmentation: return "image-segmentation";
    case Task::Backbone: case Task::MaskedImageModeling: return "";
  }
  return "";
}

const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::F32: return "f32";
    case WeightType::F16: return "f16";
    case WeightType::BF16: return "bf16";
    case WeightType::Int8: return "int8";
    case WeightType::Int4: return "int4";
  }
  return "?";
}

WeightType parse_weight_type(const std::string& s) {
  for (WeightType t : {WeightType::F32, WeightType::F16, WeightType::BF16, WeightType::Int8, WeightType::Int4})
    if (s == weight_type_name(t)) return t;
  throw Error("weight type \"" + s + "\" is not one of f32, f16, bf16, int8, int4");
}

const char* compute_type_name(ComputeType t) { return t == ComputeType::BF16 ? "bf16" : "f32"; }

ComputeType parse_compute_type(const std::string& s) {
  if (s == "f32") return ComputeType::F32;
  if (s == "bf16") return ComputeType::BF16;
  throw Error("compute type \"" + s + "\" is not one of f32, bf16");
}

bool bf16_compute_available() { return kernels::kernel_table().gemm_bf16 != nullptr; }

const char* int4_method_name(Int4Method m) { return m == Int4Method::MinMax ? "minmax" : "mse"; }

Int4Method parse_int4_method(const std::string& s) {
  if (s == "mse") return Int4Method::Mse;
  if (s == "minmax") return Int4Method::MinMax;
  throw Error("int4 method \"" + s + "\" is not one of mse, minmax");
}

std::shared_ptr<const Model> Model::load(const std::string& dir_or_id, const LoadOptions& opt) {
  const std::string dir = resolve_model(dir_or_id, hub_options(opt)).dir;  // a folder, or a hub id (vtx/hub.hpp)
  if (!fs::is_directory(dir)) throw Error(dir + ": not a model folder");
  const std::string cpath = (fs::path(dir) / "config.json").string();
  const std::string text = io::read_file(cpath, "config", uint64_t{64} << 20);  // a FIFO is refused, not read
  models::Config c;
  c.path = cpath;
  try {
    c.j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cpath + ": invalid JSON (" + e.what() + ")");
  }
  if (!c.j.is_object()) throw Error(cpath + ": not a JSON object");
  const std::string type = c.s("model_type", "");
  if (type.empty()) throw Error(cpath + ": no \"model_type\"");
  auto known = {"vit", "deit", "dinov2", "dinov2_with_registers", "dpt", "depth_anything", "beit"};
  if (std::find(known.begin(), known.end(), type) == known.end())
    throw Error(cpath + ": unknown model_type \"" + type + "\" (supported: vit, deit, dinov2, dinov2_with_registers, dpt, depth_anything, beit)");
  auto ws = io::WeightStore::open(dir);
  const auto usage = ws->usage();  // outlives the store, which the factories consume
  models::LinearPolicy policy;
  const models::LinearPrecisionInfo prec = models::setup_linear_precision(c, *ws, opt, &policy);
  const models::Loader vb(*ws, policy);
  std::shared_ptr<Model> m;
  if (type == "vit" || type == "deit") m = models::make_vit(c, vb);
  else if (type == "dinov2" || type == "dinov2_with_registers") m = models::make_dinov2(c, vb);
  else if (type == "beit") m = models::make_beit(c, vb);
  else m = models::make_depth_model(c.j, vb, dir);
  m->info_.weights = prec.weights;
  m->info_.mixed_precision = prec.mixed;
  m->info_.int4_method = prec.int4_method;
  m->info_.compute = prec.compute;
  m->info_.source_dir = dir;
  models::report_unused_tensors(*usage, m->info_.architecture);
  return m;
}

ModelOutput Model::forward(const Tensor& pixel_values, const ForwardOptions& opt) const {
  // A temporary session: the model is owned by the caller, so alias it without taking ownership.
  Session s(std::shared_ptr<const Model>(std::shared_ptr<const Model>(), this));
  return s.forward(pixel_values, opt);
}

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)), impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

namespace {

// Index of the first NaN / Inf of an F32 tensor, or -1.
int64_t first_non_finite(const Tensor& t) {
  if (t.empty() || t.dtype() != DType::F32) return -1;
  const float* p = t.data<float>();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

std::string where_in(const Tensor& t, int64_t flat) {
  std::string r = "[";
  std::vector<int64_t> idx(static_cast<size_t>(t.ndim()));
  for (int d = t.ndim() - 1; d >= 0; --d) {
    idx[static_cast<size_t>(d)] = flat % t.dim(d);
    flat /= t.dim(d);
  }
  for (size_t i = 0; i < idx.size(); ++i) r += (i ? ", " : "") + std::to_string(idx[i]);
  return r + "]";
}

std::string value_name(float v) { return std::isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf"; }

}  // namespace

ModelOutput Session::forward(const Tensor& pixel_values, const ForwardOptions& opt) {
  // A NaN / Inf never passes silently: in the input it is refused, in an output it is an error naming the first
  // output (in the order the forward pass computes them) and the position where it appeared.
  if (pixel_values.dtype() == DType::F32) {
    const int64_t i = first_non_finite(pixel_values);
    if (i >= 0)
      throw Error("pixel_values: non-finite value " + value_name(pixel_values.data<float>()[i]) + " at " +
                  where_in(pixel_values, i));
  }
  ModelOutput out = model_->run(*this, pixel_values, opt);
  std::vector<std::pair<std::string, const Tensor*>> order;
  for (size_t i = 0; i < out.hidden_states.size(); ++i) order.emplace_back("hidden_states." + std::to_string(i), &out.hidden_states[i]);
  for (size_t i = 0; i < out.attentions.size(); ++i) order.emplace_back("attentions." + std::to_string(i), &out.attentions[i]);
  for (size_t i = 0; i < out.feature_maps.size(); ++i) order.emplace_back("feature_maps." + std::to_string(i), &out.feature_maps[i]);
  for (const auto& [k, v] : out.extra) order.emplace_back(k, &v);
  for (const auto& [k, v] : out.named()) {
    bool seen = false;
    for (const auto& o : order) seen = seen || o.first == k;
    if (!seen) order.emplace_back(k, nullptr);
  }
  const auto named = out.named();
  for (const auto& [name, tp] : order) {
    const Tensor* t = tp;
    if (!t)
      for (const auto& [k, v] : named)
        if (k == name) t = &v;
    const int64_t i = t ? first_non_finite(*t) : -1;
    if (i >= 0)
      throw Error(model_->info().architecture + ": the forward pass produced a non-finite value (" +
                  value_name(t->data<float>()[i]) + ") first in " + name + " at " + where_in(*t, i) +
                  " (the input was finite: check the checkpoint's weights, e.g. quantization scales)");
  }
  return out;
}

double forward_flops(const ModelInfo& info, int64_t height, int64_t width) {
  return models::forward_flops_impl(info, height, width);
}

std::vector<std::pair<std::string, Tensor>> ModelOutput::named() const {
  std::vector<std::pair<std::string, Tensor>> r;
  auto add = [&](const std::string& n, const Tensor& t) {
    if (!t.empty()) r.emplace_back(n, t);
  };
  add("last_hidden_state", last_hidden_state);
  add("pooler_output", pooler_output);
  for (size_t i = 0; i < hidden_states.size(); ++i) add("hidden_states." + std::to_string(i), hidden_states[i]);
  for (size_t i = 0; i < attentions.size(); ++i) add("attentions." + std::to_string(i), attentions[i]);
  add("logits", logits);
  add("cls_logits", cls_logits);
  add("distillation_logits", distillation_logits);
  for (size_t i = 0; i < feature_maps.size(); ++i) add("feature_maps." + std::to_string(i), feature_maps[i]);
  add("reconstruction", reconstruction);
  add("loss", loss);
  add("predicted_depth", predicted_depth);
  for (const auto& [k, v] : extra) add(k, v);
  return r;
}

}  // namespace vtx

namespace vtx::models {

std::string architecture_of(const Config& c) {
  if (c.j.contains("architectures") && c.j["architectures"].is_array() && !c.j["architectures"].empty() &&
      c.j["architectures"][0].is_string())
    return c.j["architectures"][0].get<std::string>();
  return "";
}

Loader base_scope(const Loader& root, const std::string& base, const std::string& probe) {
  return root.has(base + "." + probe) ? root.pp(base) : root;
}

kernels::WType to_wtype(WeightType t) {
  switch (t) {
    case WeightType::F32: return kernels::WType::F32;
    case WeightType::F16: return kernels::WType::F16;
    case WeightType::BF16: return kernels::WType::BF16;
    case WeightType::Int8: return kernels::WType::Int8;
    case WeightType::Int4: return kernels::WType::Int4;
  }
  return kernels::WType::F32;
}

WeightType from_wtype(kernels::WType t) {
  switch (t) {
    case kernels::WType::F32: return WeightType::F32;
    case kernels::WType::F16: return WeightType::F16;
    case kernels::WType::BF16: return WeightType::BF16;
    case kernels::WType::Int8: return WeightType::Int8;
    case kernels::WType::Int4: return WeightType::Int4;
  }
  return WeightType::F32;
}

kernels::Int4Method to_kernel_int4(Int4Method m) {
  return m == Int4Method::MinMax ? kernels::Int4Method::MinMax : kernels::Int4Method::Mse;
}

// LoadOptions::int4_method, else VTX_INT4_METHOD, else Mse.
Int4Method int4_method_for_load(const LoadOptions& opt) {
  if (opt.int4_method) return *opt.int4_method;
  const char* e = std::getenv("VTX_INT4_METHOD");
  if (e && *e) {
    try {
      return parse_int4_method(e);
    } catch (const Error&) {
      throw Error(std::string("environment variable VTX_INT4_METHOD=\"") + e + "\" is not one of mse, minmax");
    }
  }
  return Int4Method::Mse;
}

LinearPrecisionInfo setup_linear_precision(const Config& c, const io::WeightStore& ws, const LoadOptions& opt,
                                           LinearPolicy* policy) {
  LinearPolicy& prec = *policy;
  if (opt.dtype) prec.dtype = to_wtype(*opt.dtype);
  LinearPrecisionInfo info;
  info.int4_method = int4_method_for_load(opt);
  prec.int4_method = to_kernel_int4(info.int4_method);
  // A folder written by `vtx quantize` (docs/quantization.md): config.json "quantization_config".
  std::optional<WeightType> stored;  // Int8 / Int4: the encoder linears are stored quantized
  if (c.has("quantization_config")) {
    const Config q = c.sub("quantization_config");
    if (q.s("quant_method", "") != "vtx")
      throw Error(c.path + ": quantization_config.quant_method \"" + q.s("quant_method", "") +
                  "\" is not supported (vtx loads its own \"vtx\" format, see `vtx quantize`)");
    const std::string w = q.s("weights", "");
    WeightType t = WeightType::F32;
    try {
      t = parse_weight_type(w);
    } catch (const Error&) {
    }
    if (t == WeightType::F32)
      throw Error(c.path + ": quantization_config.weights \"" + w + "\" is not one of f16, bf16, int8, int4");
    prec.group_size = q.i("group_size", kernels::kInt4Group);
    if (prec.group_size <= 0) throw Error(c.path + ": quantization_config.group_size must be positive");
    if (t == WeightType::Int8 || t == WeightType::Int4) stored = t;
    if (t == WeightType::Int4) {
      // Folders without the key predate the choice and used torchao's min/max.
      const std::string m = q.s("int4_method", "minmax");
      try {
        info.int4_method = parse_int4_method(m);
      } catch (const Error&) {
        throw Error(c.path + ": quantization_config.int4_method \"" + m + "\" is not one of mse, minmax");
      }
    }
    if (q.has("modules")) {
      if (!q.j["modules"].is_array()) throw Error(c.path + ": quantization_config.modules is not an array");
      const DType dt = t == WeightType::Int8 ? DType::I8 : t == WeightType::Int4 ? DType::U8
                       : t == WeightType::F16 ? DType::F16 : DType::BF16;
      for (const auto& mod : q.j["modules"]) {
        if (!mod.is_string()) throw Error(c.path + ": quantization_config.modules holds a non-string");
        const std::string key = mod.get<std::string>() + ".weight";
        if (!ws.has(key)) throw Error(ws.file_of(key) + ": missing tensor '" + key + "' (listed in " + c.path + ")");
        if (ws.dtype(key) != dt)
          throw Error(ws.file_of(key) + ": tensor '" + key + "' has dtype " + dtype_name(ws.dtype(key)) + ", " +
                      c.path + " says " + w + " (" + dtype_name(dt) + ")");
      }
    }
    if (stored && opt.dtype && *opt.dtype != *stored)
      throw Error(ws.dir() + ": the checkpoint is quantized to " + weight_type_name(*stored) +
                  "; it cannot be loaded as " + weight_type_name(*opt.dtype));
    if (!prec.dtype && stored) prec.dtype = to_wtype(*stored);
  }
  if (opt.compute == ComputeType::BF16) {
    // bf16 x bf16 GEMMs: the weights become bf16 whatever they are stored as, so only "keep" or "bf16" agree.
    if (stored)
      throw Error(ws.dir() + ": compute bf16 (--compute bf16) needs float weights, but the checkpoint is quantized to " +
                  weight_type_name(*stored) + "; load the original checkpoint");
    if (opt.dtype && *opt.dtype != WeightType::BF16)
      throw Error(ws.dir() + ": compute bf16 (--compute bf16) rounds the weights to bf16; it cannot be combined with "
                  "dtype " + std::string(weight_type_name(*opt.dtype)) + " (omit the dtype or use bf16)");
    if (!bf16_compute_available()) throw Error(kernels::bf16_unavailable_message(ws.dir() + ": --compute bf16"));
    prec.bf16_compute = true;
    info.weights = WeightType::BF16;
    info.compute = ComputeType::BF16;
    return info;
  }
  if (prec.dtype) {
    info.weights = from_wtype(*prec.dtype);
    return info;
  }
  // Default: F16/BF16 encoder linears are kept in their precision.
  std::map<DType, int64_t> n;
  for (const auto& k : ws.keys())
    if (k.size() > 7 && k.compare(k.size() - 7, 7, ".weight") == 0 && is_quantizable_linear(k.substr(0, k.size() - 7)))
      ++n[ws.dtype(k)];
  if (n.size() == 1 && n.begin()->first == DType::F16) info.weights = WeightType::F16;
  else if (n.size() == 1 && n.begin()->first == DType::BF16) info.weights = WeightType::BF16;
  else if (n.count(DType::F16) || n.count(DType::BF16)) info.mixed = true;
  return info;
}

int64_t num_classifier_outputs(const io::WeightStore& ws) {
  for (const char* k : {"classifier.weight", "cls_classifier.weight"})
    if (ws.has(k)) {
      const auto s = ws.shape(k);
      if (s.empty()) throw Error(ws.file_of(k) + ": tensor '" + k + "' is a scalar, expected [num_labels, hidden]");
      return s[0];
    }
  return -1;
}

std::vector<std::string> parse_id2label(const Config& c, int64_t num_outputs) {
  std::vector<std::string> labels;
  if (!c.has("id2label")) return labels;
  const json& l = c.j["id2label"];
  if (!l.is_object()) throw Error(c.path + ": id2label is not an object");
  const int64_t n = num_outputs >= 0 ? num_outputs : static_cast<int64_t>(l.size());
  std::vector<std::pair<int64_t, std::string>> entries;
  for (auto it = l.begin(); it != l.end(); ++it) {
    // Plain decimal: digits only, no sign, no leading zeros (except "0"), below the number of outputs.
    const std::string& k = it.key();
    bool ok = !k.empty() && k.size() <= 18 && (k.size() == 1 || k[0] != '0');
    for (char ch : k) ok = ok && ch >= '0' && ch <= '9';
    if (!ok) throw Error(c.path + ": id2label key \"" + k + "\" is not a plain decimal class index");
    const int64_t idx = std::stoll(k);
    if (idx >= n)
      throw Error(c.path + ": id2label key \"" + k + "\" is out of range: the " +
                  (num_outputs >= 0 ? "classifier has " : "map has ") + std::to_string(n) + " outputs (0.." +
                  std::to_string(n - 1) + ")");
    entries.emplace_back(idx, it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  }
  labels.resize(static_cast<size_t>(num_outputs >= 0 ? num_outputs : n));  // bounded by the checkpoint
  for (auto& [i, s] : entries) labels[static_cast<size_t>(i)] = std::move(s);
  return labels;
}

void report_unused_tensors(io::WeightStore::Usage& ws, const std::string& architecture) {
  std::vector<std::string> unused;
  for (auto& k : ws.unused())
    // Parameters the transformers module has but never uses in forward (DPT's first fusion layer gets no
    // residual, so its residual_layer1 is dead): part of the architecture, not a disagreement.
    // BatchNorm's num_batches_tracked only counts training steps; BEiT checkpoints may carry the
    // relative_position_index buffers, which transformers ignores on load.
    if (k.rfind("neck.fusion_stage.layers.0.residual_layer1.", 0) != 0 &&
        !(k.size() > 20 && k.compare(k.size() - 20, 20, ".num_batches_tracked") == 0) &&
        k.find("relative_position_index") == std::string::npos)
      unused.push_back(std::move(k));
  if (unused.empty()) return;
  std::string list;
  for (size_t i = 0; i < unused.size() && i < 10; ++i) list += (i ? ", " : "") + unused[i];
  if (unused.size() > 10) list += ", ... (" + std::to_string(unused.size() - 10) + " more)";
  // Tensors of layers or tokens the config does not have mean the config and checkpoint disagree: an error.
  for (const auto& k : unused) {
    const bool structural = k.find("register_tokens") != std::string::npos || k.find("distillation_token") != std::string::npos ||
                            k.find("encoder.layer.") != std::string::npos;
    if (structural)
      throw Error(ws.file_of[k] + ": tensor '" + k + "' is not used by " + architecture +
                  " as config.json describes it (the config and the checkpoint disagree; unused: " + list + ")");
  }
  std::cerr << "vtx: warning: " << ws.dir << ": some weights of the checkpoint were not used when initializing "
            << architecture << ": " << list << "\n";
}

ModelInfo common_info(const Config& c, const io::WeightStore& ws, const std::string& architecture, Task task) {
  ModelInfo m;
  m.model_type = c.s("model_type", "");
  m.architecture = architecture;
  m.task = task;
  Config b = c;
  if (c.has("backbone_config") && !c.has("hidden_size")) b = c.sub("backbone_config");
  m.hidden_size = b.i("hidden_size", 0);
  m.num_layers = b.i("num_hidden_layers", 0);
  m.num_heads = b.i("num_attention_heads", 0);
  m.image_size = b.i("image_size", 0);
  m.patch_size = b.i("patch_size", 0);
  m.num_channels = b.i("num_channels", 3);
  m.num_register_tokens = b.i("num_register_tokens", 0);
  m.num_parameters = ws.num_parameters();
  m.dtype_counts = ws.dtype_counts();
  if (task == Task::Classification) m.id2label = parse_id2label(c, num_classifier_outputs(ws));
  // Segmentation: the head's class count is checked against id2label when the head is loaded.
  if (task == Task::SemanticSegmentation) m.id2label = parse_id2label(c, -1);
  return m;
}

}  // namespace vtx::models
