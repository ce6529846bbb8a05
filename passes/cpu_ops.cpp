// The CPU backend ops that fuse-dequant produces. Each names the layout and the specialisation its
// kernel needs as attributes copied from the weight type (bits, group, zero points, type, ...), and
// its infer checks that they agree with the weight, so a kernel is never handed a layout it was not
// compiled for. Reference semantics: those of linear / moe, dequantizing through the weight type.
#include <mutex>

#include "ir/op_registry.h"
#include "runtime/reference_executor.h"

namespace qlc {
namespace {

using Types = std::optional<std::vector<TensorType>>;

/// Checks the specialisation attributes against the weight's type.
std::string checkSpecialisation(const InferInput &in, const Weight &w) {
  const Operation &op = in.op;
  if (w.isDense())
    return "'" + op.name() + "' needs a quantized weight, @" + w.name() + " is dense";
  const WeightType &t = w.quantType();
  const Attribute *layout = op.attr("layout");
  if (!layout || layout->kind() != AttrKind::Ident || layout->getIdent() != t.mnemonic())
    return "'" + op.name() + "' was specialised for layout " +
           (layout ? layout->str() : std::string("(none)")) + " but @" + w.name() + " is !" +
           t.mnemonic();
  for (const auto &[k, v] : op.attrs()) {
    if (k == "layout" || op.def()->attrSpec(k))
      continue;
    const Attribute *p = t.param(k);
    if (!p || !(*p == v))
      return "'" + op.name() + "' was specialised for " + k + " = " + v.str() + " but @" +
             w.name() + " has " + (p ? k + " = " + p->str() : "no parameter '" + k + "'");
  }
  for (const auto &[k, v] : t.params)
    if (k != "shape" && k != "experts" && !op.attr(k))
      return "'" + op.name() + "' does not state " + k + " = " + v.str() + " of @" + w.name();
  return "";
}

OpDef linearLike(std::string name, std::string summary, const char *base) {
  OpDef d = *OpRegistry::get().lookup(base);
  d.name = std::move(name);
  d.summary = std::move(summary);
  d.openAttrs = true;
  d.attrs.push_back({"layout", AttrKind::Ident, std::nullopt, {}, "the weight type's mnemonic"});
  InferFn baseInfer = d.infer;
  // The attributes specialise for the first weight. The other weights of a cpu.moe share its
  // layout but may differ in parameters (GGUF K-quant mixes give w2 Q6_K beside a Q4_K w13); a
  // cpu.qmatmul's second weight is its dense bias.
  d.infer = [baseInfer](const InferInput &in, std::string &error) -> Types {
    const Weight *first = in.weight(0);
    std::string err = checkSpecialisation(in, *first);
    if (err.empty() && in.op.name() == "cpu.moe")
      for (unsigned i = 1; i < in.op.symbols().size(); ++i)
        if (in.weight(i)->isDense() ||
            in.weight(i)->quantType().mnemonic() != first->quantType().mnemonic())
          err = "'cpu.moe' weights must share one layout: @" + first->name() + " is " +
                weightSymbolTypeStr(first->type()) + ", @" + in.weight(i)->name() + " is " +
                weightSymbolTypeStr(in.weight(i)->type());
    if (!err.empty()) {
      error = err;
      return std::nullopt;
    }
    return baseInfer(in, error);
  };
  return d;
}

} // namespace

void registerCpuOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerCoreOps();
    OpDef q = linearLike("cpu.qmatmul",
                         "fused dequant + GEMM/GEMV on the CPU: y = x @ dequant(W)^T (+ bias), "
                         "never materialising the dequantized weight",
                         "linear");
    q.syntax = "%y = cpu.qmatmul %x, @w [, @bias] {layout = awq, bits = 4, group = 128, ...} : T";
    OpRegistry::get().add(std::move(q));
    OpDef m = linearLike("cpu.moe",
                         "fused MoE on the CPU: routing, per-expert fused dequant GEMMs, "
                         "act(gate) * up, weighted combine",
                         "moe");
    m.syntax = "%y = cpu.moe %x, %router_logits, @w13, @w2 {top_k = K, layout = ...} : T";
    OpRegistry::get().add(std::move(m));
    registerReferenceOp("cpu.qmatmul", referenceLinear);
    registerReferenceOp("cpu.moe", referenceMoe);
  });
}

} // namespace qlc
