#pragma once
// --dtype f32|f16|bf16, --quantize int8|int4, --int4-method mse|minmax and --compute f32|bf16: the LoadOptions of the commands that
// load a model (run, classify, embed, depth, bench, info). Add kLoadFlags to the command's value flags.
#include <string>
#include <vector>

#include "cli.hpp"
#include "vtx/model.hpp"

namespace vtx::cli {

inline const std::vector<std::string> kLoadFlags = {"--dtype", "--quantize", "--int4-method", "--compute", "--threads"};
inline const char* const kLoadFlagsUsage =
    "[--dtype f32|f16|bf16] [--quantize int8|int4 [--int4-method mse|minmax]] [--compute f32|bf16] [--threads N]";

// Value flags of a command: its own plus kLoadFlags.
inline std::vector<std::string> with_load_flags(std::vector<std::string> flags) {
  flags.insert(flags.end(), kLoadFlags.begin(), kLoadFlags.end());
  return flags;
}

// Also applies --threads (a process-wide setting).
inline LoadOptions load_options(const ArgParser& p) {
  LoadOptions o;
  if (p.has("--dtype") && p.has("--quantize")) throw CliError("--dtype and --quantize are mutually exclusive");
  if (p.has("--dtype")) {
    const std::string d = p.get("--dtype");
    if (d != "f32" && d != "f16" && d != "bf16")
      throw CliError("--dtype must be f32, f16 or bf16 (got \"" + d + "\"); use --quantize for int8/int4");
    o.dtype = parse_weight_type(d);
  }
  if (p.has("--quantize")) {
    const std::string q = p.get("--quantize");
    if (q != "int8" && q != "int4") throw CliError("--quantize must be int8 or int4 (got \"" + q + "\")");
    o.dtype = parse_weight_type(q);
  }
  if (p.has("--int4-method")) {
    const std::string m = p.get("--int4-method");
    if (m != "mse" && m != "minmax") throw CliError("--int4-method must be mse or minmax (got \"" + m + "\")");
    o.int4_method = parse_int4_method(m);
  }
  if (p.has("--compute")) {
    const std::string c = p.get("--compute");
    if (c != "f32" && c != "bf16") throw CliError("--compute must be f32 or bf16 (got \"" + c + "\")");
    o.compute = parse_compute_type(c);
  }
  if (p.has("--threads")) {
    const int t = p.get_int("--threads", 0);
    if (t < 1) throw CliError("--threads must be at least 1 (got " + std::to_string(t) + ")");
    set_num_threads(t);
  }
  return o;
}

}  // namespace vtx::cli
