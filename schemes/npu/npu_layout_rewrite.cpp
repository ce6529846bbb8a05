// npu-layout-rewrite: lowers `linear` and `moe` on checkpoint-layout weights to the Ascend NPU ops
// and layouts (FORMATS.md §5). AWQ, GPTQ and compressed-tensors WNA16 (4 / 8-bit, plain or expert
// stacks) become !npu_w4 / !npu_w8 (signed codes q − 2^(b−1), offset 2^(b−1) − z, §5.2, §5.3) under
// npu.weight_quant_batchmatmul / npu.fused_experts; W8A8 becomes !npu_w8a8 (weight transposed, f32
// scales, §5.4) under npu.dynamic_quant + npu.quant_matmul. A checkpoint weight the antiquant form
// cannot hold (act-order g_idx, 2/3-bit GPTQ, groups not tiling K) is pre-dequantized when
// dequantize= names a dtype (lower-npu), else an error; anything else with no NPU layout is an
// error at the weight saying what to do instead.
#include <map>

#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "passes/pass.h"
#include "runtime/tensor.h"
#include "runtime/weight_store.h"
#include "schemes/npu/npu_convert.h"
#include "schemes/npu/npu_internal.h"

namespace qlc::schemes {
namespace {

enum class WeightKind {
  Dense,
  Checkpoint,    ///< !awq / !gptq / !ct_wna16: becomes !npu_w4 or !npu_w8 if it has no blocker
  NpuAntiquant,  ///< !npu_w4 / !npu_w8, already converted
  W8a8,
  NpuW8a8,
  Unsupported
};

WeightKind kindOf(const Weight &w) {
  if (w.isDense())
    return WeightKind::Dense;
  const std::string &mn = w.quantType().mnemonic();
  if (mn == "awq" || mn == "gptq" || mn == "ct_wna16")
    return WeightKind::Checkpoint;
  if (mn == "npu_w4" || mn == "npu_w8")
    return WeightKind::NpuAntiquant;
  if (mn == "w8a8")
    return WeightKind::W8a8;
  if (mn == "npu_w8a8")
    return WeightKind::NpuW8a8;
  return WeightKind::Unsupported;
}

bool isAntiquant(WeightKind k) {
  return k == WeightKind::Checkpoint || k == WeightKind::NpuAntiquant;
}

/// Why `w` cannot go to the NPU, and what to do instead.
std::string unsupportedWhy(const Weight &w) {
  const WeightType &t = w.quantType();
  return "npu-layout-rewrite: @" + w.name() + " is " + t.str() +
         ", which has no Ascend layout here: only !awq, !gptq, !ct_wna16 (4 / 8-bit -> !npu_w4 / "
         "!npu_w8) and !w8a8 (-> !npu_w8a8) are lowered; dequantize it first (dequantize-weights) "
         "to run it densely";
}

/// A checkpoint weight the antiquant form cannot hold exactly, and what to do instead.
std::string blockedWhy(const std::string &blocker) {
  return "npu-layout-rewrite: " + blocker +
         "; pre-dequantize it (dequantize-weights, or npu-layout-rewrite{dequantize=f16} as "
         "lower-npu does)";
}

/// The merged w13 name: "...experts.gate_proj" -> "...experts.w13", made unique.
std::string w13Name(const Module &m, const std::string &gate) {
  size_t dot = gate.rfind('.');
  std::string base = dot == std::string::npos ? gate + ".w13" : gate.substr(0, dot) + ".w13";
  std::string name = base;
  for (int i = 1; m.lookupWeight(name); ++i)
    name = base + "." + std::to_string(i);
  return name;
}

class NpuLayoutRewritePass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &ctx) override {
    bool ok = true;
    for (const auto &f : m.functions()) {
      std::vector<Operation *> ops;
      for (auto &op : f->ops())
        if (op->name() == "linear" || op->name() == "moe")
          ops.push_back(op.get());
      for (Operation *op : ops)
        ok &= op->name() == "linear" ? rewriteLinear(m, *f, *op, ctx) : rewriteMoe(m, *f, *op, ctx);
    }
    return llvm::LogicalResult::success(ok);
  }

private:
  /// Opens the checkpoint once; reports at `loc` on failure.
  bool store(PassContext &ctx, const Location &loc, const WeightStore *&out) {
    auto s = ctx.checkpoint();
    if (!s) {
      ctx.diag.error(loc, llvm::toString(s.takeError()));
      return false;
    }
    out = *s;
    return true;
  }

  /// Converts `w` in place (it keeps its name: every op that read it computes the same values,
  /// since the NPU dequantization equals the checkpoint's).
  bool convertInPlace(Weight &w, PassContext &ctx) {
    const WeightStore *st = nullptr;
    if (!store(ctx, w.loc(), st))
      return false;
    WeightKind k = kindOf(w);
    std::string mn = w.quantType().mnemonic();
    auto c = k == WeightKind::Checkpoint ? checkpointToNpu(w, st) : w8a8ToNpuW8a8(w, st);
    if (!c) {
      ctx.diag.error(w.loc(), "npu-layout-rewrite: " + llvm::toString(c.takeError()));
      return false;
    }
    w.setType(c->type);
    w.parts() = std::move(c->parts);
    addStatistic(mn + "-weights-converted");
    return true;
  }

  /// The blocker of a checkpoint weight ("" if it converts); reports read errors at the weight.
  bool blocker(Weight &w, PassContext &ctx, std::string &why) {
    why.clear();
    if (kindOf(w) != WeightKind::Checkpoint)
      return true;
    const WeightStore *st = nullptr;
    if (!store(ctx, w.loc(), st))
      return false;
    why = npuLayoutBlocker(w, st);
    return true;
  }

  /// Replaces `w` by its reference dequantization in the dequantize= dtype (the pre-dequantization
  /// lower-npu applies to what the NPU kernels cannot take), with a remark saying why.
  bool densify(Weight &w, const std::string &why, PassContext &ctx) {
    const std::string &dtype = options().getString("dequantize");
    ElemKind elem = dtype == "bf16"  ? ElemKind::BF16
                    : dtype == "f32" ? ElemKind::F32
                                     : ElemKind::F16;
    const WeightStore *st = nullptr;
    if (!store(ctx, w.loc(), st))
      return false;
    auto f32 = dequantizeWeight(w, st);
    if (!f32) {
      ctx.diag.error(w.loc(), "npu-layout-rewrite: " + llvm::toString(f32.takeError()));
      return false;
    }
    std::vector<int64_t> shape = w.logicalShape();
    Tensor dense = Tensor::fromF32As(elem, shape, *f32);
    WeightPart part;
    part.name = "data";
    part.type = TensorType(elem, shape);
    part.loc = w.loc();
    part.data =
        std::make_shared<std::vector<uint8_t>>(dense.data(), dense.data() + dense.numBytes());
    ctx.diag.remark(w.loc(), "npu-layout-rewrite: @" + w.name() + " (" + w.quantType().str() +
                                 ") pre-dequantized to " + dtype + ": " + why);
    w.setType(part.type);
    w.parts() = {std::move(part)};
    addStatistic("weights-pre-dequantized");
    return true;
  }

  bool mayDensify() const { return options().getString("dequantize") != "none"; }

  /// Creates `name` before `at` with result types from the op's own inference.
  Operation *create(Module &m, Function &f, Operation &at, llvm::StringRef name,
                    std::vector<Value *> operands, std::vector<std::string> symbols, AttrDict attrs,
                    std::vector<std::string> hints, PassContext &ctx) {
    auto op = std::make_unique<Operation>(OpRegistry::get().lookup(name), at.loc());
    op->setOperands(std::move(operands));
    op->setSymbols(std::move(symbols));
    for (auto &[k, v] : attrs)
      op->setAttr(k, v);
    std::string err;
    auto types = inferResultTypes(*op, m, nullptr, err);
    if (!types) {
      ctx.diag.error(at.loc(), "npu-layout-rewrite: cannot build " + name.str() + ": " + err);
      return nullptr;
    }
    for (size_t i = 0; i < types->size(); ++i)
      op->addResult((*types)[i], i < hints.size() ? hints[i] : "");
    return f.insertBefore(&at, std::move(op));
  }

  void replace(Function &f, Operation &old, Operation &with) {
    f.replaceAllUsesWith(old.result(0), with.result(0));
    f.erase(&old);
    addStatistic("ops-rewritten");
  }

  bool rewriteLinear(Module &m, Function &f, Operation &op, PassContext &ctx) {
    Weight &w = *m.lookupWeight(op.symbols()[0]);
    WeightKind k = kindOf(w);
    std::string why;
    if (!blocker(w, ctx, why))
      return false;
    if (!why.empty()) {
      if (!mayDensify()) {
        ctx.diag.error(w.loc(), blockedWhy(why));
        return false;
      }
      return densify(w, why, ctx); // the core linear runs on the dense weight
    }
    switch (k) {
    case WeightKind::Dense:
      return true; // dense matmuls run on the NPU as they are
    case WeightKind::Unsupported:
      ctx.diag.error(w.loc(), unsupportedWhy(w));
      return false;
    case WeightKind::Checkpoint:
    case WeightKind::W8a8:
      if (!convertInPlace(w, ctx))
        return false;
      break;
    default:
      break;
    }
    std::string hint = op.result(0)->nameHint();
    ElemKind xElem = op.operand(0)->type().elem;
    Operation *y;
    if (isAntiquant(k)) {
      y = create(m, f, op, "npu.weight_quant_batchmatmul", op.operands(), op.symbols(), {}, {hint},
                 ctx);
    } else {
      // vllm-ascend W8A8_DYNAMIC apply (§5.4): npu_dynamic_quant, then npu_quant_matmul with the
      // per-token scales, output in x's dtype.
      Operation *q = create(m, f, op, "npu.dynamic_quant", op.operands(), {}, {},
                            {"xq", "pertoken_scale"}, ctx);
      if (!q)
        return false;
      y = create(m, f, op, "npu.quant_matmul", {q->result(0), q->result(1)}, op.symbols(),
                 {{"output_dtype", Attribute::ident(elemKindName(xElem).str())}}, {hint}, ctx);
    }
    if (!y)
      return false;
    replace(f, op, *y);
    return true;
  }

  bool rewriteMoe(Module &m, Function &f, Operation &op, PassContext &ctx) {
    bool unfused = op.symbols().size() == 3;
    std::vector<Weight *> ws;
    for (const std::string &s : op.symbols())
      ws.push_back(m.lookupWeight(s));
    bool allDense = true;
    for (Weight *w : ws)
      allDense &= w->isDense();
    if (allDense)
      return true; // a dense MoE runs on the NPU unquantized
    // A weight the antiquant form cannot hold makes the whole moe dense (npu.fused_experts needs
    // every stack quantized; the device's core moe takes dense stacks).
    for (Weight *w : ws) {
      std::string why;
      if (!blocker(*w, ctx, why))
        return false;
      if (why.empty())
        continue;
      if (!mayDensify()) {
        ctx.diag.error(w->loc(), blockedWhy(why));
        return false;
      }
      for (Weight *other : ws)
        if (!other->isDense() && !densify(*other, why, ctx))
          return false;
      return true;
    }
    bool ok = true;
    for (Weight *w : ws) {
      WeightKind k = kindOf(*w);
      if (isAntiquant(k))
        continue;
      if (k == WeightKind::Unsupported)
        ctx.diag.error(w->loc(), unsupportedWhy(*w));
      else if (k == WeightKind::W8a8 || k == WeightKind::NpuW8a8)
        ctx.diag.error(w->loc(), "npu-layout-rewrite: @" + w->name() + " is " +
                                     weightSymbolTypeStr(w->type()) +
                                     "; W8A8_DYNAMIC MoE (grouped matmuls with per-token quant, "
                                     "FORMATS.md §5.4) is not lowered yet: only AWQ / GPTQ / CT "
                                     "experts become npu.fused_experts");
      else
        ctx.diag.error(w->loc(), "npu-layout-rewrite: @" + w->name() +
                                     " is dense but other experts of this moe are quantized; "
                                     "npu.fused_experts needs every expert stack quantized");
      ok = false;
    }
    const Attribute *act = op.attr("activation");
    if (act && act->getIdent() != "silu") {
      ctx.diag.error(op.loc(), "npu-layout-rewrite: moe activation = " + act->getIdent() +
                                   " has no NPU kernel: npu_swiglu computes silu(gate) * up "
                                   "(FORMATS.md §5.1)");
      ok = false;
    }
    if (!ok)
      return false;

    std::string w13 = op.symbols()[0], w2 = op.symbols()[unfused ? 2 : 1];
    if (unfused) {
      auto key = std::make_pair(op.symbols()[0], op.symbols()[1]);
      auto it = merged_.find(key);
      if (it == merged_.end()) {
        std::string name;
        if (!mergeGateUp(m, *ws[0], *ws[1], ctx, name))
          return false;
        it = merged_.emplace(key, name).first;
      }
      w13 = it->second;
    } else if (kindOf(*ws[0]) == WeightKind::Checkpoint && !convertInPlace(*ws[0], ctx)) {
      return false;
    }
    Weight &down = *m.lookupWeight(w2);
    if (kindOf(down) == WeightKind::Checkpoint && !convertInPlace(down, ctx))
      return false;

    // Routing happens before the expert kernel (§5.3): a generic top-k selector, then the kernel.
    const Attribute *ren = op.attr("renormalize");
    AttrDict gatingAttrs{{"top_k", *op.attr("top_k")},
                         {"renormalize", Attribute(ren && ren->getBool())}};
    Operation *gating = create(m, f, op, "npu.moe_gating_topk", {op.operand(1)}, {}, gatingAttrs,
                               {"topk_weights", "topk_ids"}, ctx);
    if (!gating)
      return false;
    Operation *y =
        create(m, f, op, "npu.fused_experts", {op.operand(0), gating->result(0), gating->result(1)},
               {w13, w2}, {}, {op.result(0)->nameHint()}, ctx);
    if (!y)
      return false;
    replace(f, op, *y);
    return true;
  }

  /// Unfused experts: convert gate and up and concatenate them along N per expert into a new
  /// !npu_w4 / !npu_w8 stack w13 = [gate ; up] (the order npu_swiglu needs). gate and up are left
  /// for dce.
  bool mergeGateUp(Module &m, Weight &gate, Weight &up, PassContext &ctx, std::string &name) {
    if (weightSymbolTypeStr(gate.type()) != weightSymbolTypeStr(up.type())) {
      ctx.diag.error(up.loc(), "npu-layout-rewrite: gate @" + gate.name() + " is " +
                                   weightSymbolTypeStr(gate.type()) + " but up @" + up.name() +
                                   " is " + weightSymbolTypeStr(up.type()) +
                                   "; w13 = [gate ; up] needs both of one type");
      return false;
    }
    const WeightStore *st = nullptr;
    if (!store(ctx, gate.loc(), st))
      return false;
    auto convert = [&](Weight &w) -> llvm::Expected<ConvertedWeight> {
      if (kindOf(w) == WeightKind::NpuAntiquant)
        return ConvertedWeight{w.type(), w.parts()};
      return checkpointToNpu(w, st);
    };
    auto g = convert(gate);
    if (!g) {
      ctx.diag.error(gate.loc(), "npu-layout-rewrite: " + llvm::toString(g.takeError()));
      return false;
    }
    auto u = convert(up);
    if (!u) {
      ctx.diag.error(up.loc(), "npu-layout-rewrite: " + llvm::toString(u.takeError()));
      return false;
    }
    auto w13 = concatNpuW4(gate, *g, up, *u, st);
    if (!w13) {
      ctx.diag.error(up.loc(), "npu-layout-rewrite: " + llvm::toString(w13.takeError()));
      return false;
    }
    name = w13Name(m, gate.name());
    auto w = std::make_unique<Weight>(name, w13->type, gate.loc());
    w->parts() = std::move(w13->parts);
    m.addWeight(std::move(w));
    addStatistic("w13-weights-built");
    return true;
  }

  std::map<std::pair<std::string, std::string>, std::string> merged_;
};

} // namespace

void registerNpuLayoutRewritePass() {
  PassRegistry::get().add(
      {"npu-layout-rewrite",
       "lower AWQ / GPTQ / CT / W8A8 linear and moe to the Ascend NPU ops and weight layouts",
       "!awq, !gptq, !ct_wna16 linear (4 / 8-bit) -> !npu_w4 / !npu_w8 + "
       "npu.weight_quant_batchmatmul; their moe (w13/w2 or gate/up/down) -> npu.moe_gating_topk + "
       "npu.fused_experts; !w8a8 linear -> !npu_w8a8 + npu.dynamic_quant + npu.quant_matmul "
       "(FORMATS.md §5). Weights are converted on their bits: signed codes q - 2^(b-1) (int4 in "
       "int32, natural column order, or int8 [K, N]), antiquant_offset 2^(b-1) - z in the scale "
       "dtype (none when symmetric), scales unchanged ([K/G, N]); W8A8 weight transposed to [K, "
       "N], "
       "scale f32 [N]. Act-order GPTQ / CT (g_idx not k / G), 2/3-bit GPTQ and groups that do not "
       "tile K have no exact antiquant form: with dequantize=f16|bf16|f32 they are pre-dequantized "
       "(a moe with one such stack runs dense), with dequantize=none (default) they are errors. "
       "Dense weights are left alone; other quantized weights are errors.",
       {{"dequantize",
         PassOptionSpec::Kind::Enum,
         "none",
         "dtype to pre-dequantize weights with no NPU layout to; none = error",
         {"none", "f16", "bf16", "f32"}}},
       [] { return std::make_unique<NpuLayoutRewritePass>(); }});
  PassRegistry::get().addPipeline(
      {"lower-npu",
       "lower to the Ascend NPU ops: AWQ, GPTQ, CT and W8A8 are rewritten to the NPU layouts; "
       "schemes without one (GGUF, act-order or 2/3-bit GPTQ, ...) are pre-dequantized to f16 as "
       "the Ascend GGUF path does",
       "dequantize-weights{dtype=f16 keep=awq|gptq|ct_wna16|w8a8|npu_w4|npu_w8|npu_w8a8},"
       "npu-layout-rewrite{dequantize=f16},canonicalize,dce"});
}

} // namespace qlc::schemes
