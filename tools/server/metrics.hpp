#pragma once
// Prometheus text-format metrics: requests by route and status, latency histograms by stage, queue depth,
// batch sizes, images processed. Thread-safe.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vtx::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of `name{labels}` (labels: "" or `stage="x"`).
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& route, int status, double seconds);
  void stage(const std::string& stage, double seconds);  // "queue", "preprocess", "inference"
  void batch(int images);
  void images(const std::string& model, int64_t n);
  void dropped(int64_t n) { dropped_ += n; }

  std::atomic<int64_t> queue_depth{0};   // images waiting for the model
  std::atomic<int64_t> in_flight{0};     // admitted requests not yet answered
  std::atomic<int64_t> connections{0};   // open connections

  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, int64_t> images_;
  Histogram total_, queue_, preprocess_, inference_, batch_;
  std::atomic<int64_t> dropped_{0};
};

}  // namespace vtx::server
