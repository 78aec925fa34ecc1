// Weight loading without copies: PageBuffer, PackedWeight::pack_rows (stacked parts in F32/F16/BF16 at any
// alignment, packed straight from a mapped file) and WeightStore::view / release (resident pages dropped after
// packing, data still readable).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/half.hpp"
#include "core/page_buffer.hpp"
#include "io/weights.hpp"
#include "kernels/gemm.hpp"
#include "support.hpp"
#include "vtx/error.hpp"

namespace vtx::test {
namespace {

using kernels::PackedWeight;
using kernels::WeightRows;

std::vector<float> rnd(size_t n, uint32_t seed) { return random_floats(n, seed, -2.f, 2.f); }
std::vector<int> layouts() { return supported_gemm_layouts(); }

TEST(PageBuffer, ZeroedAlignedCopyMove) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{4096 + 3}, PageBuffer::kMapThreshold, PageBuffer::kMapThreshold * 3 + 5}) {
    PageBuffer b(n);
    ASSERT_EQ(b.size(), n);
    if (n == 0) continue;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u) << n;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; ++i) nonzero += b.data()[i] != 0;
    EXPECT_EQ(nonzero, 0u) << n;
    for (size_t i = 0; i < n; ++i) b.data()[i] = static_cast<uint8_t>(i * 7 + 1);
    PageBuffer c(b);
    ASSERT_EQ(c.size(), n);
    EXPECT_EQ(std::memcmp(c.data(), b.data(), n), 0);
    PageBuffer d(std::move(b));
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(std::memcmp(d.data(), c.data(), n), 0);
    c = std::move(d);
    EXPECT_EQ(c.data()[n - 1], static_cast<uint8_t>((n - 1) * 7 + 1));
  }
}

// Three parts (q, k, v style) in different dtypes, the F32 one at an odd byte address, must pack to exactly
// the bytes of packing their f32 values stacked; both a small weight and one big enough for the mmap path.
TEST(PackRows, StackedMixedDtypesMatchPack) {
  for (auto [rows0, rows1, rows2, K] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{5, 33, 17, 70},
                                        {300, 256, 129, 768}}) {
    const int64_t N = rows0 + rows1 + rows2;
    std::vector<float> a = rnd(static_cast<size_t>(rows0 * K), 1);
    std::vector<uint16_t> h(static_cast<size_t>(rows1 * K)), bf(static_cast<size_t>(rows2 * K));
    std::vector<float> all(a);
    for (float x : rnd(h.size(), 2)) {
      h[all.size() - a.size()] = f32_to_f16(x);
      all.push_back(f16_to_f32(h[all.size() - a.size()]));
    }
    const size_t off = all.size();
    for (float x : rnd(bf.size(), 3)) {
      bf[all.size() - off] = f32_to_bf16(x);
      all.push_back(bf16_to_f32(bf[all.size() - off]));
    }
    std::vector<uint8_t> unaligned(a.size() * 4 + 1);
    std::memcpy(unaligned.data() + 1, a.data(), a.size() * 4);
    std::vector<WeightRows> parts{{unaligned.data() + 1, DType::F32, rows0},
                                  {h.data(), DType::F16, rows1},
                                  {bf.data(), DType::BF16, rows2}};
    for (int layout : layouts()) {
      PackedWeight want = PackedWeight::pack(all.data(), N, K, layout);
      PackedWeight got = PackedWeight::pack_rows(parts, K, layout);
      ASSERT_EQ(got.N(), N);
      ASSERT_EQ(got.K(), K);
      ASSERT_EQ(got.layout(), layout);
      ASSERT_EQ(got.bytes(), want.bytes());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.bytes()), 0) << "layout " << layout << " N " << N;
      // and the panels really hold the weight: element (n, k) of the portable layout is at [k * N + n]
      if (layout == PackedWeight::kLayoutPortable) {
        EXPECT_EQ(got.data()[5 * N + rows0 + 2], all[static_cast<size_t>((rows0 + 2) * K + 5)]);
      }
    }
  }
  EXPECT_THROW(PackedWeight::pack_rows({{nullptr, DType::I8, 2}}, 3), vtx::Error);
}

long rss_kb() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return resident * 4;  // 4 KiB pages
}

TEST(WeightStore, ViewReleaseDropsResidentPages) {
  const std::string dir = temp_dir() + "/view-release";
  std::filesystem::create_directories(dir);
  const int64_t rows = 1024, cols = 1024;  // 4 MiB
  std::vector<float> w = rnd(static_cast<size_t>(rows * cols), 9);
  Tensor t = Tensor::uninitialized({rows, cols}, DType::F32);
  std::memcpy(t.raw(), w.data(), w.size() * 4);
  io::save_safetensors(dir + "/model.safetensors", {{"small", Tensor::uninitialized({3}, DType::F32)}, {"big", t}});
  auto ws = io::WeightStore::open(dir);
  io::WeightStore::View v = ws->view("big", {rows, cols});
  ASSERT_EQ(v.dtype, DType::F32);
  ASSERT_EQ(v.shape, (std::vector<int64_t>{rows, cols}));
  EXPECT_EQ(std::memcmp(v.data, w.data(), w.size() * 4), 0);
  const long before = rss_kb();
  ws->release("big");
  const long after = rss_kb();
  EXPECT_GE(before - after, 2048) << "before " << before << " KB, after " << after << " KB";
  EXPECT_EQ(std::memcmp(v.data, w.data(), w.size() * 4), 0);  // mapped again from the page cache
  ws->release("no-such-tensor");                                // no-op
  try {
    ws->view("big", {rows, cols + 1});
    ADD_FAILURE() << "no shape error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vtx::test
