// Marlin layout closed forms (FORMATS.md §4.3, §4.5, §4.6). The tests check them against the
// reference algorithm of §4.2 (tile, 1024-entry perm, interleave, pack) and the §4.3 vectors.
#include "schemes/marlin/codec.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <numeric>

namespace qlc::marlin {
namespace {

uint32_t mask(int bits) { return (1u << bits) - 1u; }

/// Inverse of the zero-point interleave (§4.6 step 2): argsort([0,2,4,6,1,3,5,7]) for 4-bit,
/// argsort([0,2,1,3]) = [0,2,1,3] for 8-bit.
constexpr std::array<int, 8> kZeroSlot4 = {0, 4, 1, 5, 2, 6, 3, 7};
constexpr std::array<int, 4> kZeroSlot8 = {0, 2, 1, 3};

std::string roundUp(int64_t v, int64_t m) { return std::to_string((v + m - 1) / m * m); }

} // namespace

CodeSlot weightSlot(int64_t k, int64_t n, int64_t N, int bits) {
  int64_t row = k / kTileK;
  // Lane t = (n%8)*4 + (k%8)/2 of warp (n%64)/16 owns the m16n8k16 B-fragment element (§4.3).
  int64_t lane = (n % 8) * 4 + (k % 8) / 2;
  int64_t warp = (n % 64) / 16;
  int64_t word, slot;
  if (bits == 4) {
    word = (n / 64) * 128 + lane * 4 + warp;
    slot = (k % 16) / 8 + 2 * ((n % 16) / 8) + 4 * (k % 2);
  } else {
    word = (n / 64) * 256 + lane * 8 + warp * 2 + (n % 16) / 8;
    slot = (k % 16) / 8 + 2 * (k % 2);
  }
  return {row * qweightCols(N, bits) + word, int(slot) * bits};
}

std::vector<uint32_t> packWeights(std::span<const uint8_t> codes, int64_t K, int64_t N, int bits) {
  assert(int64_t(codes.size()) == K * N && K % kTileK == 0 && N % kTileN == 0);
  std::vector<uint32_t> out(size_t(K / kTileK * qweightCols(N, bits)), 0u);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      CodeSlot s = weightSlot(k, n, N, bits);
      out[size_t(s.word)] |= (uint32_t(codes[size_t(k * N + n)]) & mask(bits)) << s.shift;
    }
  return out;
}

uint32_t weightCode(const uint32_t *qweight, int64_t N, int64_t k, int64_t n, int bits) {
  CodeSlot s = weightSlot(k, n, N, bits);
  return (qweight[s.word] >> s.shift) & mask(bits);
}

bool groupedScalePerm(int64_t groupSize, int64_t sizeK) {
  return groupSize != -1 && groupSize < sizeK;
}

int64_t scaleColumn(int64_t n, bool grouped) {
  if (grouped) { // scale_perm: an 8x8 transpose of each 64-column chunk
    int64_t c = n / 64, o = n % 64;
    return 64 * c + 8 * (o % 8) + o / 8;
  }
  int64_t c = n / 32, o = n % 32; // scale_perm_single
  return 32 * c + 8 * ((o % 8) / 2) + 2 * (o / 8) + o % 2;
}

std::vector<uint8_t> permuteScales(std::span<const uint8_t> scales, int64_t rows, int64_t N,
                                   int elemBytes, int64_t groupSize, int64_t sizeK) {
  assert(int64_t(scales.size()) == rows * N * elemBytes && N % kTileN == 0);
  bool grouped = groupedScalePerm(groupSize, sizeK);
  std::vector<uint8_t> out(scales.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      std::memcpy(&out[size_t((r * N + scaleColumn(n, grouped)) * elemBytes)],
                  &scales[size_t((r * N + n) * elemBytes)], size_t(elemBytes));
  return out;
}

CodeSlot zeroSlot(int64_t n, int bits) {
  int64_t o = n % 64;
  if (bits == 4)
    return {(n / 64) * 8 + n % 8, kZeroSlot4[size_t(o / 8)] * 4};
  return {(n / 64) * 16 + 2 * (n % 8) + o / 32, kZeroSlot8[size_t((o / 8) % 4)] * 8};
}

std::vector<uint32_t> packZeros(std::span<const uint8_t> zeros, int64_t rows, int64_t N, int bits) {
  assert(int64_t(zeros.size()) == rows * N && N % kTileN == 0);
  int64_t cols = N / packFactor(bits);
  std::vector<uint32_t> out(size_t(rows * cols), 0u);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n) {
      CodeSlot s = zeroSlot(n, bits);
      out[size_t(r * cols + s.word)] |= (uint32_t(zeros[size_t(r * N + n)]) & mask(bits))
                                        << s.shift;
    }
  return out;
}

uint32_t zeroCode(const uint32_t *qzeros, int64_t N, int64_t row, int64_t n, int bits) {
  CodeSlot s = zeroSlot(n, bits);
  return (qzeros[row * (N / packFactor(bits)) + s.word] >> s.shift) & mask(bits);
}

std::vector<int32_t> actOrderPerm(std::span<const int32_t> gIdx) {
  std::vector<int32_t> perm(gIdx.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](int32_t a, int32_t b) { return gIdx[size_t(a)] < gIdx[size_t(b)]; });
  return perm;
}

std::optional<std::string> checkShape(int64_t N, int64_t K, int64_t groupSize, int bits,
                                      bool expertStack) {
  if (bits != 4 && bits != 8)
    return "bits = " + std::to_string(bits) + " has no Marlin kernel (4 or 8)";
  if (groupSize != -1 && groupSize != 32 && groupSize != 64 && groupSize != 128)
    return "group = " + std::to_string(groupSize) +
           " is not a Marlin group size (-1, 32, 64 or 128: MARLIN_SUPPORTED_GROUP_SIZES)";
  if (N <= 0 || K <= 0)
    return "shape [" + std::to_string(N) + ", " + std::to_string(K) + "] must be positive";
  if (N % kTileN != 0)
    return "N = " + std::to_string(N) +
           " is not a multiple of 64 (Marlin tiles N by 64; pad N to " + roundUp(N, kTileN) + ")";
  if (!expertStack && K % kLinearMinK != 0)
    return "K = " + std::to_string(K) +
           " is not a multiple of 128 (Marlin's linear kernel needs K % 128 == 0; pad K to " +
           roundUp(K, kLinearMinK) + ")";
  int64_t needK = std::max<int64_t>(kMoeMinK, groupSize);
  if (expertStack && K % needK != 0)
    return "K = " + std::to_string(K) + " is not a multiple of " + std::to_string(needK) +
           " (Marlin MoE needs each expert's K to be a multiple of max(64, group); pad K to " +
           roundUp(K, needK) + ")";
  return std::nullopt;
}

} // namespace qlc::marlin
