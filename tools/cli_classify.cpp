// vtx classify MODEL_DIR IMG|DIR... [--top-k 5] [--batch N] [--json [--logits]]: transformers' image-classification
// pipeline. --logits adds the raw logits of each image to the JSON (for accuracy / agreement studies).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_load_options.hpp"
#include "cli_images.hpp"
#include "vtx/pipeline.hpp"

namespace vtx::cli {

static int cmd_classify(const Args& args) {
  ArgParser p(args, with_hub_flags(with_load_flags({"--top-k", "--batch", "--max-pixels"})),
              with_hub_bool_flags({"--json", "--logits", "--no-exif-transpose"}));
  if (p.positional().size() < 2)
    throw CliError("usage: vtx classify MODEL_DIR IMG|DIR... [--top-k 5] [--batch N] [--json [--logits]] " + std::string(kLoadFlagsUsage));
  Pipeline pipe = load_pipeline(local_model_dir(p, p.positional()[0]), load_options(p), p);  // folder or hub id
  if (pipe.model().info().task != Task::Classification)
    throw Error(p.positional()[0] + ": " + pipe.model().info().architecture + " is not an image classifier");
  const int top_k = p.get_int("--top-k", 5), batch = batch_size(p);
  if (top_k < 1) throw CliError("--top-k must be at least 1 (got " + std::to_string(top_k) + ")");
  const bool with_logits = p.has("--logits");
  if (with_logits && !p.has("--json")) throw CliError("--logits needs --json");
  const ImageLoadOptions lo = image_load_options(p);
  const std::vector<std::string> files = image_files({p.positional().begin() + 1, p.positional().end()});
  nlohmann::json all = nlohmann::json::array();
  auto failures = for_each_batch(files, batch, lo, [&](const std::vector<std::string>& names, const std::vector<Image>& imgs) {
    Tensor logits;
    std::vector<std::vector<Prediction>> preds;
    if (with_logits) {
      logits = pipe.forward(imgs).logits.to_f32();
      preds = top_k_predictions(logits, pipe.model().info().id2label, top_k);
    } else {
      preds = pipe.classify(imgs, top_k);
    }
    for (size_t i = 0; i < names.size(); ++i) {
      nlohmann::json pj = nlohmann::json::array();
      for (const auto& pr : preds[i]) pj.push_back({{"label", pr.label}, {"score", pr.score}, {"index", pr.index}});
      nlohmann::json entry = {{"file", names[i]}, {"predictions", pj}};
      if (with_logits) {
        const int64_t C = logits.dim(1);
        const float* row = logits.data<float>() + static_cast<int64_t>(i) * C;
        entry["logits"] = std::vector<float>(row, row + C);
      }
      all.push_back(std::move(entry));
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

VTX_COMMAND("classify", "MODEL_DIR IMG|DIR... [--top-k 5] [--batch N] [--json [--logits]]: labels with softmax scores", cmd_classify);

}  // namespace vtx::cli
