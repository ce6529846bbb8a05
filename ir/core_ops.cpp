// The core ops of DESIGN.md: enough to write a real MLP / MoE block. Each row states its operands,
// weight symbols, attributes, and the shape rules that its inference checks.
#include <mutex>

#include "ir/op_registry.h"

namespace qlc {
namespace {

using Types = std::optional<std::vector<TensorType>>;

std::string str(const TensorType &t) { return t.str(); }

Types fail(std::string &error, std::string msg) {
  error = std::move(msg);
  return std::nullopt;
}

const TensorType &operandType(const InferInput &in, unsigned i) {
  return in.op.operand(i)->type();
}

/// Result type equal to the single operand's, for elementwise unary ops.
Types sameAsOperand(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  if (!isFloat(x.elem))
    return fail(error, "'" + in.op.name() + "' needs a floating-point operand, got " + str(x));
  return std::vector<TensorType>{x};
}

Types inferLinear(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  const Weight *w = in.weight(0);
  if (!isFloat(x.elem))
    return fail(error, "linear input must be floating point, got " + str(x));
  if (x.rank() < 1)
    return fail(error, "linear input must have rank >= 1, got " + str(x));
  if (w->experts())
    return fail(error, "linear weight @" + w->name() + " is expert-stacked (experts = " +
                           std::to_string(w->experts()) + "); use 'moe'");
  std::vector<int64_t> ws = w->logicalShape();
  if (ws.size() != 2)
    return fail(error, "linear weight @" + w->name() + " must be 2-D [N, K], has shape " +
                           dimsStr(ws));
  int64_t n = ws[0], k = ws[1];
  if (!dimsCompatible(x.dims.back(), k))
    return fail(error, "linear input has K = " + std::to_string(x.dims.back()) + " but weight @" +
                           w->name() + " is [N, K] = " + dimsStr(ws));
  if (in.op.symbols().size() == 2) {
    const Weight *b = in.weight(1);
    std::vector<int64_t> bs = b->logicalShape();
    if (!b->isDense() || bs.size() != 1 || bs[0] != n)
      return fail(error, "linear bias @" + b->name() + " must be a dense [" + std::to_string(n) +
                             "] tensor, has shape " + dimsStr(bs));
  }
  TensorType r = x;
  r.dims.back() = n;
  return std::vector<TensorType>{r};
}

/// The unfused form `moe %x, %logits, @gate, @up, @down` (as checkpoints store experts) is
/// checked by viewing gate and up as the two halves of w13.
std::string checkMoeUnfused(const InferInput &in) {
  const Weight *gate = in.weight(0), *up = in.weight(1), *down = in.weight(2);
  if (gate->experts() <= 0 || up->experts() != gate->experts() ||
      down->experts() != gate->experts())
    return "moe gate @" + gate->name() + ", up @" + up->name() + " and down @" + down->name() +
           " must all be stacks of the same number of experts (" +
           std::to_string(gate->experts()) + ", " + std::to_string(up->experts()) + ", " +
           std::to_string(down->experts()) + ")";
  if (gate->logicalShape() != up->logicalShape())
    return "moe gate @" + gate->name() + " is " + dimsStr(gate->logicalShape()) + " but up @" +
           up->name() + " is " + dimsStr(up->logicalShape());
  return "";
}

Types inferMoe(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  const TensorType &logits = operandType(in, 1);
  bool unfused = in.op.symbols().size() == 3;
  if (unfused) {
    std::string err = checkMoeUnfused(in);
    if (!err.empty())
      return fail(error, err);
  }
  const Weight *w13 = in.weight(0), *w2 = in.weight(unfused ? 2 : 1);
  if (!isFloat(x.elem) || x.rank() != 2)
    return fail(error, "moe input must be a floating-point [T, H] tensor, got " + str(x));
  if (!isFloat(logits.elem) || logits.rank() != 2)
    return fail(error, "moe router logits must be a floating-point [T, E] tensor, got " +
                           str(logits));
  int64_t e = w13->experts();
  if (e <= 0)
    return fail(error, "moe w13 @" + w13->name() + " is not expert-stacked (needs experts = E)");
  if (w2->experts() != e)
    return fail(error, "moe w2 @" + w2->name() + " has " + std::to_string(w2->experts()) +
                           " experts but w13 @" + w13->name() + " has " + std::to_string(e));
  std::vector<int64_t> s13 = w13->logicalShape(), s2 = w2->logicalShape();
  if (s13.size() != 3 || s2.size() != 3)
    return fail(error, "moe weights must be [E, N, K]");
  int64_t h = x.dims[1];
  int64_t inter = s2[2];
  if (unfused && s13[1] != inter)
    return fail(error, "moe gate @" + w13->name() + " has N = " + std::to_string(s13[1]) +
                           " but down @" + w2->name() + " has K = " + std::to_string(inter) +
                           " (both are the intermediate size)");
  if (!unfused && s13[1] != 2 * inter)
    return fail(error, "moe w13 @" + w13->name() + " has N = " + std::to_string(s13[1]) +
                           " but must be 2 x intermediate = 2 x " + std::to_string(inter) +
                           " (gate and up stacked)");
  if (!dimsCompatible(s13[2], h))
    return fail(error, "moe w13 @" + w13->name() + " has K = " + std::to_string(s13[2]) +
                           " but the input hidden size is " + std::to_string(h));
  if (!dimsCompatible(s2[1], h))
    return fail(error, "moe w2 @" + w2->name() + " has N = " + std::to_string(s2[1]) +
                           " but the input hidden size is " + std::to_string(h));
  if (!dimsCompatible(logits.dims[1], e))
    return fail(error, "moe router logits have " + std::to_string(logits.dims[1]) +
                           " columns but there are " + std::to_string(e) + " experts");
  if (!dimsCompatible(logits.dims[0], x.dims[0]))
    return fail(error, "moe router logits have " + std::to_string(logits.dims[0]) +
                           " rows but the input has " + std::to_string(x.dims[0]) + " tokens");
  int64_t k = in.attr("top_k").getInt();
  if (k < 1 || k > e)
    return fail(error, "moe top_k = " + std::to_string(k) + " must be in [1, " +
                           std::to_string(e) + "]");
  TensorType r = x;
  r.dims[1] = s13[2];
  return std::vector<TensorType>{r};
}

Types inferEmbedding(const InferInput &in, std::string &error) {
  const TensorType &ids = operandType(in, 0);
  const Weight *w = in.weight(0);
  if (ids.elem != ElemKind::I32 && ids.elem != ElemKind::I64)
    return fail(error, "embedding ids must be i32 or i64, got " + str(ids));
  std::vector<int64_t> ws = w->logicalShape();
  if (w->experts() || ws.size() != 2)
    return fail(error, "embedding table @" + w->name() + " must be 2-D [vocab, dim], has shape " +
                           dimsStr(ws));
  TensorType r = ids;
  r.dims.push_back(ws[1]);
  r.elem = w->isDense() && isFloat(w->denseType().elem) ? w->denseType().elem : ElemKind::F32;
  // A declared float result type is a conversion of the gathered rows (so a table can be
  // re-typed by a pass, e.g. dequantized to f16, without changing its users).
  if (in.declared && in.declared->size() == 1 && isFloat((*in.declared)[0].elem))
    r.elem = (*in.declared)[0].elem;
  return std::vector<TensorType>{r};
}

Types inferMatmul(const InferInput &in, std::string &error) {
  const TensorType &a = operandType(in, 0), &b = operandType(in, 1);
  if (a.elem != b.elem || !isFloat(a.elem))
    return fail(error, "matmul operands must share a floating-point element type, got " + str(a) +
                           " and " + str(b));
  if (a.rank() < 2 || b.rank() < 2)
    return fail(error, "matmul operands must have rank >= 2, got " + str(a) + " and " + str(b));
  if (b.rank() != 2 && b.rank() != a.rank())
    return fail(error, "matmul rhs must be [K, N] or batched like the lhs, got " + str(b));
  int64_t k = a.dims.back(), kb = b.dims[b.rank() - 2];
  if (!dimsCompatible(k, kb))
    return fail(error, "matmul contraction mismatch: lhs K = " + std::to_string(k) +
                           ", rhs K = " + std::to_string(kb));
  if (b.rank() == a.rank())
    for (size_t i = 0; i + 2 < a.rank(); ++i)
      if (!dimsCompatible(a.dims[i], b.dims[i]))
        return fail(error, "matmul batch dims differ: " + str(a) + " and " + str(b));
  TensorType r = a;
  r.dims.back() = b.dims.back();
  return std::vector<TensorType>{r};
}

Types inferBroadcast(const InferInput &in, std::string &error) {
  const TensorType &a = operandType(in, 0), &b = operandType(in, 1);
  if (a.elem != b.elem)
    return fail(error, "'" + in.op.name() + "' operands must share an element type, got " + str(a) +
                           " and " + str(b));
  size_t rank = std::max(a.rank(), b.rank());
  TensorType r(a.elem, std::vector<int64_t>(rank));
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.rank() ? 1 : a.dims[i - (rank - a.rank())];
    int64_t db = i < rank - b.rank() ? 1 : b.dims[i - (rank - b.rank())];
    if (da == db || db == 1)
      r.dims[i] = da;
    else if (da == 1)
      r.dims[i] = db;
    else if (da == TensorType::kDynamic || db == TensorType::kDynamic)
      r.dims[i] = TensorType::kDynamic;
    else
      return fail(error, "'" + in.op.name() + "' shapes " + dimsStr(a.dims) + " and " +
                             dimsStr(b.dims) + " do not broadcast (dim " + std::to_string(i) + ")");
  }
  return std::vector<TensorType>{r};
}

Types inferSoftmax(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  int64_t axis = in.attr("axis").getInt();
  int64_t rank = int64_t(x.rank());
  if (axis < -rank || axis >= rank)
    return fail(error, "softmax axis " + std::to_string(axis) + " is out of range for " + str(x));
  return sameAsOperand(in, error);
}

Types inferTopk(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  if (!isFloat(x.elem) || x.rank() < 1)
    return fail(error, "topk needs a floating-point tensor of rank >= 1, got " + str(x));
  int64_t k = in.attr("k").getInt();
  int64_t last = x.dims.back();
  if (k < 1 || (last != TensorType::kDynamic && k > last))
    return fail(error, "topk k = " + std::to_string(k) + " must be in [1, " +
                           (last == TensorType::kDynamic ? std::string("?")
                                                         : std::to_string(last)) +
                           "]");
  TensorType vals = x;
  vals.dims.back() = k;
  TensorType idx = vals;
  idx.elem = ElemKind::I64;
  return std::vector<TensorType>{vals, idx};
}

Types inferRmsNorm(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  const Weight *w = in.weight(0);
  if (!isFloat(x.elem) || x.rank() < 1)
    return fail(error, "rms_norm needs a floating-point tensor of rank >= 1, got " + str(x));
  std::vector<int64_t> ws = w->logicalShape();
  if (!w->isDense() || ws.size() != 1 || !dimsCompatible(ws[0], x.dims.back()))
    return fail(error, "rms_norm weight @" + w->name() + " must be a dense " +
                           dimsStr({x.dims.back()}) + " tensor, has shape " + dimsStr(ws));
  if (!(in.attr("eps").getNumber() > 0)) // also rejects NaN
    return fail(error, "rms_norm eps must be positive");
  return std::vector<TensorType>{x};
}

Types inferConvert(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  if (!in.declared)
    return fail(error, "convert needs its result type: convert %x : tensor<...>");
  if (in.declared->size() != 1)
    return fail(error, "'convert' has 1 result, but " + std::to_string(in.declared->size()) +
                           " result types were given");
  TensorType r = (*in.declared)[0];
  if (r.rank() != x.rank())
    return fail(error, "convert cannot change the shape: " + str(x) + " to " + str(r));
  for (size_t i = 0; i < r.rank(); ++i)
    if (!dimsCompatible(r.dims[i], x.dims[i]))
      return fail(error, "convert cannot change the shape: " + str(x) + " to " + str(r));
  return std::vector<TensorType>{r};
}

Types inferReshape(const InferInput &in, std::string &error) {
  const TensorType &x = operandType(in, 0);
  if (!in.declared)
    return fail(error, "reshape needs its result type: reshape %x : tensor<...>");
  if (in.declared->size() != 1)
    return fail(error, "'reshape' has 1 result, but " + std::to_string(in.declared->size()) +
                           " result types were given");
  TensorType r = (*in.declared)[0];
  if (r.elem != x.elem)
    return fail(error, "reshape cannot change the element type: " + str(x) + " to " + str(r));
  auto nx = x.numElements(), nr = r.numElements();
  if (nx && nr && *nx != *nr)
    return fail(error, "reshape changes the element count: " + str(x) + " has " +
                           std::to_string(*nx) + ", " + str(r) + " has " + std::to_string(*nr));
  unsigned dyn = 0;
  for (int64_t d : r.dims)
    dyn += d == TensorType::kDynamic;
  if (dyn > 1)
    return fail(error, "reshape result may have at most one dynamic dim, got " + str(r));
  return std::vector<TensorType>{r};
}

Types inferReturn(const InferInput &, std::string &) { return std::vector<TensorType>{}; }

// convert/reshape to the operand's own type are identities.
Value *foldIdentityCast(Operation &op) {
  Value *x = op.operand(0);
  if (x->type() == op.result(0)->type())
    return x;
  // reshape(reshape(x)) -> reshape(x): the intermediate shape is irrelevant.
  if (op.name() == "reshape" && x->definingOp() && x->definingOp()->name() == "reshape") {
    op.setOperand(0, x->definingOp()->operand(0));
    return op.result(0); // changed in place
  }
  return nullptr;
}

OpDef unary(std::string name, std::string summary, InferFn f) {
  OpDef d;
  d.name = std::move(name);
  d.summary = std::move(summary);
  d.syntax = "%y = " + d.name + " %x : T";
  d.minOperands = d.maxOperands = 1;
  d.infer = std::move(f);
  return d;
}

} // namespace

void registerCoreOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    OpRegistry &r = OpRegistry::get();
    {
      OpDef d;
      d.name = "linear";
      d.summary = "y = x @ W^T (+ bias) with a dense or quantized weight W [N, K]";
      d.syntax = "%y = linear %x, @w [, @bias] : tensor<...xN>";
      d.minOperands = d.maxOperands = 1;
      d.minSymbols = 1;
      d.maxSymbols = 2;
      d.infer = inferLinear;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "moe";
      d.summary = "mixture of experts: route each token to top_k experts, "
                  "act(x @ w13_gate^T) * (x @ w13_up^T) @ w2^T, weighted sum";
      d.syntax = "%y = moe %x, %router_logits, @w13, @w2 {top_k = K} : tensor<TxH>  (or @gate, "
                 "@up, @down before materialize-experts)";
      d.minOperands = d.maxOperands = 2;
      d.minSymbols = 2;
      d.maxSymbols = 3;
      d.attrs = {{"top_k", AttrKind::Int, std::nullopt, {}, "experts per token"},
                 {"renormalize", AttrKind::Bool, Attribute(false), {},
                  "renormalize the top_k routing weights to sum to 1"},
                 {"activation", AttrKind::Ident, Attribute::ident("silu"), {"silu", "gelu"},
                  "activation applied to the gate half"}};
      d.infer = inferMoe;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "embedding";
      d.summary = "gather rows of a [vocab, dim] table";
      d.syntax = "%y = embedding %ids, @table : tensor<...xD>";
      d.minOperands = d.maxOperands = 1;
      d.minSymbols = d.maxSymbols = 1;
      d.infer = inferEmbedding;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "matmul";
      d.summary = "batched matrix product of two values: [..., M, K] x [K, N] -> [..., M, N]";
      d.syntax = "%y = matmul %a, %b : T";
      d.minOperands = d.maxOperands = 2;
      d.infer = inferMatmul;
      r.add(std::move(d));
    }
    for (const char *n : {"add", "mul"}) {
      OpDef d;
      d.name = n;
      d.summary = std::string("elementwise ") + (d.name == "add" ? "sum" : "product") +
                  " with numpy broadcasting";
      d.syntax = "%y = " + d.name + " %a, %b : T";
      d.minOperands = d.maxOperands = 2;
      d.infer = inferBroadcast;
      r.add(std::move(d));
    }
    r.add(unary("silu", "x * sigmoid(x)", sameAsOperand));
    {
      OpDef d = unary("gelu", "gaussian error linear unit", sameAsOperand);
      d.attrs = {{"approximate", AttrKind::Ident, Attribute::ident("none"), {"none", "tanh"},
                  "exact erf form or the tanh approximation"}};
      r.add(std::move(d));
    }
    {
      OpDef d = unary("softmax", "softmax along an axis", inferSoftmax);
      d.attrs = {{"axis", AttrKind::Int, Attribute(int64_t(-1)), {}, "axis (negative counts from the end)"}};
      r.add(std::move(d));
    }
    {
      OpDef d = unary("topk", "k largest values of the last axis and their indices", inferTopk);
      d.syntax = "%vals, %idx = topk %x {k = K} : tensor<...xKxf32>, tensor<...xKxi64>";
      d.attrs = {{"k", AttrKind::Int, std::nullopt, {}, "how many"}};
      r.add(std::move(d));
    }
    {
      OpDef d = unary("rms_norm", "x / sqrt(mean(x^2) + eps) * w", inferRmsNorm);
      d.syntax = "%y = rms_norm %x, @w {eps = 1.0e-5} : T";
      d.minSymbols = d.maxSymbols = 1;
      d.attrs = {{"eps", AttrKind::Float, Attribute(1e-6), {}, "added to the mean square"}};
      r.add(std::move(d));
    }
    {
      OpDef d = unary("convert", "element type conversion (round to nearest even)", inferConvert);
      d.fold = foldIdentityCast;
      r.add(std::move(d));
    }
    {
      OpDef d = unary("reshape", "same elements, new shape", inferReshape);
      d.fold = foldIdentityCast;
      r.add(std::move(d));
    }
    {
      OpDef d;
      d.name = "return";
      d.summary = "return values from the function";
      d.syntax = "return %a [, %b ...]";
      d.minOperands = 0;
      d.maxOperands = ~0u;
      d.pure = false;
      d.terminator = true;
      d.infer = inferReturn;
      r.add(std::move(d));
    }
  });
}

} // namespace qlc
