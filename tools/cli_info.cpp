// vtx info MODEL_DIR
#include <iostream>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_load_options.hpp"
#include "vtx/cpu.hpp"
#include "vtx/model.hpp"

namespace vtx::cli {

static int cmd_info(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({})), with_hub_bool_flags({"--labels", "--verbose"}));
  if (p.positional().size() != 1)
    throw CliError("usage: vtx info MODEL_DIR|ORG/NAME[@REV] [--labels] [--verbose] " + std::string(kLoadFlagsUsage) + " " + kHubFlagsUsage);
  const ResolvedModel where = resolve_model_arg(p, p.positional()[0]);  // folder or hub id
  auto m = Model::load(where.dir, load_options(p));
  if (where.from_hub)  // where the snapshot came from
    std::cout << "hub_id: " << where.repo_id << "\n"
              << "revision: " << where.revision << "\n"
              << "commit: " << where.commit << "\n"
              << "path: " << where.dir << "\n"
              << "cache: " << where.repo_cache << "\n";
  const ModelInfo& i = m->info();
  std::cout << "architecture: " << i.architecture << "\n"
            << "model_type: " << i.model_type << "\n"
            << "task: " << task_name(i.task) << "\n"
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
  std::cout << "quantization: " << quantization_label(i) << "\n";
  std::cout << "compute: " << compute_type_name(i.compute) << "\n";
  if (i.weights == WeightType::Int4) std::cout << "int4_method: " << int4_method_name(i.int4_method) << "\n";
  if (i.task == Task::DepthEstimation)
    std::cout << "depth: " << (i.metric_depth ? "metric, max_depth " + std::to_string(i.max_depth) : std::string("relative")) << "\n";
  if (!i.id2label.empty()) {
    std::cout << "labels: " << i.id2label.size() << "\n";
    const size_t show = p.has("--labels") ? i.id2label.size() : std::min<size_t>(i.id2label.size(), 10);
    for (size_t k = 0; k < show; ++k) std::cout << "  " << k << ": " << i.id2label[k] << "\n";
    if (show < i.id2label.size()) std::cout << "  ... (" << i.id2label.size() - show << " more; --labels lists all)\n";
  }
  if (p.has("--verbose")) {  // the kernel path each family runs on this CPU (dispatch table)
    std::cout << "cpu: " << cpu_isa_string() << "\nkernels:\n";
    for (const KernelPath& k : kernel_dispatch_table()) std::cout << "  " << k.family << ": " << k.path << "\n";
  }
  return 0;
}

VTX_COMMAND("info", "MODEL_DIR: architecture, parameters, dtypes, sizes and labels", cmd_info);

}  // namespace vtx::cli
