// The !w8a8 weight type: vllm-ascend W8A8_DYNAMIC (modelslim) checkpoints (FORMATS.md §5.4).
// Parts keep the checkpoint layout: weight [N, K] int8, weight_scale [N, 1], weight_offset [N, 1]
// (loaded but unused by the dynamic matmul, hence optional).
#include "schemes/w8a8/w8a8_type.h"

#include "schemes/common/part_data.h"
#include "schemes/w8a8/codec.h"

namespace qlc::schemes {
namespace {

std::pair<int64_t, int64_t> nkOf(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  return s.size() == 2 ? std::pair{s[0], s[1]} : std::pair{int64_t(0), int64_t(0)};
}

std::string verifyW8a8(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  if (auto err = w8a8::validate(s[1], s[0]))
    return *err;
  return "";
}

} // namespace

std::string dequantizeW8a8(const WeightType &t, const PartBytesMap &parts, ElemKind scaleElem,
                           float *out) {
  auto [n, k] = nkOf(t);
  for (std::string e : {parts::checkSize(parts, "weight", n * k, 1),
                        parts::checkFloatPart(parts, "weight_scale", n, scaleElem)})
    if (!e.empty())
      return e;
  std::vector<int8_t> w = parts::words<int8_t>(*parts::find(parts, "weight"));
  std::vector<float> s = parts::decodeFloats(*parts::find(parts, "weight_scale"), scaleElem);
  w8a8::dequantize(w, s, k, n, std::span<float>(out, n * k));
  return "";
}

void register_w8a8() {
  WeightTypeDef def;
  def.mnemonic = "w8a8";
  def.summary = "vllm-ascend W8A8_DYNAMIC: int8 weights [N, K], per-channel scales (activations "
                "quantized per token at run time)";
  def.params = {
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verifyW8a8;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = [](const WeightType &t) {
    auto [n, k] = nkOf(t);
    return std::vector<PartSpec>{
        {"weight", {ElemKind::I8}, {n, k}, false, 0, 1},
        {"weight_scale", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {n, 1}, false, 0, 1},
        {"weight_offset", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {n, 1}, true, 0, 1},
    };
  };
  def.dequantize = [](const WeightType &t, const PartBytesMap &parts, float *out) {
    auto [n, k] = nkOf(t);
    return dequantizeW8a8(t, parts, parts::hookFloatElem(parts, "weight_scale", n), out);
  };
  WeightTypeRegistry::get().add(std::move(def));
  void registerW8a8Import(); // w8a8_import.cpp
  registerW8a8Import();
}

} // namespace qlc::schemes
