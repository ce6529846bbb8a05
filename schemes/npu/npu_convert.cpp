// AWQ → Ascend W4A16 and W8A8 → Ascend W8A8_DYNAMIC on the quantized bits (FORMATS.md §5.2, §5.4),
// and the test-only inverse of the former.
#include "schemes/npu/npu_convert.h"

#include <cstring>

#include "runtime/weight_store.h"
#include "schemes/common/part_data.h"
#include "schemes/npu/codec.h"
#include "support/float16.h"

namespace qlc::schemes {
namespace {

llvm::Error err(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// f32 values → bytes of `elem` (f16 / bf16 round to nearest even; the offsets written here are
/// small integers, exact in every float type).
std::vector<uint8_t> encodeFloats(const std::vector<float> &v, ElemKind elem) {
  std::vector<uint8_t> out(v.size() * elemKindBytes(elem));
  for (size_t i = 0; i < v.size(); ++i) {
    if (elem == ElemKind::F32) {
      std::memcpy(out.data() + 4 * i, &v[i], 4);
      continue;
    }
    uint16_t h = elem == ElemKind::BF16 ? floatToBf16(v[i]) : floatToHalf(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

WeightPart inlinePart(std::string name, TensorType type, std::vector<uint8_t> bytes, Location loc) {
  WeightPart p;
  p.name = std::move(name);
  p.type = std::move(type);
  p.data = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  p.loc = std::move(loc);
  return p;
}

llvm::Expected<WeightType> buildType(llvm::StringRef mnemonic, AttrDict params) {
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup(mnemonic);
  if (!def)
    return err("weight type !" + mnemonic + " is not registered");
  std::string e;
  auto t = WeightTypeRegistry::get().build(def, params, e);
  if (!t)
    return err(e);
  return *t;
}

llvm::Expected<PartBytes> partBytes(const Weight &w, llvm::StringRef name,
                                    const WeightStore *store) {
  const WeightPart *p = w.part(name);
  if (!p)
    return err("weight @" + w.name() + " has no part '" + name + "'");
  return resolvePart(w, *p, store);
}

/// Concatenates row-major a and b (same dims except the last) along the last dim.
std::vector<uint8_t> concatLast(llvm::ArrayRef<uint8_t> a, llvm::ArrayRef<uint8_t> b,
                                int64_t rows) {
  size_t ca = a.size() / size_t(rows), cb = b.size() / size_t(rows);
  std::vector<uint8_t> out;
  out.reserve(a.size() + b.size());
  for (int64_t r = 0; r < rows; ++r) {
    out.insert(out.end(), a.begin() + r * ca, a.begin() + (r + 1) * ca);
    out.insert(out.end(), b.begin() + r * cb, b.begin() + (r + 1) * cb);
  }
  return out;
}

} // namespace

llvm::Expected<ConvertedWeight> awqToNpuW4(const Weight &w, const WeightStore *store) {
  const WeightType &t = w.quantType();
  if (t.mnemonic() != "awq" || t.intParam("bits") != 4)
    return err("weight @" + w.name() + " is not a 4-bit !awq weight");
  AttrDict params{{"group", Attribute(t.intParam("group"))},
                  {"shape", Attribute(t.intArrayParam("shape"))}};
  if (t.experts())
    params["experts"] = Attribute(t.experts());
  auto type = buildType("npu_w4", params);
  if (!type)
    return type.takeError();
  const WeightPart *qw = w.part("qweight"), *qz = w.part("qzeros"), *sc = w.part("scales");
  if (!qw || !qz || !sc)
    return err("weight @" + w.name() + " lacks one of qweight, qzeros, scales");
  auto qwb = resolvePart(w, *qw, store);
  if (!qwb)
    return qwb.takeError();
  auto qzb = resolvePart(w, *qz, store);
  if (!qzb)
    return qzb.takeError();

  ConvertedWeight out;
  out.type = *type;
  // §5.2 steps 1-2: natural nibble order, then ^ 0x88888888 (word-local: expert stacks are rows).
  std::vector<uint32_t> words = npu::convertWeightWords(parts::words<uint32_t>(qwb->bytes));
  std::vector<uint8_t> wbytes(words.size() * 4);
  std::memcpy(wbytes.data(), words.data(), wbytes.size());
  out.parts.push_back(inlinePart("weight", qw->type, std::move(wbytes), qw->loc));
  // §5.2 step 4: scales unchanged (the part keeps its checkpoint source or inline bytes).
  WeightPart scale = *sc;
  scale.name = "antiquant_scale";
  out.parts.push_back(scale);
  // §5.2 step 3: offset = 8 − z, natural order, in the scales' dtype; shape [..., K/G, N].
  std::vector<float> offsets = npu::zerosToOffsets(parts::words<uint32_t>(qzb->bytes));
  out.parts.push_back(inlinePart("antiquant_offset", TensorType(sc->type.elem, sc->type.dims),
                                 encodeFloats(offsets, sc->type.elem), qz->loc));
  return out;
}

llvm::Expected<ConvertedWeight> w8a8ToNpuW8a8(const Weight &w, const WeightStore *store) {
  const WeightType &t = w.quantType();
  if (t.mnemonic() != "w8a8" || t.experts())
    return err("weight @" + w.name() + " is not a plain !w8a8 weight");
  std::vector<int64_t> nk = t.intArrayParam("shape");
  int64_t n = nk[0], k = nk[1];
  auto type = buildType("npu_w8a8", {{"shape", Attribute(nk)}});
  if (!type)
    return type.takeError();
  auto wb = partBytes(w, "weight", store);
  if (!wb)
    return wb.takeError();
  auto sb = partBytes(w, "weight_scale", store);
  if (!sb)
    return sb.takeError();
  ConvertedWeight out;
  out.type = *type;
  // weight.T: [N, K] → [K, N] (vllm-ascend process_weights_after_loading).
  std::vector<uint8_t> wt(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      wt[size_t(c * n + r)] = wb->bytes[size_t(r * k + c)];
  out.parts.push_back(
      inlinePart("weight", TensorType(ElemKind::I8, {k, n}), std::move(wt), w.part("weight")->loc));
  // weight_scale flattened to [N] and kept as f32 (decoding f16 / bf16 is exact).
  const WeightPart *sp = w.part("weight_scale");
  std::vector<float> s = parts::decodeFloats(sb->bytes, sp->type.elem);
  out.parts.push_back(inlinePart("weight_scale", TensorType(ElemKind::F32, {n}),
                                 encodeFloats(s, ElemKind::F32), sp->loc));
  if (const WeightPart *op = w.part("weight_offset")) {
    auto ob = resolvePart(w, *op, store);
    if (!ob)
      return ob.takeError();
    out.parts.push_back(inlinePart("weight_offset", TensorType(op->type.elem, {n}),
                                   std::vector<uint8_t>(ob->bytes.begin(), ob->bytes.end()),
                                   op->loc));
  }
  return out;
}

llvm::Expected<ConvertedWeight> concatNpuW4(const Weight &gateW, const ConvertedWeight &gate,
                                            const Weight &upW, const ConvertedWeight &up,
                                            const WeightStore *store) {
  const auto &gt = std::get<WeightType>(gate.type), &ut = std::get<WeightType>(up.type);
  if (!(gt == ut))
    return err("gate @" + gateW.name() + " is " + gt.str() + " but up @" + upW.name() + " is " +
               ut.str() + "; w13 = [gate ; up] needs both of one type");
  std::vector<int64_t> nk = gt.intArrayParam("shape");
  nk[0] *= 2;
  AttrDict params = gt.params;
  params["shape"] = Attribute(nk);
  auto type = buildType("npu_w4", params);
  if (!type)
    return type.takeError();
  ConvertedWeight out;
  out.type = *type;
  // Resolve against temporaries carrying the converted parts (names from the originals).
  Weight gtmp(gateW.name(), gate.type, gateW.loc()), utmp(upW.name(), up.type, upW.loc());
  gtmp.parts() = gate.parts;
  utmp.parts() = up.parts;
  for (const WeightPart &gp : gate.parts) {
    const WeightPart *upPart = utmp.part(gp.name);
    if (!upPart || upPart->type.elem != gp.type.elem)
      return err("part '" + gp.name + "' of up @" + upW.name() + " is missing or has another " +
                 "element type than gate @" + gateW.name() + "'s");
    auto a = resolvePart(gtmp, gp, store);
    if (!a)
      return a.takeError();
    auto b = resolvePart(utmp, *upPart, store);
    if (!b)
      return b.takeError();
    TensorType tt = gp.type;
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < tt.dims.size(); ++i)
      rows *= tt.dims[i];
    tt.dims.back() += upPart->type.dims.back();
    out.parts.push_back(inlinePart(gp.name, tt, concatLast(a->bytes, b->bytes, rows), gp.loc));
  }
  return out;
}

llvm::Expected<ConvertedWeight> npuW4ToAwq(const Weight &w, const WeightStore *store) {
  const WeightType &t = w.quantType();
  if (t.mnemonic() != "npu_w4")
    return err("weight @" + w.name() + " is not an !npu_w4 weight");
  AttrDict params{{"group", Attribute(t.intParam("group"))},
                  {"shape", Attribute(t.intArrayParam("shape"))}};
  if (t.experts())
    params["experts"] = Attribute(t.experts());
  auto type = buildType("awq", params);
  if (!type)
    return type.takeError();
  const WeightPart *wp = w.part("weight"), *sp = w.part("antiquant_scale"),
                   *op = w.part("antiquant_offset");
  if (!wp || !sp || !op)
    return err("weight @" + w.name() +
               " needs weight, antiquant_scale and antiquant_offset to "
               "map back to AWQ zero points");
  auto wb = resolvePart(w, *wp, store);
  if (!wb)
    return wb.takeError();
  auto ob = resolvePart(w, *op, store);
  if (!ob)
    return ob.takeError();
  ConvertedWeight out;
  out.type = *type;
  std::vector<uint32_t> words = parts::words<uint32_t>(wb->bytes);
  for (uint32_t &x : words)
    x = npu::npuWordToAwq(x);
  std::vector<uint8_t> qw(words.size() * 4);
  std::memcpy(qw.data(), words.data(), qw.size());
  out.parts.push_back(inlinePart("qweight", wp->type, std::move(qw), wp->loc));
  std::vector<uint32_t> qz;
  if (auto e = npu::offsetsToZeros(parts::decodeFloats(ob->bytes, op->type.elem), qz))
    return err("weight @" + w.name() + ": " + *e);
  std::vector<uint8_t> qzb(qz.size() * 4);
  std::memcpy(qzb.data(), qz.data(), qzb.size());
  TensorType qzt = op->type;
  qzt.elem = ElemKind::I32;
  qzt.dims.back() /= 8;
  out.parts.push_back(inlinePart("qzeros", qzt, std::move(qzb), op->loc));
  WeightPart scales = *sp;
  scales.name = "scales";
  out.parts.push_back(scales);
  return out;
}

} // namespace qlc::schemes
