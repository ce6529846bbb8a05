// AWQ → Ascend W4A16 and W8A8 → Ascend W8A8_DYNAMIC on the quantized bits (FORMATS.md §5.2, §5.4),
// and the test-only inverse of the former.
#include "schemes/npu/npu_convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/weight_store.h"
#include "schemes/awq/codec.h"
#include "schemes/common/packing.h"
#include "schemes/common/part_data.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
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

namespace {

struct CheckpointInfo {
  int bits = 0;
  int64_t n = 0, k = 0, group = 0, groups = 0, experts = 1;
  std::string gIdxPart; ///< the act-order part to check, "" if none
};

/// Shape facts of a checkpoint weight, or the reason it has no NPU antiquant layout.
llvm::Expected<CheckpointInfo> checkpointInfo(const Weight &w) {
  const WeightType &t = w.quantType();
  const std::string &mn = t.mnemonic();
  CheckpointInfo ci;
  std::vector<int64_t> nk = t.intArrayParam("shape");
  ci.n = nk[0];
  ci.k = nk[1];
  ci.experts = std::max<int64_t>(1, t.experts());
  std::string what = "@" + w.name() + " (" + t.str() + ")";
  if (mn == "awq" || mn == "gptq") {
    ci.bits = int(t.intParam("bits"));
    ci.group = codec::resolveGroupSize(t.intParam("group"), ci.k);
    if (mn == "gptq" && t.boolParam("desc_act"))
      ci.gIdxPart = "g_idx";
  } else if (mn == "ct_wna16") {
    ci.bits = int(t.intParam("bits"));
    ci.group = t.identParam("strategy") == "channel"
                   ? ci.k
                   : codec::resolveGroupSize(t.intParam("group"), ci.k);
    if (t.identParam("actorder") == "group")
      ci.gIdxPart = "weight_g_idx";
  } else {
    return err(what + " is not an AWQ, GPTQ or compressed-tensors weight");
  }
  if (ci.bits != 4 && ci.bits != 8)
    return err(what + " has " + llvm::Twine(ci.bits) +
               "-bit codes; the NPU antiquant matmul takes int4 or int8 weights only (FORMATS.md "
               "§5.1)");
  if (ci.group <= 0 || ci.k % ci.group)
    return err(what + ": K = " + llvm::Twine(ci.k) + " is not a multiple of the group size " +
               llvm::Twine(ci.group) + "; NPU antiquant groups must tile K (scale rows K/G)");
  if (ci.bits == 4 && ci.n % 8)
    return err(what + ": N = " + llvm::Twine(ci.n) +
               " is not a multiple of 8 (int4 in int32 packs 8 columns per word)");
  ci.groups = ci.k / ci.group;
  return ci;
}

/// Bytes of expert e of a stacked part (the whole part for plain weights).
llvm::ArrayRef<uint8_t> expertSlice(llvm::ArrayRef<uint8_t> all, int64_t experts, int64_t e) {
  size_t per = all.size() / size_t(experts);
  return all.slice(size_t(e) * per, per);
}

/// "" if the act-order part of `w` maps every k to k / G (groups contiguous: the antiquant form
/// holds); else why not. Permuting K rows instead would need the same permutation on the
/// activations, which the NPU matmul does not take, so such weights stay unconverted.
llvm::Expected<std::string> gIdxBlocker(const Weight &w, const CheckpointInfo &ci,
                                        const WeightStore *store) {
  if (ci.gIdxPart.empty())
    return std::string();
  auto gb = partBytes(w, ci.gIdxPart, store);
  if (!gb)
    return gb.takeError();
  if (gb->bytes.size() != size_t(ci.experts * ci.k) * 4)
    return err("weight @" + w.name() + " part '" + ci.gIdxPart + "' has " +
               llvm::Twine(gb->bytes.size()) + " bytes, expected " +
               llvm::Twine(ci.experts * ci.k * 4));
  std::vector<int32_t> g = parts::words<int32_t>(gb->bytes);
  for (size_t i = 0; i < g.size(); ++i) {
    int64_t k = int64_t(i) % ci.k;
    if (g[i] != k / ci.group)
      return "@" + w.name() + " is act-order: " + ci.gIdxPart + "[" + std::to_string(k) +
             "] = " + std::to_string(g[i]) +
             " but the NPU antiquant takes contiguous groups (k / " + std::to_string(ci.group) +
             " = " + std::to_string(k / ci.group) +
             "); permuting K would also permute the activations, so it has no NPU layout";
  }
  return std::string();
}

llvm::Expected<CheckpointInfo> convertibleInfo(const Weight &w, const WeightStore *store) {
  auto ci = checkpointInfo(w);
  if (!ci)
    return ci.takeError();
  auto gb = gIdxBlocker(w, *ci, store);
  if (!gb)
    return gb.takeError();
  if (!gb->empty())
    return err(*gb);
  return *ci;
}

/// Scales as [E][K/G][N] bytes in their own dtype (CT stores [E][N][K/G]).
std::vector<uint8_t> scalesGroupMajor(llvm::ArrayRef<uint8_t> bytes, const CheckpointInfo &ci,
                                      size_t elemBytes, bool transpose) {
  if (!transpose)
    return std::vector<uint8_t>(bytes.begin(), bytes.end());
  std::vector<uint8_t> out(bytes.size());
  for (int64_t e = 0; e < ci.experts; ++e)
    for (int64_t n = 0; n < ci.n; ++n)
      for (int64_t g = 0; g < ci.groups; ++g) {
        size_t src = size_t((e * ci.n + n) * ci.groups + g) * elemBytes;
        size_t dst = size_t((e * ci.groups + g) * ci.n + n) * elemBytes;
        std::memcpy(out.data() + dst, bytes.data() + src, elemBytes);
      }
  return out;
}

} // namespace

std::string npuLayoutBlocker(const Weight &w, const WeightStore *store) {
  if (w.isDense())
    return "@" + w.name() + " is dense";
  auto ci = checkpointInfo(w);
  if (!ci)
    return llvm::toString(ci.takeError());
  auto gb = gIdxBlocker(w, *ci, store);
  if (!gb)
    return llvm::toString(gb.takeError());
  return *gb;
}

llvm::Expected<IntegerCodes> checkpointCodes(const Weight &w, const WeightStore *store) {
  auto ci = convertibleInfo(w, store);
  if (!ci)
    return ci.takeError();
  const WeightType &t = w.quantType();
  const std::string &mn = t.mnemonic();
  const int b = ci->bits;
  const int64_t E = ci->experts, K = ci->k, N = ci->n, G = ci->groups;
  IntegerCodes c;
  c.bits = b;
  c.experts = E;
  c.k = K;
  c.n = N;
  c.group = ci->group;
  c.q.resize(size_t(E * K * N));
  std::vector<int32_t> z(size_t(E * G * N));
  const uint32_t half = 1u << (b - 1);
  bool symmetric = false;
  auto words = [&](llvm::StringRef part, int64_t e) -> llvm::Expected<std::vector<uint32_t>> {
    auto pb = partBytes(w, part, store);
    if (!pb)
      return pb.takeError();
    return parts::words<uint32_t>(expertSlice(pb->bytes, E, e));
  };
  for (int64_t e = 0; e < E; ++e) {
    uint8_t *q = c.q.data() + e * K * N;
    int32_t *ze = z.data() + e * G * N;
    if (mn == "awq") {
      auto qw = words("qweight", e), qz = words("qzeros", e);
      if (!qw)
        return qw.takeError();
      if (!qz)
        return qz.takeError();
      if (qw->size() != size_t(K * N * b / 32) || qz->size() != size_t(G * N * b / 32))
        return err("weight @" + w.name() + " has qweight / qzeros of the wrong size");
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n)
          q[k * N + n] = uint8_t(awq::unpackCode(qw->data(), N, k, n, b));
      for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n)
          ze[g * N + n] = int32_t(awq::unpackCode(qz->data(), N, g, n, b));
    } else if (mn == "gptq") {
      auto qw = words("qweight", e), qz = words("qzeros", e);
      if (!qw)
        return qw.takeError();
      if (!qz)
        return qz.takeError();
      if (qw->size() != size_t(gptq::qweightRows(K, b) * N) ||
          qz->size() != size_t(G * gptq::qzerosCols(N, b)))
        return err("weight @" + w.name() + " has qweight / qzeros of the wrong size");
      const int32_t plusOne = t.identParam("format") == "v2" ? 0 : 1; // §2.3 v1 "+1"
      symmetric = t.boolParam("sym");
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n)
          q[k * N + n] = uint8_t(gptq::weightCode(qw->data(), N, k, n, b));
      for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n) {
          int32_t zv = int32_t(gptq::zeroCode(qz->data(), N, g, n, b)) + plusOne;
          if (symmetric && zv != int32_t(half))
            return err("weight @" + w.name() + " is sym = true but qzeros [" + llvm::Twine(g) +
                       ", " + llvm::Twine(n) + "] means zero " + llvm::Twine(zv) + ", not " +
                       llvm::Twine(half));
          ze[g * N + n] = zv;
        }
    } else { // ct_wna16
      auto wp = words("weight_packed", e);
      if (!wp)
        return wp.takeError();
      const int64_t pf = 32 / b;
      if (wp->size() != size_t(N * codec::ceilDiv(K, pf)))
        return err("weight @" + w.name() + " has weight_packed of the wrong size");
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n)
          q[k * N + n] = uint8_t(ct::weightStored(wp->data(), K, n, k, b));
      symmetric = t.boolParam("symmetric");
      if (symmetric) {
        std::fill_n(ze, G * N, int32_t(half));
      } else {
        auto zp = words("weight_zero_point", e);
        if (!zp)
          return zp.takeError();
        if (zp->size() != size_t(codec::ceilDiv(N, pf) * G))
          return err("weight @" + w.name() + " has weight_zero_point of the wrong size");
        for (int64_t g = 0; g < G; ++g)
          for (int64_t n = 0; n < N; ++n)
            ze[g * N + n] = int32_t(ct::zeroStored(zp->data(), G, n, g, b));
      }
    }
  }
  if (!symmetric)
    c.z = std::move(z);
  return c;
}

llvm::Expected<ConvertedWeight> checkpointToNpu(const Weight &w, const WeightStore *store) {
  const WeightType &t = w.quantType();
  if (t.mnemonic() == "awq" && t.intParam("bits") == 4)
    return awqToNpuW4(w, store);
  auto codes = checkpointCodes(w, store);
  if (!codes)
    return codes.takeError();
  const IntegerCodes &c = *codes;
  // The checkpoint's own group parameter (CT's per-channel strategy is group -1 here).
  const bool channel = t.mnemonic() == "ct_wna16" && t.identParam("strategy") == "channel";
  AttrDict params{{"group", Attribute(channel ? int64_t(-1) : t.intParam("group"))},
                  {"shape", Attribute(std::vector<int64_t>{c.n, c.k})}};
  if (t.experts())
    params["experts"] = Attribute(t.experts());
  auto type = buildType(c.bits == 4 ? "npu_w4" : "npu_w8", params);
  if (!type)
    return type.takeError();
  const bool ct = t.mnemonic() == "ct_wna16";
  const WeightPart *sp = w.part(ct ? "weight_scale" : "scales");
  const WeightPart *cp = w.part(ct ? "weight_packed" : "qweight");
  if (!sp || !cp)
    return err("weight @" + w.name() + " lacks its codes or scales part");
  auto sb = resolvePart(w, *sp, store);
  if (!sb)
    return sb.takeError();
  const int32_t half = 1 << (c.bits - 1);
  const int64_t groups = c.k / c.group;
  std::vector<int64_t> lead;
  if (t.experts())
    lead.push_back(t.experts());
  auto dims = [&](std::vector<int64_t> tail) {
    std::vector<int64_t> d = lead;
    d.insert(d.end(), tail.begin(), tail.end());
    return d;
  };

  ConvertedWeight out;
  out.type = *type;
  // Signed codes c = q − 2^(b−1): int8 [K, N], or int4 packed 8 per int32 along N (§5.1).
  std::vector<int8_t> signedCodes(c.q.size());
  for (size_t i = 0; i < c.q.size(); ++i)
    signedCodes[i] = int8_t(int32_t(c.q[i]) - half);
  if (c.bits == 4) {
    std::vector<uint32_t> words = npu::packInt4(signedCodes, c.experts * c.k, c.n);
    std::vector<uint8_t> bytes(words.size() * 4);
    std::memcpy(bytes.data(), words.data(), bytes.size());
    out.parts.push_back(
        inlinePart("weight", TensorType(ElemKind::I32, dims({c.k, c.n / 8})), std::move(bytes),
                   cp->loc));
  } else {
    std::vector<uint8_t> bytes(signedCodes.size());
    std::memcpy(bytes.data(), signedCodes.data(), bytes.size());
    out.parts.push_back(inlinePart("weight", TensorType(ElemKind::I8, dims({c.k, c.n})),
                                   std::move(bytes), cp->loc));
  }
  // Scales unchanged in value and dtype, laid out [.., K/G, N].
  CheckpointInfo ci;
  ci.experts = c.experts;
  ci.n = c.n;
  ci.groups = groups;
  TensorType st(sp->type.elem, dims({groups, c.n}));
  if (!ct && sp->type == st) {
    WeightPart scale = *sp;
    scale.name = "antiquant_scale";
    out.parts.push_back(scale);
  } else {
    out.parts.push_back(inlinePart(
        "antiquant_scale", st,
        scalesGroupMajor(sb->bytes, ci, elemKindBytes(sp->type.elem), ct), sp->loc));
  }
  // antiquant_offset = 2^(b−1) − z (|offset| <= 2^b: exact in f16 / bf16); none when symmetric.
  if (!c.z.empty()) {
    std::vector<float> off(c.z.size());
    for (size_t i = 0; i < off.size(); ++i)
      off[i] = float(half - c.z[i]);
    const WeightPart *zp = w.part(ct ? "weight_zero_point" : "qzeros");
    out.parts.push_back(inlinePart("antiquant_offset", st, encodeFloats(off, sp->type.elem),
                                   zp ? zp->loc : sp->loc));
  }
  return out;
}

llvm::Expected<IntegerCodes> npuCodes(const Weight &w, const WeightStore *store) {
  const WeightType &t = w.quantType();
  if (t.mnemonic() != "npu_w4" && t.mnemonic() != "npu_w8")
    return err("weight @" + w.name() + " is not an !npu_w4 / !npu_w8 weight");
  IntegerCodes c;
  c.bits = t.mnemonic() == "npu_w4" ? 4 : 8;
  std::vector<int64_t> nk = t.intArrayParam("shape");
  c.n = nk[0];
  c.k = nk[1];
  c.group = codec::resolveGroupSize(t.intParam("group"), c.k);
  c.experts = std::max<int64_t>(1, t.experts());
  const int32_t half = 1 << (c.bits - 1);
  auto wb = partBytes(w, "weight", store);
  if (!wb)
    return wb.takeError();
  std::vector<int8_t> signedCodes =
      c.bits == 4 ? npu::unpackInt4(parts::words<uint32_t>(wb->bytes), c.experts * c.k, c.n)
                  : parts::words<int8_t>(wb->bytes);
  c.q.resize(signedCodes.size());
  for (size_t i = 0; i < signedCodes.size(); ++i)
    c.q[i] = uint8_t(int32_t(signedCodes[i]) + half);
  if (const WeightPart *op = w.part("antiquant_offset")) {
    auto ob = resolvePart(w, *op, store);
    if (!ob)
      return ob.takeError();
    for (float o : parts::decodeFloats(ob->bytes, op->type.elem)) {
      if (o != std::floor(o))
        return err("weight @" + w.name() + " has a non-integer antiquant_offset " +
                   std::to_string(o) + "; it has no integer zero point");
      c.z.push_back(half - int32_t(o));
    }
  }
  return c;
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
  auto type = buildType(gt.mnemonic(), params);
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
