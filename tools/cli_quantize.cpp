// vtx quantize MODEL_DIR --to int8|int4|f16|bf16 --out OUT_DIR
// Writes a folder vtx loads directly (config.json with quantization_config, model.safetensors, the
// preprocessor config); format in docs/quantization.md.
#include <cstdio>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "vtx/model.hpp"

namespace vtx::cli {

static int cmd_quantize(const Args& args) {
  ArgParser p(args, with_hub_flags({"--to", "--out", "--int4-method"}), with_hub_bool_flags({}));
  if (p.positional().size() != 1 || !p.has("--to") || !p.has("--out"))
    throw CliError("usage: vtx quantize MODEL_DIR --to int8|int4|f16|bf16 --out OUT_DIR [--int4-method mse|minmax]");
  const std::string to = p.get("--to");
  if (to != "int8" && to != "int4" && to != "f16" && to != "bf16")
    throw CliError("--to must be int8, int4, f16 or bf16 (got \"" + to + "\")");
  QuantizeOptions qo;
  if (p.has("--int4-method")) {
    const std::string m = p.get("--int4-method");
    if (m != "mse" && m != "minmax") throw CliError("--int4-method must be mse or minmax (got \"" + m + "\")");
    qo.int4_method = parse_int4_method(m);
  }
  const QuantizeReport r = quantize_checkpoint(local_model_dir(p, p.positional()[0]), p.get("--out"), parse_weight_type(to), qo);
  std::printf("%s: %lld linear layers -> %s; model.safetensors %.2f MB -> %.2f MB (%.3fx)\n", p.get("--out").c_str(),
              static_cast<long long>(r.modules), to.c_str(), r.bytes_in / 1e6, r.bytes_out / 1e6,
              r.bytes_in > 0 ? static_cast<double>(r.bytes_out) / static_cast<double>(r.bytes_in) : 0.0);
  return 0;
}

VTX_COMMAND("quantize", "MODEL_DIR --to int8|int4|f16|bf16 --out OUT_DIR: write a quantized / half-precision folder",
            cmd_quantize);

}  // namespace vtx::cli
