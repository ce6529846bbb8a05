// The !gptq weight type: AutoGPTQ / GPTQModel checkpoints (FORMATS.md §2). Parts keep the
// checkpoint layout: qweight [K*b/32, N] packed along K, qzeros [ceil(K/G), N*b/32] packed along N
// (v1 stores zero − 1), scales [ceil(K/G), N], g_idx [K] (required with desc_act).
#include "schemes/gptq/gptq_type.h"

#include "schemes/common/part_data.h"
#include "schemes/gptq/codec.h"

namespace qlc::schemes {
namespace {

struct GptqDims {
  int64_t n = 0, k = 0;
  gptq::Config cfg;
  bool descAct = false;
};

GptqDims dimsOf(const WeightType &t) {
  GptqDims d;
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() == 2) {
    d.n = s[0];
    d.k = s[1];
  }
  d.cfg.bits = int(t.intParam("bits"));
  d.cfg.groupSize = t.intParam("group");
  d.cfg.sym = t.boolParam("sym");
  d.cfg.format = t.identParam("format") == "v2" ? gptq::Format::V2 : gptq::Format::V1;
  d.descAct = t.boolParam("desc_act");
  return d;
}

std::string verifyGptq(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  int64_t bits = t.intParam("bits");
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return "bits = " + std::to_string(bits) + " is not a GPTQ width (2, 3, 4 or 8)";
  GptqDims d = dimsOf(t);
  // AutoGPTQ allocates ceil(K/G) groups, so K need not be a multiple of G (vLLM's own kernels
  // additionally require it; that is a lowering constraint, not a checkpoint one).
  if (auto err = gptq::validate(d.k, d.n, d.cfg, /*requireKMultipleOfG=*/false))
    return *err;
  return "";
}

std::vector<PartSpec> gptqParts(const WeightType &t) {
  GptqDims d = dimsOf(t);
  int64_t groups = gptq::numGroups(d.k, d.cfg.groupSize);
  return {
      {"qweight", {ElemKind::I32}, {gptq::qweightRows(d.k, d.cfg.bits), d.n}, false, 1, 1},
      {"qzeros", {ElemKind::I32}, {groups, gptq::qzerosCols(d.n, d.cfg.bits)}, false, 1,
       d.cfg.bits == 3 ? 32 : 32 / d.cfg.bits},
      {"scales", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {groups, d.n}, false, 1, 1},
      {"g_idx", {ElemKind::I32}, {d.k}, !d.descAct},
  };
}

} // namespace

std::string dequantizeGptq(const WeightType &t, const PartBytesMap &parts, ElemKind scalesElem,
                           float *out) {
  GptqDims d = dimsOf(t);
  const int bits = d.cfg.bits;
  int64_t groups = gptq::numGroups(d.k, d.cfg.groupSize);
  int64_t g = d.cfg.groupSize == -1 ? d.k : d.cfg.groupSize;
  int64_t qwWords = gptq::qweightRows(d.k, bits) * d.n;
  int64_t qzWords = groups * gptq::qzerosCols(d.n, bits);
  for (std::string e : {parts::checkSize(parts, "qweight", qwWords, 4),
                        parts::checkSize(parts, "qzeros", qzWords, 4),
                        parts::checkFloatPart(parts, "scales", groups * d.n, scalesElem)})
    if (!e.empty())
      return e;
  auto gIdxBytes = parts::find(parts, "g_idx");
  if (d.descAct && !gIdxBytes)
    return "part 'g_idx' is missing (desc_act = true)";
  std::vector<int32_t> gIdx;
  if (gIdxBytes) {
    if (std::string e = parts::checkSize(parts, "g_idx", d.k, 4); !e.empty())
      return e;
    gIdx = parts::words<int32_t>(*gIdxBytes);
    for (int64_t k = 0; k < d.k; ++k) {
      if (gIdx[k] < 0 || gIdx[k] >= groups)
        return "g_idx[" + std::to_string(k) + "] = " + std::to_string(gIdx[k]) +
               " is not a group index (0.." + std::to_string(groups - 1) + ")";
      if (!d.descAct && gIdx[k] != k / g)
        return "g_idx[" + std::to_string(k) + "] = " + std::to_string(gIdx[k]) +
               " but desc_act = false means group k / G = " + std::to_string(k / g) +
               " (set desc_act = true to use g_idx)";
    }
    if (!d.descAct)
      gIdx.clear(); // equal to k / G: the codec's default
  }
  std::vector<uint32_t> qw = parts::words<uint32_t>(*parts::find(parts, "qweight"));
  std::vector<uint32_t> qz = parts::words<uint32_t>(*parts::find(parts, "qzeros"));
  if (d.cfg.sym) {
    // Symmetric kernels (Marlin uint4b8 / uint8b128) ignore qzeros and use 2^(b-1): the stored
    // zeros must say the same, or the checkpoint means different things to different readers.
    uint32_t want = (1u << (bits - 1)) - (d.cfg.format == gptq::Format::V1 ? 1u : 0u);
    for (int64_t grp = 0; grp < groups; ++grp)
      for (int64_t n = 0; n < d.n; ++n)
        if (uint32_t z = gptq::zeroCode(qz.data(), d.n, grp, n, bits); z != want)
          return "qzeros code [" + std::to_string(grp) + ", " + std::to_string(n) + "] = " +
                 std::to_string(z) + " but sym = true stores " + std::to_string(want) +
                 " in format " + t.identParam("format") + " (set sym = false for real zeros)";
  }
  llvm::ArrayRef<uint8_t> sb = *parts::find(parts, "scales");
  if (scalesElem == ElemKind::F16) {
    std::vector<uint16_t> s = parts::words<uint16_t>(sb);
    gptq::dequantize(qw, qz, s, gIdx, d.k, d.n, d.cfg, std::span<float>(out, d.n * d.k));
    return "";
  }
  // bf16 / f32 scales: the codec's formula (§2.3) with the scale decoded exactly.
  std::vector<float> s = parts::decodeFloats(sb, scalesElem);
  const int32_t zeroOffset = d.cfg.format == gptq::Format::V1 ? 1 : 0;
  for (int64_t k = 0; k < d.k; ++k) {
    int64_t grp = gIdx.empty() ? k / g : gIdx[k];
    for (int64_t n = 0; n < d.n; ++n) {
      int32_t q = int32_t(gptq::weightCode(qw.data(), d.n, k, n, bits));
      int32_t z = int32_t(gptq::zeroCode(qz.data(), d.n, grp, n, bits)) + zeroOffset;
      out[n * d.k + k] = s[grp * d.n + n] * float(q - z);
    }
  }
  return "";
}

void register_gptq() {
  WeightTypeDef def;
  def.mnemonic = "gptq";
  def.summary = "AutoGPTQ / GPTQModel: codes packed along K, zero points packed along N "
                "(v1: stored zero − 1), per-group scales, optional act-order g_idx";
  def.params = {
      {"bits", AttrKind::Int, std::nullopt, {}, "2, 3, 4 or 8"},
      {"group", AttrKind::Int, std::nullopt, {}, "group size along K; -1 = one group"},
      {"sym", AttrKind::Bool, Attribute(true), {}, "symmetric (zero fixed at 2^(bits-1))"},
      {"format", AttrKind::Ident, Attribute::ident("v1"), {"v1", "v2"},
       "checkpoint_format: v1 = gptq (stored zero = zero − 1), v2 = gptq_v2"},
      {"desc_act", AttrKind::Bool, Attribute(false), {}, "act-order: groups come from g_idx"},
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verifyGptq;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = gptqParts;
  def.dequantize = [](const WeightType &t, const PartBytesMap &parts, float *out) {
    GptqDims d = dimsOf(t);
    int64_t count = gptq::numGroups(d.k, d.cfg.groupSize) * d.n;
    return dequantizeGptq(t, parts, parts::hookFloatElem(parts, "scales", count), out);
  };
  WeightTypeRegistry::get().add(std::move(def));
  void registerGptqImport(); // gptq_import.cpp
  registerGptqImport();
}

} // namespace qlc::schemes
