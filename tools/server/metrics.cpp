#include "metrics.hpp"

#include <cstdio>

namespace vtx::server {

namespace {
std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}
std::vector<double> latency_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> l(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> l(mu_);
  const std::string sep = labels.empty() ? "" : labels + ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{" + sep + "le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(cum) + "\n";
  const std::string lb = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + lb + " " + num(sum_) + "\n";
  out += name + "_count" + lb + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : total_(latency_bounds()), queue_(latency_bounds()), preprocess_(latency_bounds()), inference_(latency_bounds()),
      batch_({1, 2, 4, 8, 16, 32, 64}) {}

void Metrics::request(const std::string& route, int status, double seconds) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++requests_[{route, status}];
  }
  total_.observe(seconds);
}

void Metrics::stage(const std::string& stage, double seconds) {
  if (stage == "queue") queue_.observe(seconds);
  else if (stage == "preprocess") preprocess_.observe(seconds);
  else if (stage == "inference") inference_.observe(seconds);
}

void Metrics::batch(int images) { batch_.observe(images); }

void Metrics::images(const std::string& model, int64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  images_[model] += n;
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP vtx_requests_total HTTP requests answered, by route and status.\n# TYPE vtx_requests_total counter\n";
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [k, v] : requests_)
      out += "vtx_requests_total{route=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
             std::to_string(v) + "\n";
  }
  out += "# HELP vtx_request_duration_seconds Request latency by stage (total: receipt of the request to the answer).\n"
         "# TYPE vtx_request_duration_seconds histogram\n";
  total_.write(out, "vtx_request_duration_seconds", "stage=\"total\"");
  queue_.write(out, "vtx_request_duration_seconds", "stage=\"queue\"");
  preprocess_.write(out, "vtx_request_duration_seconds", "stage=\"preprocess\"");
  inference_.write(out, "vtx_request_duration_seconds", "stage=\"inference\"");
  out += "# HELP vtx_batch_size Images per forward pass.\n# TYPE vtx_batch_size histogram\n";
  batch_.write(out, "vtx_batch_size", "");
  out += "# HELP vtx_queue_depth Images waiting for the model.\n# TYPE vtx_queue_depth gauge\n";
  out += "vtx_queue_depth " + std::to_string(queue_depth.load()) + "\n";
  out += "# HELP vtx_requests_in_flight Admitted inference requests not yet answered.\n# TYPE vtx_requests_in_flight gauge\n";
  out += "vtx_requests_in_flight " + std::to_string(in_flight.load()) + "\n";
  out += "# HELP vtx_connections Open HTTP connections.\n# TYPE vtx_connections gauge\n";
  out += "vtx_connections " + std::to_string(connections.load()) + "\n";
  out += "# HELP vtx_images_total Images run through a model.\n# TYPE vtx_images_total counter\n";
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [m, v] : images_) out += "vtx_images_total{model=\"" + m + "\"} " + std::to_string(v) + "\n";
  }
  out += "# HELP vtx_dropped_images_total Images dropped before inference because their client had gone or timed out.\n"
         "# TYPE vtx_dropped_images_total counter\n";
  out += "vtx_dropped_images_total " + std::to_string(dropped_.load()) + "\n";
  return out;
}

}  // namespace vtx::server
