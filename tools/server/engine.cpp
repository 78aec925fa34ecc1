#include "engine.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "http_error.hpp"
#include "vtx/hub.hpp"
#include "vtx/image.hpp"
#include "vtx/serve_support.hpp"

namespace fs = std::filesystem;

namespace vtx::server {

Response error_response(int status, const std::string& type, const std::string& message) {
  Response r;
  r.status = status;
  r.error_type = type;
  r.body = nlohmann::json{{"error", message}, {"error_type", type}}.dump();
  return r;
}

bool Pending::answer(Response r) {
  if (done_.exchange(true, std::memory_order_acq_rel)) return false;
  auto d = std::move(deliver_);
  d(std::move(r));
  return true;
}

void Pending::cancel() {
  if (done_.exchange(true, std::memory_order_acq_rel)) return;
  deliver_ = nullptr;
}

namespace {

Tensor row_of(const Tensor& t, int64_t b) {
  if (t.empty()) return t;
  std::vector<int64_t> shape = t.shape();
  shape[0] = 1;
  Tensor r = Tensor::uninitialized(shape, t.dtype());
  const size_t n = r.nbytes();
  std::memcpy(r.raw(), static_cast<const char*>(t.raw()) + static_cast<size_t>(b) * n, n);
  return r;
}

// Where a model comes from: a folder, or a hub id that vtx::resolve_model finds in (or downloads into) the Hugging
// Face cache with the load options' revision / cache / offline settings. A folder that is itself a cache snapshot
// (.../models--org--name/snapshots/<commit>) also reports its id and commit in the metadata routes.
struct Resolved {
  std::string dir, hub_id, commit;
};

Resolved resolve_served_model(const std::string& source, const LoadOptions& load) {
  Resolved r;
  if (!fs::is_directory(source)) {
    const ResolvedModel m = vtx::resolve_model(source, hub_options(load));
    r.dir = m.dir;
    r.hub_id = m.repo_id;
    r.commit = m.commit;
    return r;
  }
  r.dir = source;
  const fs::path p = fs::weakly_canonical(fs::path(source));
  const fs::path parent = p.parent_path();
  if (parent.filename() == "snapshots" && parent.parent_path().filename().string().rfind("models--", 0) == 0) {
    r.commit = p.filename().string();
    std::string id = parent.parent_path().filename().string().substr(8);
    const auto sep = id.find("--");
    if (sep != std::string::npos) id.replace(sep, 2, "/");
    r.hub_id = id;
  }
  return r;
}

ForwardOptions forward_options() {
  ForwardOptions o;
  // As vtx::Pipeline (and the transformers pipelines): no interpolate_pos_encoding; the processor resizes to the
  // model's size and DINOv2-family models always interpolate.
  return o;
}

}  // namespace

ModelOutput slice_output(const ModelOutput& out, int64_t b) {
  ModelOutput r;
  r.last_hidden_state = row_of(out.last_hidden_state, b);
  r.pooler_output = row_of(out.pooler_output, b);
  r.logits = row_of(out.logits, b);
  r.cls_logits = row_of(out.cls_logits, b);
  r.distillation_logits = row_of(out.distillation_logits, b);
  for (const auto& f : out.feature_maps) r.feature_maps.push_back(row_of(f, b));
  r.reconstruction = row_of(out.reconstruction, b);
  r.predicted_depth = row_of(out.predicted_depth, b);
  return r;
}

Engine::Engine(const ServerOptions& opt, Metrics& metrics) : opt_(opt), metrics_(metrics) {
  const int n = std::max(1, opt.preprocess_threads);
  for (int i = 0; i < n; ++i) pool_.emplace_back([this] { pool_loop(); });
  batcher_ = std::thread([this] { batch_loop(); });
}

Engine::~Engine() { stop(); }

void Engine::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    pool_stopping_ = true;
  }
  pool_cv_.notify_all();
  if (batcher_.joinable()) batcher_.join();
  for (auto& t : pool_)
    if (t.joinable()) t.join();
  pool_.clear();
}

void Engine::drop_all() {
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    tasks_.clear();
  }
  std::lock_guard<std::mutex> l(mu_);
  for (auto& m : models_) m->queue.clear();
}

void Engine::load_models() {
  for (const auto& spec : opt_.models) {
    auto m = std::make_unique<ServedModel>();
    m->name = spec.name;
    m->source = spec.source;
    Resolved r = resolve_served_model(spec.source, opt_.load);
    m->dir = r.dir;
    m->hub_id = r.hub_id;
    m->commit = r.commit;
    m->model = Model::load(r.dir, opt_.load);
    try {
      m->processor = ImageProcessor::from_pretrained(r.dir);
      m->has_processor = true;
    } catch (const Error& e) {
      m->processor_error = e.what();
    }
    m->session = std::make_unique<Session>(m->model);
    // Warm-up at the processor's output size and the largest batch: the session's buffers reach their full size
    // now (a model that does not fit at --max-batch-size fails here, not under load; RSS does not grow with the
    // first full batch), and the metadata route learns the outputs.
    int h = static_cast<int>(m->info().image_size > 0 ? m->info().image_size : 224), w = h;
    if (m->has_processor) {
      Image blank(640, 480);
      Tensor pv = m->processor.preprocess(blank);
      h = static_cast<int>(pv.dim(1));
      w = static_cast<int>(pv.dim(2));
    }
    Tensor pv({std::max(1, opt_.max_batch_size), 3, h, w}, DType::F32);
    ModelOutput out = m->session->forward(pv, forward_options());
    m->input_shape = {3, h, w};
    for (const auto& [name, t] : slice_output(out, 0).named()) m->outputs.emplace_back(name, t.shape());
    models_.push_back(std::move(m));
  }
}

ServedModel* Engine::find(const std::string& name) const {
  for (const auto& m : models_)
    if (m->name == name) return m.get();
  return nullptr;
}

void Engine::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    tasks_.push_back(std::move(fn));
  }
  pool_cv_.notify_one();
}

void Engine::pool_loop() {
  // Below the inference threads: on a machine with as many cores as inference threads, decoding the next images
  // would otherwise preempt a forward pass mid-region and leave its peers waiting at the barrier. Niced, the pool
  // still gets the cores whenever the batcher waits. (Linux: setpriority on a thread id sets that thread only;
  // where it fails, the pool runs at the normal priority.)
  if (opt_.preprocess_nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), opt_.preprocess_nice);
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> l(pool_mu_);
      pool_cv_.wait(l, [&] { return pool_stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping
      fn = std::move(tasks_.front());
      tasks_.pop_front();
    }
    fn();
  }
}

void Engine::release(ServedModel* m, int64_t n) {
  m->admitted -= n;
  metrics_.queue_depth -= n;
}

void Engine::submit(std::shared_ptr<Job> job) {
  const int n = job->count();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (job->model->admitted + n > opt_.max_queue)
      throw HttpError(429, "queue_full",
                      "the queue of model '" + job->model->name + "' is full (" + std::to_string(job->model->admitted) +
                          " of --max-queue " + std::to_string(opt_.max_queue) + " images waiting); retry later",
                      {{"Retry-After", "1"}});
    job->model->admitted += n;
    metrics_.queue_depth += n;
  }
  ++jobs_;
  metrics_.in_flight++;
  job->admitted = Clock::now();
  job->remaining = n;
  job->outputs.resize(static_cast<size_t>(n));
  job->sizes.resize(static_cast<size_t>(n));
  post([this, job] { prepare(job); });
}

void Engine::fail(const std::shared_ptr<Job>& job, Response r) {
  job->pending->answer(std::move(r));
}

void Engine::prepare(const std::shared_ptr<Job>& job) {
  ServedModel* m = job->model;
  const int n = job->count();
  auto give_up = [&](Response r) {
    {
      std::lock_guard<std::mutex> l(mu_);
      release(m, n);
    }
    fail(job, std::move(r));
    --jobs_;
    metrics_.in_flight--;
  };
  if (job->pending->done()) {  // timed out or client gone while waiting for the pool
    metrics_.dropped(n);
    give_up(Response{});
    return;
  }
  const auto t0 = Clock::now();
  std::vector<Item> items;
  items.reserve(static_cast<size_t>(n));
  try {
    if (!job->pixel_values.empty()) {
      const Tensor& pv = job->pixel_values;
      const std::vector<int64_t> shape(pv.shape().begin() + 1, pv.shape().end());
      const int64_t per = pv.numel() / pv.dim(0);
      for (int i = 0; i < n; ++i) {
        Item it;
        it.job = job;
        it.index = i;
        it.pixel_values = Tensor::from_data(shape, pv.data<float>() + i * per);
        job->sizes[i] = {static_cast<int>(shape[1]), static_cast<int>(shape[2])};
        items.push_back(std::move(it));
      }
      job->pixel_values = Tensor();
    } else {
      if (!m->has_processor)
        throw HttpError(400, "invalid_input", "model '" + m->name + "' has no image processor (" + m->processor_error +
                                                  "); send pixel_values to /v2/models/" + m->name + "/infer");
      ImageLoadOptions lo;
      lo.max_pixels = opt_.max_image_pixels;
      for (int i = 0; i < n; ++i) {
        const std::string what = n == 1 ? "image" : "image " + std::to_string(i);
        Image img;
        try {
          const std::string& b = job->encoded[i];
          img = decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), what, lo);
        } catch (const ImageTooLargeError& e) {
          throw HttpError(413, "image_too_large",
                          what + ": " + std::to_string(e.width) + "x" + std::to_string(e.height) + " = " +
                              std::to_string(e.width * e.height) + " pixels exceeds --max-image-pixels " +
                              std::to_string(e.limit));
        } catch (const Error& e) {
          throw HttpError(400, "invalid_image", e.what());
        }
        job->encoded[i].clear();
        job->encoded[i].shrink_to_fit();
        job->sizes[i] = {img.height, img.width};
        Item it;
        it.job = job;
        it.index = i;
        it.pixel_values = m->processor.preprocess(img);
        items.push_back(std::move(it));
      }
    }
  } catch (const HttpError& e) {
    give_up(error_response(e.status, e.type, e.what()));
    return;
  } catch (const Error& e) {
    give_up(error_response(400, "invalid_input", e.what()));
    return;
  } catch (const std::bad_alloc&) {
    give_up(error_response(503, "out_of_memory", "out of memory while decoding the request's images"));
    return;
  }
  job->preprocess_ms = ms_since(t0);
  metrics_.stage("preprocess", job->preprocess_ms / 1e3);
  {
    std::lock_guard<std::mutex> l(mu_);
    const auto now = Clock::now();
    for (auto& it : items) {
      it.queued = now;
      m->queue.push_back(std::move(it));
    }
  }
  cv_.notify_all();
}

void Engine::batch_loop() {
  const size_t max_batch = static_cast<size_t>(std::max(1, opt_.max_batch_size));
  bool ran_since_trim = false;
  for (;;) {
    ServedModel* m = nullptr;
    std::vector<Item> batch, dropped_items;
    {
      std::unique_lock<std::mutex> l(mu_);
      auto has_work = [&] {
        if (stopping_) return true;
        for (const auto& mm : models_)
          if (!mm->queue.empty()) return true;
        return false;
      };
      // Under load the freed request buffers stay in the heap for the next requests (see serve()); once the
      // server has been idle for a second they go back to the system, so that RSS settles at its idle size.
      while (!has_work()) {
        if (cv_.wait_for(l, std::chrono::seconds(1), has_work)) break;
        if (ran_since_trim && jobs_.load() == 0) {
          l.unlock();
          malloc_trim(0);
          l.lock();
          ran_since_trim = false;
        }
      }
      if (stopping_) return;
      ran_since_trim = true;
      // The model whose oldest item has waited longest.
      for (const auto& mm : models_)
        if (!mm->queue.empty() && (!m || mm->queue.front().queued < m->queue.front().queued)) m = mm.get();
      auto same_shape = [&](const Item& a, const Item& b) { return a.pixel_values.shape() == b.pixel_values.shape(); };
      if (opt_.max_batch_delay_ms > 0) {
        const auto deadline = m->queue.front().queued + std::chrono::milliseconds(opt_.max_batch_delay_ms);
        cv_.wait_until(l, deadline, [&] {
          if (stopping_) return true;
          size_t k = 0;
          for (const auto& it : m->queue)
            if (same_shape(it, m->queue.front()) && ++k >= max_batch) return true;
          return false;
        });
        if (stopping_) return;
      }
      // Oldest item, then the following items of the same shape; drop those nobody waits for.
      const std::vector<int64_t> shape = m->queue.front().pixel_values.shape();
      for (auto it = m->queue.begin(); it != m->queue.end() && batch.size() < max_batch;) {
        if (it->job->pending->done()) {
          dropped_items.push_back(std::move(*it));
          it = m->queue.erase(it);
        } else if (it->pixel_values.shape() == shape) {
          batch.push_back(std::move(*it));
          it = m->queue.erase(it);
        } else {
          ++it;
        }
      }
      release(m, static_cast<int64_t>(dropped_items.size() + batch.size()));
    }
    if (!dropped_items.empty()) metrics_.dropped(static_cast<int64_t>(dropped_items.size()));
    for (auto& it : dropped_items) {
      auto job = std::move(it.job);
      if (--job->remaining == 0) post([this, job] { finish(job); });
    }
    if (batch.empty()) continue;
    const auto t0 = Clock::now();
    for (const auto& it : batch) metrics_.stage("queue", std::chrono::duration<double>(t0 - it.queued).count());
    const int64_t B = static_cast<int64_t>(batch.size());
    std::vector<int64_t> shape = batch[0].pixel_values.shape();
    const int64_t per = batch[0].pixel_values.numel();
    shape.insert(shape.begin(), B);
    Tensor pv = Tensor::uninitialized(shape, DType::F32);
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(pv.data<float>() + b * per, batch[b].pixel_values.data<float>(), per * sizeof(float));
    ModelOutput out;
    std::string error;
    try {
      out = m->session->forward(pv, forward_options());
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double infer_s = ms_since(t0) / 1e3;
    metrics_.stage("inference", infer_s);
    metrics_.batch(static_cast<int>(B));
    metrics_.images(m->name, B);
    for (int64_t b = 0; b < B; ++b) {
      auto job = batch[b].job;
      if (!error.empty()) {
        if (!job->failed.exchange(true))
          fail(job, error_response(400, "inference_error", "model '" + m->name + "': " + error));
      } else {
        job->outputs[batch[b].index].out = slice_output(out, b);
      }
      batch[b].pixel_values = Tensor();
      if (--job->remaining == 0) {
        post([this, job] { finish(job); });
      }
    }
  }
}

void Engine::finish(const std::shared_ptr<Job>& job) {
  if (!job->failed && !job->pending->done()) {
    try {
      Response r = job->respond(*job);
      r.model = job->model->name;
      job->pending->answer(std::move(r));
    } catch (const HttpError& e) {
      job->pending->answer(error_response(e.status, e.type, e.what()));
    } catch (const Error& e) {
      job->pending->answer(error_response(400, "invalid_input", e.what()));
    } catch (const std::exception& e) {
      job->pending->answer(error_response(500, "internal", e.what()));
    }
  }
  job->outputs.clear();
  --jobs_;
  metrics_.in_flight--;
}

}  // namespace vtx::server
