// vtx::quantize_checkpoint (`vtx quantize`): a hub folder -> a folder whose encoder linears are stored in
// f16 / bf16 / int8 / int4 (format: docs/quantization.md). The quantizers are the ones Model::load uses
// (kernels::quantize on the f32 weight, per HF key), so loading the written folder gives bit-identical
// weights to quantizing at load.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "io/files.hpp"
#include "io/safetensors.hpp"
#include "io/weights.hpp"
#include "kernels/qgemm.hpp"
#include "models/common.hpp"
#include "models/registry.hpp"
#include "vtx/model.hpp"

namespace fs = std::filesystem;

namespace vtx {

static Tensor bytes_tensor(std::vector<int64_t> shape, DType dt, const void* src) {
  Tensor t(std::move(shape), dt);
  if (t.nbytes()) std::memcpy(t.raw(), src, t.nbytes());
  return t;
}

QuantizeReport quantize_checkpoint(const std::string& dir, const std::string& out_dir, WeightType to_type,
                                   const QuantizeOptions& opt) {
  using kernels::WType;
  if (to_type == WeightType::F32) throw Error("quantize: the target must be one of int8, int4, f16, bf16 (got f32)");
  const WType t = models::to_wtype(to_type);
  const std::string to = weight_type_name(to_type);
  LoadOptions lo;
  lo.int4_method = opt.int4_method;
  const Int4Method method = models::int4_method_for_load(lo);
  if (!fs::is_directory(dir)) throw Error(dir + ": not a model folder");
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(dir, out_dir, ec))
    throw Error(out_dir + ": the output folder must differ from the input folder");
  // The written folder must load as written: an index or shards already there would shadow model.safetensors.
  if (fs::is_directory(out_dir, ec)) {
    for (auto it = fs::directory_iterator(out_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string n = it->path().filename().string();
      const bool shard = n.rfind("model-", 0) == 0 && n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0;
      if (n == "model.safetensors.index.json" || shard)
        throw Error(out_dir + ": already holds a sharded checkpoint (" + n +
                    "), which would be loaded instead of the quantized one; remove it or choose an empty folder");
    }
  }
  for (const char* name : {"model.safetensors", "config.json", "preprocessor_config.json"}) {
    const std::string o = (fs::path(out_dir) / name).string();
    if (fs::exists(o, ec) && fs::equivalent(o, fs::path(dir) / name, ec))
      throw Error(o + ": is one of the inputs; refusing to overwrite it");
    if (fs::exists(fs::symlink_status(o, ec))) io::atomic_write_target(o);  // FIFOs, devices, read-only: refused
  }
  const std::string cpath = (fs::path(dir) / "config.json").string();
  const std::string text = io::read_file(cpath, "config", uint64_t{64} << 20);
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cpath + ": invalid JSON (" + e.what() + ")");
  }
  if (!cfg.is_object()) throw Error(cpath + ": not a JSON object");
  if (cfg.contains("quantization_config"))
    throw Error(cpath + ": the checkpoint is already quantized (quantization_config); quantize the original");

  auto ws = io::WeightStore::open(dir);
  QuantizeReport rep;
  std::vector<std::pair<std::string, Tensor>> out;
  nlohmann::json modules = nlohmann::json::array();
  for (const std::string& key : ws->keys()) {
    const bool is_w = key.size() > 7 && key.compare(key.size() - 7, 7, ".weight") == 0;
    const std::string prefix = is_w ? key.substr(0, key.size() - 7) : "";
    const std::vector<int64_t> shape = ws->shape(key);
    const DType dt = ws->dtype(key);
    if (!is_w || !models::is_quantizable_linear(prefix) || shape.size() != 2 ||
        (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16)) {
      out.emplace_back(key, ws->raw(key));
      continue;
    }
    const int64_t N = shape[0], K = shape[1];
    for (const char* sfx : {".weight_scale", ".weight_zero_point"})
      if (ws->has(prefix + sfx)) throw Error(ws->file_of(prefix + sfx) + ": the checkpoint already has a tensor '" + prefix + sfx + "'");
    Tensor w = ws->f32(key, shape);
    const kernels::QuantData q = kernels::quantize(w.data<float>(), N, K, t, kernels::kInt4Group, models::to_kernel_int4(method));
    switch (t) {
      case WType::F16: out.emplace_back(key, bytes_tensor({N, K}, DType::F16, q.half.data())); break;
      case WType::BF16: out.emplace_back(key, bytes_tensor({N, K}, DType::BF16, q.half.data())); break;
      case WType::Int8:
        out.emplace_back(key, bytes_tensor({N, K}, DType::I8, q.i8.data()));
        out.emplace_back(prefix + ".weight_scale", bytes_tensor({N}, DType::F32, q.scale.data()));
        break;
      case WType::Int4:
        out.emplace_back(key, bytes_tensor({N, (K + 1) / 2}, DType::U8, q.u4.data()));
        out.emplace_back(prefix + ".weight_scale", bytes_tensor({N, q.groups()}, DType::F32, q.scale.data()));
        out.emplace_back(prefix + ".weight_zero_point", bytes_tensor({N, q.groups()}, DType::F32, q.zero.data()));
        break;
      case WType::F32: break;
    }
    modules.push_back(prefix);
    ++rep.modules;
  }
  if (rep.modules == 0) throw Error(dir + ": no encoder linear layers found to quantize");
  nlohmann::json qc = {{"quant_method", "vtx"}, {"format_version", 1}, {"weights", to}, {"modules", modules}};
  if (t == WType::Int8) {
    qc["weight_scheme"] = "symmetric_per_output_channel";
    qc["activations"] = "dynamic_per_token_int8";
  } else if (t == WType::Int4) {
    qc["weight_scheme"] = "asymmetric_groupwise_uint4_float_zero_point";
    qc["group_size"] = kernels::kInt4Group;
    qc["int4_method"] = int4_method_name(method);  // how s, z were chosen
    qc["activations"] = "f32";
  } else {
    qc["activations"] = "f32";
  }
  cfg["quantization_config"] = qc;

  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw Error(out_dir + ": cannot create folder");
  io::save_safetensors((fs::path(out_dir) / "model.safetensors").string(), out,
                       {{"format", "pt"}, {"vtx_quantization", to}});
  io::write_file_atomic((fs::path(out_dir) / "config.json").string(), cfg.dump(2) + "\n");
  const fs::path pp = fs::path(dir) / "preprocessor_config.json";
  if (fs::exists(pp)) {
    const std::string bytes = io::read_file(pp.string(), "preprocessor config", uint64_t{16} << 20);
    io::write_file_atomic((fs::path(out_dir) / "preprocessor_config.json").string(), bytes);
  }
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") rep.bytes_in += static_cast<int64_t>(fs::file_size(e.path()));
  rep.bytes_out = static_cast<int64_t>(fs::file_size(fs::path(out_dir) / "model.safetensors"));
  return rep;
}

}  // namespace vtx
