// dequantize-weights{dtype=f16|bf16|f32 max-bytes=N}: replaces quantized weights by dense tensors
// of `dtype` (the pre-dequantization strategy of backends that have no kernel for a scheme), within
// a memory budget: it adds up the bytes each rewrite adds and, when the next weight would exceed
// `max-bytes`, leaves that weight and all following ones quantized with a remark, rather than
// blowing up memory (dequantizing MoE experts is where loaders run out).
#include "ir/diagnostics.h"
#include "passes/pass.h"
#include "runtime/tensor.h"
#include "runtime/weight_store.h"

namespace qlc {
namespace {

class DequantizeWeightsPass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &ctx) override {
    const std::string &dtype = options().getString("dtype");
    ElemKind elem = dtype == "f16" ? ElemKind::F16 : dtype == "bf16" ? ElemKind::BF16 : ElemKind::F32;
    uint64_t budget = options().getBytes("max-bytes"), used = 0;
    bool exhausted = false;
    llvm::SmallVector<llvm::StringRef> keep;
    llvm::StringRef(options().getString("keep")).split(keep, '|', -1, false);
    for (const auto &wp : m.weights()) {
      Weight &w = *wp;
      if (w.isDense() || llvm::is_contained(keep, w.quantType().mnemonic()))
        continue;
      std::vector<int64_t> shape = w.logicalShape();
      TensorType t(elem, shape);
      auto bytes = t.numBytes();
      if (!bytes) {
        ctx.diag.error(w.loc(), "dequantize-weights: @" + w.name() + " is too large to dequantize");
        return llvm::failure();
      }
      uint64_t quantBytes = 0;
      for (const WeightPart &p : w.parts())
        quantBytes += uint64_t(p.type.numBytes().value_or(0));
      // The rewrite adds the dense bytes and frees the quantized ones.
      uint64_t adds = uint64_t(*bytes) > quantBytes ? uint64_t(*bytes) - quantBytes : 0;
      if (budget && (exhausted || used + adds > budget)) {
        exhausted = true;
        ctx.diag.remark(w.loc(), "dequantize-weights: @" + w.name() + " stays " +
                                     w.quantType().mnemonic() + ": dequantizing it to " + dtype +
                                     " adds " + std::to_string(adds) + " bytes and the budget of " +
                                     std::to_string(budget) + " bytes has " +
                                     std::to_string(budget - used) + " left");
        addStatistic("weights-kept-quantized");
        continue;
      }
      auto store = ctx.checkpoint();
      if (!store) {
        ctx.diag.error(w.loc(), llvm::toString(store.takeError()));
        return llvm::failure();
      }
      auto f32 = dequantizeWeight(w, *store);
      if (!f32) {
        ctx.diag.error(w.loc(), llvm::toString(f32.takeError()));
        return llvm::failure();
      }
      Tensor dense = Tensor::fromF32As(elem, shape, *f32);
      WeightPart part;
      part.name = "data";
      part.type = t;
      part.loc = w.loc();
      part.data = std::make_shared<std::vector<uint8_t>>(dense.data(), dense.data() + dense.numBytes());
      w.setType(t);
      w.parts() = {std::move(part)};
      used += adds;
      addStatistic("weights-dequantized");
      addStatistic("bytes-added", int64_t(adds));
    }
    return llvm::success();
  }
};

} // namespace

void registerDequantizeWeightsPass() {
  PassRegistry::get().add(
      {"dequantize-weights",
       "pre-dequantize quantized weights to dense tensors under a memory budget",
       "Every quantized weight becomes a dense tensor of `dtype` holding its reference "
       "dequantization. The bytes each rewrite adds (dense minus quantized) are summed; once the "
       "next weight would exceed max-bytes, it and all later weights stay quantized, each with a "
       "remark. max-bytes=0 means no limit. Types listed in keep are left alone.",
       {{"dtype", PassOptionSpec::Kind::Enum, "f16", "element type of the dense weights",
         {"f16", "bf16", "f32"}},
        {"max-bytes", PassOptionSpec::Kind::Bytes, "8GiB",
         "most bytes the pass may add (0 = no limit)", {}},
        {"keep", PassOptionSpec::Kind::String, "",
         "weight types to leave quantized, e.g. awq|w8a8 (those a backend has kernels for)", {}}},
       [] { return std::make_unique<DequantizeWeightsPass>(); }});
}

} // namespace qlc
