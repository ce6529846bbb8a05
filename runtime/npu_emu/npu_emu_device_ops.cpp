// The npu-emu device's op handlers: each checks its operands at run time, reserves its results (and
// workspace) in device memory, builds the kernel's view of the device-resident weights and calls
// the kernel of npu_kernels.h (named npu_emu::, as the handlers share the kernels' names); the core
// elementwise ops go through the reference implementations.
#include <algorithm>
#include <optional>

#include "runtime/npu_emu/npu_emu_device.h"
#include "runtime/npu_emu/npu_kernels.h"

namespace qlc::npu_emu {
namespace {

std::vector<float> floatsOf(const DevicePart &p) {
  const int64_t n = int64_t(p.bytes.size() / elemKindBytes(p.type.elem));
  std::vector<float> v(static_cast<size_t>(n));
  decodeFloats(p.bytes.data(), p.type.elem, n, v.data());
  return v;
}

AntiquantWeight antiquantWeight(const DeviceWeight &dw) {
  const Weight &w = *dw.weight;
  std::vector<int64_t> s = w.logicalShape();
  const size_t lead = w.experts() > 0 ? 1 : 0;
  AntiquantWeight a;
  a.layout = w.quantType().mnemonic() == "npu_w8" ? CodeLayout::Int8 : CodeLayout::Int4InInt32;
  a.experts = std::max<int64_t>(1, w.experts());
  a.n = s[lead];
  a.k = s[lead + 1];
  const int64_t g = w.quantType().intParam("group");
  a.group = g == -1 ? a.k : g;
  a.codes = dw.part("weight")->bytes.data();
  const DevicePart *scale = dw.part("antiquant_scale"), *offset = dw.part("antiquant_offset");
  a.paramElem = scale->type.elem;
  a.scale = scale->bytes.data();
  a.offset = offset ? offset->bytes.data() : nullptr;
  return a;
}

DenseWeight denseWeight(const DeviceWeight &dw) {
  const DevicePart &p = dw.dense();
  std::vector<int64_t> s = dw.weight->logicalShape(); // [E,] N, K
  DenseWeight d;
  d.experts = s.size() == 3 ? s[0] : 1;
  d.n = s[s.size() - 2];
  d.k = s.back();
  d.elem = p.type.elem;
  d.data = p.bytes.data();
  return d;
}

/// The optional bias (symbol 1) as f32, checked to have `n` elements.
llvm::Error biasOf(const Operation &op, const DeviceWeight *b, int64_t n, std::vector<float> &out) {
  if (!b)
    return llvm::Error::success();
  out = floatsOf(b->dense());
  if (int64_t(out.size()) != n)
    return opError(op, "npu-emu: bias @" + b->weight->name() + " has " + llvm::Twine(out.size()) +
                           " elements, the output has N = " + llvm::Twine(n));
  return llvm::Error::success();
}

void setF32(DeviceTensor &t, const std::vector<float> &v) {
  t.data = Tensor::fromF32As(t.data.elem(), t.data.shape(), v);
}

/// Expert ids of a [T, k] tensor, each checked to be in [0, experts).
llvm::Expected<std::vector<int64_t>> expertIds(const Operation &op, const Tensor &ids,
                                               int64_t experts) {
  std::vector<float> f = ids.toF32();
  std::vector<int64_t> out(f.size());
  const int64_t k = ids.shape()[1];
  for (size_t i = 0; i < f.size(); ++i) {
    if (!(f[i] >= 0 && f[i] < float(experts)))
      return opError(op, "npu-emu: topk_ids[" + llvm::Twine(int64_t(i) / k) + ", " +
                             llvm::Twine(int64_t(i) % k) + "] = " + llvm::Twine(int64_t(f[i])) +
                             " is not an expert in [0, " + llvm::Twine(experts) + ")");
    out[i] = int64_t(f[i]);
  }
  return out;
}

} // namespace

llvm::Error DeviceRun::weightQuantBatchMatmul(const Operation &op, const Ins &in, Outs &outs,
                                              OpCost &c) {
  const Tensor &x = *in[0];
  AntiquantWeight w = antiquantWeight(weight(op, 0, c));
  if (x.shape().back() != w.k)
    return opError(op, "npu-emu: input " + x.typeStr() + " does not have K = " + llvm::Twine(w.k));
  std::vector<float> bias;
  if (llvm::Error e = biasOf(op, op.symbols().size() == 2 ? &weight(op, 1, c) : nullptr, w.n, bias))
    return e;
  std::vector<int64_t> shape = x.shape();
  shape.back() = w.n;
  auto y = result(op, 0, shape);
  if (!y)
    return y.takeError();
  const int64_t rows = rowsOf(shape);
  std::vector<float> xf = x.toF32(), yf(size_t(rows * w.n));
  c.flops += npu_emu::weightQuantBatchMatmul(
      xf.data(), rows, w, bias.empty() ? nullptr : bias.data(), x.elem(), yf.data());
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::gatingTopK(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &logits = *in[0];
  const int64_t t = logits.shape()[0], e = logits.shape()[1], k = op.attr("top_k")->getInt();
  const Attribute *ren = op.attr("renormalize");
  if (k > e)
    return opError(op, "npu-emu: top_k = " + llvm::Twine(k) + " exceeds the " + llvm::Twine(e) +
                           " experts");
  auto w = result(op, 0, {t, k});
  if (!w)
    return w.takeError();
  auto ids = result(op, 1, {t, k});
  if (!ids)
    return ids.takeError();
  std::vector<float> lf = logits.toF32(), wf(size_t(t * k)), idf(size_t(t * k));
  std::vector<int64_t> id(size_t(t * k));
  c.flops += npu_emu::gatingTopK(lf.data(), t, e, k, ren && ren->getBool(), wf.data(), id.data());
  std::transform(id.begin(), id.end(), idf.begin(), [](int64_t v) { return float(v); });
  setF32(*w, wf);
  setF32(*ids, idf);
  outs.push_back(std::move(*w));
  outs.push_back(std::move(*ids));
  return llvm::Error::success();
}

llvm::Error DeviceRun::fusedExperts(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &x = *in[0], &tw = *in[1], &ti = *in[2];
  AntiquantWeight w13 = antiquantWeight(weight(op, 0, c));
  AntiquantWeight w2 = antiquantWeight(weight(op, 1, c));
  const int64_t t = x.shape()[0], h = x.shape()[1], k = ti.shape()[1], inter = w2.k;
  if (ti.shape()[0] != t || tw.shape() != ti.shape() || w13.k != h || w2.n != h ||
      w13.n != 2 * inter || w2.experts != w13.experts)
    return opError(op, "npu-emu: operands " + x.typeStr() + ", " + tw.typeStr() + ", " +
                           ti.typeStr() + " do not fit the experts");
  auto ids = expertIds(op, ti, w13.experts);
  if (!ids)
    return ids.takeError();
  auto y = result(op, 0, {t, h});
  if (!y)
    return y.takeError();
  const uint64_t wsBytes = fusedExpertsWorkspaceBytes(t, k, h, inter);
  auto ws = workspace(op, wsBytes);
  if (!ws)
    return ws.takeError();
  c.written += wsBytes;
  std::vector<float> xf = x.toF32(), twf = tw.toF32(), yf(size_t(t * h));
  c.flops += npu_emu::fusedExperts(xf.data(), t, h, twf.data(), ids->data(), k, w13, w2, inter,
                                   Activation::Silu, x.elem(), yf.data());
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::dynamicQuant(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &x = *in[0];
  std::vector<int64_t> sShape(x.shape().begin(), x.shape().end() - 1);
  auto q = result(op, 0, x.shape());
  if (!q)
    return q.takeError();
  auto s = result(op, 1, sShape);
  if (!s)
    return s.takeError();
  const int64_t rows = rowsOf(x.shape()), k = x.shape().back();
  std::vector<float> xf = x.toF32();
  c.flops += npu_emu::dynamicQuant(xf.data(), rows, k, reinterpret_cast<int8_t *>(q->data.data()),
                                   reinterpret_cast<float *>(s->data.data()));
  outs.push_back(std::move(*q));
  outs.push_back(std::move(*s));
  return llvm::Error::success();
}

llvm::Error DeviceRun::quantMatmul(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &q = *in[0], &ps = *in[1];
  const DeviceWeight &w = weight(op, 0, c);
  std::vector<int64_t> ws = w.weight->logicalShape();
  const int64_t n = ws[0], k = ws[1], rows = rowsOf(q.shape());
  if (q.shape().back() != k || ps.numElements() != rows)
    return opError(op, "npu-emu: operands " + q.typeStr() + ", " + ps.typeStr() +
                           " do not fit weight @" + w.weight->name());
  std::vector<float> bias;
  if (llvm::Error e = biasOf(op, op.symbols().size() == 2 ? &weight(op, 1, c) : nullptr, n, bias))
    return e;
  std::vector<int64_t> shape = q.shape();
  shape.back() = n;
  auto y = result(op, 0, shape);
  if (!y)
    return y.takeError();
  std::vector<float> wscale = floatsOf(*w.part("weight_scale")), yf(size_t(rows * n));
  c.flops += npu_emu::quantMatmul(
      reinterpret_cast<const int8_t *>(q.data()), reinterpret_cast<const float *>(ps.data()), rows,
      k, reinterpret_cast<const int8_t *>(w.part("weight")->bytes.data()), wscale.data(), n,
      bias.empty() ? nullptr : bias.data(), yf.data());
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::linear(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &x = *in[0];
  DenseWeight w = denseWeight(weight(op, 0, c));
  if (x.shape().back() != w.k)
    return opError(op, "npu-emu: input " + x.typeStr() + " does not have K = " + llvm::Twine(w.k));
  std::vector<float> bias;
  if (llvm::Error e = biasOf(op, op.symbols().size() == 2 ? &weight(op, 1, c) : nullptr, w.n, bias))
    return e;
  std::vector<int64_t> shape = x.shape();
  shape.back() = w.n;
  auto y = result(op, 0, shape);
  if (!y)
    return y.takeError();
  const int64_t rows = rowsOf(shape);
  std::vector<float> xf = x.toF32(), yf(size_t(rows * w.n));
  c.flops += npu_emu::matmul(xf.data(), rows, w, 0, x.elem(), bias.empty() ? nullptr : bias.data(),
                             yf.data());
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::moe(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &x = *in[0], &logits = *in[1];
  const bool unfused = op.symbols().size() == 3;
  DenseWeight first = denseWeight(weight(op, 0, c));
  DenseWeight w2 = denseWeight(weight(op, unfused ? 2 : 1, c));
  std::optional<GateUpWeight> gateUp;
  if (unfused)
    gateUp.emplace(first, denseWeight(weight(op, 1, c)));
  const int64_t t = x.shape()[0], h = x.shape()[1], e = first.experts, inter = w2.k;
  const int64_t k = op.attr("top_k")->getInt();
  const int64_t n13 = unfused ? gateUp->n : first.n;
  const bool stacksAgree =
      w2.experts == e &&
      (!unfused || (gateUp->up.experts == e && gateUp->up.n == first.n && gateUp->up.k == first.k));
  if (!stacksAgree || first.k != h || w2.n != h || n13 != 2 * inter || logits.shape()[0] != t ||
      logits.shape()[1] != e || k > e)
    return opError(op, "npu-emu: operands " + x.typeStr() + ", " + logits.typeStr() +
                           " do not fit the experts");
  auto y = result(op, 0, {t, h});
  if (!y)
    return y.takeError();
  // Routing (weights f32 and ids) then the expert kernel, as lower-npu's quantized MoE runs.
  const uint64_t wsBytes = uint64_t(t * k * 12) + fusedExpertsWorkspaceBytes(t, k, h, inter);
  auto ws = workspace(op, wsBytes);
  if (!ws)
    return ws.takeError();
  c.written += wsBytes;
  const Attribute *ren = op.attr("renormalize"), *act = op.attr("activation");
  std::vector<float> lf = logits.toF32(), xf = x.toF32(), wf(size_t(t * k)), yf(size_t(t * h));
  std::vector<int64_t> ids(size_t(t * k));
  c.flops += npu_emu::gatingTopK(lf.data(), t, e, k, ren && ren->getBool(), wf.data(), ids.data());
  const auto a = act && act->getIdent() == "gelu" ? Activation::Gelu : Activation::Silu;
  if (unfused)
    c.flops += npu_emu::fusedExperts(xf.data(), t, h, wf.data(), ids.data(), k, *gateUp, w2, inter,
                                     a, x.elem(), yf.data());
  else
    c.flops += npu_emu::fusedExperts(xf.data(), t, h, wf.data(), ids.data(), k, first, w2, inter, a,
                                     x.elem(), yf.data());
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::embedding(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &ids = *in[0];
  const DeviceWeight &w = d_.weights.at(op.symbols()[0]);
  std::vector<int64_t> ts = w.weight->logicalShape();
  const int64_t vocab = ts[0], dim = ts[1];
  std::vector<int64_t> shape = ids.shape();
  shape.push_back(dim);
  auto y = result(op, 0, shape);
  if (!y)
    return y.takeError();
  std::vector<float> idf = ids.toF32(), yf(idf.size() * size_t(dim));
  const DevicePart &table = w.dense();
  const size_t rowBytes = size_t(dim) * elemKindBytes(table.type.elem);
  for (size_t i = 0; i < idf.size(); ++i) {
    const int64_t id = int64_t(idf[i]);
    if (id < 0 || id >= vocab)
      return opError(op, "npu-emu: id " + llvm::Twine(id) + " at position " + llvm::Twine(i) +
                             " is outside the vocabulary [0, " + llvm::Twine(vocab) + ")");
    decodeFloats(table.bytes.data() + size_t(id) * rowBytes, table.type.elem, dim,
                 yf.data() + i * size_t(dim));
    c.read += rowBytes; // a gather reads only the rows it takes
  }
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::rmsNorm(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  const Tensor &x = *in[0];
  std::vector<float> w = floatsOf(weight(op, 0, c).dense());
  const int64_t d = x.shape().back(), rows = rowsOf(x.shape());
  if (int64_t(w.size()) != d)
    return opError(op, "npu-emu: weight has " + llvm::Twine(w.size()) +
                           " elements, x has D = " + llvm::Twine(d));
  const Attribute *epsA = op.attr("eps");
  auto y = result(op, 0, x.shape());
  if (!y)
    return y.takeError();
  std::vector<float> xf = x.toF32(), yf(xf.size());
  c.flops += npu_emu::rmsNorm(xf.data(), rows, d, w.data(), epsA ? float(epsA->getNumber()) : 1e-6f,
                              yf.data());
  setF32(*y, yf);
  outs.push_back(std::move(*y));
  return llvm::Error::success();
}

llvm::Error DeviceRun::referenceOp(const Operation &op, const Ins &in, Outs &outs, OpCost &c) {
  // The registered implementation computes on the device-resident operands; its results are
  // reserved as they come out (these ops have no workspace, so the high-water mark is the same
  // as reserving first: operands and results live together either way).
  const ReferenceOpFn *fn = lookupReferenceOp(op.name());
  std::vector<Tensor> res;
  if (llvm::Error e = (*fn)(d_.ref, op, in, res))
    return e;
  for (unsigned i = 0; i < res.size() && i < op.numResults(); ++i) {
    auto t = result(op, i, res[i].shape());
    if (!t)
      return t.takeError();
    t->data = std::move(res[i]);
    c.flops += uint64_t(t->data.numElements()); // one operation per output element
    outs.push_back(std::move(*t));
  }
  return llvm::Error::success();
}

} // namespace qlc::npu_emu
