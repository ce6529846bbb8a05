#include "codegen/repack.h"

#include <cassert>
#include <cstring>

namespace qlc::codegen {
namespace {

// GGUF Q4_0 block: f16 d, then 16 bytes of codes (element i in the low nibble of byte i, element
// i + 16 in its high nibble). Channels16 group block: 16 x f16 d, then word (j, c) at 32 + 4 (16 j
// + c) = code bytes 4j .. 4j+3 of channel c.
constexpr int64_t kQ4_0Block = 18, kGroup = 16, kGroupBlock = kGroup * kQ4_0Block;

/// Calls f(rowBlock, groupBlock) with the byte offsets of each channel's block inside one matrix.
template <typename F> void forEachQ4_0Block(const KernelSpec &s, F f) {
  const int64_t blocks = s.k / 32, rowBytes = blocks * kQ4_0Block;
  for (int64_t g = 0; g < s.n / kGroup; ++g)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t out = (g * blocks + blk) * kGroupBlock;
      for (int64_t c = 0; c < kGroup; ++c)
        f((g * kGroup + c) * rowBytes + blk * kQ4_0Block, out, c);
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
  const int64_t matrix = s.n * (s.k / 32) * kQ4_0Block;
  for (int64_t e = 0; e < stacks; ++e)
    forEachQ4_0Block(s, [&](int64_t in, int64_t out, int64_t c) {
      const uint8_t *blk = src + e * matrix + in;
      uint8_t *grp = dst + e * matrix + out;
      std::memcpy(grp + 2 * c, blk, 2);
      for (int64_t j = 0; j < 4; ++j)
        std::memcpy(grp + 32 + 4 * (16 * j + c), blk + 2 + 4 * j, 4);
    });
}

void unrepackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                  int64_t stacks) {
  assert(isRepackedPart(s, slot));
  (void)slot;
  const int64_t matrix = s.n * (s.k / 32) * kQ4_0Block;
  for (int64_t e = 0; e < stacks; ++e)
    forEachQ4_0Block(s, [&](int64_t in, int64_t out, int64_t c) {
      uint8_t *blk = dst + e * matrix + in;
      const uint8_t *grp = src + e * matrix + out;
      std::memcpy(blk, grp + 2 * c, 2);
      for (int64_t j = 0; j < 4; ++j)
        std::memcpy(blk + 2 + 4 * j, grp + 32 + 4 * (16 * j + c), 4);
    });
}

} // namespace qlc::codegen
