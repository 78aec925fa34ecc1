#pragma once
// Runs a golden model case from its stored pixel_values and compares every stored output at the case
// tolerances. Shared by the encoder and depth parity tests.
#include <gtest/gtest.h>

#include "support.hpp"
#include "vtx/model.hpp"

namespace vtx::test {

inline ForwardOptions case_options(const GoldenCase& c) {
  ForwardOptions o;
  const auto& op = c.spec["options"];
  o.output_hidden_states = op.value("output_hidden_states", false);
  o.output_attentions = op.value("output_attentions", false);
  o.interpolate_pos_encoding = op["interpolate_pos_encoding"].is_boolean() && op["interpolate_pos_encoding"].get<bool>();
  if (op["head_mask"].is_string()) o.head_mask = c.tensors.at(op["head_mask"].get<std::string>());
  if (op["bool_masked_pos"].is_string()) o.bool_masked_pos = c.tensors.at(op["bool_masked_pos"].get<std::string>());
  return o;
}

// Compares each output tensor named in the case's stats; returns how many were compared.
inline int compare_outputs(const GoldenCase& c, const ModelOutput& out) {
  std::map<std::string, Tensor> got;
  for (auto& [k, v] : out.named()) got[k] = v;
  if (!out.hidden_states.empty()) got["embeddings"] = out.hidden_states[0];
  int n = 0;
  for (auto it = c.spec["stats"].begin(); it != c.spec["stats"].end(); ++it) {
    const std::string& name = it.key();
    // Inputs and post-processing results (checked by the tests that run the post-processing).
    if (name == "pixel_values" || name == "head_mask" || name == "bool_masked_pos" || name == "depth_at_original_size" ||
        name == "logits_at_original_size" || name == "semantic_segmentation_at_original_size" ||
        name == "semantic_segmentation_margin" || name.rfind("pixel_values.", 0) == 0)
      continue;
    auto g = got.find(name);
    EXPECT_TRUE(g != got.end()) << c.name << ": vtx produced no '" << name << "'";
    if (g == got.end()) continue;
    expect_close(g->second, c.tensors.at(name), c.atol(name), c.name + ":" + name);
    ++n;
  }
  return n;
}

}  // namespace vtx::test
