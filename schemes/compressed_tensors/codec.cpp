#include "schemes/compressed_tensors/codec.h"

#include "schemes/common/packing.h"
#include "support/float16.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace qlc::ct {
using codec::checkShape;
using codec::notMultiple;

namespace {
int packFactor(int bits) { return 32 / bits; }
int32_t qMin(int bits) { return -(1 << (bits - 1)); }
int32_t qMax(int bits) { return (1 << (bits - 1)) - 1; }

float roundScale(float s, ScaleType t) {
  return t == ScaleType::F16 ? halfToFloat(floatToHalf(s)) : bf16ToFloat(floatToBf16(s));
}
uint16_t encodeScale(float s, ScaleType t) {
  return t == ScaleType::F16 ? floatToHalf(s) : floatToBf16(s);
}
} // namespace

int64_t numGroups(int64_t K, const Config &cfg) {
  return cfg.strategy == Strategy::Channel ? 1 : K / codec::resolveGroupSize(cfg.groupSize, K);
}

int64_t groupOf(int64_t k, int64_t K, const Config &cfg) {
  return cfg.strategy == Strategy::Channel ? 0 : k / codec::resolveGroupSize(cfg.groupSize, K);
}

std::optional<std::string> validate(int64_t K, int64_t N, const Config &cfg) {
  if (cfg.bits != 4 && cfg.bits != 8)
    return "compressed-tensors pack-quantized WNA16 supports 4 or 8 bits, not " +
           std::to_string(cfg.bits);
  if (K <= 0 || N <= 0)
    return "Linear needs positive K and N, got K = " + std::to_string(K) +
           ", N = " + std::to_string(N);
  if (cfg.strategy == Strategy::Group) {
    if (cfg.groupSize != -1 && cfg.groupSize <= 0)
      return "group size " + std::to_string(cfg.groupSize) +
             " is invalid (must be positive or -1)";
    int64_t g = codec::resolveGroupSize(cfg.groupSize, K);
    if (K % g != 0)
      return notMultiple("K", K, "group size", g);
  }
  return std::nullopt;
}

std::optional<std::string> validateShapes(std::span<const int64_t> weightPackedShape,
                                          std::span<const int64_t> weightScaleShape,
                                          std::span<const int64_t> zeroPointShape,
                                          std::span<const int64_t> gIdxShape, int64_t K, int64_t N,
                                          const Config &cfg) {
  if (auto e = validate(K, N, cfg))
    return e;
  int64_t pf = packFactor(cfg.bits), groups = numGroups(K, cfg);
  std::string pfs = std::to_string(pf);
  if (auto e = checkShape("weight_packed", weightPackedShape, {N, codec::ceilDiv(K, pf)},
                          "weight_packed is [N, ceil(K/" + pfs + ")], packed along K"))
    return e;
  if (auto e = checkShape("weight_scale", weightScaleShape, {N, groups},
                          cfg.strategy == Strategy::Channel ? "channel strategy: [N, 1]"
                                                            : "group strategy: [N, K/G]"))
    return e;
  if (cfg.symmetric && !zeroPointShape.empty())
    return std::string("weight_zero_point is present but the scheme is symmetric");
  if (!cfg.symmetric) {
    if (zeroPointShape.empty())
      return std::string("weight_zero_point is missing but the scheme is asymmetric");
    if (auto e = checkShape("weight_zero_point", zeroPointShape, {codec::ceilDiv(N, pf), groups},
                            "weight_zero_point is [ceil(N/" + pfs + "), groups], packed along N"))
      return e;
  }
  if (!gIdxShape.empty())
    if (auto e = checkShape("weight_g_idx", gIdxShape, {K}, "one group id per input column"))
      return e;
  return std::nullopt;
}

std::optional<std::string> validateWeightShape(std::span<const int64_t> weightShape, int64_t K,
                                               int64_t N) {
  return checkShape("weight_shape value", weightShape, {N, K},
                    "weight_shape records the unpadded [N, K] of the Linear");
}

std::optional<std::string> validateGIdx(std::span<const int32_t> gIdx, int64_t K,
                                        int64_t numGroups) {
  if (int64_t(gIdx.size()) != K)
    return "weight_g_idx has " + std::to_string(gIdx.size()) + " entries, expected K = " +
           std::to_string(K);
  for (int64_t k = 0; k < K; ++k)
    if (gIdx[k] < 0 || gIdx[k] >= numGroups)
      return "weight_g_idx[" + std::to_string(k) + "] = " + std::to_string(gIdx[k]) +
             " is out of range: there are " + std::to_string(numGroups) + " groups (0.." +
             std::to_string(numGroups - 1) + ")";
  return std::nullopt;
}

uint32_t toStored(int32_t q, int bits) {
  return uint32_t(q + (1 << (bits - 1))) & codec::lowMask(bits);
}
int32_t fromStored(uint32_t u, int bits) { return int32_t(u) - (1 << (bits - 1)); }

std::vector<uint32_t> packRows(std::span<const int8_t> q, int64_t R, int64_t C, int bits) {
  assert(int64_t(q.size()) == R * C);
  int64_t words = codec::streamWords(C, bits);
  std::vector<uint32_t> out(static_cast<size_t>(R * words), 0); // padding codes stay 0 (§3.2)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c)
      codec::streamPut(out.data() + r * words, 1, c, bits, toStored(q[r * C + c], bits));
  return out;
}

std::vector<int8_t> unpackRows(std::span<const uint32_t> packed, int64_t R, int64_t C, int bits) {
  int64_t words = codec::streamWords(C, bits);
  assert(int64_t(packed.size()) == R * words);
  std::vector<int8_t> out(static_cast<size_t>(R * C));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c)
      out[r * C + c] =
          int8_t(fromStored(codec::streamGet(packed.data() + r * words, 1, c, bits), bits));
  return out;
}

std::vector<uint32_t> packCols(std::span<const int8_t> q, int64_t R, int64_t C, int bits) {
  assert(int64_t(q.size()) == R * C);
  std::vector<uint32_t> out(static_cast<size_t>(codec::streamWords(R, bits) * C), 0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c)
      codec::streamPut(out.data() + c, C, r, bits, toStored(q[r * C + c], bits));
  return out;
}

std::vector<int8_t> unpackCols(std::span<const uint32_t> packed, int64_t R, int64_t C, int bits) {
  assert(int64_t(packed.size()) == codec::streamWords(R, bits) * C);
  std::vector<int8_t> out(static_cast<size_t>(R * C));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c)
      out[r * C + c] = int8_t(fromStored(codec::streamGet(packed.data() + c, C, r, bits), bits));
  return out;
}

uint32_t weightStored(const uint32_t *weightPacked, int64_t K, int64_t n, int64_t k, int bits) {
  return codec::streamGet(weightPacked + n * codec::streamWords(K, bits), 1, k, bits);
}

uint32_t zeroStored(const uint32_t *zeroPoint, int64_t groups, int64_t n, int64_t g, int bits) {
  return codec::streamGet(zeroPoint + g, groups, n, bits);
}

std::vector<float> decodeScales(std::span<const uint16_t> bits, ScaleType type) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i)
    out[i] = type == ScaleType::F16 ? halfToFloat(bits[i]) : bf16ToFloat(bits[i]);
  return out;
}

void dequantize(std::span<const uint32_t> weightPacked, std::span<const float> scales,
                std::span<const uint32_t> zeroPoint, std::span<const int32_t> gIdx, int64_t K,
                int64_t N, const Config &cfg, std::span<float> out) {
  const int bits = cfg.bits;
  int64_t groups = numGroups(K, cfg);
  assert(int64_t(weightPacked.size()) == N * codec::streamWords(K, bits));
  assert(int64_t(scales.size()) == N * groups && int64_t(out.size()) == N * K);
  assert(zeroPoint.empty() || int64_t(zeroPoint.size()) == codec::streamWords(N, bits) * groups);
  assert(gIdx.empty() || int64_t(gIdx.size()) == K);
  const int32_t offset = 1 << (bits - 1);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      int64_t g = gIdx.empty() ? groupOf(k, K, cfg) : gIdx[k];
      int32_t u = int32_t(weightStored(weightPacked.data(), K, n, k, bits));
      // Symmetric stores no zero point: the implicit one is the offset itself (uint4b8/uint8b128).
      int32_t uz = zeroPoint.empty() ? offset
                                     : int32_t(zeroStored(zeroPoint.data(), groups, n, g, bits));
      out[n * K + k] = float(u - uz) * scales[n * groups + g];
    }
}

Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N, const Config &cfg,
                    std::span<const int32_t> perm) {
  assert(int64_t(w.size()) == N * K);
  assert(perm.empty() || (int64_t(perm.size()) == K && cfg.strategy == Strategy::Group));
  const int bits = cfg.bits;
  const float qmin = float(qMin(bits)), qmax = float(qMax(bits));
  const float eps = std::numeric_limits<float>::epsilon(); // torch.finfo(float32).eps clamp
  int64_t groups = numGroups(K, cfg);
  int64_t g = cfg.strategy == Strategy::Channel ? K : codec::resolveGroupSize(cfg.groupSize, K);

  std::vector<int8_t> q(static_cast<size_t>(N * K)), zp(static_cast<size_t>(N * groups));
  Checkpoint ck;
  ck.weightScale.resize(static_cast<size_t>(N * groups));
  for (int64_t n = 0; n < N; ++n) {
    const float *row = w.data() + n * K;
    for (int64_t grp = 0; grp < groups; ++grp) {
      auto member = [&](int64_t i) { return perm.empty() ? grp * g + i : int64_t(perm[grp * g + i]); };
      float mn = 0.f, mx = 0.f; // widened to include 0 (calculate_qparams)
      for (int64_t i = 0; i < g; ++i) {
        mn = std::min(mn, row[member(i)]);
        mx = std::max(mx, row[member(i)]);
      }
      float s, z = 0.f;
      if (cfg.symmetric) {
        float d = cfg.symDivisor == SymDivisor::HalfPow2 ? float(1 << bits) / 2.f
                                                         : (qmax - qmin) / 2.f;
        s = roundScale(std::max(std::max(-mn, mx) / d, eps), cfg.scaleType);
      } else {
        s = roundScale(std::max((mx - mn) / (qmax - qmin), eps), cfg.scaleType);
        z = codec::roundHalfEven(codec::clampf(qmin - mn / s, qmin, qmax));
      }
      ck.weightScale[n * groups + grp] = encodeScale(s, cfg.scaleType);
      zp[n * groups + grp] = int8_t(z);
      for (int64_t i = 0; i < g; ++i) {
        int64_t k = member(i);
        float v = row[k] / s;
        if (!cfg.symmetric)
          v += z; // forward.py _quantize: round(x / scale + zero_point)
        q[n * K + k] = int8_t(codec::clampf(codec::roundHalfEven(v), qmin, qmax));
      }
    }
  }
  ck.weightPacked = packRows(q, N, K, bits);
  if (!cfg.symmetric)
    ck.weightZeroPoint = packCols(zp, N, groups, bits);
  if (!perm.empty()) {
    ck.weightGIdx.resize(static_cast<size_t>(K));
    for (int64_t i = 0; i < K; ++i)
      ck.weightGIdx[perm[i]] = int32_t(i / g);
  }
  ck.weightShape = {N, K};
  return ck;
}

} // namespace qlc::ct
