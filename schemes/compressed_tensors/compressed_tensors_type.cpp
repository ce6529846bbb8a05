// The !ct_wna16 weight type: compressed-tensors `pack-quantized` WNA16 checkpoints (FORMATS.md §3).
// Parts keep the checkpoint layout: weight_packed [N, ceil(K/pf)] (stored codes q + 2^(b-1),
// packed along K), weight_scale [N, K/G] or [N, 1], weight_zero_point [ceil(N/pf), K/G] (packed
// along N, only when asymmetric), weight_g_idx [K] (only with actorder = group), weight_shape [2].
#include "schemes/compressed_tensors/compressed_tensors_type.h"

#include "schemes/common/packing.h"
#include "schemes/common/part_data.h"
#include "schemes/compressed_tensors/codec.h"

namespace qlc::schemes {
namespace {

struct CtDims {
  int64_t n = 0, k = 0;
  ct::Config cfg;
  std::string actorder;
};

CtDims dimsOf(const WeightType &t) {
  CtDims d;
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() == 2) {
    d.n = s[0];
    d.k = s[1];
  }
  d.cfg.bits = int(t.intParam("bits"));
  d.cfg.strategy = t.identParam("strategy") == "channel" ? ct::Strategy::Channel
                                                         : ct::Strategy::Group;
  d.cfg.groupSize = t.intParam("group");
  d.cfg.symmetric = t.boolParam("symmetric");
  d.actorder = t.identParam("actorder");
  return d;
}

int64_t packFactor(int bits) { return 32 / bits; }

std::string verifyCt(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  int64_t bits = t.intParam("bits");
  if (bits != 4 && bits != 8)
    return "bits = " + std::to_string(bits) + " is not a pack-quantized WNA16 width (4 or 8)";
  CtDims d = dimsOf(t);
  if (d.cfg.strategy == ct::Strategy::Group && d.cfg.groupSize == 0)
    return "strategy = group needs group = G (a positive group size along K, or -1 for one group)";
  if (d.cfg.strategy == ct::Strategy::Channel && d.cfg.groupSize != 0)
    return "strategy = channel has one scale per output row: drop group = " +
           std::to_string(d.cfg.groupSize) + " (or use strategy = group)";
  if (d.actorder == "group" && d.cfg.strategy != ct::Strategy::Group)
    return "actorder = group needs strategy = group (weight_g_idx maps columns to groups)";
  if (auto err = ct::validate(d.k, d.n, d.cfg))
    return *err;
  return "";
}

std::vector<PartSpec> ctParts(const WeightType &t) {
  CtDims d = dimsOf(t);
  int64_t pf = packFactor(d.cfg.bits);
  int64_t groups = ct::numGroups(d.k, d.cfg);
  std::vector<PartSpec> p = {
      {"weight_packed", {ElemKind::I32}, {d.n, codec::ceilDiv(d.k, pf)}, false, 0, 1},
      {"weight_scale", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {d.n, groups}, false, 0, 1},
  };
  if (!d.cfg.symmetric)
    p.push_back({"weight_zero_point", {ElemKind::I32}, {codec::ceilDiv(d.n, pf), groups}, false, 0,
                 int(pf)});
  if (d.actorder == "group")
    p.push_back({"weight_g_idx", {ElemKind::I32}, {d.k}, false});
  p.push_back({"weight_shape", {ElemKind::I64, ElemKind::I32}, {2}, true});
  return p;
}

} // namespace

std::string dequantizeCtWna16(const WeightType &t, const PartBytesMap &parts, ElemKind scaleElem,
                              float *out) {
  CtDims d = dimsOf(t);
  const int bits = d.cfg.bits;
  int64_t pf = packFactor(bits), groups = ct::numGroups(d.k, d.cfg);
  for (std::string e :
       {parts::checkSize(parts, "weight_packed", d.n * codec::ceilDiv(d.k, pf), 4),
        parts::checkFloatPart(parts, "weight_scale", d.n * groups, scaleElem)})
    if (!e.empty())
      return e;
  std::vector<uint32_t> zp;
  if (!d.cfg.symmetric) {
    if (std::string e =
            parts::checkSize(parts, "weight_zero_point", codec::ceilDiv(d.n, pf) * groups, 4);
        !e.empty())
      return e + " (symmetric = false)";
    zp = parts::words<uint32_t>(*parts::find(parts, "weight_zero_point"));
  } else if (parts::find(parts, "weight_zero_point")) {
    return "part 'weight_zero_point' is given but symmetric = true";
  }
  std::vector<int32_t> gIdx;
  if (d.actorder == "group") {
    if (std::string e = parts::checkSize(parts, "weight_g_idx", d.k, 4); !e.empty())
      return e + " (actorder = group)";
    gIdx = parts::words<int32_t>(*parts::find(parts, "weight_g_idx"));
    for (int64_t k = 0; k < d.k; ++k)
      if (gIdx[k] < 0 || gIdx[k] >= groups)
        return "weight_g_idx[" + std::to_string(k) + "] = " + std::to_string(gIdx[k]) +
               " is not a group index (0.." + std::to_string(groups - 1) + ")";
  }
  if (auto ws = parts::find(parts, "weight_shape")) {
    std::vector<int64_t> v;
    if (ws->size() == 16)
      v = parts::words<int64_t>(*ws);
    else if (ws->size() == 8)
      for (int32_t x : parts::words<int32_t>(*ws))
        v.push_back(x);
    else
      return "part 'weight_shape' has " + std::to_string(ws->size()) +
             " bytes, expected 2 x i64 or 2 x i32";
    if (auto e = ct::validateWeightShape(v, d.k, d.n))
      return *e;
  }
  std::vector<uint32_t> wp = parts::words<uint32_t>(*parts::find(parts, "weight_packed"));
  std::vector<float> s = parts::decodeFloats(*parts::find(parts, "weight_scale"), scaleElem);
  ct::dequantize(wp, s, zp, gIdx, d.k, d.n, d.cfg, std::span<float>(out, d.n * d.k));
  return "";
}

void register_compressed_tensors() {
  WeightTypeDef def;
  def.mnemonic = "ct_wna16";
  def.summary = "compressed-tensors pack-quantized WNA16: signed codes stored +2^(bits-1), packed "
                "along K; group or channel scales; optional packed zero points and g_idx";
  def.params = {
      {"bits", AttrKind::Int, std::nullopt, {}, "num_bits: 4 or 8"},
      {"strategy", AttrKind::Ident, Attribute::ident("group"), {"group", "channel"},
       "group: scales [N, K/G]; channel: scales [N, 1]"},
      {"group", AttrKind::Int, Attribute(int64_t(0)), {},
       "group_size along K (strategy = group; -1 = one group); 0 = none (strategy = channel)"},
      {"symmetric", AttrKind::Bool, Attribute(true), {},
       "false: asymmetric with weight_zero_point"},
      {"actorder", AttrKind::Ident, Attribute::ident("none"), {"none", "group", "weight"},
       "group: groups come from weight_g_idx; weight: calibration order only (no g_idx)"},
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verifyCt;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = ctParts;
  def.dequantize = [](const WeightType &t, const PartBytesMap &parts, float *out) {
    CtDims d = dimsOf(t);
    int64_t count = d.n * ct::numGroups(d.k, d.cfg);
    return dequantizeCtWna16(t, parts, parts::hookFloatElem(parts, "weight_scale", count), out);
  };
  WeightTypeRegistry::get().add(std::move(def));
  void registerCompressedTensorsImport(); // compressed_tensors_import.cpp
  registerCompressedTensorsImport();
}

} // namespace qlc::schemes
