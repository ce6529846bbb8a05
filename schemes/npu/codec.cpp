#include "schemes/npu/codec.h"

#include <cassert>
#include <cmath>

#include "schemes/awq/codec.h"

namespace qlc::npu {

uint32_t awqOrderToNatural(uint32_t awqWord) {
  uint32_t out = 0;
  for (int i = 0; i < 8; ++i) // column 8c+i sits in AWQ nibble kReverse4[i] (§1.2)
    out |= ((awqWord >> (4 * awq::kReverse4[size_t(i)])) & 0xFu) << (4 * i);
  return out;
}

uint32_t naturalOrderToAwq(uint32_t naturalWord) {
  uint32_t out = 0;
  for (int i = 0; i < 8; ++i) // AWQ nibble i holds column 8c + kOrder4[i]
    out |= ((naturalWord >> (4 * awq::kOrder4[size_t(i)])) & 0xFu) << (4 * i);
  return out;
}

std::optional<uint32_t> zeroFromOffset(float offset) {
  if (!(offset >= -7.0f && offset <= 8.0f) || std::nearbyint(offset) != offset)
    return std::nullopt;
  return uint32_t(8 - int(offset));
}

std::vector<uint32_t> convertWeightWords(std::span<const uint32_t> awqWords) {
  std::vector<uint32_t> out(awqWords.size());
  for (size_t i = 0; i < awqWords.size(); ++i)
    out[i] = awqWordToNpu(awqWords[i]);
  return out;
}

std::vector<float> zerosToOffsets(std::span<const uint32_t> qzeros) {
  std::vector<float> out(qzeros.size() * 8);
  for (size_t w = 0; w < qzeros.size(); ++w) {
    uint32_t natural = awqOrderToNatural(qzeros[w]);
    for (int j = 0; j < 8; ++j)
      out[w * 8 + size_t(j)] = offsetFromZero((natural >> (4 * j)) & 0xFu);
  }
  return out;
}

std::optional<std::string> offsetsToZeros(std::span<const float> offsets,
                                          std::vector<uint32_t> &qzeros) {
  if (offsets.size() % 8)
    return "offset count " + std::to_string(offsets.size()) + " is not a multiple of 8";
  qzeros.assign(offsets.size() / 8, 0);
  for (size_t i = 0; i < offsets.size(); ++i) {
    auto z = zeroFromOffset(offsets[i]);
    if (!z)
      return "offset " + std::to_string(offsets[i]) + " at index " + std::to_string(i) +
             " is not 8 - z for a 4-bit zero point z (needs an integer in [-7, 8])";
    qzeros[i / 8] |= *z << (4 * (i % 8)); // natural order here, interleaved below
  }
  for (uint32_t &w : qzeros)
    w = naturalOrderToAwq(w);
  return std::nullopt;
}

void antiquant(std::span<const uint32_t> weight, std::span<const float> scale,
               std::span<const float> offset, int64_t K, int64_t N, int64_t G,
               std::span<float> out) {
  assert(int64_t(weight.size()) == K * N / 8 && int64_t(scale.size()) == K / G * N);
  assert(offset.empty() || offset.size() == scale.size());
  assert(int64_t(out.size()) == N * K);
  for (int64_t k = 0; k < K; ++k) {
    int64_t g = k / G;
    for (int64_t n = 0; n < N; ++n) {
      float w = float(int4At(weight[size_t(k * (N / 8) + n / 8)], int(n % 8)));
      size_t gi = size_t(g * N + n);
      float sum = offset.empty() ? w : w + offset[gi];
      out[size_t(n * K + k)] = sum * scale[gi];
    }
  }
}

void antiquantInt8(std::span<const int8_t> weight, std::span<const float> scale,
                   std::span<const float> offset, int64_t K, int64_t N, int64_t G,
                   std::span<float> out) {
  assert(int64_t(weight.size()) == K * N && int64_t(scale.size()) == K / G * N);
  assert(offset.empty() || offset.size() == scale.size());
  assert(int64_t(out.size()) == N * K);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      size_t gi = size_t((k / G) * N + n);
      float w = float(weight[size_t(k * N + n)]);
      float sum = offset.empty() ? w : w + offset[gi]; // exact: integers below 2^24
      out[size_t(n * K + k)] = sum * scale[gi];
    }
}

std::vector<uint32_t> packInt4(std::span<const int8_t> codes, int64_t rows, int64_t N) {
  assert(N % 8 == 0 && int64_t(codes.size()) == rows * N);
  std::vector<uint32_t> out(size_t(rows * N / 8), 0);
  for (size_t i = 0; i < codes.size(); ++i)
    out[i / 8] |= (uint32_t(codes[i]) & 0xFu) << (4 * (i % 8));
  return out;
}

std::vector<int8_t> unpackInt4(std::span<const uint32_t> words, int64_t rows, int64_t N) {
  assert(int64_t(words.size()) == rows * N / 8);
  std::vector<int8_t> out(size_t(rows * N));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = int8_t(int4At(words[i / 8], int(i % 8)));
  return out;
}

std::optional<std::string> validateW8(int64_t K, int64_t N, int64_t G) {
  if (K <= 0 || N <= 0)
    return "shape must be [N, K] with positive dims, got N = " + std::to_string(N) +
           ", K = " + std::to_string(K);
  if (G != -1 && G <= 0)
    return "group = " + std::to_string(G) +
           " is invalid: use a positive group size or -1 for one group per column (per-channel)";
  int64_t g = G == -1 ? K : G;
  if (K % g)
    return "K = " + std::to_string(K) + " is not a multiple of group = " + std::to_string(g) +
           " (antiquant_scale has one row per group of K)";
  return std::nullopt;
}

std::optional<std::string> validateW4(int64_t K, int64_t N, int64_t G) {
  if (K <= 0 || N <= 0)
    return "shape must be [N, K] with positive dims, got N = " + std::to_string(N) +
           ", K = " + std::to_string(K);
  if (N % 8)
    return "N = " + std::to_string(N) +
           " is not a multiple of 8 (the NPU packs 8 int4 values per int32 along N, "
           "FORMATS.md §5.1)";
  if (G != -1 && G <= 0)
    return "group = " + std::to_string(G) +
           " is invalid: use a positive group size or -1 for one group per column (per-channel)";
  int64_t g = G == -1 ? K : G;
  if (K % g)
    return "K = " + std::to_string(K) + " is not a multiple of group = " + std::to_string(g) +
           " (antiquant_scale has one row per group of K)";
  return std::nullopt;
}

} // namespace qlc::npu
