// ThreadPool::parallel_for_dynamic: every item exactly once, whichever thread takes it and however slow one is.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/threadpool.hpp"

using vtx::ThreadPool;

TEST(ThreadPool, DynamicCoversEveryItemOnce) {
  ThreadPool pool(std::min(3, vtx::max_threads()));
  for (int64_t n : {0, 1, 2, 7, 64, 1000})
    for (int64_t grain : {0, 1, 3, 16, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> calls{0};
      pool.parallel_for_dynamic(n, grain, [&](int64_t b, int64_t e) {
        ASSERT_LT(b, e);
        ASSERT_LE(e - b, std::min(n, std::max<int64_t>(grain, 1)));
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        calls++;
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " grain " << grain << " item " << i;
      if (n > 0 && grain >= 1 && grain < n) {
        EXPECT_EQ(calls.load(), (n + grain - 1) / grain);
      }
    }
}

// A thread stalled on its first item: the others take the rest (no static share is waiting for it).
TEST(ThreadPool, DynamicLeavesWorkToTheOthersWhenOneStalls) {
  if (vtx::max_threads() < 2) GTEST_SKIP() << "needs 2 threads";
  ThreadPool pool(2);
  std::atomic<int> by_staller{0}, total{0};
  std::atomic<bool> stalled{false};
  std::atomic<std::thread::id> staller{};
  pool.parallel_for_dynamic(100, 1, [&](int64_t, int64_t) {
    if (!stalled.exchange(true)) {
      staller = std::this_thread::get_id();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (staller.load() == std::this_thread::get_id()) by_staller++;
    total++;
  });
  EXPECT_EQ(total.load(), 100);
  EXPECT_LT(by_staller.load(), 50);  // a static split would have given it 50
}

TEST(ThreadPool, DynamicRethrowsAndNestsSerially) {
  ThreadPool pool(std::min(2, vtx::max_threads()));
  EXPECT_THROW(pool.parallel_for_dynamic(50, 1, [&](int64_t b, int64_t) {
                 if (b == 17) throw std::runtime_error("item 17");
               }),
               std::runtime_error);
  std::atomic<int64_t> sum{0};
  pool.parallel_for_dynamic(8, 1, [&](int64_t, int64_t) {
    pool.parallel_for_dynamic(10, 2, [&](int64_t b, int64_t e) { sum += e - b; });  // runs serially inside
  });
  EXPECT_EQ(sum.load(), 80);
}
