// Reference semantics of the npu.* ops (FORMATS.md §5.1, §5.3, §5.4), each written as the device
// call sequence computes it, in f32 storage with f64 accumulation like the core reference ops.
// npu.fused_experts spells out init_routing → grouped matmul → swiglu → grouped matmul →
// finalize_routing step by step, so that a backend can be checked stage by stage against it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>

#include "runtime/moe_routing.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "schemes/npu/npu_internal.h"

namespace qlc::schemes {
namespace {

using Inputs = std::vector<const Tensor *>;
using Outputs = std::vector<Tensor>;

int64_t rowsOf(const std::vector<int64_t> &shape) {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    r *= shape[i];
  return r;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }

/// npu_weight_quant_batchmatmul: y = x @ ANTIQUANT(weight) + bias. ANTIQUANT is the !npu_w4
/// dequantize hook ((w + offset) * scale, §5.1), so the op is `linear` on that weight.
llvm::Error weightQuantBatchMatmul(ReferenceExecutor &ex, const Operation &op, const Inputs &in,
                                   Outputs &out) {
  return referenceLinear(ex, op, in, out);
}

/// Routing as sglang's generic top-k selector does it before the expert kernel (§5.3): softmax over
/// all experts (in f64), the top_k largest (ties: lower expert first), optionally renormalized;
/// weights rounded to f32, ids i32 (what npu_moe_init_routing takes).
llvm::Error moeGatingTopk(ReferenceExecutor &, const Operation &op, const Inputs &in,
                          Outputs &out) {
  const Tensor &logits = *in[0];
  int64_t t = logits.shape()[0], e = logits.shape()[1];
  int64_t k = op.attr("top_k")->getInt();
  const Attribute *ren = op.attr("renormalize");
  bool renormalize = ren && ren->getBool();
  if (k > e)
    return opError(op, "top_k = " + llvm::Twine(k) + " exceeds the " + llvm::Twine(e) + " experts");
  std::vector<float> l = logits.toF32(), weights(size_t(t * k)), ids(size_t(t * k));
  MoeRoutes routes = routeTopK(l.data(), t, e, k, renormalize);
  for (size_t i = 0; i < weights.size(); ++i) {
    weights[i] = float(routes.weight[i]);
    ids[i] = float(routes.expert[i]);
  }
  out.push_back(Tensor::fromF32As(op.result(0)->type().elem, {t, k}, weights));
  out.push_back(Tensor::fromF32As(op.result(1)->type().elem, {t, k}, ids));
  return llvm::Error::success();
}

/// One grouped matmul (npu_grouped_matmul, group_type = 0, group_list_type = 0): rows
/// [groupEnd[e-1], groupEnd[e]) of x [R, Kd] use expert e of the antiquantized stack w [E, Nd, Kd].
std::vector<float> groupedMatmul(const std::vector<float> &x, int64_t kd,
                                 const std::vector<int64_t> &groupEnd, const float *w, int64_t nd) {
  int64_t rows = groupEnd.empty() ? 0 : groupEnd.back();
  std::vector<float> y(static_cast<size_t>(rows * nd));
  int64_t begin = 0;
  for (size_t e = 0; e < groupEnd.size(); ++e) {
    const float *we = w + int64_t(e) * nd * kd;
    for (int64_t r = begin; r < groupEnd[e]; ++r)
      for (int64_t n = 0; n < nd; ++n) {
        double acc = 0;
        for (int64_t i = 0; i < kd; ++i)
          acc += double(x[size_t(r * kd + i)]) * double(we[n * kd + i]);
        y[size_t(r * nd + n)] = float(acc);
      }
    begin = groupEnd[e];
  }
  return y;
}

/// sglang npu_fused_experts, W4A16 branch (§5.3), step by step.
llvm::Error fusedExperts(ReferenceExecutor &ex, const Operation &op, const Inputs &in,
                         Outputs &out) {
  const Tensor &x = *in[0], &topkWeights = *in[1], &topkIds = *in[2];
  const Weight *w13d = ex.module().lookupWeight(op.symbols()[0]);
  const Weight *w2d = ex.module().lookupWeight(op.symbols()[1]);
  int64_t e = w13d->experts();
  int64_t t = x.shape()[0], h = x.shape()[1], k = topkIds.shape()[1];
  int64_t inter = w2d->logicalShape()[2];
  if (topkIds.shape()[0] != t || topkWeights.shape()[0] != t || topkWeights.shape()[1] != k)
    return opError(op, "topk_weights / topk_ids do not have the input's " + llvm::Twine(t) +
                           " rows at run time");
  auto w13 = ex.weight(op.symbols()[0]);
  if (!w13)
    return w13.takeError();
  auto w2 = ex.weight(op.symbols()[1]);
  if (!w2)
    return w2.takeError();
  std::vector<float> xf = x.toF32(), tw = topkWeights.toF32(), ti = topkIds.toF32();

  // 1. npu_moe_init_routing: expanded row j·T + t (sglang row_idx[t, j] = j·T + t) is token t's
  //    j-th choice; rows are sorted by expert (stable in the flattened [T, k] order t·k + j).
  std::vector<int64_t> expertOf(static_cast<size_t>(t * k));
  for (int64_t tok = 0; tok < t; ++tok)
    for (int64_t j = 0; j < k; ++j) {
      float id = ti[size_t(tok * k + j)];
      if (!(id >= 0 && id < float(e)))
        return opError(op, "topk_ids[" + llvm::Twine(tok) + ", " + llvm::Twine(j) +
                               "] = " + llvm::Twine(int64_t(id)) + " is not an expert in [0, " +
                               llvm::Twine(e) + ")");
      expertOf[size_t(tok * k + j)] = int64_t(id);
    }
  std::vector<int64_t> sorted(
      static_cast<size_t>(t * k)); // sorted position -> flattened index t·k + j
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](int64_t a, int64_t b) { return expertOf[size_t(a)] < expertOf[size_t(b)]; });
  std::vector<int64_t> srcToDst(
      static_cast<size_t>(t * k)); // expanded_src_to_dst_row: (j·T + t) -> position
  std::vector<float> expanded(static_cast<size_t>(t * k * h));
  for (int64_t pos = 0; pos < t * k; ++pos) {
    int64_t flat = sorted[size_t(pos)], tok = flat / k, j = flat % k;
    srcToDst[size_t(j * t + tok)] = pos;
    std::copy_n(xf.data() + tok * h, h, expanded.data() + pos * h);
  }
  // expert_tokens as a cumulative group_list (group_list_type = 0).
  std::vector<int64_t> groupEnd(size_t(e), 0);
  for (int64_t flat = 0; flat < t * k; ++flat)
    ++groupEnd[size_t(expertOf[size_t(flat)])];
  std::partial_sum(groupEnd.begin(), groupEnd.end(), groupEnd.begin());

  // 2. grouped matmul with w13 (antiquant scale / offset): (T·k) x 2I.
  std::vector<float> gmm1 = groupedMatmul(expanded, h, groupEnd, (*w13)->data(), 2 * inter);
  // 3. npu_swiglu: silu(first half) * second half, (T·k) x I.
  std::vector<float> act(static_cast<size_t>(t * k * inter));
  for (int64_t r = 0; r < t * k; ++r)
    for (int64_t i = 0; i < inter; ++i) {
      float gate = gmm1[size_t(r * 2 * inter + i)], up = gmm1[size_t(r * 2 * inter + inter + i)];
      act[size_t(r * inter + i)] = float(silu(gate) * up);
    }
  // 4. grouped matmul with w2: (T·k) x H.
  std::vector<float> gmm2 = groupedMatmul(act, inter, groupEnd, (*w2)->data(), h);
  // 5. npu_moe_finalize_routing: out[t] = Σ_j topk_weights[t, j] · y[dst(j·T + t)].
  std::vector<float> y(static_cast<size_t>(t * h));
  for (int64_t tok = 0; tok < t; ++tok) {
    std::vector<double> acc(size_t(h), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      double wgt = tw[size_t(tok * k + j)];
      const float *row = gmm2.data() + srcToDst[size_t(j * t + tok)] * h;
      for (int64_t i = 0; i < h; ++i)
        acc[size_t(i)] += wgt * row[i];
    }
    for (int64_t i = 0; i < h; ++i)
      y[size_t(tok * h + i)] = float(acc[size_t(i)]);
  }
  out.push_back(Tensor::fromF32As(op.result(0)->type().elem, {t, h}, y));
  return llvm::Error::success();
}

/// npu_dynamic_quant (§5.1): per row, scale = max|x| / 127 (f32), q = clamp(round(x / scale),
/// −127, 127), round half to even. An all-zero row gets scale 0 and codes 0.
llvm::Error dynamicQuant(ReferenceExecutor &, const Operation &op, const Inputs &in, Outputs &out) {
  const std::vector<int64_t> &shape = in[0]->shape();
  int64_t rows = rowsOf(shape), kd = shape.back();
  std::vector<float> x = in[0]->toF32();
  Tensor q(ElemKind::I8, shape);
  std::vector<int64_t> sShape(shape.begin(), shape.end() - 1);
  std::vector<float> scales(static_cast<size_t>(rows));
  auto *qd = reinterpret_cast<int8_t *>(q.data());
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = x.data() + r * kd;
    float amax = 0.f;
    for (int64_t i = 0; i < kd; ++i)
      amax = std::max(amax, std::fabs(row[i]));
    float s = amax / 127.f;
    scales[size_t(r)] = s;
    for (int64_t i = 0; i < kd; ++i) {
      float v = s == 0.f ? 0.f : std::nearbyint(row[i] / s);
      qd[r * kd + i] = int8_t(std::clamp(v, -127.f, 127.f));
    }
  }
  out.push_back(std::move(q));
  out.push_back(Tensor::fromF32As(ElemKind::F32, sShape, scales));
  return llvm::Error::success();
}

/// npu_quant_matmul (§5.1, §5.4): acc = Σ_k x_q[m,k] · w[k,n] in int32, then
/// y = pertoken_scale[m] · weight_scale[n] · acc (+ bias[n]), formed in f64 and rounded once.
llvm::Error quantMatmul(ReferenceExecutor &ex, const Operation &op, const Inputs &in,
                        Outputs &out) {
  const Tensor &xq = *in[0], &ps = *in[1];
  const Weight *w = ex.module().lookupWeight(op.symbols()[0]);
  std::vector<int64_t> ws = w->logicalShape();
  int64_t n = ws[0], kd = ws[1], rows = rowsOf(xq.shape());
  if (xq.shape().back() != kd || ps.numElements() != rows)
    return opError(op, "operand shapes do not match the weight at run time");
  const WeightPart *wp = w->part("weight"), *sp = w->part("weight_scale");
  auto wb = resolvePart(*w, *wp, ex.store());
  if (!wb)
    return wb.takeError();
  auto sb = resolvePart(*w, *sp, ex.store());
  if (!sb)
    return sb.takeError();
  const auto *wq = reinterpret_cast<const int8_t *>(wb->bytes.data()); // [K, N]
  std::vector<float> wscale(static_cast<size_t>(n));
  std::memcpy(wscale.data(), sb->bytes.data(), size_t(n) * 4);
  const std::vector<float> *bias = nullptr;
  if (op.symbols().size() == 2) {
    auto b = ex.weight(op.symbols()[1]);
    if (!b)
      return b.takeError();
    bias = *b;
  }
  const auto *xd = reinterpret_cast<const int8_t *>(xq.data());
  std::vector<float> tokScale = ps.toF32(), y(size_t(rows * n));
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t c = 0; c < n; ++c) {
      int32_t acc = 0;
      for (int64_t i = 0; i < kd; ++i)
        acc += int32_t(xd[m * kd + i]) * int32_t(wq[i * n + c]);
      double v = double(tokScale[size_t(m)]) * double(wscale[size_t(c)]) * double(acc);
      if (bias)
        v += double((*bias)[size_t(c)]);
      y[size_t(m * n + c)] = float(v);
    }
  std::vector<int64_t> shape = xq.shape();
  shape.back() = n;
  out.push_back(Tensor::fromF32As(op.result(0)->type().elem, shape, y));
  return llvm::Error::success();
}

} // namespace

void registerNpuReferenceOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerReferenceOp("npu.weight_quant_batchmatmul", weightQuantBatchMatmul);
    registerReferenceOp("npu.moe_gating_topk", moeGatingTopk);
    registerReferenceOp("npu.fused_experts", fusedExperts);
    registerReferenceOp("npu.dynamic_quant", dynamicQuant);
    registerReferenceOp("npu.quant_matmul", quantMatmul);
  });
}

} // namespace qlc::schemes
