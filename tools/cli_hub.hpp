#pragma once
// Hub ids on the command line: every command that takes MODEL_DIR also takes "org/name[@revision]" with
// --revision R, --cache-dir D and --offline. Wrap the command's flags in with_hub_flags / with_hub_bool_flags
// and call local_model_dir(p, arg) to get the folder (downloaded into the huggingface_hub cache when needed).
#include <string>
#include <vector>

#include "cli.hpp"
#include "vtx/hub.hpp"

namespace vtx::cli {

inline const std::vector<std::string> kHubValueFlags = {"--revision", "--cache-dir"};
inline const std::vector<std::string> kHubBoolFlags = {"--offline"};
inline const char* const kHubFlagsUsage = "[--revision R] [--cache-dir D] [--offline]";

// A command's value / boolean flags plus the hub ones.
inline std::vector<std::string> with_hub_flags(std::vector<std::string> flags) {
  flags.insert(flags.end(), kHubValueFlags.begin(), kHubValueFlags.end());
  return flags;
}
inline std::vector<std::string> with_hub_bool_flags(std::vector<std::string> flags) {
  flags.insert(flags.end(), kHubBoolFlags.begin(), kHubBoolFlags.end());
  return flags;
}

inline HubOptions hub_options(const ArgParser& p) {
  HubOptions o;
  o.revision = p.get("--revision");
  o.cache_dir = p.get("--cache-dir");
  o.offline = p.has("--offline");
  return o;
}

inline ResolvedModel resolve_model_arg(const ArgParser& p, const std::string& arg) {
  ResolvedModel r = resolve_model(arg, hub_options(p));
  // A local folder has no revisions: say so rather than silently ignoring the flag.
  if (!r.from_hub && p.has("--revision")) throw CliError("--revision applies to hub ids, and " + arg + " is a local folder");
  return r;
}

inline std::string local_model_dir(const ArgParser& p, const std::string& arg) { return resolve_model_arg(p, arg).dir; }

}  // namespace vtx::cli
