#pragma once
// Architecture factories, chosen in Model::load from config.json (model_type, architectures).
#include <memory>
#include <nlohmann/json.hpp>

#include "io/weights.hpp"
#include "models/common.hpp"
#include "vtx/model.hpp"

namespace vtx {
struct Session::Impl {
  models::Workspace ws;
};
// The library's door into a Session's private state (the public header only declares it).
struct SessionAccess {
  static models::Workspace& workspace(Session& s) { return s.impl_->ws; }
};
}  // namespace vtx

namespace vtx::models {

// The part of ModelInfo every architecture fills the same way (type, class, sizes, labels, parameters, dtypes).
ModelInfo common_info(const Config& c, const io::WeightStore& ws, const std::string& architecture, Task task);
std::string architecture_of(const Config& c);  // architectures[0], or "" when absent
// Rows of classifier.weight (or cls_classifier.weight); -1 when the checkpoint has no classifier.
int64_t num_classifier_outputs(const io::WeightStore& ws);
// config id2label -> one label per classifier output: keys must be plain decimal integers in [0, num_outputs)
// (num_outputs < 0: the map's own size); anything else is an error naming the key. Absent labels stay "".
std::vector<std::string> parse_id2label(const Config& c, int64_t num_outputs);
// After a model is built: checkpoint tensors it did not read are a warning naming them (as transformers
// prints), or an error when they are encoder layers / tokens the config leaves out (config and checkpoint disagree).
void report_unused_tensors(io::WeightStore::Usage& usage, const std::string& architecture);
// root or root.pp(base), depending on whether the checkpoint keys carry the base-model prefix (HF loads both ways).
Loader base_scope(const Loader& root, const std::string& base, const std::string& probe = "embeddings.cls_token");

// Reads quantization_config / LoadOptions::dtype, validates them and tells the WeightStore what precision the
// encoder linears get (read by Linear::load). Returns what ModelInfo reports (weights, mixed, int4 method).
struct LinearPrecisionInfo {
  WeightType weights = WeightType::F32;
  bool mixed = false;
  Int4Method int4_method = Int4Method::Mse;
  ComputeType compute = ComputeType::F32;
};
// The policy goes into the root Loader that every layer is built from.
LinearPrecisionInfo setup_linear_precision(const Config& c, const io::WeightStore& ws, const LoadOptions& opt,
                                           LinearPolicy* policy);

// Conversions between the public enums and the kernels' own.
kernels::WType to_wtype(WeightType t);
WeightType from_wtype(kernels::WType t);
kernels::Int4Method to_kernel_int4(Int4Method m);
// LoadOptions::int4_method, else the environment variable VTX_INT4_METHOD (a bad value is a vtx::Error), else Mse.
Int4Method int4_method_for_load(const LoadOptions& opt);

double forward_flops_impl(const ModelInfo& m, int64_t H, int64_t W);

// Factories: build the model from the root Loader (the store stays open while they run, and is closed after).
std::shared_ptr<Model> make_vit(const Config& c, const Loader& vb);     // vit, deit
std::shared_ptr<Model> make_dinov2(const Config& c, const Loader& vb);  // dinov2, dinov2_with_registers
std::shared_ptr<Model> make_beit(const Config& c, const Loader& vb);    // beit (BEiT, DiT)
std::shared_ptr<Model> make_depth_model(const nlohmann::json& config, const Loader& vb,
                                        const std::string& dir);        // dpt, depth_anything

}  // namespace vtx::models
