#pragma once
// Hugging Face hub ids and the huggingface_hub cache.
//
//   vtx::ResolvedModel r = vtx::resolve_model("facebook/dinov2-small@main");   // or a local folder
//   auto model = vtx::Model::load(r.dir);                                       // Model::load takes ids too
//
// An argument that is an existing folder is that folder. Otherwise "org/name[@revision]" is a hub id, resolved
// through the cache huggingface_hub uses (HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, $HF_HOME/hub,
// $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub) with its layout
//   models--org--name/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>, refs/<revision>, .no_exist/}
// so models downloaded by Python are found, and models vtx downloads are found by Python. Files fetched:
// config.json, preprocessor_config.json and model.safetensors, or model.safetensors.index.json and its shards.
#include <cstdint>
#include <string>
#include <vector>

#include "vtx/export.hpp"
#include "vtx/model.hpp"

namespace vtx {

struct HubOptions {
  std::string revision;   // branch, tag or 40-hex commit; "" = the id's "@revision", else "main"
  std::string cache_dir;  // "" = the huggingface_hub cache (environment as above)
  bool offline = false;   // only the cache; also when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is 1/ON/YES/TRUE
  // false: a complete snapshot already in the cache for the revision is used without any request.
  // true (vtx download): ask the hub for every file, as huggingface_hub does, and fetch what changed.
  bool refresh = false;
  std::string endpoint;   // "" = HF_ENDPOINT, else https://huggingface.co
  std::string token;      // "" = HF_TOKEN, HUGGING_FACE_HUB_TOKEN, the file $HF_TOKEN_PATH or $HF_HOME/token
  bool progress = true;   // progress bar (bytes, bytes/s) on stderr when stderr is a terminal
};

struct ResolvedModel {
  std::string dir;         // the folder to load: the argument itself, or <repo_cache>/snapshots/<commit>
  bool from_hub = false;   // false: the argument was a local folder (the fields below are empty)
  std::string repo_id;     // "org/name"
  std::string revision;    // as requested: "main", a tag, a branch or a commit
  std::string commit;      // the 40-hex commit of the snapshot
  std::string cache_dir;   // the hub cache root
  std::string repo_cache;  // <cache_dir>/models--org--name
  std::vector<std::string> files;  // the snapshot files the model uses, in download order
  int64_t bytes_downloaded = 0;    // body bytes fetched by this call (0 when served from the cache)
  bool from_cache_fallback = false;  // the hub could not be reached and the cached snapshot was used
};

// True when `s` is not an existing folder and is syntactically a hub id "org/name[@revision]".
VTX_API bool is_hub_id(const std::string& s);
// Folder -> itself; hub id -> the snapshot folder (downloaded when needed and allowed). vtx::Error otherwise,
// naming the id, the revision and the cache path, or the HTTP problem (401/403: gated or private; 404: repo,
// revision or file missing).
VTX_API ResolvedModel resolve_model(const std::string& id_or_path, const HubOptions& opt = {});
// resolve_model with refresh = true; refuses local folders.
VTX_API ResolvedModel download_model(const std::string& id, const HubOptions& opt = {});
// The hub cache root used when `override_dir` is empty.
VTX_API std::string hub_cache_dir(const std::string& override_dir = "");
// The hub fields of LoadOptions (revision, cache_dir, offline) as HubOptions.
VTX_API HubOptions hub_options(const LoadOptions& opt);

}  // namespace vtx
