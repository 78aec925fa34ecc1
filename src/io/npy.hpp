#pragma once
// NumPy .npy (format 1.0) writing and reading of float32 C-order arrays.
#include <string>

#include "vtx/tensor.hpp"

namespace vtx::io {

std::string npy_bytes(const Tensor& t);                 // F32 only
void save_npy(const std::string& path, const Tensor& t);  // atomic (temp file + rename)
Tensor load_npy(const std::string& path);                // '<f4', C order; throws vtx::Error naming the file

}  // namespace vtx::io
