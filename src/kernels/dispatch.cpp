// The dispatch table (kernels.hpp): one KernelTable per ISA level, built once, and the process-wide choice.
#include <atomic>
#include <string>

#include "core/cpu.hpp"
#include "kernels/kernels.hpp"
#include "vtx/cpu.hpp"
#include "vtx/error.hpp"

namespace vtx::kernels {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Portable: return "portable";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::Portable: return true;
    case Isa::Avx2: return cpu_has_avx2_fma();
    case Isa::Avx512: return cpu_has_avx512();
  }
  return false;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Portable, Isa::Avx2, Isa::Avx512})
    if (isa_available(i)) v.push_back(i);
  return v;
}

namespace {

// The table for ISA level `isa` (the caller has checked that it is available). A family without a kernel at this
// level takes the next narrower one.
KernelTable make_table(Isa isa) {
  KernelTable t;
  t.isa = isa;
  const bool a2 = isa >= Isa::Avx2, a512 = isa >= Isa::Avx512;
  const bool vnni = a512 && cpu_has_avx512_vnni();
  const bool bf16 = a512 && cpu_has_avx512_bf16();
  const char* p2 = a2 ? "avx2" : "portable";
  const char* p512 = a512 ? "avx512" : p2;
  t.gemm_layout = a512 ? PackedWeight::kLayoutAvx512 : a2 ? PackedWeight::kLayoutAvx2 : PackedWeight::kLayoutPortable;
  t.gemm_f32 = a512 ? avx512::linear_panels : a2 ? avx2::linear_panels : portable::linear;
  t.gemm_weight_only = a512 ? avx512::linear_q_wo : a2 ? avx2::linear_q_wo : portable::linear_q;
  t.gemm_int8 = vnni ? avx512::linear_q_int8_vnni : a2 ? avx2::linear_q_int8 : portable::linear_q;
  t.gemm_bf16 = bf16 ? avx512::linear_bf16_dp : nullptr;
  t.attention = a512 ? avx512::attention : a2 ? avx2::attention : portable::attention;
  t.layer_norm_rows = a2 ? avx2::layer_norm_rows : portable::layer_norm_rows;
  t.softmax_rows = a2 ? avx2::softmax_rows : portable::softmax_rows;
  t.activation = a2 ? avx2::apply_act : portable::apply_act;
  t.conv_micro = a2 ? avx2::conv_micro : portable::conv_micro;
  t.int4_params = a2 ? avx2::int4_choose_params : portable::int4_choose_params;
  t.resample_horizontal = a2 ? avx2::resample_horizontal : portable::resample_horizontal;
  t.resample_vertical = a2 ? avx2::resample_vertical : portable::resample_vertical;
  const KernelTable::Entry e[KernelTable::kFamilies] = {
      {"gemm_f32", p512},
      {"gemm_f16_bf16_int4", p512},
      {"gemm_int8", vnni ? "avx512-vnni" : p2},
      {"gemm_bf16", bf16 ? "avx512-bf16" : "none"},
      {"attention", p512},
      {"layer_norm", p2},
      {"softmax", p2},
      {"gelu", p2},  // every activation of the GEMM epilogues and apply_act
      {"conv", p2},
      {"interpolation", "portable"},
      {"int4_params", p2},
      {"resample", p2},  // PIL image resize (preprocessing)
  };
  for (int i = 0; i < KernelTable::kFamilies; ++i) t.paths[i] = e[i];
  return t;
}

struct Tables {
  KernelTable t[3];
  Tables() {
    for (Isa i : {Isa::Portable, Isa::Avx2, Isa::Avx512}) t[static_cast<int>(i)] = make_table(i);
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

const KernelTable& best_table() {
  static const KernelTable* best = [] {
    const Isa isa = isa_available(Isa::Avx512) ? Isa::Avx512 : isa_available(Isa::Avx2) ? Isa::Avx2 : Isa::Portable;
    return &tables().t[static_cast<int>(isa)];
  }();
  return *best;
}

std::atomic<const KernelTable*> g_override{nullptr};

}  // namespace

const KernelTable& kernel_table() {
  if (const KernelTable* o = g_override.load(std::memory_order_acquire)) return *o;
  return best_table();
}

const KernelTable& kernel_table(Isa isa) {
  if (!isa_available(isa))
    throw Error(std::string("kernel_table: ") + isa_name(isa) +
                " is not available on this CPU (or disabled by VTX_DISABLE_AVX2 / VTX_DISABLE_AVX512)");
  return tables().t[static_cast<int>(isa)];
}

LinearFn gemm_kernel_for_layout(int layout) {
  switch (layout) {
    case PackedWeight::kLayoutAvx2: return avx2::linear_panels;
    case PackedWeight::kLayoutAvx512: return avx512::linear_panels;
    default: return portable::linear;
  }
}

ScopedIsa::ScopedIsa(Isa isa) : prev_(g_override.load()) { g_override.store(&kernel_table(isa)); }
ScopedIsa::~ScopedIsa() { g_override.store(prev_); }

}  // namespace vtx::kernels

namespace vtx {

std::vector<KernelPath> kernel_dispatch_table() {
  const kernels::KernelTable& t = kernels::kernel_table();
  std::vector<KernelPath> v;
  for (const auto& e : t.paths) v.push_back({e.family, e.path});
  return v;
}

std::string cpu_isa_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512vl, "avx512vl");
  add(f.avx512bw, "avx512bw");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  if (s.empty()) s = "none of avx2/fma/f16c/avx512";
  std::string off;
  if (!cpu_has_avx2_fma() && f.avx2 && f.fma && f.f16c) off = "avx2";
  else if (!cpu_has_avx512() && f.avx512f) off = "avx512";
  else if (!cpu_has_avx512_bf16() && f.avx512bf16) off = "avx512bf16";
  if (!off.empty()) s += " (" + off + " disabled by the environment)";
  return s;
}

}  // namespace vtx
