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

} // namespace

bool isRepackedPart(const KernelSpec &s, size_t slot) {
  return s.packing() == Packing::Channels16 && slot == 0;
}

void repackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                int64_t stacks) {
  assert(isRepackedPart(s, slot));
  (void)slot;
  permute<false>(s, src, dst, stacks);
}

void unrepackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                  int64_t stacks) {
  assert(isRepackedPart(s, slot));
  (void)slot;
  permute<true>(s, src, dst, stacks);
}

} // namespace qlc::codegen
