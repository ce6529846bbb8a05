// compressed-tensors pack-quantized (WNA16) codec tests (FORMATS.md §3).
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
#include "support/float16.h"
#include "codec_test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace qlc;

TEST(CtCodec, SignedToStoredOffset) {
  // §3.2: u = q + 2^(b-1): 4-bit -8..7 -> 0..15, 8-bit -128..127 -> 0..255.
  for (int q = -8; q <= 7; ++q) {
    EXPECT_EQ(ct::toStored(q, 4), uint32_t(q + 8));
    EXPECT_EQ(ct::fromStored(uint32_t(q + 8), 4), q);
  }
  for (int q = -128; q <= 127; ++q) {
    EXPECT_EQ(ct::toStored(q, 8), uint32_t(q + 128));
    EXPECT_EQ(ct::fromStored(uint32_t(q + 128), 8), q);
  }
}

TEST(CtCodec, HandPackedWords) {
  // Eight consecutive k of one row, sequential order: q = -8..-1 -> u = 0..7 -> 0x76543210,
  // q = 0..7 -> u = 8..15 -> 0xFEDCBA98.
  std::vector<int8_t> lo = {-8, -7, -6, -5, -4, -3, -2, -1}, hi = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(ct::packRows(lo, 1, 8, 4), std::vector<uint32_t>{0x76543210u});
  EXPECT_EQ(ct::packRows(hi, 1, 8, 4), std::vector<uint32_t>{0xFEDCBA98u});
  // 8-bit: q = {-128, -1, 0, 127} -> bytes 0x00, 0x7F, 0x80, 0xFF.
  std::vector<int8_t> b = {-128, -1, 0, 127};
  EXPECT_EQ(ct::packRows(b, 1, 4, 8), std::vector<uint32_t>{0xFF807F00u});
  // Zero point packs along dim 0: column c of [8, 1] -> one word with row r at nibble r.
  EXPECT_EQ(ct::packCols(lo, 8, 1, 4), std::vector<uint32_t>{0x76543210u});
}

TEST(CtCodec, PaddingIsZeroBits) {
  // K = 10, 4-bit: ceil(10/8) = 2 words per row; codes 10..15 of word 1 are raw zero bits.
  std::vector<int8_t> q(2 * 10, 7); // u = 15
  auto packed = ct::packRows(q, 2, 10, 4);
  ASSERT_EQ(packed.size(), 4u);
  EXPECT_EQ(packed[0], 0xFFFFFFFFu);
  EXPECT_EQ(packed[1], 0x000000FFu);
  EXPECT_EQ(packed[3], 0x000000FFu);
  // N = 5 zero points along dim 0: ceil(5/8) = 1 word per column.
  std::vector<int8_t> z = {-8, 7, -8, 7, 0};
  EXPECT_EQ(ct::packCols(z, 5, 1, 4), std::vector<uint32_t>{0x0008F0F0u});
}

TEST(CtCodec, PackUnpackIdentity) {
  for (int bits : {4, 8})
    for (int64_t R : {1, 3, 8, 13})
      for (int64_t C : {1, 7, 8, 9, 64, 100}) {
        auto q = test::randomSigned(R * C, bits, uint32_t(bits * 131 + R * 17 + C));
        auto rows = ct::packRows(q, R, C, bits);
        ASSERT_EQ(int64_t(rows.size()), R * ((C * bits + 31) / 32));
        EXPECT_EQ(ct::unpackRows(rows, R, C, bits), q) << bits << " " << R << "x" << C;
        auto cols = ct::packCols(q, R, C, bits);
        ASSERT_EQ(int64_t(cols.size()), ((R * bits + 31) / 32) * C);
        EXPECT_EQ(ct::unpackCols(cols, R, C, bits), q) << bits << " " << R << "x" << C;
      }
}

TEST(CtCodec, TransposedWeightPackedIsGptqQweightLayout) {
  // §3.3 (derived): weight_packed^T [K/8, N] has the GPTQ qweight bit layout of the codes u.
  const int64_t N = 24, K = 64;
  auto q = test::randomSigned(N * K, 4, 77);
  auto wp = ct::packRows(q, N, K, 4); // [N, K/8]
  std::vector<uint8_t> uKN(K * N);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      uKN[k * N + n] = uint8_t(q[n * K + k] + 8);
  auto qweight = gptq::packAlongK(uKN, K, N, 4); // [K/8, N]
  for (int64_t r = 0; r < K / 8; ++r)
    for (int64_t n = 0; n < N; ++n)
      ASSERT_EQ(wp[n * (K / 8) + r], qweight[r * N + n]);
}

struct CtCase {
  int bits;
  ct::Strategy strategy;
  int64_t G;
  bool symmetric;
  bool actorder;
  ct::SymDivisor divisor;
  ct::ScaleType scaleType;
};

class CtRoundTrip : public ::testing::TestWithParam<CtCase> {};

TEST_P(CtRoundTrip, QuantizeDequantize) {
  const CtCase c = GetParam();
  const int64_t K = 256, N = 52; // N not a multiple of 8: zero point rows are padded
  ct::Config cfg{c.bits, c.strategy, c.G, c.symmetric, c.scaleType, c.divisor};
  ASSERT_FALSE(ct::validate(K, N, cfg));
  const int64_t groups = ct::numGroups(K, cfg);
  const int64_t g = K / groups;
  uint32_t seed = uint32_t(c.bits * 3 + c.G * 5 + c.symmetric * 7 + c.actorder * 11 +
                           int(c.divisor) * 13 + int(c.strategy) * 17 + int(c.scaleType) * 19);
  auto w = test::randomWeights(N * K, seed, -0.7f, 1.1f); // skewed so asym zero points vary
  std::vector<int32_t> perm;
  if (c.actorder)
    perm = test::randomPermutation(K, seed + 1);
  auto ck = ct::quantize(w, K, N, cfg, perm);

  const int64_t wp[] = {N, (K * c.bits + 31) / 32}, ws[] = {N, groups},
                zp[] = {(N * c.bits + 31) / 32, groups}, gi[] = {K};
  ASSERT_EQ(ct::validateShapes(wp, ws, c.symmetric ? std::span<const int64_t>() : zp,
                               c.actorder ? std::span<const int64_t>(gi) : std::span<const int64_t>(),
                               K, N, cfg),
            std::nullopt);
  ASSERT_EQ(int64_t(ck.weightPacked.size()), wp[0] * wp[1]);
  ASSERT_EQ(int64_t(ck.weightScale.size()), N * groups);
  ASSERT_EQ(int64_t(ck.weightZeroPoint.size()), c.symmetric ? 0 : zp[0] * zp[1]);
  ASSERT_EQ(ct::validateWeightShape(ck.weightShape, K, N), std::nullopt);
  if (c.actorder) {
    ASSERT_FALSE(ct::validateGIdx(ck.weightGIdx, K, groups));
  } else {
    ASSERT_TRUE(ck.weightGIdx.empty());
  }

  auto scales = ct::decodeScales(ck.weightScale, c.scaleType);
  std::vector<float> out(static_cast<size_t>(N * K));
  ct::dequantize(ck.weightPacked, scales, ck.weightZeroPoint, ck.weightGIdx, K, N, cfg, out);

  // Independent dequant in the signed domain of §3.1: w = (q - zp) * s.
  auto q = ct::unpackRows(ck.weightPacked, N, K, c.bits);
  std::vector<int8_t> zps(static_cast<size_t>(N * groups), 0);
  if (!c.symmetric)
    zps = ct::unpackCols(ck.weightZeroPoint, N, groups, c.bits);
  std::vector<int64_t> position(K);
  for (int64_t i = 0; i < K; ++i)
    position[c.actorder ? perm[i] : i] = i;
  const double u = c.scaleType == ct::ScaleType::F16 ? test::kF16Roundoff : test::kBf16Roundoff;
  const int qmax = (1 << (c.bits - 1)) - 1;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      int64_t grp = c.actorder ? ck.weightGIdx[k] : k / g;
      ASSERT_EQ(grp, position[k] / g);
      float s = scales[n * groups + grp];
      float naive = float(int(q[n * K + k]) - int(zps[n * groups + grp])) * s;
      ASSERT_EQ(std::bit_cast<uint32_t>(out[n * K + k]), std::bit_cast<uint32_t>(naive))
          << "n=" << n << " k=" << k;
      // Bound (codec_test_util.h) with levels = 2^b (covers the /7.5 and asym /15 grids). With the
      // /8 divisor the grid stops at qmax*s while max|w| may reach 8*s: values beyond
      // (qmax + 1/2)*s clamp to qmax*s, an error of up to one full step s (+ the same slack).
      double err = std::fabs(double(w[n * K + k]) - double(out[n * K + k]));
      double bound = test::roundTripBound(s, double(1 << c.bits), u);
      if (c.symmetric && c.divisor == ct::SymDivisor::HalfPow2 && w[n * K + k] > (qmax + 0.5) * s)
        bound += 0.5 * s;
      ASSERT_LE(err, bound) << "n=" << n << " k=" << k << " s=" << s;
    }
}

std::vector<CtCase> allCtCases() {
  std::vector<CtCase> cases;
  for (int bits : {4, 8})
    for (bool sym : {true, false})
      for (auto div : {ct::SymDivisor::HalfPow2, ct::SymDivisor::HalfRange}) {
        if (!sym && div == ct::SymDivisor::HalfRange)
          continue; // divisor only matters when symmetric
        for (int64_t G : {32, 64, 128, -1})
          for (bool act : {false, true})
            cases.push_back({bits, ct::Strategy::Group, G, sym, act, div, ct::ScaleType::F16});
        cases.push_back({bits, ct::Strategy::Channel, 0, sym, false, div, ct::ScaleType::F16});
        cases.push_back({bits, ct::Strategy::Group, 128, sym, false, div, ct::ScaleType::BF16});
      }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllConfigs, CtRoundTrip, ::testing::ValuesIn(allCtCases()));

TEST(CtCodec, QuantizerFormulasOnKnownValues) {
  // One row, K = 8, channel strategy. min = -0.4, max = 1.2.
  const int64_t K = 8, N = 1;
  std::vector<float> w = {-0.4f, 1.2f, 0.f, 0.3f, -0.1f, 0.75f, 0.5f, 1.1f};
  ct::Config sym{4, ct::Strategy::Channel, 0, true};
  auto ck = ct::quantize(w, K, N, sym);
  float s = halfToFloat(ck.weightScale[0]);
  EXPECT_EQ(ck.weightScale[0], floatToHalf(1.2f / 8.f)); // /8, not /7 (§3.1)
  auto q = ct::unpackRows(ck.weightPacked, N, K, 4);
  for (int k = 0; k < K; ++k)
    EXPECT_EQ(q[k], int8_t(std::clamp(std::nearbyint(w[k] / s), -8.f, 7.f))) << k;
  EXPECT_EQ(q[1], 7); // 1.2 / 0.15 = 8 clamps to 7

  sym.symDivisor = ct::SymDivisor::HalfRange;
  EXPECT_EQ(ct::quantize(w, K, N, sym).weightScale[0], floatToHalf(1.2f / 7.5f));

  ct::Config asym{4, ct::Strategy::Channel, 0, false};
  ck = ct::quantize(w, K, N, asym);
  s = halfToFloat(ck.weightScale[0]);
  EXPECT_EQ(ck.weightScale[0], floatToHalf(1.6f / 15.f));
  auto zp = ct::unpackCols(ck.weightZeroPoint, N, 1, 4);
  float expectZp = std::nearbyint(std::clamp(-8.f - (-0.4f) / s, -8.f, 7.f)); // -8 + 3.75 -> -4
  EXPECT_EQ(zp[0], int8_t(expectZp));
  EXPECT_EQ(zp[0], -4);
  q = ct::unpackRows(ck.weightPacked, N, K, 4);
  for (int k = 0; k < K; ++k)
    EXPECT_EQ(q[k], int8_t(std::clamp(std::nearbyint(w[k] / s + expectZp), -8.f, 7.f))) << k;
  // Widening to 0: an all-positive row still gets a grid containing 0 (zero point = q_min).
  std::vector<float> pos = {0.5f, 1.f, 0.75f, 0.6f, 0.9f, 0.8f, 0.7f, 0.55f};
  ck = ct::quantize(pos, K, N, asym);
  EXPECT_EQ(ct::unpackCols(ck.weightZeroPoint, N, 1, 4)[0], -8);
  EXPECT_EQ(ck.weightScale[0], floatToHalf(1.f / 15.f));
}

TEST(CtCodec, AsymmetricRoundsAfterAddingZeroPoint) {
  // forward.py rounds (w/s + zp), not round(w/s) + zp; they differ on ties under half-to-even.
  // min = -0.625, max = 1.25: s = 1.875/15 = 0.125 exactly, zp = round(-8 + 5) = -3;
  // w = 0.0625: w/s + zp = -2.5 -> -2 (round(0.5) + zp would give -3).
  std::vector<float> w = {-0.625f, 1.25f, 0.0625f, 0.f, 0.f, 0.f, 0.f, 0.f};
  auto ck = ct::quantize(w, 8, 1, ct::Config{4, ct::Strategy::Channel, 0, false});
  EXPECT_EQ(halfToFloat(ck.weightScale[0]), 0.125f);
  EXPECT_EQ(ct::unpackCols(ck.weightZeroPoint, 1, 1, 4)[0], -3);
  auto q = ct::unpackRows(ck.weightPacked, 1, 8, 4);
  EXPECT_EQ(q[0], -8);
  EXPECT_EQ(q[1], 7);
  EXPECT_EQ(q[2], -2);
}

TEST(CtCodec, AsymmetricStoredZeroCancelsOffset) {
  // §3.3: W = (u - uz) * s with uz = zp + 2^(b-1); hand-built: u = 11 (q = 3), zp = -2 (uz = 6).
  const int64_t K = 8, N = 3;
  ct::Config cfg{4, ct::Strategy::Channel, 0, false};
  std::vector<int8_t> q(N * K, 3), zp = {-2, 0, 5};
  auto wp = ct::packRows(q, N, K, 4);
  auto zpp = ct::packCols(zp, N, 1, 4);
  EXPECT_EQ(zpp, std::vector<uint32_t>{0x00D86u}); // uz = 6, 8, 13 at nibbles 0, 1, 2
  std::vector<float> scales = {0.5f, 0.25f, 2.f}, out(N * K);
  ct::dequantize(wp, scales, zpp, {}, K, N, cfg, out);
  for (int64_t k = 0; k < K; ++k) {
    EXPECT_EQ(out[0 * K + k], 2.5f);   // (3 - -2) * 0.5
    EXPECT_EQ(out[1 * K + k], 0.75f);  // (3 - 0) * 0.25
    EXPECT_EQ(out[2 * K + k], -4.f);   // (3 - 5) * 2
  }
  ct::dequantize(wp, scales, {}, {}, K, N, ct::Config{4, ct::Strategy::Channel, 0, true}, out);
  EXPECT_EQ(out[0], 1.5f); // symmetric: (u - 8) * s = 3 * 0.5
}

TEST(CtCodec, Validators) {
  ct::Config g32{4, ct::Strategy::Group, 32, true};
  EXPECT_EQ(ct::validate(100, 64, g32), "K = 100 is not a multiple of group size 32");
  EXPECT_EQ(ct::validate(100, 63, ct::Config{4, ct::Strategy::Channel, 0, true}), std::nullopt);
  EXPECT_EQ(ct::validate(128, 64, ct::Config{3, ct::Strategy::Group, 32, true}),
            "compressed-tensors pack-quantized WNA16 supports 4 or 8 bits, not 3");

  const int64_t wp[] = {64, 16}, ws[] = {64, 4}, badWs[] = {64, 3}, zp[] = {8, 4}, gi[] = {128};
  EXPECT_EQ(ct::validateShapes(wp, ws, {}, gi, 128, 64, g32), std::nullopt);
  EXPECT_EQ(ct::validateShapes(wp, badWs, {}, {}, 128, 64, g32),
            "weight_scale has shape [64, 3], expected [64, 4] (group strategy: [N, K/G])");
  const int64_t wsT[] = {4, 64};
  EXPECT_EQ(ct::validateShapes(wp, wsT, {}, {}, 128, 64, g32),
            "weight_scale has shape [4, 64], expected [64, 4] (group strategy: [N, K/G])");
  EXPECT_EQ(ct::validateShapes(wp, ws, zp, {}, 128, 64, g32),
            "weight_zero_point is present but the scheme is symmetric");
  ct::Config a32{4, ct::Strategy::Group, 32, false};
  EXPECT_EQ(ct::validateShapes(wp, ws, {}, {}, 128, 64, a32),
            "weight_zero_point is missing but the scheme is asymmetric");
  EXPECT_EQ(ct::validateShapes(wp, ws, zp, {}, 128, 64, a32), std::nullopt);
  const int64_t zpT[] = {64, 1};
  EXPECT_EQ(ct::validateShapes(wp, ws, zpT, {}, 128, 64, a32),
            "weight_zero_point has shape [64, 1], expected [8, 4] (weight_zero_point is "
            "[ceil(N/8), groups], packed along N)");
  const int64_t ch[] = {64, 1};
  EXPECT_EQ(ct::validateShapes(wp, ch, {}, {}, 128, 64, ct::Config{4, ct::Strategy::Channel}),
            std::nullopt);
  const int64_t wpOdd[] = {64, 13}; // K = 100 -> ceil(100/8) = 13
  EXPECT_EQ(ct::validateShapes(wpOdd, ch, {}, {}, 100, 64, ct::Config{4, ct::Strategy::Channel}),
            std::nullopt);

  const int64_t shape[] = {128, 64};
  EXPECT_EQ(ct::validateWeightShape(shape, 128, 64),
            "weight_shape value has shape [128, 64], expected [64, 128] (weight_shape records "
            "the unpadded [N, K] of the Linear)");
  std::vector<int32_t> gIdx(128, 0);
  gIdx[77] = 4;
  EXPECT_EQ(ct::validateGIdx(gIdx, 128, 4),
            "weight_g_idx[77] = 4 is out of range: there are 4 groups (0..3)");
}
