#include "runtime/npu_emu/npu_emu_layouts.h"

#include <set>

#include "runtime/reference_executor.h"

namespace qlc::npu_emu {
namespace {

std::string typeOf(const Weight &w) { return weightSymbolTypeStr(w.type()); }

/// The expected quantized type, or an error saying what the weight is and what the device needs.
llvm::Error expectType(const Operation &op, const Weight &w, const std::string &mnemonic,
                       const std::string &role, const std::string &layout) {
  if (!w.isDense() && w.quantType().mnemonic() == mnemonic)
    return llvm::Error::success();
  return opError(op, "npu-emu: " + role + " @" + w.name() + " is " + typeOf(w) +
                         ", a layout the device cannot execute: this op takes !" + mnemonic + " (" +
                         layout + "); lower the module with lower-npu (npu-layout-rewrite) first");
}

const char *kAntiquantLayouts =
    "!npu_w4: int4 in int32 [K, N/8], natural column order, two's complement; !npu_w8: int8 "
    "[K, N]; FORMATS.md §5.1";
const char *kW8Layout = "int8 [K, N] with f32 per-channel scales, FORMATS.md §5.4";

/// An antiquant weight (!npu_w4 or !npu_w8), or an error naming what the device needs.
llvm::Error expectAntiquant(const Operation &op, const Weight &w, const std::string &role) {
  if (!w.isDense() &&
      (w.quantType().mnemonic() == "npu_w4" || w.quantType().mnemonic() == "npu_w8"))
    return llvm::Error::success();
  return opError(op, "npu-emu: " + role + " @" + w.name() + " is " + typeOf(w) +
                         ", a layout the device cannot execute: this op takes " +
                         kAntiquantLayouts +
                         "; lower the module with lower-npu (npu-layout-rewrite) first");
}

/// The parts an !npu_w4 / !npu_w8 weight must have for the antiquant kernel.
llvm::Error checkW4Parts(const Operation &op, const Weight &w, bool stacked) {
  if (stacked != (w.experts() > 0))
    return opError(op, "npu-emu: weight @" + w.name() + " is " + typeOf(w) +
                           (stacked ? ", not an expert stack (experts = E)"
                                    : ", an expert stack; only npu.fused_experts takes one"));
  const WeightPart *codes = w.part("weight"), *scale = w.part("antiquant_scale"),
                   *offset = w.part("antiquant_offset");
  const bool int8 = w.quantType().mnemonic() == "npu_w8";
  if (!codes || codes->type.elem != (int8 ? ElemKind::I8 : ElemKind::I32))
    return opError(op, "npu-emu: weight @" + w.name() + " needs an " + (int8 ? "i8" : "i32") +
                           " 'weight' part (" + kAntiquantLayouts + ")");
  if (!scale || !isFloat(scale->type.elem))
    return opError(op, "npu-emu: weight @" + w.name() +
                           " needs a floating-point 'antiquant_scale' part");
  if (offset && offset->type.elem != scale->type.elem)
    return opError(op, "npu-emu: weight @" + w.name() + " has antiquant_offset " +
                           offset->type.str() + " but antiquant_scale " + scale->type.str() +
                           "; the device takes both in one element type");
  return llvm::Error::success();
}

llvm::Error checkDense(const Operation &op, const Weight &w, const std::string &role) {
  if (w.isDense() && isFloat(w.denseType().elem) && w.parts().size() == 1)
    return llvm::Error::success();
  if (w.isDense())
    return opError(op, "npu-emu: " + role + " @" + w.name() + " is " + typeOf(w) +
                           "; the device needs a floating-point dense tensor here");
  return opError(op, "npu-emu: " + role + " @" + w.name() + " is " + typeOf(w) +
                         ", a layout the device cannot execute: '" + op.name() +
                         "' runs on dense weights only; lower the module with lower-npu, which "
                         "rewrites AWQ / W8A8 to npu.* ops and pre-dequantizes the other schemes");
}

} // namespace

bool isReferenceRunCoreOp(const std::string &name) {
  static const std::set<std::string> ops = {"add",  "mul",     "silu",    "gelu",  "softmax",
                                            "topk", "convert", "reshape", "matmul"};
  return ops.count(name) != 0;
}

llvm::Error checkDeviceOp(const Module &m, const Operation &op) {
  std::vector<const Weight *> ws;
  for (const std::string &s : op.symbols()) {
    const Weight *w = m.lookupWeight(s);
    if (!w)
      return opError(op, "npu-emu: names no weight @" + s);
    ws.push_back(w);
  }
  const std::string &name = op.name();
  auto checkBias = [&](size_t i) -> llvm::Error {
    if (ws.size() <= i)
      return llvm::Error::success();
    return checkDense(op, *ws[i], "bias");
  };
  if (name == "npu.weight_quant_batchmatmul") {
    if (auto e = expectAntiquant(op, *ws[0], "weight"))
      return e;
    if (auto e = checkW4Parts(op, *ws[0], false))
      return e;
    return checkBias(1);
  }
  if (name == "npu.fused_experts") {
    for (size_t i = 0; i < 2; ++i) {
      if (auto e = expectAntiquant(op, *ws[i], i ? "w2" : "w13"))
        return e;
      if (auto e = checkW4Parts(op, *ws[i], true))
        return e;
    }
    return llvm::Error::success();
  }
  if (name == "npu.quant_matmul") {
    if (auto e = expectType(op, *ws[0], "npu_w8a8", "weight", kW8Layout))
      return e;
    const WeightPart *codes = ws[0]->part("weight"), *scale = ws[0]->part("weight_scale");
    if (ws[0]->experts() || !codes || codes->type.elem != ElemKind::I8 || !scale ||
        scale->type.elem != ElemKind::F32)
      return opError(op, "npu-emu: weight @" + ws[0]->name() + " is not a plain " + kW8Layout);
    return checkBias(1);
  }
  if (name == "npu.dynamic_quant" || name == "npu.moe_gating_topk" || name == "return")
    return llvm::Error::success();
  if (name == "linear") {
    if (auto e = checkDense(op, *ws[0], "weight"))
      return e;
    return checkBias(1);
  }
  if (name == "moe") {
    for (size_t i = 0; i < ws.size(); ++i)
      if (auto e = checkDense(op, *ws[i], "expert weight"))
        return e;
    const Attribute *act = op.attr("activation");
    if (act && act->getIdent() != "silu" && act->getIdent() != "gelu")
      return opError(op, "npu-emu: activation = " + act->getIdent() + " has no device kernel");
    return llvm::Error::success();
  }
  if (name == "embedding")
    return checkDense(op, *ws[0], "table");
  if (name == "rms_norm")
    return checkDense(op, *ws[0], "weight");
  if (isReferenceRunCoreOp(name)) {
    if (!lookupReferenceOp(name))
      return opError(op, "npu-emu: has no implementation");
    return llvm::Error::success();
  }
  return opError(op, "npu-emu: is not an op of the npu-emu device (it runs npu.* ops and the core "
                     "ops of a module lowered with lower-npu; cpu.* and marlin.* ops belong to "
                     "other targets)");
}

} // namespace qlc::npu_emu
