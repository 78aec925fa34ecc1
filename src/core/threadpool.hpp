#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vtx {

// A persistent pool with static partitioning. parallel_for(n, fn) calls fn(begin, end) on disjoint
// ranges covering [0, n), one range per thread (the caller takes range 0). Calls from inside a
// parallel region run serially, so kernels may nest without deadlock.
// At most kThreadsPerCore threads per hardware thread (VTX_MAX_THREADS overrides the limit): more only adds
// contention, and a huge count (--threads 100000) would exhaust the process's thread limit.
inline constexpr int kThreadsPerCore = 8;
int max_threads();

class ThreadPool {
 public:
  // Throws vtx::Error when `threads` exceeds max_threads() or a thread cannot be started (the threads already
  // started are stopped and joined first).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return nthreads_; }
  // Tests: when >= 0, starting the worker with this index fails as if the system were out of threads.
  static inline int fail_start_at_for_testing = -1;
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
  // Like parallel_for, but the threads take ranges of `grain` items in turn from a shared counter, so a thread that
  // is descheduled or slower leaves its share to the others. For items of similar, independent work (attention
  // strips); which thread runs an item never changes its result.
  void parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
  // Runs fn(tid, nthreads) once on every thread.
  void run_on_all(const std::function<void(int, int)>& fn);

 private:
  void worker(int tid);
  void stop_workers();
  int nthreads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> gen_atomic_{0};
  bool stop_ = false;
  std::mutex run_mu_;  // one parallel region at a time per pool
};

// The process-wide pool used by the kernels. Defaults to VTX_NUM_THREADS or the hardware concurrency.
ThreadPool& global_pool();
// Recreates the global pool with n threads (n <= 0: default). Not safe while a forward pass runs.
void set_num_threads(int n);
int num_threads();

}  // namespace vtx
