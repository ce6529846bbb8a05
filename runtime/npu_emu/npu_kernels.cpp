#include "runtime/npu_emu/npu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "support/float16.h"

namespace qlc::npu_emu {

void decodeFloats(const uint8_t *bytes, ElemKind elem, int64_t count, float *out) {
  if (elem == ElemKind::F32) {
    std::memcpy(out, bytes, size_t(count) * 4);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    out[i] = elem == ElemKind::BF16 ? bf16ToFloat(h) : halfToFloat(h);
  }
}

void roundTo(ElemKind elem, float *v, int64_t count) {
  if (elem == ElemKind::F16)
    for (int64_t i = 0; i < count; ++i)
      v[i] = halfToFloat(floatToHalf(v[i]));
  else if (elem == ElemKind::BF16)
    for (int64_t i = 0; i < count; ++i)
      v[i] = bf16ToFloat(floatToBf16(v[i]));
}

namespace {

float floatAt(const uint8_t *bytes, ElemKind elem, int64_t i) {
  if (elem == ElemKind::F32) {
    float f;
    std::memcpy(&f, bytes + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, bytes + 2 * i, 2);
  return elem == ElemKind::BF16 ? bf16ToFloat(h) : halfToFloat(h);
}

} // namespace

void AntiquantWeight::row(int64_t e, int64_t kk, float *out) const {
  const int64_t groups = k / group, g = kk / group;
  const int64_t param = (e * groups + g) * n; // first antiquant parameter of this row
  if (layout == CodeLayout::Int4InInt32) {
    const uint8_t *words = codes + 4 * ((e * k + kk) * (n / 8));
    for (int64_t c = 0; c < n / 8; ++c) {
      uint32_t word;
      std::memcpy(&word, words + 4 * c, 4);
      for (int j = 0; j < 8; ++j) {
        int32_t v = int32_t((word >> (4 * j)) & 0xFu);
        out[8 * c + j] = float(v >= 8 ? v - 16 : v); // two's complement int4 (§5.1)
      }
    }
  } else {
    const auto *q = reinterpret_cast<const int8_t *>(codes) + (e * k + kk) * n;
    for (int64_t c = 0; c < n; ++c)
      out[c] = float(q[c]);
  }
  // AscendAntiQuant: dst = scale * (src + offset), the sum formed first (exact: small integers).
  for (int64_t c = 0; c < n; ++c) {
    float v = offset ? out[c] + floatAt(offset, paramElem, param + c) : out[c];
    out[c] = v * floatAt(scale, paramElem, param + c);
  }
}

void DenseWeight::row(int64_t e, int64_t kk, float *out) const {
  const int64_t base = e * n * k + kk;
  for (int64_t c = 0; c < n; ++c)
    out[c] = floatAt(data, elem, base + c * k);
}

void GateUpWeight::row(int64_t e, int64_t kk, float *out) const {
  gate.row(e, kk, out);
  up.row(e, kk, out + gate.n);
}

template <typename Weight>
uint64_t matmul(const float *x, int64_t rows, const Weight &w, int64_t expert, ElemKind computeElem,
                const float *bias, float *y) {
  const int64_t n = w.n, k = w.k;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c)
      y[r * n + c] = 0.f;
  std::vector<float> wrow(static_cast<size_t>(n));
  for (int64_t kk = 0; kk < k; ++kk) {
    w.row(expert, kk, wrow.data());
    roundTo(computeElem, wrow.data(), n);
    for (int64_t r = 0; r < rows; ++r) {
      const float xv = x[r * k + kk];
      float *yr = y + r * n;
      for (int64_t c = 0; c < n; ++c)
        yr[c] += xv * wrow[size_t(c)];
    }
  }
  if (bias)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < n; ++c)
        y[r * n + c] += bias[c];
  return uint64_t(2 * rows * n * k + (bias ? rows * n : 0));
}

template uint64_t matmul<AntiquantWeight>(const float *, int64_t, const AntiquantWeight &, int64_t,
                                          ElemKind, const float *, float *);
template uint64_t matmul<DenseWeight>(const float *, int64_t, const DenseWeight &, int64_t,
                                      ElemKind, const float *, float *);
template uint64_t matmul<GateUpWeight>(const float *, int64_t, const GateUpWeight &, int64_t,
                                       ElemKind, const float *, float *);

uint64_t weightQuantBatchMatmul(const float *x, int64_t rows, const AntiquantWeight &w,
                                const float *bias, ElemKind xElem, float *y) {
  return matmul(x, rows, w, 0, xElem, bias, y);
}

uint64_t gatingTopK(const float *logits, int64_t tokens, int64_t experts, int64_t topK,
                    bool renormalize, float *weights, int64_t *ids) {
  std::vector<float> probs(static_cast<size_t>(experts));
  std::vector<int64_t> order(static_cast<size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    const float *l = logits + t * experts;
    const float mx = *std::max_element(l, l + experts);
    float sum = 0.f;
    for (int64_t e = 0; e < experts; ++e)
      sum += probs[size_t(e)] = std::exp(l[e] - mx);
    // Softmax is monotonic: choosing on the logits picks the same experts without the rounding of
    // the probabilities (stable: equal logits keep the lower expert first).
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l[a] > l[b]; });
    float chosen = 0.f;
    for (int64_t j = 0; j < topK; ++j)
      chosen += probs[size_t(order[size_t(j)])];
    const float denom = renormalize ? chosen : sum;
    for (int64_t j = 0; j < topK; ++j) {
      ids[t * topK + j] = order[size_t(j)];
      weights[t * topK + j] = probs[size_t(order[size_t(j)])] / denom;
    }
  }
  return uint64_t(tokens * (3 * experts + topK));
}

ExpandedRows initRouting(const int64_t *ids, int64_t tokens, int64_t topK, int64_t experts) {
  const int64_t rows = tokens * topK;
  std::vector<int64_t> sorted(static_cast<size_t>(rows)); // position -> flat index t·k + j
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](int64_t a, int64_t b) { return ids[a] < ids[b]; });
  ExpandedRows r;
  r.sourceToken.resize(size_t(rows));
  r.srcToDst.resize(size_t(rows));
  r.groupEnd.assign(size_t(experts), 0);
  for (int64_t pos = 0; pos < rows; ++pos) {
    const int64_t flat = sorted[size_t(pos)], t = flat / topK, j = flat % topK;
    r.sourceToken[size_t(pos)] = t;
    r.srcToDst[size_t(j * tokens + t)] = pos; // sglang row_idx[t, j] = j·T + t
    ++r.groupEnd[size_t(ids[flat])];
  }
  std::partial_sum(r.groupEnd.begin(), r.groupEnd.end(), r.groupEnd.begin());
  return r;
}

uint64_t fusedExpertsWorkspaceBytes(int64_t tokens, int64_t topK, int64_t hidden,
                                    int64_t intermediate) {
  const int64_t rows = tokens * topK;
  return uint64_t(4 * rows * (hidden + 2 * intermediate + intermediate + hidden));
}

namespace {

/// npu_grouped_matmul (group_type = 0, split_item = 2): rows of group e use expert e.
template <typename Weight>
uint64_t groupedMatmul(const float *x, const std::vector<int64_t> &groupEnd, const Weight &w,
                       ElemKind computeElem, float *y) {
  uint64_t flops = 0;
  int64_t begin = 0;
  for (size_t e = 0; e < groupEnd.size(); ++e) {
    const int64_t rows = groupEnd[e] - begin;
    if (rows > 0)
      flops += matmul(x + begin * w.k, rows, w, int64_t(e), computeElem, nullptr, y + begin * w.n);
    begin = groupEnd[e];
  }
  return flops;
}

float activate(Activation act, float v) {
  if (act == Activation::Gelu)
    return 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
  return v / (1.f + std::exp(-v));
}

} // namespace

template <typename W13, typename W2>
uint64_t fusedExperts(const float *x, int64_t tokens, int64_t hidden, const float *topkWeights,
                      const int64_t *topkIds, int64_t topK, const W13 &w13, const W2 &w2,
                      int64_t intermediate, Activation act, ElemKind computeElem, float *y) {
  const int64_t rows = tokens * topK, inter = intermediate;
  // 1. init_routing: copy each token's row to its sorted positions.
  ExpandedRows routes = initRouting(topkIds, tokens, topK, w13.experts);
  std::vector<float> expanded(size_t(rows * hidden));
  for (int64_t pos = 0; pos < rows; ++pos)
    std::copy_n(x + routes.sourceToken[size_t(pos)] * hidden, hidden,
                expanded.data() + pos * hidden);
  // 2. grouped matmul with w13: [rows, 2I].
  std::vector<float> gmm1(size_t(rows * 2 * inter));
  uint64_t flops = groupedMatmul(expanded.data(), routes.groupEnd, w13, computeElem, gmm1.data());
  roundTo(computeElem, gmm1.data(), rows * 2 * inter);
  // 3. swiglu: act(first half) * second half.
  std::vector<float> a(size_t(rows * inter));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < inter; ++i)
      a[size_t(r * inter + i)] =
          activate(act, gmm1[size_t(r * 2 * inter + i)]) * gmm1[size_t(r * 2 * inter + inter + i)];
  roundTo(computeElem, a.data(), rows * inter);
  flops += uint64_t(6 * rows * inter);
  // 4. grouped matmul with w2: [rows, H].
  std::vector<float> gmm2(size_t(rows * hidden));
  flops += groupedMatmul(a.data(), routes.groupEnd, w2, computeElem, gmm2.data());
  roundTo(computeElem, gmm2.data(), rows * hidden);
  // 5. finalize_routing: y[t] = Σ_j topk_weights[t][j] · gmm2[dst(j·T + t)], f32.
  for (int64_t t = 0; t < tokens; ++t) {
    float *yt = y + t * hidden;
    std::fill_n(yt, hidden, 0.f);
    for (int64_t j = 0; j < topK; ++j) {
      const float wgt = topkWeights[t * topK + j];
      const float *src = gmm2.data() + routes.srcToDst[size_t(j * tokens + t)] * hidden;
      for (int64_t i = 0; i < hidden; ++i)
        yt[i] += wgt * src[i];
    }
  }
  return flops + uint64_t(2 * rows * hidden);
}

#define QLC_FUSED_EXPERTS(W13, W2)                                                                 \
  template uint64_t fusedExperts<W13, W2>(const float *, int64_t, int64_t, const float *,          \
                                          const int64_t *, int64_t, const W13 &, const W2 &,       \
                                          int64_t, Activation, ElemKind, float *);
QLC_FUSED_EXPERTS(AntiquantWeight, AntiquantWeight)
QLC_FUSED_EXPERTS(DenseWeight, DenseWeight)
QLC_FUSED_EXPERTS(GateUpWeight, DenseWeight)
#undef QLC_FUSED_EXPERTS

uint64_t dynamicQuant(const float *x, int64_t rows, int64_t k, int8_t *q, float *scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * k;
    float amax = 0.f;
    for (int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::fabs(xr[i]));
    const float s = amax / 127.f;
    scale[r] = s;
    for (int64_t i = 0; i < k; ++i) {
      const float v = s == 0.f ? 0.f : std::nearbyint(xr[i] / s);
      q[r * k + i] = int8_t(std::clamp(v, -127.f, 127.f));
    }
  }
  return uint64_t(3 * rows * k);
}

uint64_t quantMatmul(const int8_t *q, const float *pertokenScale, int64_t rows, int64_t k,
                     const int8_t *w, const float *weightScale, int64_t n, const float *bias,
                     float *y) {
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (int64_t m = 0; m < rows; ++m) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int64_t kk = 0; kk < k; ++kk) {
      const int32_t xv = q[m * k + kk];
      const int8_t *wr = w + kk * n;
      for (int64_t c = 0; c < n; ++c)
        acc[size_t(c)] += xv * int32_t(wr[c]);
    }
    // Dequant on the vector unit in f32: acc · scale[n] · pertoken[m], then the bias.
    for (int64_t c = 0; c < n; ++c) {
      float v = float(acc[size_t(c)]) * weightScale[c] * pertokenScale[m];
      y[m * n + c] = bias ? v + bias[c] : v;
    }
  }
  return uint64_t(2 * rows * n * k + 3 * rows * n);
}

uint64_t rmsNorm(const float *x, int64_t rows, int64_t d, const float *w, float eps, float *y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * d;
    float ms = 0.f;
    for (int64_t i = 0; i < d; ++i)
      ms += xr[i] * xr[i];
    const float inv = 1.f / std::sqrt(ms / float(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      y[r * d + i] = xr[i] * inv * w[i];
  }
  return uint64_t(4 * rows * d);
}

} // namespace qlc::npu_emu
