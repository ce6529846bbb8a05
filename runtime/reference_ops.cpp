// Reference semantics of the core ops (docs/ir.md), written for clarity: f32 storage, f64
// accumulation, results rounded to each result's element type.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

#include "runtime/moe_routing.h"
#include "runtime/reference_executor.h"

namespace qlc {
namespace {

using Inputs = std::vector<const Tensor *>;
using Outputs = std::vector<Tensor>;

ElemKind resultElem(const Operation &op, unsigned i = 0) { return op.result(i)->type().elem; }

int64_t product(const std::vector<int64_t> &s, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t n = 1;
  for (size_t i = from; i < std::min(to, s.size()); ++i)
    n *= s[i];
  return n;
}

/// y[r, n] = sum_k x[r, k] * w[n, k] (+ bias[n]); x is [rows, K], w is [N, K].
void linearRows(const float *x, int64_t rows, int64_t k, const float *w, int64_t n,
                const float *bias, float *y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      const float *xr = x + r * k, *wj = w + j * k;
      for (int64_t i = 0; i < k; ++i)
        acc += double(xr[i]) * double(wj[i]);
      y[r * n + j] = float(acc);
    }
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double geluExact(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }
double geluTanh(double v) {
  return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}

llvm::Error linear(ReferenceExecutor &ex, const Operation &op, const Inputs &in, Outputs &out) {
  const Tensor &x = *in[0];
  auto w = ex.weight(op.symbols()[0]);
  if (!w)
    return w.takeError();
  const Weight *wd = ex.module().lookupWeight(op.symbols()[0]);
  std::vector<int64_t> ws = wd->logicalShape();
  int64_t n = ws[0], k = ws[1];
  if (x.shape().back() != k)
    return opError(op, "input has K = " + llvm::Twine(x.shape().back()) + ", weight has K = " +
                           llvm::Twine(k));
  const std::vector<float> *bias = nullptr;
  if (op.symbols().size() == 2) {
    auto b = ex.weight(op.symbols()[1]);
    if (!b)
      return b.takeError();
    bias = *b;
  }
  std::vector<float> xf = x.toF32();
  int64_t rows = product(x.shape(), 0, x.shape().size() - 1);
  std::vector<float> y(size_t(rows * n));
  linearRows(xf.data(), rows, k, (*w)->data(), n, bias ? bias->data() : nullptr, y.data());
  std::vector<int64_t> shape = x.shape();
  shape.back() = n;
  out.push_back(Tensor::fromF32As(resultElem(op), shape, y));
  return llvm::Error::success();
}

llvm::Error moe(ReferenceExecutor &ex, const Operation &op, const Inputs &in, Outputs &out) {
  const Tensor &x = *in[0], &logitsT = *in[1];
  bool unfused = op.symbols().size() == 3;
  const Module &m = ex.module();
  const Weight *wGate = m.lookupWeight(op.symbols()[0]);
  const Weight *wDown = m.lookupWeight(op.symbols()[unfused ? 2 : 1]);
  int64_t e = wGate->experts();
  std::vector<int64_t> sd = wDown->logicalShape(); // [E, H, I]
  int64_t h = sd[1], inter = sd[2];
  int64_t t = x.shape()[0];
  if (x.shape()[1] != h || logitsT.shape()[0] != t || logitsT.shape()[1] != e)
    return opError(op, "operand shapes do not match the experts");
  auto gateW = ex.weight(op.symbols()[0]);
  if (!gateW)
    return gateW.takeError();
  const std::vector<float> *upW = nullptr;
  if (unfused) {
    auto u = ex.weight(op.symbols()[1]);
    if (!u)
      return u.takeError();
    upW = *u;
  }
  auto downW = ex.weight(op.symbols()[unfused ? 2 : 1]);
  if (!downW)
    return downW.takeError();
  int64_t topK = op.attr("top_k")->getInt();
  const Attribute *ren = op.attr("renormalize");
  bool renormalize = ren && ren->getBool();
  const Attribute *act = op.attr("activation");
  bool gelu = act && act->getIdent() == "gelu";

  std::vector<float> xf = x.toF32(), lf = logitsT.toF32();
  std::vector<float> y(size_t(t * h), 0.0f);
  MoeRoutes routes = routeTopK(lf.data(), t, e, topK, renormalize);
  const size_t ni = static_cast<size_t>(inter);
  std::vector<float> g(ni), u(ni), act_(ni), o(static_cast<size_t>(h));
  for (int64_t tok = 0; tok < t; ++tok) {
    const float *xr = xf.data() + tok * h;
    std::vector<double> acc(static_cast<size_t>(h), 0.0);
    for (int64_t j = 0; j < topK; ++j) {
      int64_t ex_ = routes.expert[size_t(tok * topK + j)];
      double weight = routes.weight[size_t(tok * topK + j)];
      const float *gate, *up;
      if (unfused) {
        gate = (*gateW)->data() + ex_ * inter * h;
        up = upW->data() + ex_ * inter * h;
      } else { // w13 = [gate ; up] per expert
        gate = (*gateW)->data() + ex_ * 2 * inter * h;
        up = gate + inter * h;
      }
      linearRows(xr, 1, h, gate, inter, nullptr, g.data());
      linearRows(xr, 1, h, up, inter, nullptr, u.data());
      for (int64_t i = 0; i < inter; ++i)
        act_[size_t(i)] = float((gelu ? geluExact(g[size_t(i)]) : silu(g[size_t(i)])) * u[size_t(i)]);
      linearRows(act_.data(), 1, inter, (*downW)->data() + ex_ * h * inter, h, nullptr, o.data());
      for (int64_t i = 0; i < h; ++i)
        acc[size_t(i)] += weight * o[size_t(i)];
    }
    for (int64_t i = 0; i < h; ++i)
      y[size_t(tok * h + i)] = float(acc[size_t(i)]);
  }
  out.push_back(Tensor::fromF32As(resultElem(op), {t, h}, y));
  return llvm::Error::success();
}

llvm::Error embedding(ReferenceExecutor &ex, const Operation &op, const Inputs &in, Outputs &out) {
  const Tensor &ids = *in[0];
  auto w = ex.weight(op.symbols()[0]);
  if (!w)
    return w.takeError();
  std::vector<int64_t> ws = ex.module().lookupWeight(op.symbols()[0])->logicalShape();
  int64_t vocab = ws[0], d = ws[1];
  std::vector<float> idf = ids.toF32();
  std::vector<float> y(idf.size() * size_t(d));
  for (size_t i = 0; i < idf.size(); ++i) {
    int64_t id = int64_t(idf[i]);
    if (id < 0 || id >= vocab)
      return opError(op, "id " + llvm::Twine(id) + " at position " + llvm::Twine(i) +
                             " is outside the vocabulary [0, " + llvm::Twine(vocab) + ")");
    std::copy_n((*w)->data() + id * d, d, y.data() + i * size_t(d));
  }
  std::vector<int64_t> shape = ids.shape();
  shape.push_back(d);
  out.push_back(Tensor::fromF32As(resultElem(op), shape, y));
  return llvm::Error::success();
}

llvm::Error matmul(ReferenceExecutor &, const Operation &op, const Inputs &in, Outputs &out) {
  const Tensor &a = *in[0], &b = *in[1];
  const auto &as = a.shape(), &bs = b.shape();
  int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k)
    return opError(op, "contraction mismatch at run time");
  int64_t batch = product(as, 0, as.size() - 2);
  bool batchedB = bs.size() == as.size() && bs.size() > 2;
  if (batchedB && product(bs, 0, bs.size() - 2) != batch)
    return opError(op, "batch dims differ at run time");
  std::vector<float> af = a.toF32(), bf = b.toF32(), y(size_t(batch * m * n));
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        const float *ar = af.data() + (p * m + i) * k;
        const float *bb = bf.data() + (batchedB ? p * k * n : 0);
        for (int64_t q = 0; q < k; ++q)
          acc += double(ar[q]) * double(bb[q * n + j]);
        y[size_t((p * m + i) * n + j)] = float(acc);
      }
  std::vector<int64_t> shape = as;
  shape.back() = n;
  out.push_back(Tensor::fromF32As(resultElem(op), shape, y));
  return llvm::Error::success();
}

template <typename F>
llvm::Error broadcast(const Operation &op, const Inputs &in, Outputs &out, F f) {
  const auto &as = in[0]->shape(), &bs = in[1]->shape();
  size_t rank = std::max(as.size(), bs.size());
  std::vector<int64_t> a(rank, 1), b(rank, 1), shape(rank);
  std::copy(as.begin(), as.end(), a.begin() + (rank - as.size()));
  std::copy(bs.begin(), bs.end(), b.begin() + (rank - bs.size()));
  for (size_t i = 0; i < rank; ++i) {
    if (a[i] != b[i] && a[i] != 1 && b[i] != 1)
      return opError(op, "shapes do not broadcast at run time");
    shape[i] = std::max(a[i], b[i]);
  }
  std::vector<float> af = in[0]->toF32(), bf = in[1]->toF32();
  int64_t total = product(shape);
  std::vector<float> y(static_cast<size_t>(total));
  std::vector<int64_t> idx(rank, 0);
  for (int64_t lin = 0; lin < total; ++lin) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < rank; ++d) {
      ia = ia * a[d] + (a[d] == 1 ? 0 : idx[d]);
      ib = ib * b[d] + (b[d] == 1 ? 0 : idx[d]);
    }
    y[size_t(lin)] = float(f(double(af[size_t(ia)]), double(bf[size_t(ib)])));
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < shape[d])
        break;
      idx[d] = 0;
    }
  }
  out.push_back(Tensor::fromF32As(resultElem(op), shape, y));
  return llvm::Error::success();
}

template <typename F> llvm::Error unaryOp(const Operation &op, const Inputs &in, Outputs &out, F f) {
  std::vector<float> x = in[0]->toF32();
  for (float &v : x)
    v = float(f(double(v)));
  out.push_back(Tensor::fromF32As(resultElem(op), in[0]->shape(), x));
  return llvm::Error::success();
}

llvm::Error softmax(ReferenceExecutor &, const Operation &op, const Inputs &in, Outputs &out) {
  const auto &s = in[0]->shape();
  const Attribute *ax = op.attr("axis");
  int64_t axis = ax ? ax->getInt() : -1;
  if (axis < 0)
    axis += int64_t(s.size());
  int64_t outer = product(s, 0, size_t(axis)), len = s[size_t(axis)],
          inner = product(s, size_t(axis) + 1);
  std::vector<float> x = in[0]->toF32();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) -> float & { return x[size_t((o * len + j) * inner + i)]; };
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < len; ++j)
        mx = std::max(mx, double(at(j)));
      std::vector<double> e(static_cast<size_t>(len));
      for (int64_t j = 0; j < len; ++j)
        sum += e[size_t(j)] = std::exp(double(at(j)) - mx);
      for (int64_t j = 0; j < len; ++j)
        at(j) = float(e[size_t(j)] / sum);
    }
  out.push_back(Tensor::fromF32As(resultElem(op), s, x));
  return llvm::Error::success();
}

llvm::Error topk(ReferenceExecutor &, const Operation &op, const Inputs &in, Outputs &out) {
  const auto &s = in[0]->shape();
  int64_t k = op.attr("k")->getInt(), len = s.back(), rows = product(s, 0, s.size() - 1);
  if (k > len)
    return opError(op, "k = " + llvm::Twine(k) + " exceeds the axis length " + llvm::Twine(len));
  std::vector<float> x = in[0]->toF32(), vals(size_t(rows * k)), idx(size_t(rows * k));
  std::vector<int64_t> order(static_cast<size_t>(len));
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x.data() + r * len;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return xr[a] > xr[b]; });
    for (int64_t j = 0; j < k; ++j) {
      vals[size_t(r * k + j)] = xr[order[size_t(j)]];
      idx[size_t(r * k + j)] = float(order[size_t(j)]);
    }
  }
  std::vector<int64_t> shape = s;
  shape.back() = k;
  out.push_back(Tensor::fromF32As(resultElem(op, 0), shape, vals));
  out.push_back(Tensor::fromF32As(resultElem(op, 1), shape, idx));
  return llvm::Error::success();
}

llvm::Error rmsNorm(ReferenceExecutor &ex, const Operation &op, const Inputs &in, Outputs &out) {
  auto w = ex.weight(op.symbols()[0]);
  if (!w)
    return w.takeError();
  const Attribute *epsA = op.attr("eps");
  double eps = epsA ? epsA->getNumber() : 1e-6;
  const auto &s = in[0]->shape();
  int64_t d = s.back(), rows = product(s, 0, s.size() - 1);
  std::vector<float> x = in[0]->toF32();
  for (int64_t r = 0; r < rows; ++r) {
    float *xr = x.data() + r * d;
    double ms = 0;
    for (int64_t i = 0; i < d; ++i)
      ms += double(xr[i]) * xr[i];
    double inv = 1.0 / std::sqrt(ms / double(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      xr[i] = float(xr[i] * inv * (**w)[size_t(i)]);
  }
  out.push_back(Tensor::fromF32As(resultElem(op), s, x));
  return llvm::Error::success();
}

llvm::Error reshape(ReferenceExecutor &, const Operation &op, const Inputs &in, Outputs &out) {
  std::vector<int64_t> shape = op.result(0)->type().dims;
  int64_t known = 1, dyn = -1;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == TensorType::kDynamic)
      dyn = int64_t(i);
    else
      known *= shape[i];
  int64_t total = in[0]->numElements();
  if (dyn >= 0) {
    if (known == 0 || total % known)
      return opError(op, "cannot reshape " + in[0]->typeStr() + " to " +
                             op.result(0)->type().str());
    shape[size_t(dyn)] = total / known;
  } else if (known != total) {
    return opError(op, "cannot reshape " + in[0]->typeStr() + " to " + op.result(0)->type().str());
  }
  out.push_back(Tensor::fromF32As(resultElem(op), shape, in[0]->toF32()));
  return llvm::Error::success();
}

} // namespace

llvm::Error referenceLinear(ReferenceExecutor &ex, const Operation &op, const Inputs &in,
                            Outputs &out) {
  return linear(ex, op, in, out);
}
llvm::Error referenceMoe(ReferenceExecutor &ex, const Operation &op, const Inputs &in, Outputs &out) {
  return moe(ex, op, in, out);
}

void registerCoreReferenceOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerReferenceOp("linear", linear);
    registerReferenceOp("moe", moe);
    registerReferenceOp("embedding", embedding);
    registerReferenceOp("matmul", matmul);
    registerReferenceOp("add", [](ReferenceExecutor &, const Operation &op, const Inputs &in,
                                  Outputs &out) {
      return broadcast(op, in, out, [](double a, double b) { return a + b; });
    });
    registerReferenceOp("mul", [](ReferenceExecutor &, const Operation &op, const Inputs &in,
                                  Outputs &out) {
      return broadcast(op, in, out, [](double a, double b) { return a * b; });
    });
    registerReferenceOp("silu", [](ReferenceExecutor &, const Operation &op, const Inputs &in,
                                   Outputs &out) { return unaryOp(op, in, out, silu); });
    registerReferenceOp("gelu", [](ReferenceExecutor &, const Operation &op, const Inputs &in,
                                   Outputs &out) {
      const Attribute *a = op.attr("approximate");
      bool tanhForm = a && a->getIdent() == "tanh";
      return unaryOp(op, in, out, tanhForm ? geluTanh : geluExact);
    });
    registerReferenceOp("softmax", softmax);
    registerReferenceOp("topk", topk);
    registerReferenceOp("rms_norm", rmsNorm);
    registerReferenceOp("convert", [](ReferenceExecutor &, const Operation &op, const Inputs &in,
                                      Outputs &out) {
      out.push_back(Tensor::fromF32As(resultElem(op), in[0]->shape(), in[0]->toF32()));
      return llvm::Error::success();
    });
    registerReferenceOp("reshape", reshape);
  });
}

} // namespace qlc
