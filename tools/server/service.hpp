#pragma once
// Routes of `vtx serve`, independent of the HTTP library: a parsed request in, one Response out (now or later).
//
//   Hugging Face Inference API   POST /  POST /predict  POST /models/{name}
//   Open Inference Protocol (v2) GET /v2  /v2/health/live  /v2/health/ready  /v2/models/{name}[/versions/{v}][/ready]
//                                POST /v2/models/{name}[/versions/{v}]/infer
//   OpenAI embeddings            POST /v1/embeddings
//   operations                   GET /health  /info  /metrics
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "engine.hpp"
#include "json_text.hpp"
#include "metrics.hpp"
#include "options.hpp"

namespace vtx::server {

struct Request {
  std::string method, target, content_type, authorization;
  std::string body;
};

enum class State { Loading, Ready, Draining };

class Service {
 public:
  Service(const ServerOptions& opt, Metrics& metrics, Engine& engine) : opt_(opt), metrics_(metrics), engine_(engine) {}

  // Answers through `deliver` (exactly once, possibly from another thread); the returned Pending lets the
  // connection time the request out or cancel it when the client goes away.
  std::shared_ptr<Pending> handle(Request req, std::function<void(Response)> deliver);

  // The route label used in metrics and logs ("/models/{name}", ...).
  static std::string route_of(const std::string& method, const std::string& path);

  void set_state(State s) { state_ = s; }
  State state() const { return state_; }

 private:
  Response dispatch(Request& req, const std::shared_ptr<Pending>& pending, bool& async);
  Response hf_predict(Request& req, ServedModel* m, const std::shared_ptr<Pending>& pending);
  Response kserve_infer(Request& req, ServedModel* m, const std::shared_ptr<Pending>& pending);
  Response openai_embeddings(Request& req, const std::shared_ptr<Pending>& pending);
  Response info() const;
  Response model_metadata(const ServedModel& m) const;
  ServedModel* model_or_404(const std::string& name) const;
  void check_serving() const;
  // Runs a task on the engine's decode/preprocess pool (for answers whose text is split across threads).
  Post pool_post() const {
    return [e = &engine_](std::function<void()> fn) { e->post(std::move(fn)); };
  }

  const ServerOptions& opt_;
  Metrics& metrics_;
  Engine& engine_;
  std::atomic<State> state_{State::Loading};
};

}  // namespace vtx::server
