// vtx preprocess MODEL_DIR IMG... --out OUT.safetensors
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_images.hpp"
#include "vtx/image.hpp"
#include "vtx/io.hpp"
#include "vtx/processor.hpp"

namespace {

int cmd_preprocess(const vtx::cli::Args& args) {
  vtx::cli::ArgParser ap(args, vtx::cli::with_hub_flags({"--out", "--max-pixels"}),
                         vtx::cli::with_hub_bool_flags({"--no-exif-transpose"}));
  const auto& pos = ap.positional();
  if (pos.size() < 2 || !ap.has("--out"))
    throw vtx::cli::CliError(
        "usage: vtx preprocess MODEL_DIR IMAGE... --out OUT.safetensors [--no-exif-transpose] [--max-pixels N]");
  vtx::check_outputs({ap.get("--out")}, pos);  // the model folder and the images are inputs
  const vtx::ImageLoadOptions opt = vtx::cli::image_load_options(ap);
  const vtx::ImageProcessor proc = vtx::cli::load_processor(vtx::cli::local_model_dir(ap, pos[0]), ap);  // folder or hub id

  std::vector<std::string> stems;
  std::vector<vtx::Tensor> each;
  for (size_t i = 1; i < pos.size(); ++i) {
    stems.push_back(std::filesystem::path(pos[i]).stem().string());
    try {
      each.push_back(proc.preprocess(vtx::load_image(pos[i], opt)));
    } catch (const vtx::Error& e) {
      const std::string m = e.what();
      throw vtx::Error(m.rfind(pos[i], 0) == 0 ? m : pos[i] + ": " + m);  // name the image
    }
  }
  bool same = true;
  for (const auto& t : each) same = same && t.shape() == each.front().shape();

  std::vector<std::pair<std::string, vtx::Tensor>> out;
  if (same) {
    const auto& s = each.front().shape();
    vtx::Tensor batch({static_cast<int64_t>(each.size()), s[0], s[1], s[2]}, vtx::DType::F32);
    const int64_t n = each.front().numel();
    for (size_t i = 0; i < each.size(); ++i)
      std::copy_n(each[i].data<float>(), n, batch.data<float>() + i * n);
    out.emplace_back("pixel_values", batch);
  } else {
    for (size_t i = 0; i < each.size(); ++i) {
      std::string key = "pixel_values." + stems[i];
      for (const auto& [k, t] : out)
        if (k == key) throw vtx::cli::CliError("two images named '" + stems[i] + "' give different sizes; rename one");
      out.emplace_back(key, each[i]);
    }
  }
  vtx::save_safetensors(ap.get("--out"), out);
  for (const auto& [k, t] : out) std::cout << k << " " << t.shape_str() << "\n";
  return 0;
}

}  // namespace

VTX_COMMAND("preprocess", "run a model's image processor on images -> pixel_values safetensors", cmd_preprocess);
