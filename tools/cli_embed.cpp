// vtx embed MODEL_DIR IMG|DIR... [--pool cls|mean|cls+mean|patch|tokens|pooler] [--batch N] --out FILE(.npy|.safetensors|.jsonl)
// transformers' image-feature-extraction pipeline; one embedding per image, in input order.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "cli_load_options.hpp"
#include "cli_images.hpp"
#include "io/npy.hpp"
#include "io/safetensors.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::cli {

static int cmd_embed(const Args& args) {
  ArgParser p(args, {"--pool", "--batch", "--out", "--threads", "--max-pixels", "--dtype", "--quantize"}, {"--no-exif-transpose"});
  if (p.positional().size() < 2 || !p.has("--out"))
    throw CliError("usage: vtx embed MODEL_DIR IMG|DIR... [--pool cls|mean|cls+mean|patch|tokens|pooler] [--batch N] --out FILE.npy|.safetensors|.jsonl [--dtype f32|f16|bf16] [--quantize int8|int4]");
  const std::string out = p.get("--out");
  const std::string ext = std::filesystem::path(out).extension().string();
  if (ext != ".npy" && ext != ".safetensors" && ext != ".jsonl")
    throw CliError("--out must end in .npy, .safetensors or .jsonl: " + out);
  const std::string pool_name = p.get("--pool", "cls");
  const Pool pool = parse_pool(pool_name);
  if (p.has("--threads")) set_num_threads(p.get_int("--threads", 0));
  Pipeline pipe = Pipeline::load(p.positional()[0], load_options(p));
  ImageLoadOptions lo;
  lo.exif_transpose = !p.has("--no-exif-transpose");
  if (p.has("--max-pixels")) lo.max_pixels = p.get_int("--max-pixels", 0);
  std::vector<std::string> files = expand_image_args({p.positional().begin() + 1, p.positional().end()});

  std::vector<std::string> done;
  std::vector<Tensor> rows;  // one [...] per image
  auto failures = for_each_batch(files, p.get_int("--batch", 1), lo,
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
    io::write_file_atomic(out, text);
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
      io::save_npy(out, all);
    } else {
      io::save_safetensors(out, {{"embeddings", all}},
                           {{"format", "pt"}, {"pool", pool_name}, {"files", nlohmann::json(done).dump()}});
    }
  }
  std::cerr << "embed: " << rows.size() << " embeddings of shape " << rows[0].shape_str() << " -> " << out << "\n";
  return report_failures(failures, files.size());
}

VTX_COMMAND("embed", "MODEL_DIR IMG|DIR... [--pool cls|mean|cls+mean|patch|tokens|pooler] --out F.npy|.safetensors|.jsonl", cmd_embed);

}  // namespace vtx::cli
