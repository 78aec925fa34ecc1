#pragma once
// CLI plumbing: each command lives in tools/cli_<name>.cpp and registers itself with VTX_COMMAND.
// Commands only call the library. They throw vtx::Error (or CliError for usage problems); main() prints
// one line "vtx <cmd>: <message>" on stderr and exits non-zero.
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "vtx/model.hpp"

namespace vtx::cli {

struct CliError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Args = std::vector<std::string>;  // arguments after the command name

struct Command {
  std::string summary;  // one line, shown by `vtx --help`
  std::function<int(const Args&)> run;
};

std::map<std::string, Command>& registry();

struct Registrar {
  Registrar(const std::string& name, const std::string& summary, std::function<int(const Args&)> fn) {
    registry()[name] = Command{summary, std::move(fn)};
  }
};

#define VTX_COMMAND(name, summary, fn) static ::vtx::cli::Registrar vtx_cmd_registrar_##fn(name, summary, fn)

// Small argument parser: positional args and --flags (with or without values).
class ArgParser {
 public:
  ArgParser(const Args& args, const std::vector<std::string>& value_flags, const std::vector<std::string>& bool_flags);
  const std::vector<std::string>& positional() const { return pos_; }
  bool has(const std::string& flag) const { return vals_.count(flag) != 0; }
  std::string get(const std::string& flag, const std::string& def = "") const;
  std::vector<std::string> get_all(const std::string& flag) const;  // repeated flags, or multi-value flags
  int get_int(const std::string& flag, int def) const;

 private:
  std::vector<std::string> pos_;
  std::multimap<std::string, std::string> vals_;
};


// How the encoder linears are stored: "f32", "bf16", ..., or "mixed (f16/bf16 kept per layer)".
inline std::string weights_label(const ModelInfo& i) {
  return i.mixed_precision ? "mixed (f16/bf16 kept per layer)" : weight_type_name(i.weights);
}
// The same, with "none" for plain f32 (the `quantization` field of vtx info / vtx bench --json).
inline std::string quantization_label(const ModelInfo& i) {
  return !i.mixed_precision && i.weights == WeightType::F32 ? "none" : weights_label(i);
}

}  // namespace vtx::cli
