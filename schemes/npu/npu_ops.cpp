// The npu.* ops (FORMATS.md §5.1): one op per torch_npu primitive the sglang / vllm-ascend
// quantized layers call, with the operands those calls take. Each infer checks that its weights
// are !npu_* types (by mnemonic), so checkpoint-layout bits cannot reach a device op.
#include <mutex>

#include "ir/op_registry.h"
#include "schemes/npu/npu_internal.h"

namespace qlc::schemes {
namespace {

using Types = std::optional<std::vector<TensorType>>;

Types fail(std::string &error, std::string msg) {
  error = std::move(msg);
  return std::nullopt;
}

const TensorType &operandType(const InferInput &in, unsigned i) { return in.op.operand(i)->type(); }

std::string str(int64_t v) { return std::to_string(v); }

/// antiquant_offset, when given, has the element type of antiquant_scale (torch_npu wants both in
/// the activation dtype; the pass writes the offset in the scale's dtype, §5.2).
std::string checkW4PartTypes(const Weight &w) {
  const WeightPart *s = w.part("antiquant_scale"), *o = w.part("antiquant_offset");
  if (s && o && s->type.elem != o->type.elem)
    return "!" + w.quantType().mnemonic() + " weight @" + w.name() + " has antiquant_offset " +
           o->type.str() + " but antiquant_scale " + s->type.str() +
           "; both must have the same element type";
  return "";
}

/// Optional dense [N] bias in symbol slot `i`.
std::string checkBias(const InferInput &in, unsigned i, int64_t n, const std::string &op) {
  if (in.op.symbols().size() <= i)
    return "";
  const Weight *b = in.weight(i);
  std::vector<int64_t> bs = b->logicalShape();
  if (!b->isDense() || bs.size() != 1 || bs[0] != n || !isFloat(b->denseType().elem))
    return op + " bias @" + b->name() + " must be a dense floating-point [" + str(n) +
           "] tensor, has type " + weightSymbolTypeStr(b->type());
  return "";
}

/// The weight of an antiquant matmul: int4-in-int32 (!npu_w4) or int8 (!npu_w8), §5.1.
std::string expectAntiquantType(const Weight &w, const std::string &op, const std::string &role) {
  if (isNpuAntiquantType(w))
    return "";
  return op + " " + role + " @" + w.name() + " must be !npu_w4 or !npu_w8, got " +
         weightSymbolTypeStr(w.type()) + " (npu-layout-rewrite converts checkpoint layouts)";
}

Types inferWeightQuantBatchMatmul(const InferInput &in, std::string &error) {
  const std::string op = "npu.weight_quant_batchmatmul";
  const TensorType &x = operandType(in, 0);
  if (!isFloat(x.elem) || x.rank() < 1)
    return fail(error, op + " input must be a floating-point tensor of rank >= 1, got " + x.str());
  const Weight *w = in.weight(0);
  if (std::string e = expectAntiquantType(*w, op, "weight"); !e.empty())
    return fail(error, e);
  if (w->experts())
    return fail(error, op + " weight @" + w->name() + " is an expert stack; use npu.fused_experts");
  if (std::string e = checkW4PartTypes(*w); !e.empty())
    return fail(error, e);
  std::vector<int64_t> ws = w->logicalShape();
  if (!dimsCompatible(x.dims.back(), ws[1]))
    return fail(error, op + " input has K = " + str(x.dims.back()) + " but weight @" + w->name() +
                           " is [N, K] = " + dimsStr(ws));
  if (std::string e = checkBias(in, 1, ws[0], op); !e.empty())
    return fail(error, e);
  TensorType r = x;
  r.dims.back() = ws[0];
  return std::vector<TensorType>{r};
}

Types inferMoeGatingTopk(const InferInput &in, std::string &error) {
  const TensorType &l = operandType(in, 0);
  if (!isFloat(l.elem) || l.rank() != 2)
    return fail(error, "npu.moe_gating_topk router logits must be a floating-point [T, E] tensor, "
                       "got " +
                           l.str());
  int64_t k = in.attr("top_k").getInt(), e = l.dims[1];
  if (k < 1 || (e != TensorType::kDynamic && k > e))
    return fail(error, "npu.moe_gating_topk top_k = " + str(k) + " must be in [1, " +
                           (e == TensorType::kDynamic ? std::string("E") : str(e)) + "]");
  TensorType weights(ElemKind::F32, {l.dims[0], k}), ids(ElemKind::I32, {l.dims[0], k});
  return std::vector<TensorType>{weights, ids};
}

Types inferFusedExperts(const InferInput &in, std::string &error) {
  const std::string op = "npu.fused_experts";
  const TensorType &x = operandType(in, 0), &tw = operandType(in, 1), &ti = operandType(in, 2);
  if (!isFloat(x.elem) || x.rank() != 2)
    return fail(error, op + " input must be a floating-point [T, H] tensor, got " + x.str());
  if (!isFloat(tw.elem) || tw.rank() != 2)
    return fail(error,
                op + " topk_weights must be a floating-point [T, k] tensor, got " + tw.str());
  if ((ti.elem != ElemKind::I32 && ti.elem != ElemKind::I64) || ti.rank() != 2)
    return fail(error, op + " topk_ids must be an i32 or i64 [T, k] tensor, got " + ti.str());
  if (!dimsCompatible(tw.dims[1], ti.dims[1]) || !dimsCompatible(tw.dims[0], ti.dims[0]) ||
      !dimsCompatible(tw.dims[0], x.dims[0]))
    return fail(error, op + " topk_weights " + tw.str() + " and topk_ids " + ti.str() +
                           " must both be [T, k] with T = " + str(x.dims[0]));
  const Weight *w13 = in.weight(0), *w2 = in.weight(1);
  for (auto [w, role] : {std::pair{w13, "w13"}, std::pair{w2, "w2"}}) {
    if (std::string e = expectAntiquantType(*w, op, role); !e.empty())
      return fail(error, e);
    if (w->experts() <= 0)
      return fail(error, op + " " + role + " @" + w->name() +
                             " is not an expert stack (needs experts = E)");
    if (std::string e = checkW4PartTypes(*w); !e.empty())
      return fail(error, e);
  }
  int64_t e = w13->experts();
  if (w2->experts() != e)
    return fail(error, op + " w2 @" + w2->name() + " has " + str(w2->experts()) +
                           " experts but w13 @" + w13->name() + " has " + str(e));
  std::vector<int64_t> s13 = w13->logicalShape(), s2 = w2->logicalShape(); // [E, N, K]
  int64_t h = x.dims[1], inter = s2[2];
  if (s13[1] != 2 * inter)
    return fail(error, op + " w13 @" + w13->name() + " has N = " + str(s13[1]) +
                           " but must be 2 x intermediate = 2 x " + str(inter) +
                           " ([gate ; up], npu_swiglu splits it in halves)");
  if (!dimsCompatible(s13[2], h) || !dimsCompatible(s2[1], h))
    return fail(error, op + " w13 @" + w13->name() + " is " + dimsStr(s13) + " and w2 @" +
                           w2->name() + " is " + dimsStr(s2) + " but the hidden size is " + str(h));
  TensorType r = x;
  r.dims[1] = s2[1];
  return std::vector<TensorType>{r};
}

Types inferDynamicQuant(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  if (!isFloat(x.elem) || x.rank() < 1)
    return fail(error,
                "npu.dynamic_quant input must be a floating-point tensor of rank >= 1, got " +
                    x.str());
  TensorType q = x, s = x;
  q.elem = ElemKind::I8;
  s.elem = ElemKind::F32;
  s.dims.pop_back();
  return std::vector<TensorType>{q, s};
}

Types inferQuantMatmul(const InferInput &in, std::string &error) {
  const std::string op = "npu.quant_matmul";
  const TensorType &x = operandType(in, 0), &s = operandType(in, 1);
  if (x.elem != ElemKind::I8 || x.rank() < 1)
    return fail(error, op +
                           " input must be an i8 tensor of rank >= 1 (from npu.dynamic_quant), "
                           "got " +
                           x.str());
  std::vector<int64_t> rows(x.dims.begin(), x.dims.end() - 1);
  bool rowsMatch = s.elem == ElemKind::F32 && s.rank() == rows.size();
  for (size_t i = 0; rowsMatch && i < rows.size(); ++i)
    rowsMatch = dimsCompatible(s.dims[i], rows[i]);
  if (!rowsMatch)
    return fail(error, op + " pertoken_scale must be f32 " + dimsStr(rows) +
                           " (one scale per row of the input), got " + s.str());
  const Weight *w = in.weight(0);
  if (std::string e = expectWeightType(*w, "npu_w8a8", op, "weight"); !e.empty())
    return fail(error, e);
  if (w->experts())
    return fail(error, op + " weight @" + w->name() + " is an expert stack");
  std::vector<int64_t> ws = w->logicalShape();
  if (!dimsCompatible(x.dims.back(), ws[1]))
    return fail(error, op + " input has K = " + str(x.dims.back()) + " but weight @" + w->name() +
                           " is [N, K] = " + dimsStr(ws));
  if (std::string e = checkBias(in, 1, ws[0], op); !e.empty())
    return fail(error, e);
  TensorType r = x;
  r.dims.back() = ws[0];
  r.elem = *parseElemKind(in.attr("output_dtype").getIdent());
  return std::vector<TensorType>{r};
}

} // namespace

bool isNpuAntiquantType(const Weight &w) {
  return !w.isDense() &&
         (w.quantType().mnemonic() == "npu_w4" || w.quantType().mnemonic() == "npu_w8");
}

std::string expectWeightType(const Weight &w, const std::string &mnemonic, const std::string &op,
                             const std::string &role) {
  if (!w.isDense() && w.quantType().mnemonic() == mnemonic)
    return "";
  return op + " " + role + " @" + w.name() + " must be !" + mnemonic + ", got " +
         weightSymbolTypeStr(w.type()) + " (npu-layout-rewrite converts checkpoint layouts)";
}

void registerNpuOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    OpRegistry &r = OpRegistry::get();
    {
      OpDef d;
      d.name = "npu.weight_quant_batchmatmul";
      d.summary = "torch_npu.npu_weight_quant_batchmatmul: y = x @ ((w + antiquant_offset) * "
                  "antiquant_scale) (+ bias), int4-in-int32 (!npu_w4) or int8 (!npu_w8) weight";
      d.syntax = "%y = npu.weight_quant_batchmatmul %x, @w [, @bias] : tensor<...xN>";
      d.minOperands = d.maxOperands = 1;
      d.minSymbols = 1;
      d.maxSymbols = 2;
      d.infer = inferWeightQuantBatchMatmul;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "npu.moe_gating_topk";
      d.summary = "MoE routing before the expert kernel: softmax over experts, top_k, optional "
                  "renormalize; f32 weights and i32 expert ids";
      d.syntax = "%w, %ids = npu.moe_gating_topk %router_logits {top_k = K} : tensor<TxKxf32>, "
                 "tensor<TxKxi32>";
      d.minOperands = d.maxOperands = 1;
      d.attrs = {{"top_k", AttrKind::Int, std::nullopt, {}, "experts per token"},
                 {"renormalize",
                  AttrKind::Bool,
                  Attribute(false),
                  {},
                  "divide the top_k weights by their sum"}};
      d.infer = inferMoeGatingTopk;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "npu.fused_experts";
      d.summary = "sglang npu_fused_experts (W4A16 / W8A16, !npu_w4 or !npu_w8 stacks): "
                  "init_routing, grouped matmul w13 (antiquant), "
                  "swiglu, grouped matmul w2, finalize_routing";
      d.syntax = "%y = npu.fused_experts %x, %topk_weights, %topk_ids, @w13, @w2 : tensor<TxH>";
      d.minOperands = d.maxOperands = 3;
      d.minSymbols = d.maxSymbols = 2;
      d.infer = inferFusedExperts;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "npu.dynamic_quant";
      d.summary = "torch_npu.npu_dynamic_quant: per-row symmetric int8, scale = max|x| / 127";
      d.syntax = "%q, %scale = npu.dynamic_quant %x : tensor<...xKxi8>, tensor<...xf32>";
      d.minOperands = d.maxOperands = 1;
      d.infer = inferDynamicQuant;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "npu.quant_matmul";
      d.summary = "torch_npu.npu_quant_matmul: y = (x_q @ w) * weight_scale[n] * "
                  "pertoken_scale[m] (+ bias), int32 accumulation";
      d.syntax = "%y = npu.quant_matmul %xq, %pertoken_scale, @w [, @bias] {output_dtype = T}";
      d.minOperands = d.maxOperands = 2;
      d.minSymbols = 1;
      d.maxSymbols = 2;
      d.attrs = {{"output_dtype",
                  AttrKind::Ident,
                  std::nullopt,
                  {"f16", "bf16", "f32"},
                  "element type of the result"}};
      d.infer = inferQuantMatmul;
      r.add(std::move(d));
    }
  });
}

} // namespace qlc::schemes
