// vtx info MODEL_DIR
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "cli_load_options.hpp"
#include "kernels/int4_params.hpp"
#include "vtx/model.hpp"

namespace vtx::cli {

// How the int4 scales / zero points were chosen: a `vtx quantize` folder records it in quantization_config
// (folders without the key predate the choice and used torchao's min/max); quantizing at load uses the default.
static std::string int4_method(const std::string& dir) {
  std::ifstream f(std::filesystem::path(dir) / "config.json");
  const nlohmann::json c = nlohmann::json::parse(f, nullptr, false);
  if (c.is_object() && c.contains("quantization_config") && c["quantization_config"].is_object()) {
    const nlohmann::json& q = c["quantization_config"];
    return q.contains("int4_method") && q["int4_method"].is_string() ? q["int4_method"].get<std::string>() : "minmax";
  }
  return kernels::int4_method_name(kernels::int4_default_method());
}

static int cmd_info(const Args& args) {
  ArgParser p(args, {"--dtype", "--quantize"}, {"--labels"});
  if (p.positional().size() != 1) throw CliError("usage: vtx info MODEL_DIR [--labels] [--dtype f32|f16|bf16] [--quantize int8|int4]");
  auto m = Model::load(p.positional()[0], load_options(p));
  const ModelInfo& i = m->info();
  std::cout << "architecture: " << i.architecture << "\n"
            << "model_type: " << i.model_type << "\n"
            << "task: " << i.task << "\n"
            << "parameters: " << i.num_parameters << "\n"
            << "dtypes:";
  for (const auto& [d, n] : i.dtype_counts) std::cout << " " << d << "=" << n;
  std::cout << "\n"
            << "hidden_size: " << i.hidden_size << "\n"
            << "layers: " << i.num_layers << "\n"
            << "heads: " << i.num_heads << "\n"
            << "image_size: " << i.image_size << "\n"
            << "patch_size: " << i.patch_size << "\n";
  if (i.num_register_tokens) std::cout << "register_tokens: " << i.num_register_tokens << "\n";
  if (!i.out_features.empty()) {
    std::cout << "out_features:";
    for (const auto& f : i.out_features) std::cout << " " << f;
    std::cout << "\n";
  }
  std::cout << "quantization: " << (i.quantization.empty() ? "none" : i.quantization) << "\n";
  if (i.quantization == "int4") std::cout << "int4_method: " << int4_method(p.positional()[0]) << "\n";
  if (!i.id2label.empty()) {
    std::cout << "labels: " << i.id2label.size() << "\n";
    const size_t show = p.has("--labels") ? i.id2label.size() : std::min<size_t>(i.id2label.size(), 10);
    for (size_t k = 0; k < show; ++k) std::cout << "  " << k << ": " << i.id2label[k] << "\n";
    if (show < i.id2label.size()) std::cout << "  ... (" << i.id2label.size() - show << " more; --labels lists all)\n";
  }
  return 0;
}

VTX_COMMAND("info", "MODEL_DIR: architecture, parameters, dtypes, sizes and labels", cmd_info);

}  // namespace vtx::cli
