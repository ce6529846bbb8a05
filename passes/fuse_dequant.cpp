// fuse-dequant: `linear` and `moe` ops on quantized weights become `cpu.qmatmul` / `cpu.moe`, whose
// attributes name the layout and the specialisation their JIT kernel needs (the weight type's
// mnemonic and parameters, e.g. {layout = awq, bits = 4, group = 128, zero_point = true}), so the
// CPU path never materialises a dequantized weight. Ops on dense weights are left alone.
#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "passes/pass.h"

namespace qlc {

void registerCpuOps(); // cpu_ops.cpp

namespace {

class FuseDequantPass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &ctx) override {
    registerCpuOps();
    const OpDef *linear = OpRegistry::get().lookup("linear");
    const OpDef *moe = OpRegistry::get().lookup("moe");
    for (const auto &f : m.functions()) {
      for (auto it = f->ops().begin(); it != f->ops().end(); ++it) {
        Operation &op = **it;
        bool isLinear = op.def() == linear, isMoe = op.def() == moe;
        if (!isLinear && !isMoe)
          continue;
        const Weight *w = m.lookupWeight(op.symbols()[0]);
        if (!w || w->isDense())
          continue;
        if (isMoe && op.symbols().size() != 2) {
          ctx.diag.error(op.loc(), "fuse-dequant: moe with separate gate and up weights; run "
                                   "materialize-experts first");
          return llvm::failure();
        }
        const char *name = isLinear ? "cpu.qmatmul" : "cpu.moe";
        auto repl = std::make_unique<Operation>(OpRegistry::get().lookup(name), op.loc());
        repl->setOperands(op.operands());
        repl->setSymbols(op.symbols());
        repl->attrs() = op.attrs();
        const WeightType &t = w->quantType();
        repl->setAttr("layout", Attribute::ident(t.mnemonic()));
        for (const auto &[k, v] : t.params)
          if (k != "shape" && k != "experts")
            repl->setAttr(k, v);
        for (Value *r : op.results())
          repl->addResult(r->type(), r->nameHint());
        Operation *newOp = f->insertBefore(&op, std::move(repl));
        for (unsigned i = 0; i < op.numResults(); ++i)
          f->replaceAllUsesWith(op.result(i), newOp->result(i));
        it = f->find(newOp);
        f->erase(&op);
        addStatistic(isLinear ? "linear-fused" : "moe-fused");
      }
    }
    return llvm::success();
  }
};

} // namespace

void registerFuseDequantPass() {
  PassRegistry::get().add(
      {"fuse-dequant",
       "quantized linear / moe -> cpu.qmatmul / cpu.moe specialised for the weight's layout",
       "Each linear or moe whose (first) weight is quantized becomes cpu.qmatmul / cpu.moe with "
       "`layout` = the weight type's mnemonic and the type's parameters (bits, group, zero points, "
       "ggml type, ...) as attributes: the specialisation the CPU kernel is compiled for. The "
       "verifier keeps them equal to the weight's. moe must be in fused (w13, w2) form.",
       {}, [] { return std::make_unique<FuseDequantPass>(); }});
}

} // namespace qlc
