#include "schemes/w8a8/codec.h"

#include "schemes/common/packing.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace qlc::w8a8 {

std::optional<std::string> validate(int64_t K, int64_t N) {
  if (K <= 0 || N <= 0)
    return "W8A8 Linear needs positive K and N, got K = " + std::to_string(K) +
           ", N = " + std::to_string(N);
  if (K > kMaxExactK)
    return "K = " + std::to_string(K) + " exceeds " + std::to_string(kMaxExactK) +
           ": the int32 accumulation of 127*128 per product could overflow";
  return std::nullopt;
}

std::optional<std::string> validateShapes(std::span<const int64_t> weightShape,
                                          std::span<const int64_t> scaleShape,
                                          std::span<const int64_t> offsetShape, int64_t K,
                                          int64_t N) {
  if (auto e = validate(K, N))
    return e;
  if (auto e = codec::checkShape("weight", weightShape, {N, K}, "W8A8 weight is [N, K] int8"))
    return e;
  if (auto e = codec::checkShape("weight_scale", scaleShape, {N, 1},
                                 "one scale per output channel"))
    return e;
  if (auto e = codec::checkShape("weight_offset", offsetShape, {N, 1},
                                 "one offset per output channel"))
    return e;
  return std::nullopt;
}

std::optional<std::string> offsetWarning(std::span<const float> weightOffset) {
  for (size_t n = 0; n < weightOffset.size(); ++n)
    if (weightOffset[n] != 0.f)
      return "weight_offset[" + std::to_string(n) + "] = " + std::to_string(weightOffset[n]) +
             " is not 0, but W8A8_DYNAMIC ignores offsets (symmetric weights)";
  return std::nullopt;
}

void dequantize(std::span<const int8_t> weight, std::span<const float> scale, int64_t K, int64_t N,
                std::span<float> out) {
  assert(int64_t(weight.size()) == N * K && int64_t(scale.size()) == N &&
         int64_t(out.size()) == N * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      out[n * K + k] = float(weight[n * K + k]) * scale[n];
}

TokenQuant quantizePerToken(std::span<const float> x, int64_t M, int64_t K) {
  assert(int64_t(x.size()) == M * K);
  TokenQuant r;
  r.q.resize(static_cast<size_t>(M * K));
  r.scale.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    const float *row = x.data() + m * K;
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k)
      amax = std::max(amax, std::fabs(row[k]));
    float s = amax / 127.f;
    r.scale[m] = s;
    for (int64_t k = 0; k < K; ++k)
      r.q[m * K + k] =
          s == 0.f ? 0 : int8_t(codec::clampf(codec::roundHalfEven(row[k] / s), -127.f, 127.f));
  }
  return r;
}

std::vector<int32_t> accumulate(std::span<const int8_t> xq, std::span<const int8_t> weight,
                                int64_t M, int64_t K, int64_t N) {
  assert(int64_t(xq.size()) == M * K && int64_t(weight.size()) == N * K);
  std::vector<int32_t> acc(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t sum = 0;
      for (int64_t k = 0; k < K; ++k)
        sum += int32_t(xq[m * K + k]) * int32_t(weight[n * K + k]);
      acc[m * N + n] = sum;
    }
  return acc;
}

std::vector<float> matmul(std::span<const int8_t> xq, std::span<const float> tokenScale,
                          std::span<const int8_t> weight, std::span<const float> weightScale,
                          std::span<const float> bias, int64_t M, int64_t K, int64_t N) {
  assert(int64_t(tokenScale.size()) == M && int64_t(weightScale.size()) == N);
  assert(bias.empty() || int64_t(bias.size()) == N);
  std::vector<int32_t> acc = accumulate(xq, weight, M, K, N);
  std::vector<float> y(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double v = double(tokenScale[m]) * double(weightScale[n]) * double(acc[m * N + n]);
      if (!bias.empty())
        v += double(bias[n]);
      y[m * N + n] = float(v);
    }
  return y;
}

Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N) {
  assert(int64_t(w.size()) == N * K);
  Checkpoint ck;
  ck.weight.resize(static_cast<size_t>(N * K));
  ck.weightScale.resize(static_cast<size_t>(N));
  ck.weightOffset.assign(static_cast<size_t>(N), 0.f);
  for (int64_t n = 0; n < N; ++n) {
    const float *row = w.data() + n * K;
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k)
      amax = std::max(amax, std::fabs(row[k]));
    float s = amax > 0.f ? amax / 127.f : 1.f;
    ck.weightScale[n] = s;
    for (int64_t k = 0; k < K; ++k)
      ck.weight[n * K + k] =
          int8_t(codec::clampf(codec::roundHalfEven(row[k] / s), -127.f, 127.f));
  }
  return ck;
}

} // namespace qlc::w8a8
