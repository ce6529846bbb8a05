// Shared bit-packing and shape helpers for the safetensors scheme codecs (header-only).
//
// Every integer-in-int32 layout of GPTQ (§2.2) and compressed-tensors (§3.2) is the same thing:
// a little-endian bit stream where code i occupies stream bits [b*i, b*i + b) and stream bit j is
// bit (j % 32) of word j / 32. For b in {2, 4, 8} that is "pf consecutive codes per word, element i
// at bits b*i"; for b = 3 it reproduces exactly the 3-words-per-32-values layout of §2.2 (v10 and
// v21 straddle a word boundary). AWQ (§1.2) adds an interleave inside each word on top of this.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::codec {

/// Mask of the low `bits` bits.
constexpr uint32_t lowMask(int bits) { return bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1u; }

/// `G == -1` means one group spanning all of K (AutoAWQ / AutoGPTQ normalise it so, §1.1, §2.1).
constexpr int64_t resolveGroupSize(int64_t groupSize, int64_t k) {
  return groupSize == -1 ? k : groupSize;
}

/// a / b rounded up, without forming a + b - 1 (which overflows for a hostile b near INT64_MAX).
constexpr int64_t ceilDiv(int64_t a, int64_t b) {
  return a / b + (a % b != 0 && (a % b > 0) == (b > 0));
}

/// Words needed for `count` codes of `bits` bits in the bit-stream layout (zero-padded at the end).
constexpr int64_t streamWords(int64_t count, int bits) { return ceilDiv(count * bits, 32); }

/// Code i of a bit stream whose consecutive words are `stride` uint32 apart.
inline uint32_t streamGet(const uint32_t *words, int64_t stride, int64_t i, int bits) {
  int64_t bit = i * bits;
  int64_t w = bit / 32;
  int off = int(bit % 32);
  uint64_t v = words[w * stride];
  if (off + bits > 32) // straddles into the next word (only 3-bit codes do)
    v |= uint64_t(words[(w + 1) * stride]) << 32;
  return uint32_t(v >> off) & lowMask(bits);
}

/// Writes code i (overwriting whatever was there) into a bit stream.
inline void streamPut(uint32_t *words, int64_t stride, int64_t i, int bits, uint32_t code) {
  int64_t bit = i * bits;
  int64_t w = bit / 32;
  int off = int(bit % 32);
  uint64_t m = uint64_t(lowMask(bits)) << off;
  uint64_t c = uint64_t(code & lowMask(bits)) << off;
  uint32_t &lo = words[w * stride];
  lo = uint32_t((lo & ~m) | c);
  if (off + bits > 32) {
    uint32_t &hi = words[(w + 1) * stride];
    hi = uint32_t((hi & ~(m >> 32)) | (c >> 32));
  }
}

/// torch.round semantics: round half to even (std::nearbyint under the default rounding mode).
inline float roundHalfEven(float x) { return std::nearbyint(x); }

inline float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

/// Compares a tensor shape with the expected one; the message names the tensor and says why.
inline std::optional<std::string> checkShape(const std::string &name,
                                             std::span<const int64_t> actual,
                                             std::vector<int64_t> expected,
                                             const std::string &why) {
  auto str = [](std::span<const int64_t> s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i)
      r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  };
  bool same = actual.size() == expected.size();
  for (size_t i = 0; same && i < actual.size(); ++i)
    same = actual[i] == expected[i];
  if (same)
    return std::nullopt;
  return name + " has shape " + str(actual) + ", expected " +
         str(std::span<const int64_t>(expected)) + " (" + why + ")";
}

/// "K = 100 is not a multiple of group size 32" style helper.
inline std::string notMultiple(const std::string &what, int64_t value, const std::string &ofWhat,
                               int64_t of) {
  return what + " = " + std::to_string(value) + " is not a multiple of " +
         (ofWhat.empty() ? "" : ofWhat + " ") + std::to_string(of);
}

} // namespace qlc::codec
