// vtx depth MODEL_DIR IMG|DIR... --out DIR [--format npy|safetensors|png16[,...]] [--colormap inferno|gray] [--batch N]
//
// Depth estimation (DPT / Depth Anything) on image files: load_image -> the model folder's image processor ->
// forward -> post_process_depth_estimation to the original image size. Folders are walked recursively, and a
// bad image is reported and skipped (exit code 3), as in classify and embed. For each input <stem>:
//   <stem>.npy           raw depth, float32 [height, width] (format npy, the default)
//   <stem>.safetensors   raw depth as tensor "depth" (format safetensors; metadata "depth_units")
//   <stem>.png           with format png16: 16-bit grayscale data PNG
//                          relative models: (d - min) / (max - min) * 65535, per image (brighter = larger value)
//                          metric models:   d * 256 (metres = value / 256, KITTI convention; clamped to 65535)
//                        otherwise: 8-bit visualisation, per-image normalised, colormap inferno (RGB) or gray
// The PNG also carries the scaling in a tEXt chunk ("vtx-depth-scale").
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_images.hpp"
#include "cli_load_options.hpp"
#include "vtx/io.hpp"
#include "vtx/pipeline.hpp"

namespace fs = std::filesystem;

namespace vtx::cli {
namespace {

// Canonical form of a path that may not exist yet (for comparing outputs with inputs).
std::string canonical_or_absolute(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  return ec ? fs::absolute(p).lexically_normal().string() : c.string();
}

int cmd_depth(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({"--out", "--format", "--colormap", "--batch", "--max-pixels"})),
              with_hub_bool_flags({"--no-exif-transpose"}));
  const auto& pos = p.positional();
  if (pos.size() < 2 || !p.has("--out"))
    throw CliError(
        "usage: vtx depth MODEL_DIR IMAGE|DIR... --out DIR [--format npy|safetensors|png16[,...]] "
        "[--colormap inferno|gray] [--batch N] " + std::string(kLoadFlagsUsage));
  std::set<std::string> formats;
  {
    std::string f = p.get("--format", "npy"), item;
    std::stringstream ss(f);
    while (std::getline(ss, item, ',')) {
      if (item != "npy" && item != "safetensors" && item != "png16")
        throw CliError("--format: unknown format '" + item + "' (npy, safetensors, png16)");
      formats.insert(item);
    }
    if (formats.empty()) throw CliError("--format: empty");
  }
  const std::string cmap = p.get("--colormap", "inferno");
  if (cmap != "inferno" && cmap != "gray") throw CliError("--colormap: must be inferno or gray");
  if (p.has("--colormap") && formats.count("png16"))
    throw CliError("--colormap applies to the 8-bit PNG; png16 writes a 16-bit grayscale PNG instead");
  const DepthPicture picture = formats.count("png16") ? DepthPicture::Gray16
                               : cmap == "gray"       ? DepthPicture::Gray8
                                                      : DepthPicture::Inferno;
  const int batch = batch_size(p);
  const ImageLoadOptions lo = image_load_options(p);
  const fs::path out_dir(p.get("--out"));

  // Inputs and their outputs: stems must be unique, and no output may be one of the inputs.
  const std::vector<std::string> files = image_files({pos.begin() + 1, pos.end()});
  std::set<std::string> inputs;
  for (const auto& f : files) inputs.insert(canonical_or_absolute(f));
  std::map<std::string, std::string> stem_of;  // input -> stem
  std::map<std::string, std::string> owner;    // stem -> input
  for (const auto& f : files) {
    const std::string stem = fs::path(f).stem().string();
    auto [it, fresh] = owner.emplace(stem, f);
    if (!fresh && it->second != f)
      throw CliError("two inputs are named '" + stem + "' (" + it->second + ", " + f + "): their outputs would collide");
    for (const char* ext : {".npy", ".safetensors", ".png"}) {
      const std::string o = canonical_or_absolute(out_dir / (stem + ext));
      if (inputs.count(o)) throw CliError(o + ": the output would overwrite an input image; choose another --out folder");
    }
    stem_of[f] = stem;
  }

  const std::string dir = local_model_dir(p, pos[0]);  // folder or hub id
  {
    std::vector<std::string> outs, ins = files;
    ins.push_back(dir);  // the model folder's files are inputs too
    for (const auto& [f, stem] : stem_of) {
      if (formats.count("npy")) outs.push_back((out_dir / (stem + ".npy")).string());
      if (formats.count("safetensors")) outs.push_back((out_dir / (stem + ".safetensors")).string());
      outs.push_back((out_dir / (stem + ".png")).string());
    }
    check_outputs(outs, ins);  // hard links, symlinks; FIFOs / devices / folders refused before any work
  }
  Pipeline pipe = load_pipeline(dir, load_options(p), p);
  const ModelInfo& info = pipe.model().info();
  if (info.task != Task::DepthEstimation) throw CliError(pos[0] + ": not a depth model (" + info.architecture + ")");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw Error(out_dir.string() + ": cannot create the output folder");

  auto failures = for_each_batch(files, batch, lo, [&](const std::vector<std::string>& names, const std::vector<Image>& imgs) {
    const std::vector<Tensor> depths = pipe.depth(imgs);
    for (size_t i = 0; i < names.size(); ++i) {
      const Tensor& depth = depths[i];
      const std::string stem = stem_of.at(names[i]);
      std::vector<std::string> written;
      if (formats.count("npy")) {
        save_npy((out_dir / (stem + ".npy")).string(), depth);
        written.push_back(stem + ".npy");
      }
      if (formats.count("safetensors")) {
        save_safetensors((out_dir / (stem + ".safetensors")).string(), {{"depth", depth}},
                         {{"format", "pt"}, {"depth_units", info.metric_depth ? "metres" : "relative"}});
        written.push_back(stem + ".safetensors");
      }
      const DepthPng png = encode_depth_png(depth, picture, info.metric_depth);
      write_file_atomic((out_dir / (stem + ".png")).string(), png.png);
      written.push_back(stem + ".png");
      std::cout << names[i] << " -> ";
      for (size_t k = 0; k < written.size(); ++k) std::cout << (k ? ", " : "") << (out_dir / written[k]).string();
      std::cout << " (" << imgs[i].width << "x" << imgs[i].height << ", depth " << png.min << " .. " << png.max << ")\n";
    }
  });
  return report_failures(failures, files.size());
}

}  // namespace

VTX_COMMAND("depth", "MODEL_DIR IMG|DIR... --out DIR: depth maps at the original size (npy/safetensors/png16)", cmd_depth);

}  // namespace vtx::cli
