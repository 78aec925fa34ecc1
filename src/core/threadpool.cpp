#include "core/threadpool.hpp"
#include "vtx/model.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <system_error>

#include "core/cpu.hpp"
#include "vtx/error.hpp"

namespace vtx {

namespace {
thread_local bool t_in_parallel = false;

// One step of a spin-wait. After the first kYieldAfter steps it also gives the core away every 64th step, so that
// a thread waiting for a descheduled peer lets another runnable thread of the process (a server's decode and
// preprocessing pool, say) use the core meanwhile instead of burning it; with nothing else runnable sched_yield
// returns at once and the wait stays a spin.
constexpr unsigned kYieldAfter = 2048;
inline void spin_step(unsigned i) {  // unsigned: wraps, never overflows
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
  if (i >= kYieldAfter && (i & 63) == 0) std::this_thread::yield();
#else
  (void)i;
  std::this_thread::yield();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int threads) : nthreads_(threads < 1 ? 1 : threads) {
  const int limit = max_threads();
  if (nthreads_ > limit)
    throw Error("thread count " + std::to_string(nthreads_) + " exceeds the limit of " + std::to_string(limit) + " (" +
                std::to_string(kThreadsPerCore) + " per hardware thread; set VTX_MAX_THREADS to raise it)");
  try {
    workers_.reserve(static_cast<size_t>(nthreads_ - 1));
    for (int t = 1; t < nthreads_; ++t) {
      if (t == fail_start_at_for_testing)
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "thread creation");
      workers_.emplace_back([this, t] { worker(t); });
    }
  } catch (const std::exception& e) {
    // Workers already started wait on cv_: stop and join them before the members they use are destroyed.
    stop_workers();
    throw Error("cannot start " + std::to_string(nthreads_) + " threads (" + e.what() + " after " +
                std::to_string(workers_.size() + 1) + "); use fewer threads (--threads / VTX_NUM_THREADS)");
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
}

int max_threads() {
  if (const char* s = std::getenv("VTX_MAX_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(s, &end, 10);
    if (end != s && *end == 0 && n > 0) return static_cast<int>(std::min<long>(n, 1 << 20));
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return kThreadsPerCore * static_cast<int>(hc ? hc : 1);
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::worker(int tid) {
  t_in_parallel = true;
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly: forward passes issue many short regions back to back.
    for (unsigned i = 0; i < 20000 && gen_atomic_.load(std::memory_order_acquire) == seen; ++i) spin_step(i);
    const std::function<void(int, int)>* job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    (*job)(tid, nthreads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  // The first exception thrown on any thread is rethrown in the caller once every thread is done.
  std::exception_ptr error;
  std::mutex error_mu;
  auto guarded = [&](int tid, int nt) {
    try {
      fn(tid, nt);
    } catch (...) {
      std::lock_guard<std::mutex> lk(error_mu);
      if (!error) error = std::current_exception();
    }
  };
  if (nthreads_ == 1 || t_in_parallel) {
    for (int t = 0; t < nthreads_; ++t) guarded(t, nthreads_);
  } else {
    const std::function<void(int, int)> job = guarded;
    std::lock_guard<std::mutex> run_lk(run_mu_);
    pending_.store(nthreads_ - 1, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &job;
      ++generation_;
      gen_atomic_.store(generation_, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_parallel = true;
    job(0, nthreads_);
    t_in_parallel = false;
    for (unsigned i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) spin_step(i);
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || nthreads_ == 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  run_on_all([&](int tid, int nt) {
    int64_t b = n * tid / nt, e = n * (tid + 1) / nt;
    if (b < e) fn(b, e);
  });
}

void ThreadPool::parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || nthreads_ == 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  run_on_all([&](int, int) {
    for (;;) {
      const int64_t b = next.fetch_add(grain, std::memory_order_relaxed);
      if (b >= n) break;
      fn(b, std::min(n, b + grain));
    }
  });
}

namespace {
int default_threads() {
  // Unset or empty: the hardware concurrency; anything but a positive integer throws vtx::Error naming the
  // variable; values above max_threads() are capped as before.
  if (const int64_t n = env_int("VTX_NUM_THREADS", 0, 1, 1 << 20))
    return static_cast<int>(std::min<int64_t>(n, max_threads()));
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}
std::unique_ptr<ThreadPool>& pool_slot() {
  static std::unique_ptr<ThreadPool> p;
  return p;
}
std::mutex g_pool_mu;
}  // namespace

ThreadPool& global_pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  auto& p = pool_slot();
  if (!p) p = std::make_unique<ThreadPool>(default_threads());
  return *p;
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  auto next = std::make_unique<ThreadPool>(n > 0 ? n : default_threads());  // throws before the old pool goes
  pool_slot() = std::move(next);
}

int num_threads() { return global_pool().size(); }

}  // namespace vtx
