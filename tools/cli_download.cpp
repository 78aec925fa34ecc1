// vtx download ORG/NAME[@REV] [--revision R] [--cache-dir D] [--offline]: fetches config.json,
// preprocessor_config.json and the safetensors weights (or the index and its shards) into the huggingface_hub
// cache, asking the hub for every file (what changed is downloaded), and prints the snapshot folder.
#include <iostream>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "vtx/hub.hpp"

namespace vtx::cli {

static int cmd_download(const Args& args) {
  ArgParser p(args, with_hub_flags({}), with_hub_bool_flags({"--quiet"}));
  if (p.positional().size() != 1)
    throw CliError("usage: vtx download ORG/NAME[@REV] [--revision R] [--cache-dir D] [--offline] [--quiet]");
  HubOptions o = hub_options(p);
  o.progress = !p.has("--quiet");
  const ResolvedModel r = download_model(p.positional()[0], o);
  if (!p.has("--quiet"))
    std::cerr << r.repo_id << "@" << r.revision << ": commit " << r.commit << ", " << r.files.size() << " files, "
              << r.bytes_downloaded << " bytes downloaded" << (r.from_cache_fallback ? " (hub unreachable: cached snapshot)" : "")
              << "\n";
  std::cout << r.dir << "\n";
  return 0;
}

VTX_COMMAND("download", "ORG/NAME[@REV] [--revision R] [--cache-dir D]: fetch a hub model into the HF cache, print its folder",
            cmd_download);

}  // namespace vtx::cli
