// materialize-experts: `moe %x, %logits, @gate, @up, @down` (experts as checkpoints store them:
// GGUF ffn_{gate,up}_exps, HF per-expert tensors stacked at import) becomes the fused-MoE form
// `moe %x, %logits, @w13, @down` with w13 = [gate ; up] per expert, the order silu(gate) * up
// needs. Works on the quantized bits: every part is concatenated along its N dim (PartSpec::nDim),
// so nothing is dequantized and any scheme whose parts say where N is can be merged.
#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "passes/pass.h"
#include "runtime/weight_store.h"

namespace qlc {
namespace {

/// Concatenates two row-major arrays along `dim` (all other dims equal).
std::vector<uint8_t> concatAlong(llvm::ArrayRef<uint8_t> a, const std::vector<int64_t> &sa,
                                 llvm::ArrayRef<uint8_t> b, const std::vector<int64_t> &sb,
                                 size_t dim) {
  int64_t outer = 1;
  for (size_t i = 0; i < dim; ++i)
    outer *= sa[i];
  size_t ca = a.size() / size_t(outer), cb = b.size() / size_t(outer);
  std::vector<uint8_t> out;
  out.reserve(a.size() + b.size());
  for (int64_t o = 0; o < outer; ++o) {
    out.insert(out.end(), a.begin() + o * ca, a.begin() + (o + 1) * ca);
    out.insert(out.end(), b.begin() + o * cb, b.begin() + (o + 1) * cb);
  }
  return out;
}

/// The name of the merged weight: "...experts.gate_proj" -> "...experts.w13".
std::string w13Name(const Module &m, const std::string &gate) {
  std::string base = gate;
  size_t dot = base.rfind('.');
  base = dot == std::string::npos ? base + ".w13" : base.substr(0, dot) + ".w13";
  std::string name = base;
  for (int i = 1; m.lookupWeight(name); ++i)
    name = base + "." + std::to_string(i);
  return name;
}

class MaterializeExpertsPass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &ctx) override {
    const OpDef *moeDef = OpRegistry::get().lookup("moe");
    std::map<std::pair<std::string, std::string>, std::string> merged; // (gate, up) -> w13
    for (const auto &f : m.functions()) {
      for (auto &opPtr : f->ops()) {
        Operation &op = *opPtr;
        if (op.def() != moeDef || op.symbols().size() != 3)
          continue;
        std::string gate = op.symbols()[0], up = op.symbols()[1], down = op.symbols()[2];
        auto key = std::make_pair(gate, up);
        if (!merged.count(key)) {
          std::string why;
          auto w13 = merge(m, ctx, *m.lookupWeight(gate), *m.lookupWeight(up), why);
          if (!w13)
            return llvm::failure();
          if (w13->empty()) { // not mergeable: say why, keep the unfused form
            ctx.diag.remark(op.loc(), "materialize-experts: kept @" + gate + " and @" + up +
                                          " separate: " + why);
            addStatistic("moe-kept-unfused");
            continue;
          }
          merged[key] = *w13;
          addStatistic("w13-weights-built");
        }
        op.setSymbols({merged[key], down});
        addStatistic("moe-ops-rewritten");
      }
    }
    return llvm::success();
  }

private:
  /// Builds w13 from gate and up. Returns the new weight's name; "" (with `why`) when the two
  /// cannot be concatenated; nullopt after an error was reported.
  std::optional<std::string> merge(Module &m, PassContext &ctx, const Weight &gate,
                                   const Weight &up, std::string &why) {
    if (weightSymbolTypeStr(gate.type()) != weightSymbolTypeStr(up.type())) {
      why = "gate is " + weightSymbolTypeStr(gate.type()) + " but up is " +
            weightSymbolTypeStr(up.type());
      return std::string();
    }
    // The merged type: N doubles.
    WeightSymbolType type = gate.type();
    std::vector<PartSpec> specs;
    if (auto *t = std::get_if<TensorType>(&type)) {
      t->dims[1] *= 2;
      specs.push_back({"data", {t->elem}, t->dims, false, 1, 1});
    } else {
      WeightType wt = std::get<WeightType>(type);
      const Attribute *shape = wt.param("shape");
      if (!shape || shape->kind() != AttrKind::IntArray || shape->getIntArray().size() != 2) {
        why = "!" + wt.mnemonic() + " has no [N, K] shape parameter to merge along";
        return std::string();
      }
      std::vector<int64_t> nk = shape->getIntArray();
      for (const PartSpec &p : gate.quantType().expectedParts())
        if (p.nDim >= 0 && nk[0] % p.nAlign != 0) {
          why = "part '" + p.name + "' packs " + std::to_string(p.nAlign) +
                " channels together and N = " + std::to_string(nk[0]) + " is not a multiple";
          return std::string();
        }
      nk[0] *= 2;
      AttrDict params = wt.params;
      params["shape"] = Attribute(nk);
      std::string err;
      auto built = WeightTypeRegistry::get().build(wt.def, params, err);
      if (!built) {
        why = err;
        return std::string();
      }
      type = *built;
      specs = built->expectedParts();
    }
    auto store = ctx.checkpoint();
    if (!store) {
      ctx.diag.error(gate.loc(), llvm::toString(store.takeError()));
      return std::nullopt;
    }
    auto w13 = std::make_unique<Weight>(w13Name(m, gate.name()), type, gate.loc());
    for (const PartSpec &spec : specs) {
      const WeightPart *pg = gate.part(spec.name), *pu = up.part(spec.name);
      if (!pg || !pu) {
        if (!spec.optional) {
          why = "part '" + spec.name + "' is missing";
          return std::string();
        }
        continue;
      }
      auto bg = resolvePart(gate, *pg, *store);
      if (!bg) {
        ctx.diag.error(pg->loc, llvm::toString(bg.takeError()));
        return std::nullopt;
      }
      auto bu = resolvePart(up, *pu, *store);
      if (!bu) {
        ctx.diag.error(pu->loc, llvm::toString(bu.takeError()));
        return std::nullopt;
      }
      WeightPart part;
      part.name = spec.name;
      part.loc = pg->loc;
      if (spec.nDim < 0) {
        // Parts that do not depend on N (g_idx) must agree; optional derived ones are dropped.
        if (spec.optional)
          continue;
        if (bg->bytes != bu->bytes) {
          why = "part '" + spec.name + "' differs between gate and up";
          return std::string();
        }
        part.type = pg->type;
        part.data = std::make_shared<std::vector<uint8_t>>(bg->bytes.begin(), bg->bytes.end());
      } else {
        part.type = TensorType(pg->type.elem, spec.shape);
        part.data = std::make_shared<std::vector<uint8_t>>(concatAlong(
            bg->bytes, pg->type.dims, bu->bytes, pu->type.dims, size_t(spec.nDim)));
      }
      w13->parts().push_back(std::move(part));
    }
    std::string name = w13->name();
    m.addWeight(std::move(w13));
    return name;
  }
};

} // namespace

void registerMaterializeExpertsPass() {
  PassRegistry::get().add(
      {"materialize-experts",
       "merge expert-stacked gate and up weights into w13 = [gate ; up] for fused MoE",
       "Rewrites `moe %x, %l, @gate, @up, @down` into `moe %x, %l, @w13, @down` where w13 "
       "concatenates gate and up along N per expert, part by part on the quantized bits (no "
       "dequantization). Weights whose types differ or whose packing cannot be split at N are "
       "left unfused with a remark.",
       {}, [] { return std::make_unique<MaterializeExpertsPass>(); }});
}

} // namespace qlc
