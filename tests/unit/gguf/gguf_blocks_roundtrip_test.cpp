// quantizeRow -> dequantizeRow round trips for every type.
//
// Error measure: max|x - y| / max|x| over the whole array (the fixtures README's measure), plus the
// RMS error (data are N(0,1), so RMS error is already relative to the data's RMS).
// Bounds, per type (data: 256 rows of 256 N(0,1) values, fixed seed, portable Box-Muller).
// The quantizer only picks scales that "cover" a (sub-)block when it can (no element clipped, so
// every error is at most half a step), so the bounds follow from the step sizes:
//  * Q8_0, Q8_1: step d = blockmax/127 (fp16-rounded), error <= d/2 -> <= 1/254 = 0.00394.
//  * Q8_K: d = blockmax/127 in fp32 -> same 1/254.
//  * Q4_1: step = (max-min)/15 <= 2*blockmax/15, error <= step/2 -> <= 1/15 = 0.0667 (+fp16 eps).
//  * Q5_1: same with 31 levels -> <= 1/31 = 0.0323 (+fp16 eps).
//  * Q4_0 / Q5_0: symmetric, extreme mapped to one of c in {-8..-6, 5..7} ({-16..-14, 13..15});
//    usually ~ blockmax/16 (/32); the worst covering candidate gives blockmax/10 (/26). Bounds
//    0.09 / 0.045, below the README's llama.cpp figure for Q4_0 (0.10).
//  * Q6_K: covering step <= blockmax/31 + d (d = super-block unit, <= amax/(31*127)) -> error
//    <= 1/62 + 1/3937 = 0.0164; bound = README figure 0.016.
//  * Q3_K: same with 3 levels up and a 5-bit magnitude scale: <= 1/6 + 1/186; bound 0.17.
//  * Q4_K / Q5_K / Q2_K: affine, step <= (range + dmin)/nmax with range <= 2*blockmax,
//    dmin <= amax/63 (/15 for Q2_K): <= 0.067 / 0.033 / 0.34. Bounds = README figures
//    0.07 / 0.035 / 0.33 (typical values are far below the worst case).
// RMS bounds: the uniform-quantizer rms (step/sqrt(12)) with typical steps, rounded up.
// Measured (this seed): see the report printed by the test (RecordProperty + stdout).
#include "schemes/gguf/blocks.h"
#include "gguf_test_util.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

using namespace qlc;
using namespace qlc::gguf;

namespace {

// Portable N(0,1) (std::normal_distribution is implementation-defined).
std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; i += 2) {
    const double u1 = (double(rng()) + 1.0) / 4294967297.0;
    const double u2 = double(rng()) / 4294967296.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    x[i] = float(r * std::cos(2 * M_PI * u2));
    if (i + 1 < n)
      x[i + 1] = float(r * std::sin(2 * M_PI * u2));
  }
  return x;
}

std::vector<float> roundTrip(uint32_t type, const std::vector<float>& x) {
  const int64_t n = int64_t(x.size());
  std::vector<uint8_t> q(size_t(n / blockElements(type) * blockBytes(type)), 0xCD);
  quantizeRow(type, x.data(), q.data(), n);
  std::vector<float> y(x.size(), NAN);
  dequantizeRow(type, q.data(), y.data(), n);
  return y;
}

struct Err {
  double maxRel, rms;
};
Err measure(const std::vector<float>& x, const std::vector<float>& y) {
  double amax = 0, me = 0, se = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    amax = std::max(amax, double(std::fabs(x[i])));
    const double e = std::fabs(double(x[i]) - double(y[i]));
    me = std::max(me, e);
    se += e * e;
  }
  return {me / amax, std::sqrt(se / double(x.size()))};
}

struct Bound {
  uint32_t type;
  const char* name;
  double maxRel, rms;
};

// rms bounds: uniform-quantizer rms = step/sqrt(12) with the step of the bound above, rounded up.
const Bound kBounds[] = {
    {kQ4_0, "Q4_0", 0.09, 0.090},  {kQ4_1, "Q4_1", 0.068, 0.085}, {kQ5_0, "Q5_0", 0.045, 0.045},
    {kQ5_1, "Q5_1", 0.033, 0.042}, {kQ8_0, "Q8_0", 0.004, 0.006}, {kQ8_1, "Q8_1", 0.004, 0.006},
    {kQ2_K, "Q2_K", 0.33, 0.29},   {kQ3_K, "Q3_K", 0.17, 0.16},   {kQ4_K, "Q4_K", 0.07, 0.078},
    {kQ5_K, "Q5_K", 0.035, 0.039}, {kQ6_K, "Q6_K", 0.016, 0.019}, {kQ8_K, "Q8_K", 0.004, 0.0075},
};

} // namespace

class GgufRoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(GgufRoundTrip, GaussianWithinBound) {
  const Bound& b = GetParam();
  const auto x = gaussian(256 * 256, 12345);
  const auto y = roundTrip(b.type, x);
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_TRUE(std::isfinite(y[i])) << b.name << " elem " << i;
  const Err e = measure(x, y);
  std::printf("[ roundtrip ] %-5s max|err|/max|x| = %.4f (bound %.3f)   rms err = %.4f (bound %.4f)\n",
              b.name, e.maxRel, b.maxRel, e.rms, b.rms);
  RecordProperty("max_rel_err", std::to_string(e.maxRel));
  RecordProperty("rms_err", std::to_string(e.rms));
  EXPECT_LE(e.maxRel, b.maxRel) << b.name;
  EXPECT_LE(e.rms, b.rms) << b.name;
  // Not vacuous: a lossy format must actually lose something on Gaussian data.
  EXPECT_GT(e.maxRel, 0.0) << b.name;
}

// The error scales with the data: the same bound holds for weights at 0.02 scale (as in the
// fixtures) and for data with a large offset in some blocks.
TEST_P(GgufRoundTrip, ScaledAndShiftedData) {
  const Bound& b = GetParam();
  auto x = gaussian(256 * 16, 99);
  for (auto& v : x)
    v *= 0.02f;
  Err e = measure(x, roundTrip(b.type, x));
  EXPECT_LE(e.maxRel, b.maxRel) << b.name << " at scale 0.02";
  // All-positive and all-negative super-blocks.
  auto z = gaussian(256 * 4, 7);
  for (size_t i = 0; i < z.size(); ++i)
    z[i] = (i < 512 ? 3.0f : -3.0f) + 0.5f * z[i];
  const auto y = roundTrip(b.type, z);
  double amax = 0, me = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    amax = std::max(amax, double(std::fabs(z[i])));
    me = std::max(me, double(std::fabs(z[i] - y[i])));
  }
  // Offsets make the symmetric types no worse than their Gaussian bound relative to max|x|, and
  // the affine types much better; allow the Gaussian bound for all.
  EXPECT_LE(me / amax, b.maxRel) << b.name << " offset data";
}

TEST_P(GgufRoundTrip, ZerosStayZero) {
  const Bound& b = GetParam();
  std::vector<float> x(512, 0.0f);
  const auto y = roundTrip(b.type, x);
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_EQ(std::fabs(y[i]), 0.0f) << b.name << " elem " << i;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgufRoundTrip, ::testing::ValuesIn(kBounds),
                         [](const auto& info) { return std::string(info.param.name); });

// Values on a format's grid come back exactly.
TEST(GgufRoundTripExact, LegacyGridsAreExact) {
  std::mt19937 rng(3);
  for (int rep = 0; rep < 50; ++rep) {
    const float d = halfToFloat(floatToHalf(std::ldexp(1.0f + float(rng() % 1000) / 1000.0f,
                                                       int(rng() % 9) - 6)));
    std::vector<float> x4(32), x5(32), x8(32);
    for (int i = 0; i < 32; ++i) {
      x4[i] = float(int(rng() % 16) - 8) * d;
      x5[i] = float(int(rng() % 32) - 16) * d;
      x8[i] = float(int(rng() % 255) - 127) * d;
    }
    x4[5] = -8 * d; // the extreme that fixes d
    x5[9] = -16 * d;
    x8[0] = 127 * d;
    EXPECT_EQ(roundTrip(kQ4_0, x4), x4) << "Q4_0 d=" << d;
    EXPECT_EQ(roundTrip(kQ5_0, x5), x5) << "Q5_0 d=" << d;
    EXPECT_EQ(roundTrip(kQ8_0, x8), x8) << "Q8_0 d=" << d;
    EXPECT_EQ(roundTrip(kQ8_1, x8), x8) << "Q8_1 d=" << d;
  }
}

TEST(GgufRoundTripExact, PlainFloatTypes) {
  std::mt19937 rng(11);
  std::vector<float> f32, f16ok, bf16ok, any;
  for (int i = 0; i < 4096; ++i) {
    uint32_t bits = rng();
    if ((bits & 0x7F800000u) == 0x7F800000u)
      bits &= 0xBFFFFFFFu; // no inf/NaN
    f32.push_back(std::bit_cast<float>(bits));
    uint16_t h = uint16_t(rng());
    if ((h & 0x7C00u) == 0x7C00u)
      h &= 0xBFFF;
    f16ok.push_back(halfToFloat(h)); // every finite half, subnormals included
    bf16ok.push_back(bf16ToFloat(uint16_t(bits >> 16)));
    any.push_back(float(double(int32_t(rng())) / 1e6));
  }
  EXPECT_EQ(roundTrip(kF32, f32), f32);
  EXPECT_EQ(roundTrip(kF16, f16ok), f16ok);
  EXPECT_EQ(roundTrip(kBF16, bf16ok), bf16ok);
  // Not representable: correctly rounded to nearest.
  const auto y16 = roundTrip(kF16, any), yb = roundTrip(kBF16, any);
  for (size_t i = 0; i < any.size(); ++i) {
    EXPECT_EQ(y16[i], halfToFloat(floatToHalf(any[i])));
    EXPECT_EQ(yb[i], bf16ToFloat(floatToBf16(any[i])));
    EXPECT_LE(std::fabs(yb[i] - any[i]), std::ldexp(std::fabs(any[i]), -8));
  }
}

// Auxiliary fields a quantizer must fill: Q8_1 s = d * sum(qs); Q8_K bsums = 16-element sums.
TEST(GgufRoundTripExact, AuxiliaryFields) {
  const auto x = gaussian(256 * 4, 5);
  std::vector<uint8_t> q1(size_t(x.size() / 32 * 36)), qk(size_t(x.size() / 256 * 292));
  quantizeRow(kQ8_1, x.data(), q1.data(), int64_t(x.size()));
  quantizeRow(kQ8_K, x.data(), qk.data(), int64_t(x.size()));
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const uint8_t* p = q1.data() + b * 36;
    const float d = halfToFloat(uint16_t(p[0] | p[1] << 8));
    const float s = halfToFloat(uint16_t(p[2] | p[3] << 8));
    int sum = 0;
    for (int i = 0; i < 32; ++i)
      sum += int8_t(p[4 + i]);
    EXPECT_EQ(s, halfToFloat(floatToHalf(float(sum) * d))) << "block " << b;
  }
  for (size_t b = 0; b < x.size() / 256; ++b) {
    const uint8_t* p = qk.data() + b * 292;
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i)
        sum += int8_t(p[4 + 16 * j + i]);
      EXPECT_EQ(int16_t(p[260 + 2 * j] | p[261 + 2 * j] << 8), sum) << "block " << b;
    }
    float d;
    std::memcpy(&d, p, 4);
    EXPECT_NE(d, 0.0f);
  }
}
