// Shared helpers of the GGUF block codec tests.
#pragma once
#include "support/float16.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace qlc::gguf::test {

// Byte-level writers used to hand-build blocks (little-endian, as in GGUF files).
inline void putHalf(std::vector<uint8_t>& b, size_t off, float v) {
  uint16_t h = floatToHalf(v);
  b[off] = uint8_t(h & 0xFF);
  b[off + 1] = uint8_t(h >> 8);
}
inline float getHalf(const std::vector<uint8_t>& b, size_t off) {
  return halfToFloat(uint16_t(b[off] | (b[off + 1] << 8)));
}

} // namespace qlc::gguf::test
