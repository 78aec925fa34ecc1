#include "cli_common.hpp"

#include "cli.hpp"
#include "io/safetensors.hpp"
#include "vtx/error.hpp"

namespace vtx::cli {

Tensor read_tensor_arg(const std::string& spec, const std::string& default_key) {
  auto [file, key] = split_file_key(spec);
  io::SafeTensorsFile f(file);
  if (key.empty()) {
    if (f.has(default_key)) key = default_key;
    else if (f.tensors().size() == 1) key = f.tensors().begin()->first;
    else throw Error(file + ": no tensor '" + default_key + "'; name one as " + file + ":KEY");
  }
  if (!f.has(key)) throw Error(file + ": no tensor '" + key + "'");
  return f.load(key);
}

}  // namespace vtx::cli
