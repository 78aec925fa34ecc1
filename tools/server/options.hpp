#pragma once
// `vtx serve` settings: every limit has a flag (tools/cli_serve.cpp) and the default below.
#include <cstdint>
#include <string>
#include <vector>

#include "vtx/model.hpp"

namespace vtx::server {

struct ModelSpec {
  std::string source;  // folder or hub id, as given
  std::string name;    // served name (default: the folder's last component, or the hub id)
};

struct ServerOptions {
  std::vector<ModelSpec> models;
  std::string host = "127.0.0.1";
  int port = 8080;                              // 0: ephemeral (the ready line says which)
  LoadOptions load;                             // for every model (--dtype / --quantize)

  // dynamic batching
  int max_batch_size = 8;                       // images per forward pass
  int max_batch_delay_ms = 0;                   // wait this long for a batch to fill (0: run as soon as free)
  int preprocess_threads = 2;                   // decode + preprocess pool
  int preprocess_nice = 19;                     // the pool's nice value (0..19): inference threads come first
  int io_threads = 1;                           // HTTP event loop threads

  // limits
  int64_t max_payload_bytes = 16 << 20;         // request body -> 413
  int64_t max_header_bytes = 16 << 10;          // request line + headers -> 431
  int max_queue = 128;                          // images admitted and waiting for the model -> 429 + Retry-After
  int64_t max_image_pixels = 40'000'000;        // from the image header, before decoding -> 413
  int max_images_per_request = 64;              // images (or batch rows) in one request -> 413
  int request_timeout_ms = 30'000;              // admitted request not answered in time -> 503
  int header_timeout_ms = 10'000;               // a request's headers and body must arrive within this -> closed
  int idle_timeout_ms = 60'000;                 // keep-alive connection without a request -> closed
  int max_connections = 1024;                   // open connections; more are answered 503 and closed
  int drain_timeout_ms = 30'000;                // SIGTERM/SIGINT: longest wait for requests in flight

  // security and logging
  std::string api_key;                          // Bearer token required on every route but health/metrics
  bool protect_metrics = false;                 // also require it on /health, /v2/health/* and /metrics
  std::string log_format = "text";              // text | json | none (one line per request on stderr)
};

// Runs the server until SIGTERM/SIGINT; returns the process exit code (0 after a clean drain).
int serve(const ServerOptions& opt);

}  // namespace vtx::server
