#include "schemes/gptq/codec.h"

#include "schemes/common/packing.h"
#include "support/float16.h"

#include <algorithm>
#include <cassert>

namespace qlc::gptq {
using codec::checkShape;
using codec::notMultiple;

namespace {
// Codes per packing unit: pf for 2/4/8-bit, 32 values per 3 words for 3-bit (§2.1, §2.2).
int64_t packUnit(int bits) { return bits == 3 ? 32 : 32 / bits; }
bool validBits(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }
} // namespace

int64_t numGroups(int64_t K, int64_t G) { return codec::ceilDiv(K, codec::resolveGroupSize(G, K)); }
int64_t qweightRows(int64_t K, int bits) { return K * bits / 32; }
int64_t qzerosCols(int64_t N, int bits) { return N * bits / 32; }

std::optional<std::string> validate(int64_t K, int64_t N, const Config &cfg,
                                    bool requireKMultipleOfG) {
  if (!validBits(cfg.bits))
    return "GPTQ supports 2, 3, 4 or 8 bits, not " + std::to_string(cfg.bits);
  if (K <= 0 || N <= 0)
    return "GPTQ Linear needs positive K and N, got K = " + std::to_string(K) +
           ", N = " + std::to_string(N);
  int64_t unit = packUnit(cfg.bits);
  std::string how = cfg.bits == 3 ? "3-bit codes are packed 32 per 3 int32 words"
                                  : std::to_string(cfg.bits) + "-bit codes are packed " +
                                        std::to_string(unit) + " per int32";
  if (K % unit != 0)
    return notMultiple("K", K, "", unit) + " (" + how + " along K in qweight)";
  if (N % unit != 0)
    return notMultiple("N", N, "", unit) + " (" + how + " along N in qzeros)";
  if (cfg.groupSize != -1 && cfg.groupSize <= 0)
    return "group size " + std::to_string(cfg.groupSize) + " is invalid (must be positive or -1)";
  int64_t g = codec::resolveGroupSize(cfg.groupSize, K);
  if (requireKMultipleOfG && K % g != 0)
    return notMultiple("K", K, "group size", g);
  return std::nullopt;
}

std::optional<std::string> validateShapes(std::span<const int64_t> qweightShape,
                                          std::span<const int64_t> qzerosShape,
                                          std::span<const int64_t> scalesShape,
                                          std::span<const int64_t> gIdxShape, int64_t K, int64_t N,
                                          const Config &cfg) {
  if (auto e = validate(K, N, cfg))
    return e;
  int64_t groups = numGroups(K, cfg.groupSize);
  std::string b = std::to_string(cfg.bits);
  if (auto e = checkShape("qweight", qweightShape, {qweightRows(K, cfg.bits), N},
                          "GPTQ qweight is [K*" + b + "/32, N], packed along K"))
    return e;
  if (auto e = checkShape("qzeros", qzerosShape, {groups, qzerosCols(N, cfg.bits)},
                          "GPTQ qzeros is [ceil(K/G), N*" + b + "/32], packed along N"))
    return e;
  if (auto e = checkShape("scales", scalesShape, {groups, N}, "GPTQ scales is [ceil(K/G), N]"))
    return e;
  if (!gIdxShape.empty())
    if (auto e = checkShape("g_idx", gIdxShape, {K}, "GPTQ g_idx has one entry per input row"))
      return e;
  return std::nullopt;
}

std::optional<std::string> validateGIdx(std::span<const int32_t> gIdx, int64_t K,
                                        int64_t numGroups) {
  if (int64_t(gIdx.size()) != K)
    return "g_idx has " + std::to_string(gIdx.size()) + " entries, expected K = " +
           std::to_string(K);
  for (int64_t k = 0; k < K; ++k)
    if (gIdx[k] < 0 || gIdx[k] >= numGroups)
      return "g_idx[" + std::to_string(k) + "] = " + std::to_string(gIdx[k]) +
             " is out of range: there are " + std::to_string(numGroups) + " groups (0.." +
             std::to_string(numGroups - 1) + ")";
  return std::nullopt;
}

uint32_t weightCode(const uint32_t *qweight, int64_t N, int64_t k, int64_t n, int bits) {
  return codec::streamGet(qweight + n, N, k, bits); // column n is a bit stream down the rows
}

uint32_t zeroCode(const uint32_t *qzeros, int64_t N, int64_t g, int64_t n, int bits) {
  return codec::streamGet(qzeros + g * qzerosCols(N, bits), 1, n, bits);
}

std::vector<uint32_t> packAlongK(std::span<const uint8_t> codes, int64_t K, int64_t N, int bits) {
  assert(int64_t(codes.size()) == K * N && K % packUnit(bits) == 0);
  std::vector<uint32_t> out(static_cast<size_t>(qweightRows(K, bits) * N), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      codec::streamPut(out.data() + n, N, k, bits, codes[k * N + n]);
  return out;
}

std::vector<uint8_t> unpackAlongK(std::span<const uint32_t> qweight, int64_t K, int64_t N,
                                  int bits) {
  assert(int64_t(qweight.size()) == qweightRows(K, bits) * N);
  std::vector<uint8_t> out(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      out[k * N + n] = uint8_t(weightCode(qweight.data(), N, k, n, bits));
  return out;
}

std::vector<uint32_t> packAlongN(std::span<const uint8_t> codes, int64_t R, int64_t N, int bits) {
  assert(int64_t(codes.size()) == R * N && N % packUnit(bits) == 0);
  int64_t cols = qzerosCols(N, bits);
  std::vector<uint32_t> out(static_cast<size_t>(R * cols), 0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t n = 0; n < N; ++n)
      codec::streamPut(out.data() + r * cols, 1, n, bits, codes[r * N + n]);
  return out;
}

std::vector<uint8_t> unpackAlongN(std::span<const uint32_t> packed, int64_t R, int64_t N,
                                  int bits) {
  assert(int64_t(packed.size()) == R * qzerosCols(N, bits));
  std::vector<uint8_t> out(static_cast<size_t>(R * N));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t n = 0; n < N; ++n)
      out[r * N + n] = uint8_t(zeroCode(packed.data(), N, r, n, bits));
  return out;
}

std::vector<int32_t> sequentialGIdx(int64_t K, int64_t G) {
  int64_t g = codec::resolveGroupSize(G, K);
  std::vector<int32_t> idx(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k)
    idx[k] = int32_t(k / g);
  return idx;
}

std::vector<int32_t> actOrderGIdx(std::span<const int32_t> perm, int64_t G) {
  int64_t K = int64_t(perm.size());
  int64_t g = codec::resolveGroupSize(G, K);
  std::vector<int32_t> idx(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i)
    idx[perm[i]] = int32_t(i / g);
  return idx;
}

void dequantize(std::span<const uint32_t> qweight, std::span<const uint32_t> qzeros,
                std::span<const uint16_t> scales, std::span<const int32_t> gIdx, int64_t K,
                int64_t N, const Config &cfg, std::span<float> out) {
  int64_t g = codec::resolveGroupSize(cfg.groupSize, K);
  int64_t groups = numGroups(K, cfg.groupSize);
  assert(int64_t(qweight.size()) == qweightRows(K, cfg.bits) * N);
  assert(int64_t(qzeros.size()) == groups * qzerosCols(N, cfg.bits));
  assert(int64_t(scales.size()) == groups * N && int64_t(out.size()) == N * K);
  assert(gIdx.empty() || int64_t(gIdx.size()) == K);
  (void)groups;
  const int32_t zeroOffset = cfg.format == Format::V1 ? 1 : 0; // vLLM q_gemm.cu zero_offset
  for (int64_t k = 0; k < K; ++k) {
    int64_t grp = gIdx.empty() ? k / g : gIdx[k];
    for (int64_t n = 0; n < N; ++n) {
      int32_t q = int32_t(weightCode(qweight.data(), N, k, n, cfg.bits));
      int32_t z = int32_t(zeroCode(qzeros.data(), N, grp, n, cfg.bits)) + zeroOffset;
      out[n * K + k] = halfToFloat(scales[grp * N + n]) * float(q - z);
    }
  }
}

Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N, const Config &cfg,
                    std::span<const int32_t> perm, bool staticGroups) {
  assert(int64_t(w.size()) == N * K && (perm.empty() || int64_t(perm.size()) == K));
  const int bits = cfg.bits;
  const float maxq = float((1 << bits) - 1);
  int64_t g = codec::resolveGroupSize(cfg.groupSize, K);
  int64_t groups = numGroups(K, cfg.groupSize);

  // Member rows of each group, in the order the groups are cut (§2.4).
  std::vector<int32_t> order(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i)
    order[i] = (perm.empty() || staticGroups) ? int32_t(i) : perm[i];

  std::vector<uint8_t> codes(static_cast<size_t>(K * N)), zeros(static_cast<size_t>(groups * N));
  Checkpoint ck;
  ck.scales.resize(static_cast<size_t>(groups * N));
  for (int64_t grp = 0; grp < groups; ++grp) {
    int64_t begin = grp * g, end = std::min(K, begin + g);
    for (int64_t n = 0; n < N; ++n) {
      const float *row = w.data() + n * K;
      float xmin = 0.f, xmax = 0.f; // find_params widens the range to include 0
      for (int64_t i = begin; i < end; ++i) {
        xmin = std::min(xmin, row[order[i]]);
        xmax = std::max(xmax, row[order[i]]);
      }
      if (cfg.sym) {
        xmax = std::max(-xmin, xmax);
        xmin = -xmax;
      }
      if (xmin == 0.f && xmax == 0.f) {
        xmin = -1.f;
        xmax = 1.f;
      }
      float s = halfToFloat(floatToHalf((xmax - xmin) / maxq));
      float z = cfg.sym ? float((1 << bits) / 2) : codec::roundHalfEven(-xmin / s);
      if (!cfg.sym && cfg.format == Format::V1 && z == 0.f) {
        // v1 stores z − 1; −1 is unrepresentable (§2.3). Refit with z = 1 (see header).
        z = 1.f;
        s = halfToFloat(floatToHalf(xmax / (maxq - 1.f)));
      }
      ck.scales[grp * N + n] = floatToHalf(s);
      zeros[grp * N + n] = uint8_t(cfg.format == Format::V1 ? z - 1.f : z);
      for (int64_t i = begin; i < end; ++i) {
        int64_t k = order[i];
        codes[k * N + n] = uint8_t(codec::clampf(codec::roundHalfEven(row[k] / s) + z, 0.f, maxq));
      }
    }
  }
  ck.qweight = packAlongK(codes, K, N, bits);
  ck.qzeros = packAlongN(zeros, groups, N, bits);
  ck.gIdx = (perm.empty() || staticGroups) ? sequentialGIdx(K, cfg.groupSize)
                                            : actOrderGIdx(perm, cfg.groupSize);
  return ck;
}

} // namespace qlc::gptq
