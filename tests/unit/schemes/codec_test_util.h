// Helpers shared by the scheme codec tests: seeded random data and error-bound formulas.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace qlc::test {

inline std::vector<float> randomWeights(int64_t count, uint32_t seed, float lo = -1.f,
                                        float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> w(static_cast<size_t>(count));
  for (auto &x : w)
    x = d(rng);
  return w;
}

inline std::vector<uint8_t> randomCodes(int64_t count, int bits, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
  std::vector<uint8_t> c(static_cast<size_t>(count));
  for (auto &x : c)
    x = uint8_t(d(rng));
  return c;
}

inline std::vector<int8_t> randomSigned(int64_t count, int bits, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  std::vector<int8_t> c(static_cast<size_t>(count));
  for (auto &x : c)
    x = int8_t(d(rng));
  return c;
}

inline std::vector<int32_t> randomPermutation(int64_t K, uint32_t seed) {
  std::vector<int32_t> p(static_cast<size_t>(K));
  std::iota(p.begin(), p.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

/// Unit roundoff of the stored scale type: 2^-11 for fp16, 2^-8 for bf16.
inline constexpr double kF16Roundoff = 1.0 / 2048.0;
inline constexpr double kBf16Roundoff = 1.0 / 256.0;

/// Round-trip error bound of a min/max quantizer whose grid spans `levels` steps of the stored
/// scale s. Derivation (shared by AWQ §1.3, GPTQ §2.3, CT §3.1): the ideal scale s' puts every
/// value of the group within half a step of a grid point of [lo, lo + levels·s']. The stored scale
/// s = round(s') differs by |s − s'| <= u·s' <= u·s/(1 − u) (u = unit roundoff of the scale dtype),
/// so the far end of the range moves by at most levels·|s − s'| and a value there may be clamped
/// to the last grid point: |w − ŵ| <= s/2 + levels·u·s/(1 − u). The codes come from w/s evaluated
/// in f32 (relative error 2^-24 on a quotient of magnitude <= 2^8·2): one more s·2^-15 covers it.
inline double roundTripBound(double s, double levels, double u) {
  return s * (0.5 + levels * u / (1.0 - u) + std::ldexp(1.0, -15));
}

} // namespace qlc::test
