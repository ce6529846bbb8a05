// The !awq weight type: AutoAWQ GEMM checkpoints (FORMATS.md §1). Parts keep the checkpoint
// layout: qweight [K, N/pf] and qzeros [K/G, N/pf] packed along N with the AWQ interleave,
// scales [K/G, N].
#include "schemes/awq/awq_type.h"

#include "ir/weight_type.h"
#include "schemes/awq/codec.h"
#include "schemes/common/part_data.h"

namespace qlc::schemes {
namespace {

struct AwqDims {
  int64_t n, k, g, bits;
};

AwqDims dimsOf(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  int64_t k = s.size() == 2 ? s[1] : 0;
  int64_t g = t.intParam("group");
  return {s.size() == 2 ? s[0] : 0, k, g == -1 ? k : g, t.intParam("bits")};
}

std::string verifyAwq(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  if (!t.boolParam("zero_point"))
    return "zero_point = false (symmetric AWQ) is not a GEMM checkpoint layout (FORMATS.md §1.3)";
  AwqDims d = dimsOf(t);
  if (auto err = awq::validate(d.k, d.n, t.intParam("group"), int(d.bits)))
    return *err;
  return "";
}

} // namespace

std::string dequantizeAwq(const WeightType &t, const PartBytesMap &parts, ElemKind scalesElem,
                          float *out) {
  AwqDims d = dimsOf(t);
  int bits = int(d.bits);
  int64_t words = d.n / (32 / bits), groups = d.k / d.g;
  for (std::string e : {parts::checkSize(parts, "qweight", d.k * words, 4),
                        parts::checkSize(parts, "qzeros", groups * words, 4),
                        parts::checkFloatPart(parts, "scales", groups * d.n, scalesElem)})
    if (!e.empty())
      return e;
  std::vector<uint32_t> qw = parts::words<uint32_t>(*parts::find(parts, "qweight"));
  std::vector<uint32_t> qz = parts::words<uint32_t>(*parts::find(parts, "qzeros"));
  llvm::ArrayRef<uint8_t> sb = *parts::find(parts, "scales");
  if (scalesElem == ElemKind::F16) {
    std::vector<uint16_t> s = parts::words<uint16_t>(sb);
    awq::dequantize(qw, qz, s, d.k, d.n, t.intParam("group"), std::span<float>(out, d.n * d.k),
                    bits);
    return "";
  }
  // bf16 / f32 scales: the codec's formula with the scale decoded exactly instead of from fp16.
  std::vector<float> s = parts::decodeFloats(sb, scalesElem);
  for (int64_t k = 0; k < d.k; ++k) {
    int64_t grp = k / d.g;
    for (int64_t n = 0; n < d.n; ++n) {
      int32_t q = int32_t(awq::unpackCode(qw.data(), d.n, k, n, bits));
      int32_t z = int32_t(awq::unpackCode(qz.data(), d.n, grp, n, bits));
      out[n * d.k + k] = float(q - z) * s[grp * d.n + n];
    }
  }
  return "";
}

void register_awq() {
  WeightTypeDef def;
  def.mnemonic = "awq";
  def.summary = "AutoAWQ GEMM: codes packed along N with the AWQ interleave, zero points, "
                "per-group f16 / bf16 / f32 scales";
  def.params = {
      {"bits", AttrKind::Int, Attribute(int64_t(4)), {}, "4 (GEMM) or 8 (awq_marlin input)"},
      {"group", AttrKind::Int, std::nullopt, {}, "group size along K; -1 = one group"},
      {"zero_point", AttrKind::Bool, Attribute(true), {}, "asymmetric with qzeros (required)"},
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verifyAwq;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = [](const WeightType &t) {
    AwqDims d = dimsOf(t);
    int64_t pf = 32 / d.bits;
    return std::vector<PartSpec>{
        {"qweight", {ElemKind::I32}, {d.k, d.n / pf}, false, 1, int(pf)},
        {"qzeros", {ElemKind::I32}, {d.k / d.g, d.n / pf}, false, 1, int(pf)},
        {"scales", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {d.k / d.g, d.n}, false, 1, 1},
    };
  };
  def.dequantize = [](const WeightType &t, const PartBytesMap &parts, float *out) {
    AwqDims d = dimsOf(t);
    int64_t count = (d.k / d.g) * d.n;
    return dequantizeAwq(t, parts, parts::hookFloatElem(parts, "scales", count), out);
  };
  WeightTypeRegistry::get().add(std::move(def));
  void registerAwqImport(); // awq_import.cpp
  registerAwqImport();
}

} // namespace qlc::schemes
