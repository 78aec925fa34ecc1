// vtx run MODEL_DIR --pixel-values IN.safetensors[:KEY] --out OUT.safetensors [options]
#include <iostream>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_load_options.hpp"
#include "cli_images.hpp"
#include "vtx/io.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::cli {

static int cmd_run(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({"--pixel-values", "--image", "--image...", "--out", "--head-mask", "--bool-masked-pos", "--max-pixels"})),
              with_hub_bool_flags({"--hidden-states", "--attentions", "--interpolate-pos-encoding", "--no-exif-transpose"}));
  if (p.positional().size() != 1 || !p.has("--out") || p.has("--pixel-values") == p.has("--image"))
    throw CliError(
        "usage: vtx run MODEL_DIR (--pixel-values IN.safetensors[:KEY] | --image IMG...) --out OUT.safetensors [--hidden-states] "
        "[--attentions] [--interpolate-pos-encoding] [--head-mask FILE:KEY] [--bool-masked-pos FILE:KEY] " + std::string(kLoadFlagsUsage));
  const std::string dir = local_model_dir(p, p.positional()[0]);  // folder or hub id
  {
    std::vector<std::string> inputs = {dir};
    for (const char* f : {"--pixel-values", "--head-mask", "--bool-masked-pos"})
      if (p.has(f)) {
        const std::string spec = p.get(f);
        const size_t colon = spec.rfind(':');
        inputs.push_back(colon == std::string::npos || spec.find('/', colon) != std::string::npos ? spec : spec.substr(0, colon));
        inputs.push_back(spec);
      }
    for (const auto& f : p.get_all("--image")) inputs.push_back(f);
    check_outputs({p.get("--out")}, inputs);  // never over an input, never onto a FIFO / device
  }
  auto model = Model::load(dir, load_options(p));
  Tensor pv;
  if (p.has("--image")) {  // load_image + the folder's image processor, as the HF pipelines do
    const ImageLoadOptions lo = image_load_options(p);
    std::vector<Image> images;
    for (const auto& f : image_files(p.get_all("--image"))) images.push_back(load_image(f, lo));
    pv = load_processor(dir, p).preprocess(images);
  } else {
    pv = load_safetensors_tensor(p.get("--pixel-values"), "pixel_values");
  }
  ForwardOptions opt;
  opt.output_hidden_states = p.has("--hidden-states");
  opt.output_attentions = p.has("--attentions");
  opt.interpolate_pos_encoding = p.has("--interpolate-pos-encoding");
  if (p.has("--head-mask")) opt.head_mask = load_safetensors_tensor(p.get("--head-mask"), "head_mask");
  if (p.has("--bool-masked-pos")) opt.bool_masked_pos = load_safetensors_tensor(p.get("--bool-masked-pos"), "bool_masked_pos");
  ModelOutput out = model->forward(pv, opt);
  save_safetensors(p.get("--out"), out.named());
  return 0;
}

VTX_COMMAND("run", "MODEL_DIR --pixel-values F[:KEY] --out OUT.safetensors: one forward pass, every output", cmd_run);

}  // namespace vtx::cli
