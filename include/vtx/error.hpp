#pragma once
#include <stdexcept>
#include <string>

namespace vtx {

// Every failure the library reports is a vtx::Error. The message names the file (when there is one)
// and the problem, on one line, e.g. "model.safetensors: tensor 'x' ends past the end of the file".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace vtx
