#include "json_text.hpp"

#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace vtx::server {

namespace {

void append_value(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void nested(std::string& out, const float* x, const std::vector<int64_t>& shape, size_t dim);

int64_t stride_of(const std::vector<int64_t>& shape, size_t dim) {
  int64_t s = 1;
  for (size_t d = dim + 1; d < shape.size(); ++d) s *= shape[d];
  return s;
}

// Elements [i0, i1) of dimension `dim`, comma-separated, without the brackets around them.
void elements(std::string& out, const float* x, const std::vector<int64_t>& shape, size_t dim, int64_t i0, int64_t i1) {
  if (dim + 1 == shape.size()) {
    for (int64_t i = i0; i < i1; ++i) {
      if (i > i0) out += ',';
      append_value(out, x[i]);
    }
    return;
  }
  const int64_t stride = stride_of(shape, dim);
  for (int64_t i = i0; i < i1; ++i) {
    if (i > i0) out += ',';
    nested(out, x + i * stride, shape, dim + 1);
  }
}

void nested(std::string& out, const float* x, const std::vector<int64_t>& shape, size_t dim) {
  out += '[';
  elements(out, x, shape, dim, 0, shape[dim]);
  out += ']';
}

// The second half's text, written by whichever thread claims it first.
struct Half {
  std::atomic<bool> claimed{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::string text;
};

}  // namespace

void append_nested(std::string& out, const float* x, const std::vector<int64_t>& shape) {
  if (shape.empty()) {
    append_value(out, x[0]);
    return;
  }
  nested(out, x, shape, 0);
}

void append_nested_split(std::string& out, const float* x, const std::vector<int64_t>& shape, const Post& post) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  size_t dim = 0;
  while (dim < shape.size() && shape[dim] == 1) ++dim;
  if (numel < kSplitMinValues || dim == shape.size() || !post) return append_nested(out, x, shape);
  const int64_t n = shape[dim], mid = n / 2;
  auto half = std::make_shared<Half>();
  // The task may run after this call has returned (it was taken back): then it touches nothing but `half`.
  post([half, x, shape, dim, mid, n] {
    if (half->claimed.exchange(true)) return;
    std::string text;
    elements(text, x, shape, dim, mid, n);
    std::lock_guard<std::mutex> l(half->mu);
    half->text = std::move(text);
    half->done = true;
    half->cv.notify_all();
  });
  out.append(dim + 1, '[');
  elements(out, x, shape, dim, 0, mid);
  out += ',';
  if (!half->claimed.exchange(true)) {
    elements(out, x, shape, dim, mid, n);
  } else {
    std::unique_lock<std::mutex> l(half->mu);
    half->cv.wait(l, [&] { return half->done; });
    out += half->text;
  }
  out.append(dim + 1, ']');
}

}  // namespace vtx::server
