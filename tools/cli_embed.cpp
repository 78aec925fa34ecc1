// vtx embed MODEL_DIR IMG|DIR... [--pool cls|mean|cls+mean|patch|tokens|pooler] [--batch N] --out FILE(.npy|.safetensors|.jsonl)
// transformers' image-feature-extraction pipeline; one embedding per image, in input order.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_load_options.hpp"
#include "cli_images.hpp"
#include "vtx/io.hpp"
#include "vtx/io.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::cli {

static int cmd_embed(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({"--pool", "--batch", "--out", "--max-pixels"})),
              with_hub_bool_flags({"--no-exif-transpose"}));
  if (p.positional().size() < 2 || !p.has("--out"))
    throw CliError("usage: vtx embed MODEL_DIR IMG|DIR... [--pool cls|mean|cls+mean|patch|tokens|pooler] [--batch N] --out FILE.npy|.safetensors|.jsonl " + std::string(kLoadFlagsUsage));
  const std::string out = p.get("--out");
  const std::string ext = std::filesystem::path(out).extension().string();
  if (ext != ".npy" && ext != ".safetensors" && ext != ".jsonl")
    throw CliError("--out must end in .npy, .safetensors or .jsonl: " + out);
  const std::string pool_name = p.get("--pool", "cls");
  const Pool pool = parse_pool(pool_name);
  const ImageLoadOptions lo = image_load_options(p);
  const int batch = batch_size(p);
  const std::vector<std::string> files = image_files({p.positional().begin() + 1, p.positional().end()});
  const std::string dir = local_model_dir(p, p.positional()[0]);  // folder or hub id
  {
    std::vector<std::string> inputs = files;
    inputs.push_back(dir);
    check_outputs({out}, inputs);  // not an input, not a FIFO / device: checked before any work
  }
  Pipeline pipe = load_pipeline(dir, load_options(p), p);

  std::vector<std::string> done;
  std::vector<Tensor> rows;  // one [...] per image
  auto failures = for_each_batch(files, batch, lo,
                                 [&](const std::vector<std::string>& names, const std::vector<Image>& imgs) {
    Tensor e = pipe.embed(imgs, pool);
    std::vector<int64_t> row_shape(e.shape().begin() + 1, e.shape().end());
    const int64_t n = e.numel() / e.dim(0);
    for (size_t i = 0; i < names.size(); ++i) {
      rows.push_back(Tensor::from_data(row_shape, e.data<float>() + static_cast<int64_t>(i) * n));
      done.push_back(names[i]);
    }
  });
  if (rows.empty()) return report_failures(failures, files.size());

  if (ext == ".jsonl") {
    std::string text;
    for (size_t i = 0; i < rows.size(); ++i) {
      const Tensor& r = rows[i];
      nlohmann::json v = std::vector<float>(r.data<float>(), r.data<float>() + r.numel());
      text += nlohmann::json{{"file", done[i]}, {"pool", pool_name}, {"shape", r.shape()}, {"embedding", v}}.dump() + "\n";
    }
    write_file_atomic(out, text);
  } else {
    for (const auto& r : rows)
      if (r.shape() != rows[0].shape())
        throw Error(out + ": embeddings have different shapes (" + rows[0].shape_str() + " vs " + r.shape_str() +
                    "); write .jsonl instead");
    std::vector<int64_t> shape = rows[0].shape();
    shape.insert(shape.begin(), static_cast<int64_t>(rows.size()));
    Tensor all(shape, DType::F32);
    const int64_t n = rows[0].numel();
    for (size_t i = 0; i < rows.size(); ++i) std::copy_n(rows[i].data<float>(), n, all.data<float>() + static_cast<int64_t>(i) * n);
    if (ext == ".npy") {
      save_npy(out, all);
    } else {
      save_safetensors(out, {{"embeddings", all}},
                           {{"format", "pt"}, {"pool", pool_name}, {"files", nlohmann::json(done).dump()}});
    }
  }
  std::cerr << "embed: " << rows.size() << " embeddings of shape " << rows[0].shape_str() << " -> " << out << "\n";
  return report_failures(failures, files.size());
}

VTX_COMMAND("embed", "MODEL_DIR IMG|DIR... [--pool cls|mean|cls+mean|patch|tokens|pooler] --out F.npy|.safetensors|.jsonl", cmd_embed);

}  // namespace vtx::cli
