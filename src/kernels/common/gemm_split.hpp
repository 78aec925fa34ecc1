#pragma once
// How a GEMM (M rows x npan column panels x K) is shared by the global pool's threads, for every kernel family
// (AVX2 and AVX-512, f32, weight-only and int8). Small problems run on the calling thread. Small M (batch 1):
// the panels are split, so every thread gets work and the weight is read once; large M: the rows, in whole
// tiles of mr rows (each thread streams all of the weight and reuses its A block from L2).
// region(mb, me, pb, pe) computes rows [mb, me) x panels [pb, pe).
#include <algorithm>
#include <cstdint>

#include "core/threadpool.hpp"

namespace vtx::kernels {

// grain_rows > 0 (the kernel's row block, a multiple of mr): the row split is dynamic, in blocks of that many rows
// taken from a shared counter, so a thread that is descheduled (a server's preprocessing pool on the same cores)
// leaves its blocks to the other instead of holding the join; the weight is streamed once per row block either way.
template <class Region>
void run_split(int64_t M, int64_t N, int64_t K, int64_t npan, int64_t mr, const Region& region,
               int64_t grain_rows = 0) {
  const int64_t mt = (M + mr - 1) / mr;
  ThreadPool& pool = global_pool();
  const int nt = pool.size();
  if (nt == 1 || 2.0 * M * N * K < 2e5) {
    region(0, M, 0, npan);
    return;
  }
  const bool split_n = npan >= 2 * nt && (M < 192 * nt || mt < 4 * nt);
  if (!split_n && grain_rows >= mr) {
    // Blocks of grain_rows, but never fewer blocks than threads (small M keeps its static two-way split).
    const int64_t g = std::min(grain_rows / mr, (mt + nt - 1) / nt);
    pool.parallel_for_dynamic(mt, g, [&](int64_t tb, int64_t te) { region(tb * mr, std::min(M, te * mr), 0, npan); });
    return;
  }
  pool.run_on_all([&](int tid, int n) {
    if (split_n) {
      const int64_t pb = npan * tid / n, pe = npan * (tid + 1) / n;
      if (pb < pe) region(0, M, pb, pe);
    } else {
      const int64_t tb = mt * tid / n, te = mt * (tid + 1) / n;
      if (tb < te) region(tb * mr, std::min(M, te * mr), 0, npan);
    }
  });
}

}  // namespace vtx::kernels
