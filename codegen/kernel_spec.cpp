#include "codegen/kernel_spec.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "llvm/ADT/StringMap.h"
#include "llvm/TargetParser/Host.h"

#include "ir/ir.h"
#include "ir/weight_type.h"

namespace qlc::codegen {

Family KernelSpec::family() const {
  switch (layout) {
  case Layout::Awq4:
  case Layout::Gptq4:
  case Layout::Marlin:
  case Layout::NpuW4:
  case Layout::NpuW8:
    return Family::ColsN;
  default:
    return Family::RowsK;
  }
}

Packing KernelSpec::packing() const {
  if (act != Activations::Int8)
    return Packing::Rows;
  switch (layout) {
  case Layout::GgufQ8_0:
  case Layout::GgufQ4_0:
  case Layout::GgufQ4_1:
  case Layout::GgufQ5_0:
  case Layout::GgufQ5_1:
  case Layout::GgufQ4_K:
  case Layout::GgufQ5_K:
  case Layout::GgufQ6_K:
  case Layout::GgufQ3_K:
  case Layout::GgufQ2_K:
    return n % 32 == 0 ? Packing::Channels16 : Packing::Rows;
  default:
    break;
  }
  if ((layout == Layout::Awq4 || layout == Layout::Gptq4) && (bits == 4 || bits == 8))
    return n % 16 == 0 ? Packing::Channels16 : Packing::Rows;
  // Marlin and NPU layouts have int8 kernels on the Channels16 packing only (N % 64 for Marlin).
  if (layout == Layout::Marlin || layout == Layout::NpuW4 || layout == Layout::NpuW8)
    return Packing::Channels16;
  return Packing::Rows;
}

int KernelSpec::lanes() const { return vectorWidth ? vectorWidth : hostVectorWidth(); }

static const char *layoutName(Layout l) {
  switch (l) {
  case Layout::GgufQ8_0: return "gguf.Q8_0";
  case Layout::GgufQ4_0: return "gguf.Q4_0";
  case Layout::GgufQ4_K: return "gguf.Q4_K";
  case Layout::GgufQ6_K: return "gguf.Q6_K";
  case Layout::GgufQ4_1: return "gguf.Q4_1";
  case Layout::GgufQ5_0: return "gguf.Q5_0";
  case Layout::GgufQ5_1: return "gguf.Q5_1";
  case Layout::GgufQ2_K: return "gguf.Q2_K";
  case Layout::GgufQ3_K: return "gguf.Q3_K";
  case Layout::GgufQ5_K: return "gguf.Q5_K";
  case Layout::Awq4: return "awq4";
  case Layout::Gptq4: return "gptq4";
  case Layout::CtWna16_4: return "ct4";
  case Layout::W8a8: return "w8a8";
  case Layout::Marlin: return "marlin";
  case Layout::NpuW4: return "npu_w4";
  case Layout::NpuW8: return "npu_w8";
  }
  return "?";
}

/// "awq4" / "gptq3" / "ct8": the packing's name with the spec's width.
static std::string layoutKeyName(Layout l, int bits) {
  switch (l) {
  case Layout::Awq4: return "awq" + std::to_string(bits);
  case Layout::Gptq4: return "gptq" + std::to_string(bits);
  case Layout::CtWna16_4: return "ct" + std::to_string(bits);
  default: return layoutName(l);
  }
}

std::string KernelSpec::key() const {
  std::string s = layoutKeyName(layout, bits);
  if (family() == Family::ColsN || layout == Layout::CtWna16_4) {
    s += ".g" + std::to_string(group);
    s += zeroPoint ? ".asym" : ".sym";
    if (layout == Layout::Gptq4)
      s += gptqV1 ? ".v1" : ".v2";
    if (layout == Layout::Marlin)
      s += ".b" + std::to_string(bits);
    if (gIdx)
      s += ".gidx";
    s += "." + elemKindName(scaleElem).str();
  }
  if (layout == Layout::W8a8)
    s += "." + elemKindName(scaleElem).str();
  s += ".n" + std::to_string(n) + ".k" + std::to_string(k);
  s += mclass == MClass::Gemv ? ".gemv" : ".gemm";
  s += ".v" + std::to_string(lanes());
  if (act == Activations::Int8)
    s += ".a8";
  if (packing() == Packing::Channels16)
    s += ".c16";
  return s;
}

bool KernelSpec::int8Capable() const {
  switch (layout) {
  case Layout::GgufQ8_0:
  case Layout::GgufQ4_0:
  case Layout::GgufQ4_K:
  case Layout::GgufQ6_K:
  case Layout::GgufQ4_1:
  case Layout::GgufQ5_0:
  case Layout::GgufQ5_1:
  case Layout::GgufQ2_K:
  case Layout::GgufQ3_K:
  case Layout::GgufQ5_K:
    return k % kActBlock == 0;
  case Layout::Awq4:
  case Layout::Gptq4: // one group per 32-block of K; act-order (g_idx) keeps f32
    return k % kActBlock == 0 && group % kActBlock == 0 && !gIdx && (bits == 4 || bits == 8);
  case Layout::CtWna16_4: // the GGUF pair / wide-panel path with a per-channel zero
    return k % kActBlock == 0 && group % kActBlock == 0 && !gIdx && (bits == 4 || bits == 8);
  case Layout::W8a8: // any K whose int32 sum of K products 127 * 128 cannot overflow
    return k <= INT32_MAX / (127 * 128);
  case Layout::Marlin: // repacked into the GPTQ Channels16 words at load (codegen/repack.h)
  case Layout::NpuW4:
  case Layout::NpuW8:
    return k % kActBlock == 0 && group % kActBlock == 0 && !gIdx && n % 16 == 0 &&
           (bits == 4 || bits == 8);
  default:
    return false;
  }
}


int64_t KernelSpec::int8RowsPerBlock() const {
  // gemv: all M <= 8 rows. gemm: 128 rows (K + K/2 bytes each, in L2 up to K ~ 8192 and streamed
  // from L3 per 32-channel tile above), over which the tile's panel fill is amortised.
  return mclass == MClass::Gemv ? kGemvMaxM : 128;
}

int64_t KernelSpec::actScaleBlock() const {
  if (mclass != MClass::Gemm || packing() != Packing::Channels16)
    return kActBlock;
  switch (layout) { // two weight scales a 32-block: 15-25% faster prefill (Q4_K / Q5_K: no gain)
  case Layout::GgufQ6_K:
  case Layout::GgufQ3_K:
  case Layout::GgufQ2_K:
    return 256;
  default:
    return kActBlock;
  }
}

bool hostHasInt8Dot() {
  static bool has = [] {
    llvm::StringMap<bool> f = llvm::sys::getHostCPUFeatures();
    return f.lookup("avx512vnni") && f.lookup("avx512bw") && f.lookup("avx512vl");
  }();
  return has;
}

namespace {
std::mutex actMu;
std::optional<Activations> actOverride;
} // namespace

void setActivationOverride(std::optional<Activations> a) {
  std::lock_guard<std::mutex> l(actMu);
  actOverride = a;
}

Activations defaultActivations(const KernelSpec &s) {
  if (!s.int8Capable() || !hostHasInt8Dot())
    return Activations::F32;
  {
    std::lock_guard<std::mutex> l(actMu);
    if (actOverride)
      return *actOverride;
  }
  if (const char *e = std::getenv("QLC_CPU_ACTIVATIONS"))
    return std::string_view(e) == "f32" ? Activations::F32 : Activations::Int8;
  return Activations::Int8;
}

std::string KernelSpec::symbol() const {
  std::string s = "qlc_" + key();
  for (char &c : s)
    if (c == '.')
      c = '_';
  return s;
}

std::vector<std::string> KernelSpec::partSlots() const {
  switch (layout) {
  case Layout::Awq4:
    return {"qweight", "qzeros", "scales"};
  case Layout::Gptq4:
    return {"qweight", "qzeros", "scales", gIdx ? "g_idx" : ""};
  case Layout::CtWna16_4:
    return {"weight_packed", "weight_scale", zeroPoint ? "weight_zero_point" : "",
            gIdx ? "weight_g_idx" : ""};
  case Layout::W8a8: // weight_offset is unused by W8A8_DYNAMIC (FORMATS.md §5.4), as in the hook
    return {"weight", "weight_scale"};
  case Layout::Marlin: // slot 3 holds g_idx for every layout (the cpu executor checks it)
    return {"qweight", zeroPoint ? "qzeros" : "", "scales", gIdx ? "g_idx" : "",
            gIdx ? "perm" : ""};
  case Layout::NpuW4:
  case Layout::NpuW8:
    return {"weight", zeroPoint ? "antiquant_offset" : "", "antiquant_scale"};
  default:
    return {"data"};
  }
}

int64_t KernelSpec::nAlign() const {
  if (layout == Layout::NpuW8) // int8 [K, N]: any N (a 1-channel tail tile)
    return 1;
  return family() == Family::ColsN ? 8 : 1;
}

int64_t KernelSpec::gemvThreadAlign() const {
  // Channels16 gemv tiles: the 32-blocks (Q8_0, Q4_0 ...) 4 groups of 16 channels (a 2-group
  // tile takes N's tail of 32), the K-quants 2 (two weight streams: Q4_K 13%, Q3_K / Q2_K 10-20%
  // faster than one) but Q6_K 1 (as fast as 2 within the noise, half the code: compile 30
  // instead of 52-61 ms).
  switch (layout) {
  case Layout::GgufQ6_K:
    return 16;
  case Layout::GgufQ2_K:
  case Layout::GgufQ3_K:
  case Layout::GgufQ4_K:
  case Layout::GgufQ5_K:
    return 32;
  default:
    return 64;
  }
}

int64_t KernelSpec::threadAlign() const {
  if (packing() == Packing::Channels16 && mclass == MClass::Gemv)
    return gemvThreadAlign();
  if (family() == Family::ColsN && act == Activations::Int8) // 16-channel vectors: 8 / 4 / 2
    return mclass == MClass::Gemm ? 32
           : layout == Layout::Awq4 && bits == 4 && packing() == Packing::Rows ? 128 : 64;
  if (family() == Family::ColsN) // gemv: kColsNV column vectors a tile
    return std::max<int64_t>(lanes(), 8) * (mclass == MClass::Gemv ? 4 : 1);
  if (act == Activations::Int8 && mclass == MClass::Gemm)
    return 32; // kWideN: wide tiles start at multiples of 32 whatever the split
  return 4;    // kRowsNR
}

/// Tile sizes shared with the emitter (kernel_emitter.cpp).
int64_t KernelSpec::scratchFloats() const {
  if (layout == Layout::W8a8 && act == Activations::Int8) {
    // per row: K rounded up to 64 int8 codes and a 16-byte record; gemm: the wide tile's panel
    // (K rounded up to 64) x 32 channels, 64-byte aligned
    int64_t kp = (k + 63) / 64 * 64, rows = int8RowsPerBlock();
    int64_t bytes = rows * (kp + 16) + 64 + (mclass == MClass::Gemm ? kp * 32 : 0);
    return bytes / 4 + 16;
  }
  if (act == Activations::Int8) { // per row: K int8 codes, then a 16-byte record per block
    int64_t blocks = k / kActBlock, bytes = int8RowsPerBlock() * (k + 16 * blocks);
    if (mclass == MClass::Gemm && family() == Family::ColsN) // operands of 2 x 16 channels
      bytes += blocks * 8 * 2 * 64 + 64;
    else if (mclass == MClass::Gemm) // the panel: 4 rows x (pairs x 128 bytes + super-blocks x 32),
      bytes += std::max(4 * ((blocks + 1) / 2 * 128 + k / 256 * 32), // or the wide panel
                        blocks * (1024 + 256 + 256)); // Q2_K: 2 scale + 2 min rows
    return bytes / 4 + 16;
  }
  if (mclass == MClass::Gemv)
    return 0;
  int64_t vl = lanes();
  if (family() == Family::RowsK) // NR = 4 rows of K rounded up to the vector width
    return 4 * ((k + vl - 1) / vl * vl);
  return k * std::max<int64_t>(vl, 8); // one panel of W columns
}

int64_t KernelSpec::accumulationDepth() const {
  if (family() == Family::ColsN)
    return k + 1;
  int64_t vl = lanes(), lg = 0;
  while ((int64_t(1) << lg) < vl)
    ++lg;
  return k / vl + lg + (k % 16) + 2;
}

int hostVectorWidth() {
  static int w = [] {
    llvm::StringMap<bool> f = llvm::sys::getHostCPUFeatures();
    if (f.lookup("avx512f"))
      return 16;
    if (f.lookup("avx2") || f.lookup("avx"))
      return 8;
    return 4;
  }();
  return w;
}

std::string hostCpuName() { return llvm::sys::getHostCPUName().str(); }

SpecOrReason specForWeightType(const WeightType &t,
                               const std::vector<std::pair<std::string, ElemKind>> &partElems) {
  SpecOrReason r;
  KernelSpec s;
  std::vector<int64_t> shape = t.intArrayParam("shape");
  if (shape.size() != 2) {
    r.reason = "weight shape is not [N, K]";
    return r;
  }
  s.n = shape[0];
  s.k = shape[1];
  auto elemOf = [&](llvm::StringRef part) {
    for (const auto &[n, e] : partElems)
      if (n == part)
        return e;
    return ElemKind::F16;
  };
  const std::string &m = t.mnemonic();
  if (m == "gguf") {
    std::string type = t.identParam("type");
    s.ggmlType = type;
    if (type == "Q8_0")
      s.layout = Layout::GgufQ8_0, s.bits = 8;
    else if (type == "Q4_0")
      s.layout = Layout::GgufQ4_0, s.bits = 4;
    else if (type == "Q4_K")
      s.layout = Layout::GgufQ4_K, s.bits = 4;
    else if (type == "Q6_K")
      s.layout = Layout::GgufQ6_K, s.bits = 6;
    else if (type == "Q4_1")
      s.layout = Layout::GgufQ4_1, s.bits = 4;
    else if (type == "Q5_0")
      s.layout = Layout::GgufQ5_0, s.bits = 5;
    else if (type == "Q5_1")
      s.layout = Layout::GgufQ5_1, s.bits = 5;
    else if (type == "Q2_K")
      s.layout = Layout::GgufQ2_K, s.bits = 2;
    else if (type == "Q3_K")
      s.layout = Layout::GgufQ3_K, s.bits = 3;
    else if (type == "Q5_K")
      s.layout = Layout::GgufQ5_K, s.bits = 5;
    else if (type == "F16" || type == "BF16" || type == "F32") {
      // Every quantized type !gguf accepts has a kernel; these come from the importer as dense.
      r.reason = "gguf " + type + " is not block-quantized (the GGUF importer makes it a dense tensor)";
      return r;
    } else {
      r.reason = "gguf " + type + " has no JIT kernel yet";
      return r;
    }
  } else if (m == "awq") {
    s.layout = Layout::Awq4;
    s.bits = int(t.intParam("bits"));
    if (s.bits != 4 && s.bits != 8) {
      r.reason = "awq " + std::to_string(s.bits) + "-bit has no JIT kernel yet";
      return r;
    }
    int64_t g = t.intParam("group");
    s.group = g == -1 ? s.k : g;
    s.zeroPoint = true;
    s.scaleElem = elemOf("scales");
  } else if (m == "gptq") {
    s.layout = Layout::Gptq4;
    s.bits = int(t.intParam("bits"));
    if (s.bits != 2 && s.bits != 3 && s.bits != 4 && s.bits != 8) {
      r.reason = "gptq " + std::to_string(s.bits) + "-bit has no JIT kernel yet";
      return r;
    }
    int64_t g = t.intParam("group");
    s.group = g == -1 ? s.k : g;
    s.zeroPoint = !t.boolParam("sym");
    s.gptqV1 = t.identParam("format") == "v1";
    s.gIdx = t.boolParam("desc_act");
    s.scaleElem = elemOf("scales");
  } else if (m == "ct_wna16") {
    s.layout = Layout::CtWna16_4;
    s.bits = int(t.intParam("bits"));
    if (s.bits != 4 && s.bits != 8) {
      r.reason = "ct_wna16 " + std::to_string(s.bits) + "-bit has no JIT kernel yet";
      return r;
    }
    bool channel = t.identParam("strategy") == "channel";
    int64_t g = t.intParam("group");
    s.group = channel || g == -1 ? s.k : g;
    s.zeroPoint = !t.boolParam("symmetric");
    s.gIdx = t.identParam("actorder") == "group";
    s.scaleElem = elemOf("weight_scale");
  } else if (m == "w8a8") {
    s.layout = Layout::W8a8;
    s.bits = 8;
    s.scaleElem = elemOf("weight_scale");
  } else if (m == "marlin") {
    s.layout = Layout::Marlin;
    s.bits = int(t.intParam("bits"));
    if (s.bits != 4 && s.bits != 8) {
      r.reason = "marlin " + std::to_string(s.bits) + "-bit has no JIT kernel";
      return r;
    }
    int64_t g = t.intParam("group");
    s.group = g == -1 ? s.k : g;
    s.zeroPoint = t.boolParam("zero_point");
    s.gIdx = t.boolParam("act_order");
    s.scaleElem = elemOf("scales");
  } else if (m == "npu_w4" || m == "npu_w8") {
    s.layout = m == "npu_w4" ? Layout::NpuW4 : Layout::NpuW8;
    s.bits = m == "npu_w4" ? 4 : 8;
    int64_t g = t.intParam("group");
    s.group = g == -1 ? s.k : g;
    s.zeroPoint = false;
    for (const auto &[n, e] : partElems)
      s.zeroPoint |= n == "antiquant_offset";
    s.scaleElem = elemOf("antiquant_scale");
  } else {
    r.reason = "layout " + m + " has no JIT kernel yet";
    return r;
  }
  s.act = defaultActivations(s);
  r.spec = s;
  return r;
}

SpecOrReason specForWeight(const Weight &w) {
  if (w.isDense())
    return {std::nullopt, "dense weight"};
  std::vector<std::pair<std::string, ElemKind>> elems;
  for (const WeightPart &p : w.parts())
    elems.push_back({p.name, p.type.elem});
  return specForWeightType(w.quantType(), elems);
}

} // namespace qlc::codegen
