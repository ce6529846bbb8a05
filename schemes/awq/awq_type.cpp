// The !awq weight type: AutoAWQ GEMM checkpoints (FORMATS.md §1). Parts keep the checkpoint
// layout: qweight [K, N/pf] and qzeros [K/G, N/pf] packed along N with the AWQ interleave,
// scales [K/G, N].
#include "ir/weight_type.h"
#include "schemes/awq/codec.h"

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

void register_awq() {
  WeightTypeDef def;
  def.mnemonic = "awq";
  def.summary = "AutoAWQ GEMM: codes packed along N with the AWQ interleave, zero points, "
                "per-group fp16 scales";
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
        {"qweight", {ElemKind::I32}, {d.k, d.n / pf}, false},
        {"qzeros", {ElemKind::I32}, {d.k / d.g, d.n / pf}, false},
        {"scales", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {d.k / d.g, d.n}, false},
    };
  };
  WeightTypeRegistry::get().add(std::move(def));
}

} // namespace qlc::schemes
