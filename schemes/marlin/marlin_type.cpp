// The !marlin weight type: Marlin's repacked layout (FORMATS.md §4). Parts: qweight [K/16, N*16/pf]
// (§4.3 tiles), scales [G', N] (§4.5 permuted), qzeros [G', N/pf] (§4.6, zero_point only), perm
// and g_idx [K] (act_order only: repacked row k holds original row perm[k]; g_idx is sorted).
#include "schemes/marlin/marlin_type.h"

#include "schemes/common/part_data.h"
#include "schemes/marlin/codec.h"

namespace qlc::schemes {
namespace {

struct MarlinDims {
  int64_t n = 0, k = 0, group = -1, groups = 1;
  int bits = 4;
  bool zeroPoint = false, actOrder = false;
};

MarlinDims dimsOf(const WeightType &t) {
  MarlinDims d;
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() == 2) {
    d.n = s[0];
    d.k = s[1];
  }
  d.bits = int(t.intParam("bits"));
  d.group = t.intParam("group");
  d.groups = d.group > 0 ? d.k / d.group : 1;
  d.zeroPoint = t.boolParam("zero_point");
  d.actOrder = t.boolParam("act_order");
  return d;
}

std::string verifyMarlin(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  MarlinDims d = dimsOf(t);
  if (auto err = marlin::checkShape(d.n, d.k, d.group, d.bits, t.experts() > 0))
    return *err;
  if (d.actOrder && d.group == -1)
    return "act_order = true needs a group size: with group = -1 every row is in group 0 (vLLM "
           "treats desc_act with group_size -1 as no act-order); drop act_order";
  return "";
}

std::vector<PartSpec> marlinParts(const WeightType &t) {
  MarlinDims d = dimsOf(t);
  int64_t pf = marlin::packFactor(d.bits);
  // Every N-dependent part keeps whole 64-column n-tiles contiguous within a row, so two Marlin
  // weights concatenate along N (w13 = [gate ; up]) part by part when N % 64 == 0.
  std::vector<PartSpec> p = {
      {"qweight",
       {ElemKind::I32},
       {d.k / marlin::kTileK, marlin::qweightCols(d.n, d.bits)},
       false,
       1,
       int(marlin::kTileN)},
      {"scales",
       {ElemKind::F16, ElemKind::BF16, ElemKind::F32},
       {d.groups, d.n},
       false,
       1,
       int(marlin::kTileN)},
  };
  if (d.zeroPoint)
    p.push_back({"qzeros", {ElemKind::I32}, {d.groups, d.n / pf}, false, 1, int(marlin::kTileN)});
  if (d.actOrder) {
    p.push_back({"perm", {ElemKind::I32}, {d.k}, false});
    p.push_back({"g_idx", {ElemKind::I32}, {d.k}, false});
  }
  return p;
}

} // namespace

std::string dequantizeMarlin(const WeightType &t, const PartBytesMap &parts, float *out) {
  MarlinDims d = dimsOf(t);
  const int bits = d.bits;
  int64_t pf = marlin::packFactor(bits);
  ElemKind scaleElem = parts::hookFloatElem(parts, "scales", d.groups * d.n);
  for (std::string e : {parts::checkSize(parts, "qweight",
                                         d.k / marlin::kTileK * marlin::qweightCols(d.n, bits), 4),
                        parts::checkFloatPart(parts, "scales", d.groups * d.n, scaleElem)})
    if (!e.empty())
      return e;
  std::vector<uint32_t> qz;
  if (d.zeroPoint) {
    if (std::string e = parts::checkSize(parts, "qzeros", d.groups * (d.n / pf), 4); !e.empty())
      return e + " (zero_point = true)";
    qz = parts::words<uint32_t>(*parts::find(parts, "qzeros"));
  }
  std::vector<int32_t> perm, gIdx;
  if (d.actOrder) {
    for (const char *name : {"perm", "g_idx"})
      if (std::string e = parts::checkSize(parts, name, d.k, 4); !e.empty())
        return e + " (act_order = true)";
    perm = parts::words<int32_t>(*parts::find(parts, "perm"));
    gIdx = parts::words<int32_t>(*parts::find(parts, "g_idx"));
    std::vector<bool> seen(size_t(d.k), false);
    for (int64_t k = 0; k < d.k; ++k) {
      int32_t p = perm[size_t(k)];
      if (p < 0 || p >= d.k || seen[size_t(p)])
        return "perm[" + std::to_string(k) + "] = " + std::to_string(p) +
               (p < 0 || p >= d.k ? " is not a row index (0.." + std::to_string(d.k - 1) + ")"
                                  : " repeats an earlier entry: perm must be a permutation");
      seen[size_t(p)] = true;
      int32_t g = gIdx[size_t(k)];
      if (g < 0 || g >= d.groups)
        return "g_idx[" + std::to_string(k) + "] = " + std::to_string(g) +
               " is not a group index (0.." + std::to_string(d.groups - 1) + ")";
      if (k > 0 && g < gIdx[size_t(k - 1)])
        return "g_idx[" + std::to_string(k) + "] = " + std::to_string(g) + " < g_idx[" +
               std::to_string(k - 1) + "] = " + std::to_string(gIdx[size_t(k - 1)]) +
               ": Marlin's g_idx is sorted (rows are reordered by perm)";
    }
  }
  std::vector<uint32_t> qw = parts::words<uint32_t>(*parts::find(parts, "qweight"));
  std::vector<float> s = parts::decodeFloats(*parts::find(parts, "scales"), scaleElem);
  // The scale permutation is chosen from THIS weight's own K (§4.5, §4.8).
  bool grouped = marlin::groupedScalePerm(d.group, d.k);
  const int32_t symZero = 1 << (bits - 1); // uint4b8 / uint8b128
  for (int64_t k = 0; k < d.k; ++k) {
    int64_t grp = d.actOrder ? gIdx[size_t(k)] : (d.group == -1 ? 0 : k / d.group);
    int64_t orig = d.actOrder ? perm[size_t(k)] : k;
    for (int64_t n = 0; n < d.n; ++n) {
      int32_t q = int32_t(marlin::weightCode(qw.data(), d.n, k, n, bits));
      int32_t z = d.zeroPoint ? int32_t(marlin::zeroCode(qz.data(), d.n, grp, n, bits)) : symZero;
      float sc = s[size_t(grp * d.n + marlin::scaleColumn(n, grouped))];
      out[n * d.k + orig] = float(q - z) * sc;
    }
  }
  return "";
}

void register_marlin() {
  WeightTypeDef def;
  def.mnemonic = "marlin";
  def.summary = "Marlin (gptq_marlin / awq_marlin) repacked layout: 16x64 tiles, permuted scales, "
                "optional zero points (uint4 / uint8) and act-order perm";
  def.params = {
      {"bits", AttrKind::Int, Attribute(int64_t(4)), {}, "4 or 8"},
      {"group",
       AttrKind::Int,
       std::nullopt,
       {},
       "group size along K: -1 (channelwise), 32, 64, 128"},
      {"zero_point",
       AttrKind::Bool,
       Attribute(false),
       {},
       "qzeros present (uint4 / uint8 with zero points); false: uint4b8 / uint8b128"},
      {"act_order",
       AttrKind::Bool,
       Attribute(false),
       {},
       "rows sorted by group: perm and sorted g_idx present"},
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verifyMarlin;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = marlinParts;
  def.dequantize = dequantizeMarlin;
  WeightTypeRegistry::get().add(std::move(def));
  registerMarlinOps();
  registerMarlinPermutePass();
}

} // namespace qlc::schemes
