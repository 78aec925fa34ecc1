#pragma once
// Helpers shared by CLI commands.
#include <string>

#include "vtx/tensor.hpp"

namespace vtx::cli {

// Reads "file.safetensors[:key]": the named tensor, or the only/"default_key" tensor when no key is given.
Tensor read_tensor_arg(const std::string& spec, const std::string& default_key);

}  // namespace vtx::cli
