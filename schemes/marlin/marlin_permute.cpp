// marlin-permute: repacks every !awq / !gptq / !ct_wna16 weight that only `linear` and `moe` ops
// read into the Marlin layout (!marlin, inline data), and rewrites those ops to marlin.gemm /
// marlin.moe. Each weight is converted on its own — decode to natural codes [K, N] (act-order:
// rows sorted by g_idx), scales [G', N] and zeros [G', N], then place them with the closed forms
// of schemes/marlin/codec.h. The scale permutation is chosen from the weight's own K inside that
// per-weight step, so the MoE size_k bug of FORMATS.md §4.8 (w13 permuted with I) cannot occur:
// no op, no sibling weight and no model config is consulted.
#include <algorithm>
#include <cstring>
#include <set>

#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "passes/pass.h"
#include "runtime/weight_store.h"
#include "schemes/awq/codec.h"
#include "schemes/common/part_data.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
#include "schemes/marlin/codec.h"
#include "schemes/marlin/marlin_type.h"

namespace qlc::schemes {
namespace {

/// What a source weight becomes: the !marlin parameters.
struct MarlinPlan {
  int bits = 4;
  int64_t group = -1; // -1 = channelwise
  bool zeroPoint = false, actOrder = false;
  int64_t n = 0, k = 0;
};

/// One expert in natural form, rows already in Marlin order (sorted by g_idx under act-order).
struct NaturalExpert {
  std::vector<uint8_t> codes;  // [K, N] unsigned codes
  std::vector<uint8_t> scales; // [G', N] raw bytes of the source's scale type, natural columns
  std::vector<uint8_t> zeros;  // [G', N] unsigned zero codes; empty without zero points
  std::vector<int32_t> perm, gIdx;
};

bool isSourceType(const Weight &w) {
  if (w.isDense())
    return false;
  const std::string &m = w.quantType().mnemonic();
  return m == "awq" || m == "gptq" || m == "ct_wna16";
}

/// The Marlin parameters of a source weight; false with `why` set if Marlin cannot take it.
bool planFor(const WeightType &t, MarlinPlan &plan, std::string &why) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  plan.n = s[0];
  plan.k = s[1];
  plan.bits = int(t.intParam("bits"));
  const std::string &m = t.mnemonic();
  if (m == "awq") { // uint4 / uint8 with zero points (awq_marlin)
    plan.group = t.intParam("group");
    plan.zeroPoint = true;
  } else if (m == "gptq") {
    if (!t.boolParam("sym")) {
      why = "asymmetric GPTQ has no Marlin kernel (vLLM gptq_marlin takes sym = true only: "
            "uint4b8 / uint8b128); lower this weight another way (e.g. dequantize-weights)";
      return false;
    }
    plan.group = t.intParam("group");
    // vLLM treats desc_act with group_size -1 as no act-order (FORMATS.md §2.4): one group.
    plan.actOrder = t.boolParam("desc_act") && plan.group != -1;
  } else { // ct_wna16: sym -> uint4b8 / uint8b128, asym -> zero points
    plan.group = t.identParam("strategy") == "channel" ? -1 : t.intParam("group");
    plan.zeroPoint = !t.boolParam("symmetric");
    plan.actOrder = t.identParam("actorder") == "group" && plan.group != -1;
  }
  if (auto err = marlin::checkShape(plan.n, plan.k, plan.group, plan.bits, t.experts() > 0)) {
    why = *err;
    return false;
  }
  return true;
}

/// Applies the act-order sort: row k of the result is row perm[k] of the input.
void sortRows(NaturalExpert &e, const std::vector<int32_t> &gIdx, int64_t K, int64_t N) {
  e.perm = marlin::actOrderPerm(gIdx);
  std::vector<uint8_t> sorted(e.codes.size());
  e.gIdx.resize(size_t(K));
  for (int64_t k = 0; k < K; ++k) {
    int32_t src = e.perm[size_t(k)];
    std::copy_n(e.codes.begin() + src * N, N, sorted.begin() + k * N);
    e.gIdx[size_t(k)] = gIdx[size_t(src)];
  }
  e.codes = std::move(sorted);
}

/// Decodes one expert of a source weight (whose data the source's own dequantizer has accepted).
NaturalExpert decode(const WeightType &t, const MarlinPlan &p, const PartBytesMap &parts) {
  const int64_t N = p.n, K = p.k, groups = marlin::numGroups(K, p.group);
  const int bits = p.bits;
  NaturalExpert e;
  e.codes.resize(size_t(K * N));
  auto words = [&](const char *name) { return parts::words<uint32_t>(*parts::find(parts, name)); };
  const std::string &m = t.mnemonic();
  std::vector<int32_t> gIdx;
  if (m == "awq") { // FORMATS.md §1.2, §4.4 awq_marlin_repack
    std::vector<uint32_t> qw = words("qweight"), qz = words("qzeros");
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        e.codes[size_t(k * N + n)] = uint8_t(awq::unpackCode(qw.data(), N, k, n, bits));
    e.zeros.resize(size_t(groups * N));
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t n = 0; n < N; ++n)
        e.zeros[size_t(g * N + n)] = uint8_t(awq::unpackCode(qz.data(), N, g, n, bits));
    e.scales.assign(parts::find(parts, "scales")->begin(), parts::find(parts, "scales")->end());
  } else if (m == "gptq") { // §2.2, §4.4 gptq_marlin_repack; sym: qzeros are not used
    std::vector<uint32_t> qw = words("qweight");
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        e.codes[size_t(k * N + n)] = uint8_t(gptq::weightCode(qw.data(), N, k, n, bits));
    e.scales.assign(parts::find(parts, "scales")->begin(), parts::find(parts, "scales")->end());
    if (p.actOrder)
      gIdx = parts::words<int32_t>(*parts::find(parts, "g_idx"));
  } else { // ct_wna16, §3.3: weight_packed^T is the GPTQ qweight; stored codes are unsigned
    std::vector<uint32_t> wp = words("weight_packed");
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        e.codes[size_t(k * N + n)] = uint8_t(ct::weightStored(wp.data(), K, n, k, bits));
    // weight_scale [N, G'] -> [G', N]
    auto sb = *parts::find(parts, "weight_scale");
    size_t eb = sb.size() / size_t(N * groups);
    e.scales.resize(sb.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < groups; ++g)
        std::copy_n(sb.begin() + (n * groups + g) * int64_t(eb), eb,
                    e.scales.begin() + (g * N + n) * int64_t(eb));
    if (p.zeroPoint) { // weight_zero_point [ceil(N/pf), G'] packed along N -> [G', N]
      std::vector<uint32_t> zp = words("weight_zero_point");
      e.zeros.resize(size_t(groups * N));
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t n = 0; n < N; ++n)
          e.zeros[size_t(g * N + n)] = uint8_t(ct::zeroStored(zp.data(), groups, n, g, bits));
    }
    if (p.actOrder)
      gIdx = parts::words<int32_t>(*parts::find(parts, "weight_g_idx"));
  }
  if (p.actOrder)
    sortRows(e, gIdx, K, N);
  return e;
}

/// The !marlin parts of one expert, in the order of the type's part list.
std::map<std::string, std::vector<uint8_t>> encode(const MarlinPlan &p, const NaturalExpert &e,
                                                   int scaleBytes) {
  auto bytesOf = [](const auto &v) {
    const uint8_t *b = reinterpret_cast<const uint8_t *>(v.data());
    return std::vector<uint8_t>(b, b + v.size() * sizeof(v[0]));
  };
  std::map<std::string, std::vector<uint8_t>> out;
  out["qweight"] = bytesOf(marlin::packWeights(e.codes, p.k, p.n, p.bits));
  // size_k = this weight's own K (FORMATS.md §4.8).
  out["scales"] = marlin::permuteScales(e.scales, marlin::numGroups(p.k, p.group), p.n, scaleBytes,
                                        p.group, p.k);
  if (p.zeroPoint)
    out["qzeros"] =
        bytesOf(marlin::packZeros(e.zeros, marlin::numGroups(p.k, p.group), p.n, p.bits));
  if (p.actOrder) {
    out["perm"] = bytesOf(e.perm);
    out["g_idx"] = bytesOf(e.gIdx);
  }
  return out;
}

std::string bitsDiffer(const std::vector<float> &a, const std::vector<float> &b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return "element " + std::to_string(i) + ": " + std::to_string(a[i]) + " before, " +
             std::to_string(b[i]) + " after";
  return "";
}

class MarlinPermutePass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &ctx) override {
    ctx_ = &ctx;
    store_ = nullptr; // a pass instance may run on several modules (--split-input-file)
    storeOpened_ = false;
    // 1. Which weights only linear (as the weight, not the bias) and lowerable moe ops read.
    std::map<std::string, std::string, std::less<>> otherUse; // weight -> first other op name
    std::set<std::string, std::less<>> used;
    std::vector<Operation *> linears, moes;
    bool ok = true;
    for (const auto &f : m.functions())
      for (const auto &opPtr : f->ops()) {
        Operation &op = *opPtr;
        const auto &syms = op.symbols();
        if (op.name() == "linear") {
          if (const Weight *w = m.lookupWeight(syms[0]); w && isSourceType(*w)) {
            used.insert(syms[0]);
            linears.push_back(&op);
          }
          for (size_t i = 1; i < syms.size(); ++i)
            otherUse.emplace(syms[i], "linear (as its bias)");
        } else if (op.name() == "moe") {
          switch (moeLowerable(m, op)) {
          case Lowerable::Yes:
            used.insert(syms.begin(), syms.end());
            moes.push_back(&op);
            break;
          case Lowerable::NotQuantized:
            break;
          case Lowerable::Error:
            ok = false;
            break;
          }
        } else {
          for (const std::string &s : syms)
            otherUse.emplace(s, op.name());
        }
      }
    // 2. Plan every weight first (shape rules only, no data read), so that every weight Marlin
    // cannot take is reported before any checkpoint is opened.
    std::vector<std::pair<Weight *, MarlinPlan>> plans;
    for (const auto &wp : m.weights()) {
      Weight &w = *wp;
      if (!used.count(w.name()))
        continue;
      if (auto it = otherUse.find(w.name()); it != otherUse.end()) {
        ctx.diag.remark(w.loc(), "marlin-permute: @" + w.name() + " stays !" +
                                     w.quantType().mnemonic() + ": it is also read by '" +
                                     it->second +
                                     "' (only weights that linear / moe alone read "
                                     "are repacked)");
        addStatistic("weights-skipped");
        continue;
      }
      MarlinPlan plan;
      std::string why;
      if (!planFor(w.quantType(), plan, why)) {
        ctx.diag.error(w.loc(), "marlin-permute: @" + w.name() + " (!" + w.quantType().mnemonic() +
                                    ") cannot be repacked for Marlin: " + why);
        ok = false;
        continue;
      }
      plans.emplace_back(&w, plan);
    }
    if (!ok)
      return llvm::failure();
    // 3. Convert each weight on its own (all errors reported before anything changes).
    std::map<std::string, std::pair<WeightType, std::vector<WeightPart>>, std::less<>> converted;
    for (auto &[w, plan] : plans) {
      auto r = convert(*w, plan);
      if (!r) {
        ok = false;
        continue;
      }
      converted.emplace(w->name(), std::move(*r));
    }
    if (!ok)
      return llvm::failure();
    // 4. Apply: weights in place (name and location kept), then the ops.
    for (auto &[name, tp] : converted) {
      Weight *w = m.lookupWeight(name);
      w->setType(tp.first);
      w->parts() = std::move(tp.second);
      addStatistic("weights-repacked");
    }
    const OpDef *gemm = OpRegistry::get().lookup("marlin.gemm");
    const OpDef *moe = OpRegistry::get().lookup("marlin.moe");
    for (Operation *op : linears)
      if (converted.count(op->symbols()[0]))
        replaceOp(*op, gemm);
    for (Operation *op : moes)
      if (std::all_of(op->symbols().begin(), op->symbols().end(),
                      [&](const std::string &s) { return converted.count(s) != 0; }))
        replaceOp(*op, moe);
    return llvm::success();
  }

private:
  enum class Lowerable { Yes, NotQuantized, Error };
  PassContext *ctx_ = nullptr;
  const WeightStore *store_ = nullptr;
  bool storeOpened_ = false;

  /// A moe op is lowered when every expert weight is a source type and the activation is silu
  /// (fused_marlin_moe); a moe of dense experts is left alone; a mix is an error.
  Lowerable moeLowerable(const Module &m, const Operation &op) {
    std::vector<std::string> quant, other;
    for (const std::string &s : op.symbols()) {
      const Weight *w = m.lookupWeight(s);
      (w && isSourceType(*w) ? quant : other).push_back(s);
    }
    if (quant.empty())
      return Lowerable::NotQuantized;
    if (!other.empty()) {
      const Weight *w = m.lookupWeight(other[0]);
      ctx_->diag.error(
          op.loc(),
          "marlin-permute: moe reads @" + quant[0] + " (!" +
              m.lookupWeight(quant[0])->quantType().mnemonic() + ") but @" + other[0] + " is " +
              (w && !w->isDense() ? "!" + w->quantType().mnemonic() : std::string("dense")) +
              ": Marlin MoE needs every expert weight in an AWQ, GPTQ or "
              "compressed-tensors layout");
      return Lowerable::Error;
    }
    const Attribute *act = op.attr("activation");
    if (act && act->getIdent() != "silu") {
      ctx_->diag.error(op.loc(), "marlin-permute: Marlin MoE (fused_marlin_moe) supports "
                                 "activation = silu only, this moe uses " +
                                     act->getIdent());
      return Lowerable::Error;
    }
    // fused_marlin_moe's own shape rules (FORMATS.md §4.1); each weight's K rule is checked with
    // the weight.
    int64_t h = m.lookupWeight(op.symbols().front())->logicalShape()[2];
    int64_t inter = m.lookupWeight(op.symbols().back())->logicalShape()[2];
    std::string why;
    if (h % marlin::kLinearMinK != 0)
      why = "the hidden size H = " + std::to_string(h) + " is not a multiple of 128 (pad H to " +
            std::to_string((h + 127) / 128 * 128) + ")";
    else if (inter % marlin::kMoeMinK != 0)
      why = "the intermediate size I = " + std::to_string(inter) +
            " is not a multiple of 64 (pad I to " + std::to_string((inter + 63) / 64 * 64) + ")";
    if (!why.empty()) {
      ctx_->diag.error(op.loc(), "marlin-permute: Marlin MoE cannot take this moe: " + why);
      return Lowerable::Error;
    }
    return Lowerable::Yes;
  }

  /// The checkpoint, opened on first need (inline-only modules never open it).
  std::optional<const WeightStore *> store(const Weight &w) {
    if (!storeOpened_) {
      auto s = ctx_->checkpoint();
      if (!s) {
        ctx_->diag.error(w.loc(), "marlin-permute: " + llvm::toString(s.takeError()));
        return std::nullopt;
      }
      store_ = *s;
      storeOpened_ = true;
    }
    return store_;
  }

  std::optional<std::pair<WeightType, std::vector<WeightPart>>> convert(const Weight &w,
                                                                        const MarlinPlan &plan) {
    const WeightType &src = w.quantType();
    auto fail = [&](const std::string &why) {
      ctx_->diag.error(w.loc(), "marlin-permute: @" + w.name() + " (!" + src.mnemonic() +
                                    ") cannot be repacked for Marlin: " + why);
      return std::nullopt;
    };

    // Resolve the parts (inline or checkpoint) and slice them per expert.
    bool allInline = std::all_of(w.parts().begin(), w.parts().end(),
                                 [](const WeightPart &p) { return p.isInline(); });
    const WeightStore *st = nullptr;
    if (!allInline) {
      auto s = store(w);
      if (!s)
        return std::nullopt;
      st = *s;
    }
    std::vector<PartBytes> keep;
    PartBytesMap all;
    ElemKind scaleElem = ElemKind::F16;
    for (const WeightPart &p : w.parts()) {
      auto pb = resolvePart(w, p, st);
      if (!pb)
        return fail(llvm::toString(pb.takeError()));
      keep.push_back(*pb);
      all[p.name] = PartView{p.type.elem, keep.back().bytes};
      if (p.name == "scales" || p.name == "weight_scale")
        scaleElem = p.type.elem;
    }
    const int64_t experts = std::max<int64_t>(1, src.experts());
    const int64_t perExpert = plan.n * plan.k;
    const bool selfCheck = options().getBool("self-check");

    std::string err;
    std::optional<WeightType> dst =
        WeightTypeRegistry::get().build(WeightTypeRegistry::get().lookup("marlin"),
                                        {{"bits", int64_t(plan.bits)},
                                         {"group", plan.group},
                                         {"zero_point", plan.zeroPoint},
                                         {"act_order", plan.actOrder},
                                         {"shape", std::vector<int64_t>{plan.n, plan.k}},
                                         {"experts", src.experts()}},
                                        err);
    if (!dst)
      return fail(err);

    std::map<std::string, std::vector<uint8_t>> stacked;
    std::vector<float> before(static_cast<size_t>(perExpert));
    std::vector<float> after(static_cast<size_t>(perExpert));
    for (int64_t e = 0; e < experts; ++e) {
      PartBytesMap slice;
      for (const auto &[name, view] : all) {
        size_t n = view.bytes.size() / size_t(experts);
        slice[name] = PartView{view.elem, view.bytes.slice(size_t(e) * n, n)};
      }
      std::string where = src.experts() ? " (expert " + std::to_string(e) + ")" : "";
      // The source's own reference dequantizer validates the data first (g_idx ranges, GPTQ sym
      // zeros, CT weight_shape): what it rejects has no meaning to repack.
      if (std::string msg = src.def->dequantize(src, slice, before.data()); !msg.empty())
        return fail(msg + where);
      NaturalExpert nat = decode(src, plan, slice);
      auto parts = encode(plan, nat, int(elemKindBytes(scaleElem)));
      if (selfCheck) {
        PartBytesMap mv;
        for (const auto &[name, bytes] : parts)
          mv[name] = PartView{name == "scales" ? scaleElem : ElemKind::I32, bytes};
        if (std::string msg = dst->def->dequantize(*dst, mv, after.data()); !msg.empty())
          return fail("self-check: " + msg + where);
        if (std::string d = bitsDiffer(before, after); !d.empty())
          return fail("self-check: the repacked weight dequantizes differently" + where + ", " + d);
      }
      for (auto &[name, bytes] : parts)
        stacked[name].insert(stacked[name].end(), bytes.begin(), bytes.end());
    }

    std::vector<WeightPart> out;
    for (const PartSpec &spec : dst->expectedParts()) {
      WeightPart part;
      part.name = spec.name;
      part.type = TensorType(spec.name == "scales" ? scaleElem : ElemKind::I32, spec.shape);
      part.loc = w.loc();
      part.data = std::make_shared<const std::vector<uint8_t>>(std::move(stacked[spec.name]));
      out.push_back(std::move(part));
    }
    return std::make_pair(*dst, std::move(out));
  }

  void replaceOp(Operation &op, const OpDef *def) {
    Function &f = *op.parent();
    auto repl = std::make_unique<Operation>(def, op.loc());
    repl->setOperands(op.operands());
    repl->setSymbols(op.symbols());
    repl->attrs() = op.attrs();
    for (unsigned i = 0; i < op.numResults(); ++i)
      repl->addResult(op.result(i)->type(), op.result(i)->nameHint());
    Operation *r = f.insertBefore(&op, std::move(repl));
    for (unsigned i = 0; i < op.numResults(); ++i)
      f.replaceAllUsesWith(op.result(i), r->result(i));
    f.erase(&op);
    addStatistic("ops-rewritten");
  }
};

} // namespace

void registerMarlinPermutePass() {
  PassRegistry::get().add(
      {"marlin-permute",
       "repack AWQ / GPTQ / compressed-tensors weights into the Marlin layout; linear -> "
       "marlin.gemm, moe -> marlin.moe",
       "Every !awq, !gptq (sym) and !ct_wna16 weight that only linear (as the weight) and moe "
       "ops read becomes a !marlin weight with inline data: codes in Marlin's 16x64 tiles, scales "
       "permuted with the perm chosen from the weight's own K, zero points in Marlin's order "
       "(AWQ, asymmetric compressed-tensors), and for act-order the rows sorted by g_idx with perm "
       "and the sorted g_idx kept. Those linear ops become marlin.gemm and moe ops marlin.moe. A "
       "weight Marlin cannot take (shape, group size, asymmetric GPTQ, 2/3-bit) is an error at "
       "the weight; a weight that other ops also read stays as it is, with a remark.",
       {{"self-check",
         PassOptionSpec::Kind::Bool,
         "false",
         "dequantize every weight before and after the repack and require bit-identical values",
         {}}},
       [] { return std::make_unique<MarlinPermutePass>(); }});
  PassRegistry::get().addPipeline(
      {"lower-marlin", "repack for Marlin and clean up", "marlin-permute,canonicalize,dce"});
}

} // namespace qlc::schemes
