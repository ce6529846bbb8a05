// Private helpers shared by the block codec sources. Not part of the public API.
#pragma once
#include "support/float16.h"

#include <cstdint>
#include <cstring>

namespace qlc::gguf::detail {

inline uint16_t loadU16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }
inline void storeU16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v & 0xFF);
  p[1] = uint8_t(v >> 8);
}
inline uint32_t loadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline void storeU32(uint8_t* p, uint32_t v) {
  for (int k = 0; k < 4; ++k)
    p[k] = uint8_t(v >> (8 * k));
}
inline float loadHalf(const uint8_t* p) { return halfToFloat(loadU16(p)); }
inline float loadF32(const uint8_t* p) {
  uint32_t bits = loadU32(p);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline void storeF32(uint8_t* p, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  storeU32(p, bits);
}

// Block sizes (FORMATS.md §6.4).
inline constexpr int kQK = 32;   // legacy quants
inline constexpr int kQK_K = 256; // K-quants

} // namespace qlc::gguf::detail
