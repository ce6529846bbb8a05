// The Ascend NPU weight types (FORMATS.md §5.1): what npu_weight_quant_batchmatmul and
// npu_quant_matmul take after the loaders' process_weights_after_loading. They are distinct from
// the checkpoint types (!awq, !gptq, !ct_wna16, !w8a8) on purpose: a word in AWQ nibble order can
// only be an !awq part, a natural-order two's-complement int4 word only an !npu_w4 part, a signed
// int8 [K, N] code only an !npu_w8 part, and the npu.* ops accept
// only !npu_* weights — so a pipeline that feeds checkpoint bits to a device op does not verify.
#include "schemes/npu/npu_internal.h"

#include "ir/weight_type.h"
#include "schemes/common/part_data.h"
#include "schemes/npu/codec.h"
#include "schemes/w8a8/codec.h"

namespace qlc::schemes {
namespace {

struct W4Dims {
  int64_t n, k, g;
};

W4Dims w4Dims(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  int64_t n = s.size() == 2 ? s[0] : 0, k = s.size() == 2 ? s[1] : 0;
  int64_t g = t.intParam("group");
  return {n, k, g == -1 ? k : g};
}

std::string verifyW4(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  if (auto e = npu::validateW4(s[1], s[0], t.intParam("group")))
    return *e;
  return "";
}

/// The antiquant_scale and optional antiquant_offset ([K/G, N] each) of !npu_w4 and !npu_w8,
/// checked and decoded to f32.
std::string antiquantParams(const PartBytesMap &parts, int64_t count, std::vector<float> &scale,
                            std::vector<float> &offset) {
  ElemKind scaleElem = parts::hookFloatElem(parts, "antiquant_scale", count);
  if (auto e = parts::checkFloatPart(parts, "antiquant_scale", count, scaleElem); !e.empty())
    return e;
  if (auto it = parts.find("antiquant_offset"); it != parts.end()) {
    if (it->second.elem != scaleElem)
      return "antiquant_offset is " + elemKindName(it->second.elem).str() +
             " but antiquant_scale is " + elemKindName(scaleElem).str() +
             " (torch_npu takes both in the activation dtype)";
    if (auto e = parts::checkFloatPart(parts, "antiquant_offset", count, scaleElem); !e.empty())
      return e;
    offset = parts::decodeFloats(it->second.bytes, scaleElem);
  }
  scale = parts::decodeFloats(*parts::find(parts, "antiquant_scale"), scaleElem);
  return "";
}

std::string dequantizeW4(const WeightType &t, const PartBytesMap &parts, float *out) {
  W4Dims d = w4Dims(t);
  std::vector<float> s, offset;
  if (auto e = parts::checkSize(parts, "weight", d.k * d.n / 8, 4); !e.empty())
    return e;
  if (auto e = antiquantParams(parts, d.k / d.g * d.n, s, offset); !e.empty())
    return e;
  std::vector<uint32_t> w = parts::words<uint32_t>(*parts::find(parts, "weight"));
  npu::antiquant(w, s, offset, d.k, d.n, d.g, std::span<float>(out, size_t(d.n * d.k)));
  return "";
}

std::string verifyW8Antiquant(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  if (auto e = npu::validateW8(s[1], s[0], t.intParam("group")))
    return *e;
  return "";
}

/// !npu_w8: W[n][k] = (weight[k][n] + offset[k/G][n]) * scale[k/G][n], weight int8 [K, N].
std::string dequantizeW8Antiquant(const WeightType &t, const PartBytesMap &parts, float *out) {
  W4Dims d = w4Dims(t);
  std::vector<float> s, offset;
  if (auto e = parts::checkSize(parts, "weight", d.k * d.n, 1); !e.empty())
    return e;
  if (auto e = antiquantParams(parts, d.k / d.g * d.n, s, offset); !e.empty())
    return e;
  std::vector<int8_t> w = parts::words<int8_t>(*parts::find(parts, "weight"));
  npu::antiquantInt8(w, s, offset, d.k, d.n, d.g, std::span<float>(out, size_t(d.n * d.k)));
  return "";
}

std::pair<int64_t, int64_t> w8Dims(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  return s.size() == 2 ? std::pair{s[0], s[1]} : std::pair{int64_t(0), int64_t(0)};
}

std::string verifyW8(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  if (auto e = w8a8::validate(s[1], s[0]))
    return *e;
  return "";
}

/// W[n][k] = weight[k][n] · weight_scale[n]. weight_offset is not applied: npu_quant_matmul gets
/// only the scale (FORMATS.md §5.4), exactly as the !w8a8 reference ignores it.
std::string dequantizeW8(const WeightType &t, const PartBytesMap &parts, float *out) {
  auto [n, k] = w8Dims(t);
  for (std::string e : {parts::checkSize(parts, "weight", n * k, 1),
                        parts::checkFloatPart(parts, "weight_scale", n, ElemKind::F32)})
    if (!e.empty())
      return e;
  std::vector<int8_t> w = parts::words<int8_t>(*parts::find(parts, "weight"));
  std::vector<float> s = parts::words<float>(*parts::find(parts, "weight_scale"));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      out[r * k + c] = float(w[size_t(c * n + r)]) * s[size_t(r)];
  return "";
}

/// !npu_w4 and !npu_w8 differ only in their weight part: both carry antiquant_scale and an
/// optional antiquant_offset [K/G, N] and take the same parameters.
void registerAntiquantType(const char *mnemonic, const char *summary,
                           std::string (*verify)(const WeightType &),
                           std::string (*dequantize)(const WeightType &, const PartBytesMap &, float *),
                           PartSpec (*weightPart)(const W4Dims &)) {
  WeightTypeDef def;
  def.mnemonic = mnemonic;
  def.summary = summary;
  def.params = {
      {"group", AttrKind::Int, std::nullopt, {}, "antiquant group size along K; -1 = per-channel"},
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verify;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = [weightPart](const WeightType &t) {
    W4Dims d = w4Dims(t);
    std::vector<ElemKind> floats = {ElemKind::F16, ElemKind::BF16, ElemKind::F32};
    return std::vector<PartSpec>{
        weightPart(d),
        {"antiquant_scale", floats, {d.k / d.g, d.n}, false, 1, 1},
        {"antiquant_offset", floats, {d.k / d.g, d.n}, true, 1, 1},
    };
  };
  def.dequantize = dequantize;
  WeightTypeRegistry::get().add(std::move(def));
}

} // namespace

void registerNpuTypes() {
  registerAntiquantType(
      "npu_w4",
      "Ascend W4A16 (npu_weight_quant_batchmatmul): int4 in int32 [K, N/8], natural column order, "
      "two's complement; W = (w + antiquant_offset) * antiquant_scale",
      verifyW4, dequantizeW4, [](const W4Dims &d) {
        return PartSpec{"weight", {ElemKind::I32}, {d.k, d.n / 8}, false, 1, 8};
      });
  registerAntiquantType(
      "npu_w8",
      "Ascend W8A16 (npu_weight_quant_batchmatmul with an int8 weight): int8 [K, N], "
      "W = (w + antiquant_offset) * antiquant_scale",
      verifyW8Antiquant, dequantizeW8Antiquant, [](const W4Dims &d) {
        return PartSpec{"weight", {ElemKind::I8}, {d.k, d.n}, false, 1, 1};
      });
  {
    WeightTypeDef def;
    def.mnemonic = "npu_w8a8";
    def.summary = "Ascend W8A8_DYNAMIC (npu_quant_matmul): int8 weight transposed to [K, N], f32 "
                  "per-channel weight_scale [N]; activations quantized per token at run time";
    def.params = {
        {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
    };
    def.verify = verifyW8;
    def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
    def.parts = [](const WeightType &t) {
      auto [n, k] = w8Dims(t);
      return std::vector<PartSpec>{
          {"weight", {ElemKind::I8}, {k, n}, false, 1, 1},
          {"weight_scale", {ElemKind::F32}, {n}, false, 0, 1},
          {"weight_offset", {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, {n}, true, 0, 1},
      };
    };
    def.dequantize = dequantizeW8;
    WeightTypeRegistry::get().add(std::move(def));
  }
}

} // namespace qlc::schemes
