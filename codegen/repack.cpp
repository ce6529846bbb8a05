#include "codegen/repack.h"

#include <cassert>
#include <cstring>
#include <vector>

#include "schemes/marlin/codec.h"

namespace qlc::codegen {
namespace {

/// Channels16: per 16 output channels and GGUF block, the block's fields one after the other,
/// each transposed so that one vector load gives a piece of it for 16 channels: element j of
/// channel c (an f16 of 2 bytes, or a word of 4 code / scale bytes) at (16 j + c) * unit.
struct Field {
  int64_t offset, bytes, unit; // in the checkpoint's block; unit 2 = f16 values, 4 = words
  bool highBits = false;       // Q5_0 / Q5_1 qh: the word's bits transposed (spreadHighBits)
};
constexpr int64_t kGroup = 16;

struct Channels16Layout {
  int64_t blockBytes, blockK;
  std::vector<Field> fields;
};

Channels16Layout layoutOf(const KernelSpec &s) {
  switch (s.layout) {
  case Layout::GgufQ8_0: // d, 32 int8 codes
    return {34, 32, {{0, 2, 2}, {2, 32, 4}}};
  case Layout::GgufQ4_0: // d, 16 code bytes (element i low nibble of byte i, i + 16 high)
    return {18, 32, {{0, 2, 2}, {2, 16, 4}}};
  case Layout::GgufQ4_1: // d, m, 16 code bytes as Q4_0's
    return {20, 32, {{0, 2, 2}, {2, 2, 2}, {4, 16, 4}}};
  case Layout::GgufQ5_0: // d, qh (bit i: element i's fifth bit), 16 code bytes as Q4_0's
    return {22, 32, {{0, 2, 2}, {2, 4, 4, true}, {6, 16, 4}}};
  case Layout::GgufQ5_1: // d, m, qh, 16 code bytes
    return {24, 32, {{0, 2, 2}, {2, 2, 2}, {4, 4, 4, true}, {8, 16, 4}}};
  case Layout::GgufQ4_K: // d, dmin, 12 bytes of 6-bit scales / mins, 128 code bytes
    return {144, 256, {{0, 2, 2}, {2, 2, 2}, {4, 12, 4}, {16, 128, 4}}};
  case Layout::GgufQ5_K: // as Q4_K with 32 bytes qh before the codes (byte l bit j: element l
                         // of sub-block j), already one shift from the kernels' operands
    return {176, 256, {{0, 2, 2}, {2, 2, 2}, {4, 12, 4}, {16, 32, 4}, {48, 128, 4}}};
  case Layout::GgufQ6_K: // 128 bytes low 4 bits, 64 bytes top 2 bits, 16 int8 scales, d
    return {210, 256, {{0, 128, 4}, {128, 64, 4}, {192, 16, 4}, {208, 2, 2}}};
  case Layout::GgufQ3_K: // 32 bytes hmask (byte l bit 4n + j: element 128n + 32j + l's third
                         // bit), 64 bytes low 2 bits, 12 bytes of 6-bit scales, d
    return {110, 256, {{0, 32, 4}, {32, 64, 4}, {96, 12, 4}, {108, 2, 2}}};
  case Layout::GgufQ2_K: // 16 scale bytes (scale | min << 4), 64 bytes of 2-bit codes, d, dmin
    return {84, 256, {{0, 16, 4}, {16, 64, 4}, {80, 2, 2}, {82, 2, 2}}};
  default:
    assert(false && "no Channels16 layout");
    return {};
  }
}

/// Q5_0 / Q5_1 qh: bit 4k + i (the fifth bit of byte i of the kernels' operand k: elements
/// 4k + i) moves to bit 8i + k, so that the kernel gets an operand's four bits into bit 4 of its
/// bytes with one rotate and one mask (codegen/kernel_emitter.cpp, c16Blocks).
uint32_t spreadHighBits(uint32_t qh, bool inverse) {
  uint32_t out = 0;
  for (int k = 0; k < 8; ++k)
    for (int i = 0; i < 4; ++i) {
      const int plain = 4 * k + i, packed = 8 * i + k;
      out |= ((qh >> (inverse ? packed : plain)) & 1u) << (inverse ? plain : packed);
    }
  return out;
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
              if (f.highBits) {
                uint8_t *at = dst + (Inverse ? plain : packed);
                uint32_t w;
                std::memcpy(&w, at, 4);
                w = spreadHighBits(w, Inverse);
                std::memcpy(at, &w, 4);
              }
            }
            fieldAt += kGroup * f.bytes;
          }
        }
      }
}

uint32_t getWord(const uint8_t *p, int64_t w) {
  uint32_t v;
  std::memcpy(&v, p + 4 * w, 4);
  return v;
}
void putWord(uint8_t *p, int64_t w, uint32_t v) { std::memcpy(p + 4 * w, &v, 4); }

/// Word index of (kw, n) in the Channels16 qweight: per 16 channels and 32-block, R x 16 words.
int64_t packedWordAt(const KernelSpec &s, int64_t kw, int64_t n) {
  const int64_t R = s.bits, blocks = s.k / 32;
  return ((n / 16) * blocks + kw / R) * (16 * R) + (kw % R) * 16 + n % 16;
}

/// AWQ / GPTQ qweight (4- or 8-bit) -> per 16 channels and 32-block, R x 16 words in GPTQ's
/// orientation (R = 32 / codes a word: 4 for 4-bit, 8 for 8-bit): word (r, c) holds channel c's
/// codes of k = 32 b + (32 / R) r + i in field i. From GPTQ ([K / pf, N], word (kw, n) the codes
/// of k = pf kw + i) a word permutation; from AWQ ([K, N / pf], channel n in field
/// order[n % pf] of word (k, n / pf)) a transposition of pf x pf fields.
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};
constexpr int kAwqByte[4] = {0, 2, 1, 3};

template <bool Inverse> void permuteCols(const KernelSpec &s, const uint8_t *src, uint8_t *dst,
                                         int64_t stacks) {
  const int bits = s.bits, pf = 32 / bits; // codes a word
  const uint32_t fieldMask = (1u << bits) - 1;
  const int *order = bits == 4 ? kAwqNibble : kAwqByte;
  const int64_t K = s.k, N = s.n, matrix = K * N * bits / 8;
  auto packedWord = [&](int64_t kw, int64_t n) { return packedWordAt(s, kw, n); };
  for (int64_t e = 0; e < stacks; ++e) {
    const uint8_t *in = src + e * matrix;
    uint8_t *out = dst + e * matrix;
    auto get = getWord;
    auto put = putWord;
    if (s.layout == Layout::Gptq4) {
      for (int64_t kw = 0; kw < K / pf; ++kw)
        for (int64_t n = 0; n < N; ++n) {
          if (Inverse)
            put(out, kw * N + n, get(in, packedWord(kw, n)));
          else
            put(out, packedWord(kw, n), get(in, kw * N + n));
        }
      continue;
    }
    for (int64_t kw = 0; kw < K / pf; ++kw) // AWQ
      for (int64_t nw = 0; nw < N / pf; ++nw) {
        // awq[i]: word (pf kw + i, nw); gptq[c]: channel pf nw + c
        uint32_t awq[8] = {}, gptq[8] = {};
        if (Inverse)
          for (int c = 0; c < pf; ++c)
            gptq[c] = get(in, packedWord(kw, pf * nw + c));
        else
          for (int i = 0; i < pf; ++i)
            awq[i] = get(in, (pf * kw + i) * (N / pf) + nw);
        for (int i = 0; i < pf; ++i)
          for (int c = 0; c < pf; ++c) {
            const int sa = bits * order[c], sg = bits * i;
            if (Inverse)
              awq[i] |= ((gptq[c] >> sg) & fieldMask) << sa;
            else
              gptq[c] |= ((awq[i] >> sa) & fieldMask) << sg;
          }
        if (Inverse)
          for (int i = 0; i < pf; ++i)
            put(out, (pf * kw + i) * (N / pf) + nw, awq[i]);
        else
          for (int c = 0; c < pf; ++c)
            put(out, packedWord(kw, pf * nw + c), gptq[c]);
      }
  }
}

/// Marlin / NPU qweight <-> the GPTQ-oriented Channels16 words of permuteCols, code by code (a
/// code's place in the source is a closed form, not a word move): Marlin's codes are unsigned
/// already (FORMATS.md §4.3 schemes/marlin/codec.h), the NPU's signed codes c ([K, N] in natural
/// order, 4-bit nibbles or int8 bytes) become c + 2^(b-1) by flipping their top bit, which the
/// kernels pair with the zero 2^(b-1) - offset.
struct CodeAt {
  int64_t word;
  int shift;
};
CodeAt sourceCode(const KernelSpec &s, int64_t k, int64_t n) {
  if (s.layout == Layout::Marlin) {
    const marlin::CodeSlot c = marlin::weightSlot(k, n, s.n, s.bits);
    return {c.word, c.shift};
  }
  const int64_t flat = k * s.n + n, pf = 32 / s.bits;
  return {flat / pf, int(s.bits * (flat % pf))};
}

template <bool Inverse> void permuteCodes(const KernelSpec &s, const uint8_t *src, uint8_t *dst,
                                          int64_t stacks) {
  const int bits = s.bits, pf = 32 / bits;
  const uint32_t mask = (1u << bits) - 1,
                 flip = s.layout == Layout::Marlin ? 0 : 1u << (bits - 1);
  const int64_t matrix = s.k * s.n * bits / 8;
  for (int64_t e = 0; e < stacks; ++e) {
    const uint8_t *in = src + e * matrix;
    uint8_t *out = dst + e * matrix;
    if (Inverse)
      std::memset(out, 0, size_t(matrix));
    for (int64_t kw = 0; kw < s.k / pf; ++kw)
      for (int64_t n = 0; n < s.n; ++n) {
        const int64_t packed = packedWordAt(s, kw, n);
        uint32_t word = Inverse ? getWord(in, packed) : 0;
        for (int i = 0; i < pf; ++i) {
          const CodeAt at = sourceCode(s, pf * kw + i, n);
          if (Inverse) {
            const uint32_t c = ((word >> (bits * i)) & mask) ^ flip;
            putWord(out, at.word, getWord(out, at.word) | c << at.shift);
          } else {
            word |= (((getWord(in, at.word) >> at.shift) & mask) ^ flip) << (bits * i);
          }
        }
        if (!Inverse)
          putWord(out, packed, word);
      }
  }
}

/// Marlin's scales [G', N] and zero points [G', N / pf] in channel order: the scales' columns
/// un-permuted (marlin::scaleColumn), the zero points packed sequentially as GPTQ's qzeros.
int64_t marlinGroups(const KernelSpec &s) { return (s.k + s.group - 1) / s.group; }
int64_t scaleBytes(const KernelSpec &s) { return s.scaleElem == ElemKind::F32 ? 4 : 2; }

template <bool Inverse> void marlinScales(const KernelSpec &s, const uint8_t *src, uint8_t *dst,
                                          int64_t stacks) {
  const bool grouped = s.group < s.k;
  const int64_t eb = scaleBytes(s), rows = stacks * marlinGroups(s);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < s.n; ++n) {
      const int64_t plain = (r * s.n + n) * eb,
                    permuted = (r * s.n + marlin::scaleColumn(n, grouped)) * eb;
      std::memcpy(dst + (Inverse ? permuted : plain), src + (Inverse ? plain : permuted),
                  size_t(eb));
    }
}

template <bool Inverse> void marlinZeros(const KernelSpec &s, const uint8_t *src, uint8_t *dst,
                                         int64_t stacks) {
  const int bits = s.bits, pf = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  const int64_t rows = stacks * marlinGroups(s), rowWords = s.n / pf;
  std::memset(dst, 0, size_t(rows * rowWords * 4));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < s.n; ++n) {
      const marlin::CodeSlot m = marlin::zeroSlot(n, bits);
      const CodeAt seq{n / pf, int(bits * (n % pf))};
      const CodeAt from = Inverse ? seq : CodeAt{m.word, m.shift},
                   to = Inverse ? CodeAt{m.word, m.shift} : seq;
      const uint32_t z = (getWord(src, r * rowWords + from.word) >> from.shift) & mask;
      putWord(dst, r * rowWords + to.word, getWord(dst, r * rowWords + to.word) | z << to.shift);
    }
}

template <bool Inverse> void repack(const KernelSpec &s, size_t slot, const uint8_t *src,
                                    uint8_t *dst, int64_t stacks) {
  if (s.layout == Layout::Marlin && slot == 1)
    return marlinZeros<Inverse>(s, src, dst, stacks);
  if (s.layout == Layout::Marlin && slot == 2)
    return marlinScales<Inverse>(s, src, dst, stacks);
  switch (s.layout) {
  case Layout::Marlin:
  case Layout::NpuW4:
  case Layout::NpuW8:
    return permuteCodes<Inverse>(s, src, dst, stacks);
  case Layout::Awq4:
  case Layout::Gptq4:
    return permuteCols<Inverse>(s, src, dst, stacks);
  default:
    return permute<Inverse>(s, src, dst, stacks);
  }
}

} // namespace

bool isRepackedPart(const KernelSpec &s, size_t slot) {
  if (s.packing() != Packing::Channels16)
    return false;
  // Marlin: qweight, qzeros (present with zero points), scales; every other layout: slot 0.
  return slot == 0 || (s.layout == Layout::Marlin && (slot == 2 || (slot == 1 && s.zeroPoint)));
}

int64_t repackedPartBytes(const KernelSpec &s, size_t slot) {
  if (s.layout == Layout::Marlin && slot == 1)
    return marlinGroups(s) * s.n * s.bits / 8;
  if (s.layout == Layout::Marlin && slot == 2)
    return marlinGroups(s) * s.n * scaleBytes(s);
  if (s.family() == Family::ColsN)
    return s.k * s.n * s.bits / 8;
  const Channels16Layout l = layoutOf(s);
  return s.n * (s.k / l.blockK) * l.blockBytes;
}

void repackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                int64_t stacks) {
  assert(isRepackedPart(s, slot));
  repack<false>(s, slot, src, dst, stacks);
}

void unrepackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                  int64_t stacks) {
  assert(isRepackedPart(s, slot));
  repack<true>(s, slot, src, dst, stacks);
}

} // namespace qlc::codegen
