#pragma once
// Depth estimation models (transformers 4.48.3):
//   DepthAnythingForDepthEstimation  (model_type "depth_anything", Dinov2 backbone)
//   DPTForDepthEstimation            (model_type "dpt": Dinov2 backbone via backbone_config, or DPT's own ViT)
// (post-processing: vtx::post_process_depth_estimation in include/vtx/pipeline.hpp).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "io/weights.hpp"
#include "models/dpt_neck.hpp"
#include "vtx/model.hpp"

namespace vtx::models {

// Wall-clock split of the last forward pass of a depth model (milliseconds), for benchmarks.
struct DepthTiming {
  double backbone_ms = 0, neck_ms = 0, head_ms = 0;
};

// Runs the session's depth model (one made by make_depth_model; throws otherwise) with the timing split.
ModelOutput depth_forward_timed(Session& session, const Tensor& pixel_values, DepthTiming& timing,
                                const ForwardOptions& opt = {});

// The factory used by Model::load for model_type "dpt" / "depth_anything".
std::shared_ptr<Model> make_depth_model(const nlohmann::json& config, const Loader& vb, const std::string& dir);

}  // namespace vtx::models
