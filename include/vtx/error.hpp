#pragma once
#include <stdexcept>
#include <string>

#include "vtx/export.hpp"

namespace vtx {

// Every failure the library reports is a vtx::Error. The message names the file (or the argument, or the
// environment variable) and the problem, on one line, e.g. "model.safetensors: tensor 'x' ends past the end of
// the file".
class VTX_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace vtx
