// vtx serve MODEL [MODEL...] [--name NAME]... [--host 127.0.0.1] [--port 8080] [limits...]: the HTTP inference
// server (tools/server/). This file only turns flags into vtx::server::ServerOptions.
#include <cstdlib>
#include <filesystem>

#include "cli.hpp"
#include "cli_hub.hpp"
#include "cli_load_options.hpp"
#include "server/options.hpp"

namespace vtx::cli {
namespace {

const char* const kUsage =
    "usage: vtx serve MODEL [MODEL...] [--name NAME]... [--host 127.0.0.1] [--port 8080]\n"
    "  [--max-batch-size 8] [--max-batch-delay-ms 0] [--preprocess-threads 2] [--preprocess-nice 19]\n"
    "  [--io-threads 1] [--threads N] [--max-payload-bytes 16M] [--max-header-bytes 16K] [--max-queue 128]\n"
    "  [--max-image-pixels 40000000] [--max-images-per-request 64] [--request-timeout 30s] [--header-timeout 10s]\n"
    "  [--idle-timeout 60s] [--max-connections 1024] [--drain-timeout 30s] [--api-key KEY | env VTX_API_KEY]\n"
    "  [--protect-metrics] [--log-format text|json|none] [--dtype f32|f16|bf16] [--quantize int8|int4]\n"
    "  [--int4-method mse|minmax] [--compute f32|bf16] [--revision R] [--cache-dir D] [--offline]\n"
    "  (MODEL: a folder or a hub id org/name[@revision])";

// "1048576", "16K", "16M", "1G" (powers of 1024).
int64_t parse_size(const std::string& flag, const std::string& v) {
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    throw CliError(flag + ": not a size: '" + v + "'");
  }
  std::string unit = v.substr(used);
  int64_t mul = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") mul = 1 << 10;
  else if (unit == "M" || unit == "m" || unit == "MiB") mul = 1 << 20;
  else if (unit == "G" || unit == "g" || unit == "GiB") mul = int64_t{1} << 30;
  else if (!unit.empty()) throw CliError(flag + ": unknown unit in '" + v + "' (K, M, G)");
  if (x <= 0) throw CliError(flag + ": must be positive: '" + v + "'");
  return x * mul;
}

// "30" or "30s" (seconds), "250ms"; returns milliseconds.
int parse_duration_ms(const std::string& flag, const std::string& v) {
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    throw CliError(flag + ": not a duration: '" + v + "'");
  }
  const std::string unit = v.substr(used);
  double ms;
  if (unit.empty() || unit == "s") ms = x * 1000;
  else if (unit == "ms") ms = x;
  else if (unit == "m" || unit == "min") ms = x * 60000;
  else throw CliError(flag + ": unknown unit in '" + v + "' (ms, s, m)");
  if (!(ms >= 1) || ms > 86400000.0) throw CliError(flag + ": out of range: '" + v + "'");
  return static_cast<int>(ms);
}

int positive(const ArgParser& p, const std::string& flag, int def, int lo = 1) {
  const int v = p.get_int(flag, def);
  if (v < lo) throw CliError(flag + ": must be >= " + std::to_string(lo));
  return v;
}

int cmd_serve(const Args& args) {
  ArgParser p(args,
              with_hub_flags(with_load_flags({"--name", "--host", "--port", "--max-batch-size", "--max-batch-delay-ms",
                               "--preprocess-threads", "--preprocess-nice", "--io-threads", "--max-payload-bytes", "--max-header-bytes",
                               "--max-queue", "--max-image-pixels", "--max-images-per-request", "--request-timeout",
                               "--header-timeout", "--idle-timeout", "--max-connections", "--drain-timeout",
                               "--api-key", "--log-format"})),
              with_hub_bool_flags({"--protect-metrics"}));
  if (p.positional().empty()) throw CliError(kUsage);
  server::ServerOptions o;
  const auto names = p.get_all("--name");
  if (names.size() > p.positional().size()) throw CliError("--name given more often than there are models");
  for (size_t i = 0; i < p.positional().size(); ++i) {
    server::ModelSpec m;
    m.source = p.positional()[i];
    if (i < names.size()) {
      m.name = names[i];
    } else if (std::filesystem::is_directory(m.source)) {
      m.name = std::filesystem::path(m.source).lexically_normal().filename().string();
      if (m.name.empty()) m.name = std::filesystem::path(m.source).lexically_normal().parent_path().filename().string();
    } else {
      m.name = m.source;  // hub id
    }
    for (const auto& other : o.models)
      if (other.name == m.name) throw CliError("two models are served as '" + m.name + "': give --name");
    if (m.name.empty() || m.name.find('/') != std::string::npos) {
      // hub ids keep their '/'; /models/{name} then needs the name URL-escaped, so suggest a simple one
      if (m.name.empty()) throw CliError(m.source + ": cannot derive a name; give --name");
    }
    o.models.push_back(m);
  }
  o.host = p.get("--host", o.host);
  o.port = p.get_int("--port", o.port);
  if (o.port < 0 || o.port > 65535) throw CliError("--port: must be 0..65535");
  o.load = load_options(p);  // also applies --threads
  // Hub ids: resolved (cache, download, offline) by the engine through vtx::resolve_model with these.
  const HubOptions hub = hub_options(p);
  o.load.revision = hub.revision;
  o.load.cache_dir = hub.cache_dir;
  o.load.offline = hub.offline;
  o.max_batch_size = positive(p, "--max-batch-size", o.max_batch_size);
  o.max_batch_delay_ms = positive(p, "--max-batch-delay-ms", o.max_batch_delay_ms, 0);
  o.preprocess_threads = positive(p, "--preprocess-threads", o.preprocess_threads);
  o.preprocess_nice = positive(p, "--preprocess-nice", o.preprocess_nice, 0);
  if (o.preprocess_nice > 19) throw CliError("--preprocess-nice: must be 0..19");
  o.io_threads = positive(p, "--io-threads", o.io_threads);
  if (p.has("--max-payload-bytes")) o.max_payload_bytes = parse_size("--max-payload-bytes", p.get("--max-payload-bytes"));
  if (p.has("--max-header-bytes")) o.max_header_bytes = parse_size("--max-header-bytes", p.get("--max-header-bytes"));
  if (o.max_header_bytes > (int64_t{1} << 30)) throw CliError("--max-header-bytes: at most 1G");
  o.max_queue = positive(p, "--max-queue", o.max_queue);
  if (p.has("--max-image-pixels")) o.max_image_pixels = parse_size("--max-image-pixels", p.get("--max-image-pixels"));
  o.max_images_per_request = positive(p, "--max-images-per-request", o.max_images_per_request);
  if (p.has("--request-timeout")) o.request_timeout_ms = parse_duration_ms("--request-timeout", p.get("--request-timeout"));
  if (p.has("--header-timeout")) o.header_timeout_ms = parse_duration_ms("--header-timeout", p.get("--header-timeout"));
  if (p.has("--idle-timeout")) o.idle_timeout_ms = parse_duration_ms("--idle-timeout", p.get("--idle-timeout"));
  if (p.has("--drain-timeout")) o.drain_timeout_ms = parse_duration_ms("--drain-timeout", p.get("--drain-timeout"));
  o.max_connections = positive(p, "--max-connections", o.max_connections);
  o.api_key = p.get("--api-key");
  if (o.api_key.empty())
    if (const char* k = std::getenv("VTX_API_KEY")) o.api_key = k;
  o.protect_metrics = p.has("--protect-metrics");
  if (o.protect_metrics && o.api_key.empty()) throw CliError("--protect-metrics needs --api-key (or VTX_API_KEY)");
  o.log_format = p.get("--log-format", o.log_format);
  if (o.log_format != "text" && o.log_format != "json" && o.log_format != "none")
    throw CliError("--log-format: must be text, json or none");
  return server::serve(o);
}

}  // namespace

VTX_COMMAND("serve", "MODEL [MODEL...] [--host 127.0.0.1] [--port 8080]: HTTP inference server with dynamic batching",
            cmd_serve);

}  // namespace vtx::cli
