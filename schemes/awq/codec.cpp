#include "schemes/awq/codec.h"

#include "schemes/common/packing.h"
#include "support/float16.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace qlc::awq {
using codec::checkShape;
using codec::notMultiple;

namespace {
int perWord(int bits) { return 32 / bits; }

// Slot (nibble / byte index) inside its word that holds column n (§1.2).
int slotOf(int64_t n, int bits) {
  return bits == 4 ? kReverse4[n % 8] : kOrder8[n % 4]; // kOrder8 is its own inverse
}
} // namespace

std::optional<std::string> validate(int64_t K, int64_t N, int64_t G, int bits) {
  if (bits != 4 && bits != 8)
    return "AWQ supports 4-bit codes (and 8-bit for awq_marlin), not " + std::to_string(bits) +
           "-bit";
  if (K <= 0 || N <= 0)
    return "AWQ Linear needs positive K and N, got K = " + std::to_string(K) +
           ", N = " + std::to_string(N);
  if (N % perWord(bits) != 0)
    return notMultiple("N", N, "", perWord(bits)) + " (AWQ packs " +
           std::to_string(perWord(bits)) + " " + std::to_string(bits) +
           "-bit codes per int32 along the output dimension)";
  if (G != -1 && G <= 0)
    return "group size " + std::to_string(G) + " is invalid (must be positive or -1)";
  int64_t g = codec::resolveGroupSize(G, K);
  if (K % g != 0)
    return notMultiple("K", K, "group size", g);
  return std::nullopt;
}

std::optional<std::string> validateShapes(std::span<const int64_t> qweightShape,
                                          std::span<const int64_t> qzerosShape,
                                          std::span<const int64_t> scalesShape, int64_t K,
                                          int64_t N, int64_t G, int bits) {
  if (auto e = validate(K, N, G, bits))
    return e;
  int64_t groups = K / codec::resolveGroupSize(G, K);
  int64_t words = N / perWord(bits);
  if (auto e = checkShape("qweight", qweightShape, {K, words}, "AWQ qweight is [K, N/" +
                                                                   std::to_string(perWord(bits)) +
                                                                   "]"))
    return e;
  if (auto e = checkShape("qzeros", qzerosShape, {groups, words},
                          "AWQ qzeros is [K/G, N/" + std::to_string(perWord(bits)) + "]"))
    return e;
  if (auto e = checkShape("scales", scalesShape, {groups, N}, "AWQ scales is [K/G, N]"))
    return e;
  return std::nullopt;
}

uint32_t unpackCode(const uint32_t *packed, int64_t N, int64_t row, int64_t n, int bits) {
  int pw = perWord(bits);
  uint32_t word = packed[row * (N / pw) + n / pw];
  return (word >> (bits * slotOf(n, bits))) & codec::lowMask(bits);
}

std::vector<uint32_t> packAwq(std::span<const uint8_t> codes, int64_t rows, int64_t N, int bits) {
  int pw = perWord(bits);
  int64_t words = N / pw;
  assert(int64_t(codes.size()) == rows * N && N % pw == 0);
  std::vector<uint32_t> out(static_cast<size_t>(rows * words), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      out[r * words + n / pw] |= (uint32_t(codes[r * N + n]) & codec::lowMask(bits))
                                 << (bits * slotOf(n, bits));
  return out;
}

std::vector<uint8_t> unpackAwq(std::span<const uint32_t> packed, int64_t rows, int64_t N,
                               int bits) {
  assert(int64_t(packed.size()) == rows * (N / perWord(bits)));
  std::vector<uint8_t> out(static_cast<size_t>(rows * N));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      out[r * N + n] = uint8_t(unpackCode(packed.data(), N, r, n, bits));
  return out;
}

void dequantize(std::span<const uint32_t> qweight, std::span<const uint32_t> qzeros,
                std::span<const uint16_t> scales, int64_t K, int64_t N, int64_t G,
                std::span<float> out, int bits) {
  int64_t g = codec::resolveGroupSize(G, K);
  int64_t words = N / perWord(bits);
  assert(int64_t(qweight.size()) == K * words && int64_t(qzeros.size()) == (K / g) * words);
  assert(int64_t(scales.size()) == (K / g) * N && int64_t(out.size()) == N * K);
  (void)words;
  for (int64_t k = 0; k < K; ++k) {
    int64_t grp = k / g;
    for (int64_t n = 0; n < N; ++n) {
      int32_t q = int32_t(unpackCode(qweight.data(), N, k, n, bits));
      int32_t z = int32_t(unpackCode(qzeros.data(), N, grp, n, bits));
      out[n * K + k] = float(q - z) * halfToFloat(scales[grp * N + n]);
    }
  }
}

Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N, int64_t G, int bits) {
  int64_t g = codec::resolveGroupSize(G, K);
  int64_t groups = K / g;
  const float maxq = float((1 << bits) - 1);
  assert(int64_t(w.size()) == N * K && K % g == 0);
  std::vector<uint8_t> codes(static_cast<size_t>(K * N)), zeros(static_cast<size_t>(groups * N));
  Checkpoint ck;
  ck.scales.resize(static_cast<size_t>(groups * N));
  for (int64_t grp = 0; grp < groups; ++grp) {
    for (int64_t n = 0; n < N; ++n) {
      const float *row = w.data() + n * K + grp * g;
      auto [mn, mx] = std::minmax_element(row, row + g);
      // quantizer.py: scales = (max - min).clamp(min=1e-5) / max_int
      float s = halfToFloat(floatToHalf(std::max(*mx - *mn, 1e-5f) / maxq));
      float z = codec::clampf(-codec::roundHalfEven(*mn / s), 0.f, maxq);
      ck.scales[grp * N + n] = floatToHalf(s);
      zeros[grp * N + n] = uint8_t(z);
      for (int64_t i = 0; i < g; ++i) {
        float q = codec::clampf(codec::roundHalfEven(row[i] / s) + z, 0.f, maxq);
        codes[(grp * g + i) * N + n] = uint8_t(q);
      }
    }
  }
  ck.qweight = packAwq(codes, K, N, bits);
  ck.qzeros = packAwq(zeros, groups, N, bits);
  return ck;
}

} // namespace qlc::awq
