#pragma once
// --dtype f32|f16|bf16 and --quantize int8|int4: the LoadOptions of the commands that load a model
// (run, classify, embed, depth, bench, info). Add kLoadFlags to the command's value flags.
#include <string>

#include "cli.hpp"
#include "vtx/model.hpp"

namespace vtx::cli {

inline const char* const kDtypeFlag = "--dtype";
inline const char* const kQuantizeFlag = "--quantize";
inline const char* const kLoadFlagsUsage = "[--dtype f32|f16|bf16] [--quantize int8|int4]";

inline LoadOptions load_options(const ArgParser& p) {
  LoadOptions o;
  if (p.has(kDtypeFlag) && p.has(kQuantizeFlag)) throw CliError("--dtype and --quantize are mutually exclusive");
  if (p.has(kDtypeFlag)) {
    o.dtype = p.get(kDtypeFlag);
    if (o.dtype != "f32" && o.dtype != "f16" && o.dtype != "bf16")
      throw CliError("--dtype must be f32, f16 or bf16 (got \"" + o.dtype + "\"); use --quantize for int8/int4");
  }
  if (p.has(kQuantizeFlag)) {
    o.dtype = p.get(kQuantizeFlag);
    if (o.dtype != "int8" && o.dtype != "int4")
      throw CliError("--quantize must be int8 or int4 (got \"" + o.dtype + "\")");
  }
  return o;
}

}  // namespace vtx::cli
