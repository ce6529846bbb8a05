// marlin.gemm and marlin.moe: `linear` and `moe` on !marlin weights (what vLLM's gptq_marlin_gemm
// and fused_marlin_moe compute). Their operands, weight symbols, attributes and result types are
// those of the core ops (inference reuses the core rules), plus Marlin's own constraints. The
// reference implementations dequantize through the !marlin hook (original k order) and compute
// exactly like linear / moe.
#include "ir/op_registry.h"
#include "runtime/reference_executor.h"
#include "schemes/marlin/codec.h"
#include "schemes/marlin/marlin_type.h"

namespace qlc::schemes {
namespace {

using Types = std::optional<std::vector<TensorType>>;

Types fail(std::string &error, std::string msg) {
  error = std::move(msg);
  return std::nullopt;
}

bool isMarlin(const Weight *w) { return !w->isDense() && w->quantType().mnemonic() == "marlin"; }

std::string typeName(const Weight *w) {
  return w->isDense() ? "dense " + w->denseType().str() : "!" + w->quantType().mnemonic();
}

/// The core op's inference, then: every weight symbol but a linear bias is a !marlin weight.
InferFn marlinInfer(const OpDef *core, unsigned quantSymbols, InferFn extra) {
  return [core, quantSymbols, extra](const InferInput &in, std::string &error) -> Types {
    Types r = core->infer(in, error);
    if (!r)
      return r;
    unsigned n = std::min<unsigned>(quantSymbols, unsigned(in.op.symbols().size()));
    for (unsigned i = 0; i < n; ++i)
      if (const Weight *w = in.weight(i); !isMarlin(w))
        return fail(error, "'" + in.op.name() + "' needs !marlin weights, but @" + w->name() +
                               " is " + typeName(w) + " (run marlin-permute)");
    if (extra && !extra(in, error))
      return std::nullopt;
    return r;
  };
}

/// Marlin MoE (fused_marlin_moe): silu only, H % 128, I % 64 (FORMATS.md §4.1). Each weight's own
/// K rule is its type's (K % max(64, G)).
Types checkMarlinMoe(const InferInput &in, std::string &error) {
  if (in.attr("activation").getIdent() != "silu")
    return fail(error, "marlin.moe supports activation = silu only (fused_marlin_moe), got " +
                           in.attr("activation").getIdent());
  bool unfused = in.op.symbols().size() == 3;
  const Weight *w13 = in.weight(0), *w2 = in.weight(unfused ? 2 : 1);
  int64_t h = w13->logicalShape()[2], inter = w2->logicalShape()[2];
  if (h % marlin::kLinearMinK != 0)
    return fail(error,
                "marlin.moe needs the hidden size H % 128 == 0, got H = " + std::to_string(h) +
                    " (pad H to " + std::to_string((h + 127) / 128 * 128) + ")");
  if (inter % marlin::kMoeMinK != 0)
    return fail(error, "marlin.moe needs the intermediate size I % 64 == 0, got I = " +
                           std::to_string(inter) + " (pad I to " +
                           std::to_string((inter + 63) / 64 * 64) + ")");
  return std::vector<TensorType>{};
}

} // namespace

void registerMarlinOps() {
  registerCoreOps();
  OpRegistry &r = OpRegistry::get();
  const OpDef *linear = r.lookup("linear"), *moe = r.lookup("moe");
  {
    OpDef d = *linear;
    d.name = "marlin.gemm";
    d.summary = "linear on a !marlin weight (gptq_marlin_gemm): y = x @ W^T (+ bias)";
    d.syntax = "%y = marlin.gemm %x, @w [, @bias] : tensor<...xN>";
    d.infer = marlinInfer(linear, 1, nullptr);
    d.fold = nullptr;
    r.add(std::move(d));
  }
  {
    OpDef d = *moe;
    d.name = "marlin.moe";
    d.summary = "moe on !marlin expert stacks (fused_marlin_moe), same routing and semantics";
    d.syntax = "%y = marlin.moe %x, %router_logits, @w13, @w2 {top_k = K} : tensor<TxH>  (or "
               "@gate, @up, @down)";
    d.infer = marlinInfer(moe, 3, checkMarlinMoe);
    d.fold = nullptr;
    r.add(std::move(d));
  }
  // The core references read weights through ReferenceExecutor::weight, i.e. the !marlin
  // dequantize hook: the same f32 values in the same order as before the rewrite.
  registerReferenceOp("marlin.gemm", referenceLinear);
  registerReferenceOp("marlin.moe", referenceMoe);
}

} // namespace qlc::schemes
