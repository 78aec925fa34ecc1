#pragma once
// The inference side of `vtx serve`: served models, jobs, the preprocessing pool and the dynamic batcher.
//
//   HTTP thread --submit(job)--> [admission: queue bound -> 429] --> preprocess pool (decode, processor)
//     --> per-model FIFO of items (one item = one image, [3,H,W]) --> batcher thread: the next batch is the
//     oldest item plus the following items of the same shape, up to max_batch_size (optionally waiting
//     max_batch_delay_ms for more) --> one forward pass --> each item's rows --> pool: the job's answer.
// Items whose request was answered already (timeout) or whose client has gone are dropped before they run.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "metrics.hpp"
#include "options.hpp"
#include "util.hpp"
#include "vtx/model.hpp"
#include "vtx/processor.hpp"

namespace vtx::server {

// One HTTP answer.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string model, error_type;  // for the request log
};

Response error_response(int status, const std::string& type, const std::string& message);

// The link between an HTTP exchange and the work done for it. Exactly one answer reaches the connection:
// the first of answer() (result, error, timeout) or cancel() (client gone) wins.
class Pending {
 public:
  explicit Pending(std::function<void(Response)> deliver) : deliver_(std::move(deliver)) {}
  bool answer(Response r);
  void cancel();
  bool done() const { return done_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> done_{false};
  std::function<void(Response)> deliver_;
};

struct ServedModel {
  std::string name, source, dir, hub_id, commit;
  std::shared_ptr<const Model> model;
  bool has_processor = false;
  ImageProcessor processor;
  std::string processor_error;           // why there is none
  // Output names and shapes of a warm-up forward pass at the processor's size (batch 1).
  std::vector<std::pair<std::string, std::vector<int64_t>>> outputs;
  std::vector<int64_t> input_shape;      // [3, H, W] of that pass
  const ModelInfo& info() const { return model->info(); }

  // batcher state (guarded by Engine::mu_)
  std::deque<struct Item> queue;
  int64_t admitted = 0;                  // images admitted and not yet started
  std::unique_ptr<Session> session;      // used by the batcher thread only
};

struct Job;

struct Item {
  std::shared_ptr<Job> job;
  int index = 0;
  Tensor pixel_values;                   // [3, H, W]
  Clock::time_point queued;
};

// Rows of one image's outputs (batch dimension 1).
struct ItemOutput {
  ModelOutput out;
};

struct Job {
  ServedModel* model = nullptr;
  std::shared_ptr<Pending> pending;
  // inputs: encoded images, or rows of a pixel_values tensor [B, 3, H, W]
  std::vector<std::string> encoded;
  Tensor pixel_values;
  int count() const { return pixel_values.empty() ? static_cast<int>(encoded.size()) : static_cast<int>(pixel_values.dim(0)); }
  // results
  std::vector<ItemOutput> outputs;
  std::vector<std::pair<int, int>> sizes;  // (height, width) of each decoded image after EXIF orientation
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
  // builds the answer from the outputs (runs on the preprocessing pool); may throw HttpError / vtx::Error
  std::function<Response(Job&)> respond;
  Clock::time_point admitted;
  double preprocess_ms = 0;
};

class Engine {
 public:
  Engine(const ServerOptions& opt, Metrics& metrics);
  ~Engine();

  // Loads every model of the options (throws vtx::Error).
  void load_models();
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  ServedModel* find(const std::string& name) const;

  // Admits a job (throws HttpError 429 when the model's queue is full) and starts it.
  void submit(std::shared_ptr<Job> job);
  // Runs fn on the preprocessing pool.
  void post(std::function<void()> fn);
  // No job admitted and not answered.
  bool idle() const { return jobs_.load() == 0; }
  void stop();
  // After stop(): drops whatever is still queued (a forced stop).
  void drop_all();

 private:
  void pool_loop();
  void batch_loop();
  void prepare(const std::shared_ptr<Job>& job);
  void finish(const std::shared_ptr<Job>& job);
  void fail(const std::shared_ptr<Job>& job, Response r);
  void release(ServedModel* m, int64_t n);  // mu_ held

  const ServerOptions& opt_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<ServedModel>> models_;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> pool_;
  bool pool_stopping_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::thread batcher_;
  bool stopping_ = false;
  std::atomic<int64_t> jobs_{0};
};

// Rows [b, b + 1) of every batched output.
ModelOutput slice_output(const ModelOutput& out, int64_t b);

}  // namespace vtx::server
