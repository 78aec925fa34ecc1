// vtx classify MODEL_DIR IMG|DIR... [--top-k 5] [--batch N] [--json]: transformers' image-classification pipeline.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "cli_load_options.hpp"
#include "cli_images.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::cli {

static int cmd_classify(const Args& args) {
  ArgParser p(args, {"--top-k", "--batch", "--threads", "--max-pixels", "--dtype", "--quantize"}, {"--json", "--no-exif-transpose"});
  if (p.positional().size() < 2)
    throw CliError("usage: vtx classify MODEL_DIR IMG|DIR... [--top-k 5] [--batch N] [--json] [--threads N] [--dtype f32|f16|bf16] [--quantize int8|int4]");
  if (p.has("--threads")) set_num_threads(p.get_int("--threads", 0));
  Pipeline pipe = Pipeline::load(p.positional()[0], load_options(p));
  if (pipe.model().info().task != "classify")
    throw Error(p.positional()[0] + ": " + pipe.model().info().architecture + " is not an image classifier");
  const int top_k = p.get_int("--top-k", 5), batch = p.get_int("--batch", 1);
  ImageLoadOptions lo;
  lo.exif_transpose = !p.has("--no-exif-transpose");
  if (p.has("--max-pixels")) lo.max_pixels = p.get_int("--max-pixels", 0);
  std::vector<std::string> files = expand_image_args({p.positional().begin() + 1, p.positional().end()});
  nlohmann::json all = nlohmann::json::array();
  auto failures = for_each_batch(files, batch, lo, [&](const std::vector<std::string>& names, const std::vector<Image>& imgs) {
    auto preds = pipe.classify(imgs, top_k);
    for (size_t i = 0; i < names.size(); ++i) {
      nlohmann::json pj = nlohmann::json::array();
      for (const auto& pr : preds[i]) pj.push_back({{"label", pr.label}, {"score", pr.score}, {"index", pr.index}});
      all.push_back({{"file", names[i]}, {"predictions", pj}});
      if (!p.has("--json")) {
        std::cout << names[i] << "\n";
        for (const auto& pr : preds[i]) std::printf("  %.4f  %s\n", pr.score, pr.label.c_str());
        std::fflush(stdout);
      }
    }
  });
  if (p.has("--json")) std::cout << all.dump(2) << "\n";
  return report_failures(failures, files.size());
}

VTX_COMMAND("classify", "MODEL_DIR IMG|DIR... [--top-k 5] [--batch N] [--json]: labels with softmax scores", cmd_classify);

}  // namespace vtx::cli
