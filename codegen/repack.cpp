#include "codegen/repack.h"

#include <cassert>
#include <cstring>
#include <vector>

namespace qlc::codegen {
namespace {

/// Channels16: per 16 output channels and GGUF block, the block's fields one after the other,
/// each transposed so that one vector load gives a piece of it for 16 channels: element j of
/// channel c (an f16 of 2 bytes, or a word of 4 code / scale bytes) at (16 j + c) * unit.
struct Field {
  int64_t offset, bytes, unit; // in the checkpoint's block; unit 2 = f16 values, 4 = words
};
constexpr int64_t kGroup = 16;

struct Channels16Layout {
  int64_t blockBytes, blockK;
  std::vector<Field> fields;
};

Channels16Layout layoutOf(const KernelSpec &s) {
  switch (s.layout) {
  case Layout::GgufQ4_0: // d, 16 code bytes (element i low nibble of byte i, i + 16 high)
    return {18, 32, {{0, 2, 2}, {2, 16, 4}}};
  case Layout::GgufQ4_K: // d, dmin, 12 bytes of 6-bit scales / mins, 128 code bytes
    return {144, 256, {{0, 2, 2}, {2, 2, 2}, {4, 12, 4}, {16, 128, 4}}};
  default:
    assert(false && "no Channels16 layout");
    return {};
  }
}

template <bool Inverse> void permute(const KernelSpec &s, const uint8_t *src, uint8_t *dst,
                                     int64_t stacks) {
  const Channels16Layout l = layoutOf(s);
  const int64_t blocks = s.k / l.blockK, rowBytes = blocks * l.blockBytes, matrix = s.n * rowBytes;
  for (int64_t e = 0; e < stacks; ++e)
    for (int64_t g = 0; g < s.n / kGroup; ++g)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t group = e * matrix + (g * blocks + blk) * kGroup * l.blockBytes;
        for (int64_t c = 0; c < kGroup; ++c) {
          const int64_t row = e * matrix + (g * kGroup + c) * rowBytes + blk * l.blockBytes;
          int64_t fieldAt = group;
          for (const Field &f : l.fields) {
            for (int64_t j = 0; j < f.bytes / f.unit; ++j) {
              const int64_t packed = fieldAt + (kGroup * j + c) * f.unit,
                            plain = row + f.offset + j * f.unit;
              if (Inverse)
                std::memcpy(dst + plain, src + packed, size_t(f.unit));
              else
                std::memcpy(dst + packed, src + plain, size_t(f.unit));
            }
            fieldAt += kGroup * f.bytes;
          }
        }
      }
}

/// AWQ / GPTQ 4-bit qweight -> per 16 channels and 32-block, 4 x 16 words in GPTQ's orientation:
/// word (r, c) holds channel c's codes of k = 32 b + 8 r + i in nibble i. From GPTQ ([K/8, N],
/// word (kw, n) the codes of k = 8 kw + i) a word permutation; from AWQ ([K, N/8], channel n in
/// nibble kAwqNibble[n % 8] of word (k, n / 8)) a nibble transposition.
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

template <bool Inverse> void permuteCols(const KernelSpec &s, const uint8_t *src, uint8_t *dst,
                                         int64_t stacks) {
  const int64_t K = s.k, N = s.n, blocks = K / 32, matrix = K * N / 2;
  auto packedWord = [&](int64_t kw, int64_t n) { // word index in the packed layout
    return ((n / 16) * blocks + kw / 4) * 64 + (kw % 4) * 16 + n % 16;
  };
  for (int64_t e = 0; e < stacks; ++e) {
    const uint8_t *in = src + e * matrix;
    uint8_t *out = dst + e * matrix;
    auto get = [](const uint8_t *p, int64_t w) {
      uint32_t v;
      std::memcpy(&v, p + 4 * w, 4);
      return v;
    };
    auto put = [](uint8_t *p, int64_t w, uint32_t v) { std::memcpy(p + 4 * w, &v, 4); };
    if (s.layout == Layout::Gptq4) {
      for (int64_t kw = 0; kw < K / 8; ++kw)
        for (int64_t n = 0; n < N; ++n) {
          if (Inverse)
            put(out, kw * N + n, get(in, packedWord(kw, n)));
          else
            put(out, packedWord(kw, n), get(in, kw * N + n));
        }
      continue;
    }
    for (int64_t kw = 0; kw < K / 8; ++kw) // AWQ
      for (int64_t n8 = 0; n8 < N / 8; ++n8) {
        uint32_t awq[8] = {}, gptq[8] = {}; // awq[i]: word (8 kw + i, n8); gptq[c]: channel 8 n8 + c
        if (Inverse)
          for (int c = 0; c < 8; ++c)
            gptq[c] = get(in, packedWord(kw, 8 * n8 + c));
        else
          for (int i = 0; i < 8; ++i)
            awq[i] = get(in, (8 * kw + i) * (N / 8) + n8);
        for (int i = 0; i < 8; ++i)
          for (int c = 0; c < 8; ++c) {
            const int sa = 4 * kAwqNibble[c], sg = 4 * i;
            if (Inverse)
              awq[i] |= ((gptq[c] >> sg) & 15u) << sa;
            else
              gptq[c] |= ((awq[i] >> sa) & 15u) << sg;
          }
        if (Inverse)
          for (int i = 0; i < 8; ++i)
            put(out, (8 * kw + i) * (N / 8) + n8, awq[i]);
        else
          for (int c = 0; c < 8; ++c)
            put(out, packedWord(kw, 8 * n8 + c), gptq[c]);
      }
  }
}

} // namespace

bool isRepackedPart(const KernelSpec &s, size_t slot) {
  return s.packing() == Packing::Channels16 && slot == 0;
}

int64_t repackedPartBytes(const KernelSpec &s) {
  if (s.family() == Family::ColsN)
    return s.k * s.n / 2;
  const Channels16Layout l = layoutOf(s);
  return s.n * (s.k / l.blockK) * l.blockBytes;
}

void repackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                int64_t stacks) {
  assert(isRepackedPart(s, slot));
  (void)slot;
  if (s.family() == Family::ColsN)
    permuteCols<false>(s, src, dst, stacks);
  else
    permute<false>(s, src, dst, stacks);
}

void unrepackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                  int64_t stacks) {
  assert(isRepackedPart(s, slot));
  (void)slot;
  if (s.family() == Family::ColsN)
    permuteCols<true>(s, src, dst, stacks);
  else
    permute<true>(s, src, dst, stacks);
}

} // namespace qlc::codegen
