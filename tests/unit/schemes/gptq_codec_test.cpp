// GPTQ codec tests (FORMATS.md §2).
#include "schemes/gptq/codec.h"
#include "support/float16.h"
#include "codec_test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace qlc;

namespace {

void setBit(uint32_t &word, int bit, uint32_t value) {
  if (value & 1u)
    word |= 1u << bit;
}

// §2.2 3-bit layout transcribed literally, one bit at a time:
// word0 = v0..v9 at bits 3i + low 2 bits of v10 at bits 30-31; word1 bit 0 = bit 2 of v10,
// v11..v20 at bits 3j+1, bit 0 of v21 at bit 31; word2 bits 0-1 = bits 1-2 of v21, v22..v31 at 3j+2.
std::array<uint32_t, 3> literal3Bit(const uint8_t v[32]) {
  std::array<uint32_t, 3> w = {0, 0, 0};
  for (int i = 0; i <= 9; ++i)
    for (int b = 0; b < 3; ++b)
      setBit(w[0], 3 * i + b, v[i] >> b);
  setBit(w[0], 30, v[10] >> 0);
  setBit(w[0], 31, v[10] >> 1);
  setBit(w[1], 0, v[10] >> 2);
  for (int j = 0; j <= 9; ++j)
    for (int b = 0; b < 3; ++b)
      setBit(w[1], 3 * j + 1 + b, v[11 + j] >> b);
  setBit(w[1], 31, v[21] >> 0);
  setBit(w[2], 0, v[21] >> 1);
  setBit(w[2], 1, v[21] >> 2);
  for (int j = 0; j <= 9; ++j)
    for (int b = 0; b < 3; ++b)
      setBit(w[2], 3 * j + 2 + b, v[22 + j] >> b);
  return w;
}

// §2.2 for 2/4/8 bits: qweight[k/pf][n] holds q[k][n] at bits bits*(k%pf).
std::vector<uint32_t> referencePackAlongK(const std::vector<uint8_t> &codes, int64_t K, int64_t N,
                                          int bits) {
  int pf = 32 / bits;
  std::vector<uint32_t> out(static_cast<size_t>(K / pf * N), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      out[(k / pf) * N + n] |= uint32_t(codes[k * N + n]) << (bits * (k % pf));
  return out;
}

} // namespace

TEST(GptqCodec, ThreeBitLayoutIsExactlyTheThreeWordsOfSection22) {
  uint8_t v[32];
  for (int i = 0; i < 32; ++i)
    v[i] = uint8_t((i * 5 + 3) % 8); // every code value, both straddling codes non-trivial
  v[10] = 0b101;                     // straddles words 0/1: bit 2 must land in word1 bit 0
  v[21] = 0b011;                     // straddles words 1/2
  auto expected = literal3Bit(v);
  std::vector<uint8_t> col(v, v + 32);

  auto alongK = gptq::packAlongK(col, 32, 1, 3); // one column, K = 32
  ASSERT_EQ(alongK.size(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(alongK[i], expected[i]) << "qweight word " << i;

  auto alongN = gptq::packAlongN(col, 1, 32, 3); // one qzeros row, N = 32
  ASSERT_EQ(alongN.size(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(alongN[i], expected[i]) << "qzeros word " << i;

  // And reading back every value through the per-element accessor.
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(gptq::weightCode(alongK.data(), 1, i, 0, 3), v[i]) << i;
    EXPECT_EQ(gptq::zeroCode(alongN.data(), 32, 0, i, 3), v[i]) << i;
  }
}

TEST(GptqCodec, ThreeBitAllOnesOnlyInOneValue) {
  // Each value alone: catches any off-by-one in the straddle handling.
  for (int i = 0; i < 32; ++i) {
    uint8_t v[32] = {};
    v[i] = 7;
    auto expected = literal3Bit(v);
    std::vector<uint8_t> col(v, v + 32);
    auto packed = gptq::packAlongK(col, 32, 1, 3);
    for (int w = 0; w < 3; ++w)
      EXPECT_EQ(packed[w], expected[w]) << "value " << i << " word " << w;
  }
}

TEST(GptqCodec, SequentialPackingMatchesSection22) {
  for (int bits : {2, 4, 8})
    for (int64_t N : {1, 8, 40}) {
      int64_t K = 64;
      auto codes = test::randomCodes(K * N, bits, uint32_t(bits * 13 + N));
      EXPECT_EQ(gptq::packAlongK(codes, K, N, bits), referencePackAlongK(codes, K, N, bits));
    }
  // 4-bit hand vector: k = 0..7 with codes 0..7 in one column -> 0x76543210.
  std::vector<uint8_t> c = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(gptq::packAlongK(c, 8, 1, 4), std::vector<uint32_t>{0x76543210u});
  EXPECT_EQ(gptq::packAlongN(c, 1, 8, 4), std::vector<uint32_t>{0x76543210u});
}

TEST(GptqCodec, PackUnpackIdentityAllBits) {
  for (int bits : {2, 3, 4, 8})
    for (int64_t K : {32, 64, 96, 256})
      for (int64_t N : {32, 64, 160}) {
        auto codes = test::randomCodes(K * N, bits, uint32_t(bits * 1000003 + K * 17 + N));
        auto qw = gptq::packAlongK(codes, K, N, bits);
        ASSERT_EQ(int64_t(qw.size()), gptq::qweightRows(K, bits) * N);
        EXPECT_EQ(gptq::unpackAlongK(qw, K, N, bits), codes) << bits << " K=" << K << " N=" << N;
        auto qz = gptq::packAlongN(codes, K, N, bits);
        ASSERT_EQ(int64_t(qz.size()), K * gptq::qzerosCols(N, bits));
        EXPECT_EQ(gptq::unpackAlongN(qz, K, N, bits), codes) << bits << " K=" << K << " N=" << N;
      }
}

TEST(GptqCodec, SymmetricV1QzerosAre0x77777777) {
  const int64_t K = 256, N = 64;
  auto w = test::randomWeights(N * K, 11);
  gptq::Config cfg{4, 128, true, gptq::Format::V1};
  auto ck = gptq::quantize(w, K, N, cfg);
  ASSERT_EQ(ck.qzeros.size(), size_t(2 * 8));
  for (uint32_t word : ck.qzeros)
    EXPECT_EQ(word, 0x77777777u);
  cfg.format = gptq::Format::V2; // v2 stores the real zero 8
  for (uint32_t word : gptq::quantize(w, K, N, cfg).qzeros)
    EXPECT_EQ(word, 0x88888888u);
}

TEST(GptqCodec, DequantAlwaysIndexesThroughGIdx) {
  // K = 64, two groups of 32 with different scales; g_idx alternates so rows of group 1 are odd k.
  const int64_t K = 64, N = 32;
  gptq::Config cfg{4, 32, true, gptq::Format::V2};
  std::vector<uint8_t> codes(K * N, 9); // q - z = 1 everywhere
  std::vector<uint8_t> zeros(2 * N, 8);
  std::vector<uint16_t> scales(2 * N);
  for (int64_t n = 0; n < N; ++n) {
    scales[0 * N + n] = floatToHalf(0.5f);
    scales[1 * N + n] = floatToHalf(2.0f);
  }
  std::vector<int32_t> gIdx(K);
  for (int64_t k = 0; k < K; ++k)
    gIdx[k] = int32_t(k % 2);
  auto qw = gptq::packAlongK(codes, K, N, 4);
  auto qz = gptq::packAlongN(zeros, 2, N, 4);
  std::vector<float> out(N * K);
  gptq::dequantize(qw, qz, scales, gIdx, K, N, cfg, out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      ASSERT_EQ(out[n * K + k], k % 2 ? 2.0f : 0.5f) << n << "," << k;
  // Same data, v1: stored 8 means real zero 9, so every weight dequantizes to 0.
  cfg.format = gptq::Format::V1;
  gptq::dequantize(qw, qz, scales, gIdx, K, N, cfg, out);
  for (float x : out)
    ASSERT_EQ(x, 0.f);
}

TEST(GptqCodec, ActOrderGIdxIsPositionOverG) {
  const int64_t K = 96, G = 32;
  auto perm = test::randomPermutation(K, 5);
  auto gIdx = gptq::actOrderGIdx(perm, G);
  std::vector<int64_t> position(K);
  for (int64_t i = 0; i < K; ++i)
    position[perm[i]] = i;
  std::vector<int> members(3, 0);
  for (int64_t k = 0; k < K; ++k) {
    EXPECT_EQ(gIdx[k], position[k] / G);
    ++members[gIdx[k]];
  }
  EXPECT_EQ(members, (std::vector<int>{32, 32, 32}));
  EXPECT_EQ(gptq::sequentialGIdx(K, G)[33], 1);
  EXPECT_EQ(gptq::sequentialGIdx(K, -1)[95], 0);
}

enum class Order { None, Act, Static };

class GptqRoundTrip
    : public ::testing::TestWithParam<std::tuple<int, int64_t, bool, gptq::Format, Order>> {};

TEST_P(GptqRoundTrip, QuantizeDequantize) {
  auto [bits, G, sym, format, order] = GetParam();
  const int64_t K = 256, N = 64;
  const int64_t g = G == -1 ? K : G, groups = gptq::numGroups(K, G);
  const double maxq = (1 << bits) - 1;
  gptq::Config cfg{bits, G, sym, format};
  ASSERT_FALSE(gptq::validate(K, N, cfg, true));
  uint32_t seed = uint32_t(bits * 7 + G * 3 + sym * 2 + int(format) * 5 + int(order) * 11);
  auto w = test::randomWeights(N * K, seed);
  std::vector<int32_t> perm;
  if (order != Order::None)
    perm = test::randomPermutation(K, seed + 1);
  auto ck = gptq::quantize(w, K, N, cfg, perm, order == Order::Static);

  ASSERT_EQ(int64_t(ck.qweight.size()), gptq::qweightRows(K, bits) * N);
  ASSERT_EQ(int64_t(ck.qzeros.size()), groups * gptq::qzerosCols(N, bits));
  ASSERT_EQ(int64_t(ck.scales.size()), groups * N);
  ASSERT_FALSE(gptq::validateGIdx(ck.gIdx, K, groups));

  // g_idx: position(k)/G for act-order, k/G otherwise (§2.4).
  std::vector<int64_t> position(K);
  for (int64_t i = 0; i < K; ++i)
    position[order == Order::Act ? perm[i] : i] = i;
  for (int64_t k = 0; k < K; ++k)
    ASSERT_EQ(ck.gIdx[k], position[k] / g) << k;

  std::vector<float> out(static_cast<size_t>(N * K));
  gptq::dequantize(ck.qweight, ck.qzeros, ck.scales, ck.gIdx, K, N, cfg, out);

  // Independent dequant from unpacked codes, per §2.3 with the v1 "+1".
  auto q = gptq::unpackAlongK(ck.qweight, K, N, bits);
  auto zq = gptq::unpackAlongN(ck.qzeros, groups, N, bits);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      int grp = ck.gIdx[k];
      int zero = zq[grp * N + n] + (format == gptq::Format::V1 ? 1 : 0);
      float naive = halfToFloat(ck.scales[grp * N + n]) * float(int(q[k * N + n]) - zero);
      ASSERT_EQ(std::bit_cast<uint32_t>(out[n * K + k]), std::bit_cast<uint32_t>(naive))
          << "n=" << n << " k=" << k;
      if (sym) { // sym zero is (maxq+1)/2 whatever the format
        ASSERT_EQ(zero, (1 << bits) / 2);
      }
    }

  // Error bound (codec_test_util.h roundTripBound, levels = maxq).
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      double s = halfToFloat(ck.scales[ck.gIdx[k] * N + n]);
      ASSERT_LE(std::fabs(double(w[n * K + k]) - double(out[n * K + k])),
                test::roundTripBound(s, maxq, test::kF16Roundoff))
          << "n=" << n << " k=" << k << " s=" << s;
    }
}

INSTANTIATE_TEST_SUITE_P(
    AllConfigs, GptqRoundTrip,
    ::testing::Combine(::testing::Values(2, 3, 4, 8),
                       ::testing::Values(int64_t(32), int64_t(64), int64_t(128), int64_t(-1)),
                       ::testing::Bool(), ::testing::Values(gptq::Format::V1, gptq::Format::V2),
                       ::testing::Values(Order::None, Order::Act, Order::Static)));

TEST(GptqCodec, CeilGroupsWhenKIsNotAMultipleOfG) {
  // AutoGPTQ allocates ceil(K/G) groups; the last one is short (K = 160, G = 128 -> 2 groups).
  const int64_t K = 160, N = 32;
  gptq::Config cfg{4, 128, false, gptq::Format::V2};
  ASSERT_FALSE(gptq::validate(K, N, cfg));
  EXPECT_EQ(gptq::validate(K, N, cfg, true), "K = 160 is not a multiple of group size 128");
  auto w = test::randomWeights(N * K, 99);
  auto ck = gptq::quantize(w, K, N, cfg);
  ASSERT_EQ(ck.scales.size(), size_t(2 * N));
  std::vector<float> out(N * K);
  gptq::dequantize(ck.qweight, ck.qzeros, ck.scales, ck.gIdx, K, N, cfg, out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      ASSERT_LE(std::fabs(w[n * K + k] - out[n * K + k]),
                test::roundTripBound(halfToFloat(ck.scales[(k / 128) * N + n]), 15,
                                     test::kF16Roundoff));
}

TEST(GptqCodec, V1AsymmetricNeverStoresRealZeroZero) {
  // A group with all weights >= 0 has (after widening to 0) xmin = 0 -> real zero 0, which v1
  // would have to store as -1 (§2.3). Our v1 quantizer refits it to zero 1 (stored 0) and keeps
  // the s/2 bound; v2 stores 0 as is. The neighbouring columns must be unaffected either way.
  const int64_t K = 32, N = 32;
  auto w = test::randomWeights(N * K, 3);
  for (int64_t k = 0; k < K; ++k) // column 5: all non-negative
    w[5 * K + k] = std::fabs(w[5 * K + k]);
  for (auto format : {gptq::Format::V1, gptq::Format::V2}) {
    gptq::Config cfg{4, -1, false, format};
    auto ck = gptq::quantize(w, K, N, cfg);
    auto zq = gptq::unpackAlongN(ck.qzeros, 1, N, 4);
    int realZero5 = zq[5] + (format == gptq::Format::V1 ? 1 : 0);
    EXPECT_EQ(realZero5, format == gptq::Format::V1 ? 1 : 0);
    std::vector<float> out(N * K);
    gptq::dequantize(ck.qweight, ck.qzeros, ck.scales, ck.gIdx, K, N, cfg, out);
    for (int64_t n = 0; n < N; ++n) {
      double s = halfToFloat(ck.scales[n]);
      for (int64_t k = 0; k < K; ++k)
        ASSERT_LE(std::fabs(double(w[n * K + k]) - out[n * K + k]),
                  test::roundTripBound(s, 15, test::kF16Roundoff))
            << "format " << int(format) << " n=" << n << " k=" << k;
    }
    if (format == gptq::Format::V1) { // refit scale = fp16(xmax / (maxq - 1))
      EXPECT_EQ(ck.scales[5], floatToHalf(*std::max_element(&w[5 * K], &w[6 * K]) / 14.f));
    }
  }
}

TEST(GptqCodec, Validators) {
  gptq::Config c4{4, 32, true, gptq::Format::V1};
  EXPECT_EQ(gptq::validate(100, 64, c4),
            "K = 100 is not a multiple of 8 (4-bit codes are packed 8 per int32 along K in "
            "qweight)");
  EXPECT_EQ(gptq::validate(128, 100, c4),
            "N = 100 is not a multiple of 8 (4-bit codes are packed 8 per int32 along N in "
            "qzeros)");
  gptq::Config c3{3, 32, true, gptq::Format::V1};
  EXPECT_EQ(gptq::validate(48, 64, c3),
            "K = 48 is not a multiple of 32 (3-bit codes are packed 32 per 3 int32 words along K "
            "in qweight)");
  EXPECT_EQ(gptq::validate(64, 64, c3), std::nullopt);
  gptq::Config c5{5, 32, true, gptq::Format::V1};
  EXPECT_EQ(gptq::validate(64, 64, c5), "GPTQ supports 2, 3, 4 or 8 bits, not 5");
  EXPECT_EQ(gptq::validate(80, 64, c4, true), "K = 80 is not a multiple of group size 32");
  EXPECT_EQ(gptq::validate(80, 64, c4), std::nullopt); // AutoGPTQ itself allows ceil(K/G) groups
  EXPECT_EQ(gptq::validate(128, 64, gptq::Config{4, 48, true}, true),
            "K = 128 is not a multiple of group size 48");

  std::vector<int32_t> gIdx = {0, 1, 1, 2};
  EXPECT_EQ(gptq::validateGIdx(gIdx, 4, 2),
            "g_idx[3] = 2 is out of range: there are 2 groups (0..1)");
  EXPECT_EQ(gptq::validateGIdx(gIdx, 4, 3), std::nullopt);
  gIdx[0] = -1;
  EXPECT_EQ(gptq::validateGIdx(gIdx, 4, 3),
            "g_idx[0] = -1 is out of range: there are 3 groups (0..2)");
  EXPECT_EQ(gptq::validateGIdx(gIdx, 5, 3), "g_idx has 4 entries, expected K = 5");

  const int64_t qw[] = {32, 64}, qz[] = {2, 8}, sc[] = {2, 64}, gi[] = {256};
  gptq::Config c128{4, 128, true, gptq::Format::V1};
  EXPECT_EQ(gptq::validateShapes(qw, qz, sc, gi, 256, 64, c128), std::nullopt);
  const int64_t badSc[] = {1, 64};
  EXPECT_EQ(gptq::validateShapes(qw, qz, badSc, gi, 256, 64, c128),
            "scales has shape [1, 64], expected [2, 64] (GPTQ scales is [ceil(K/G), N])");
  const int64_t badGi[] = {255};
  EXPECT_EQ(gptq::validateShapes(qw, qz, sc, badGi, 256, 64, c128),
            "g_idx has shape [255], expected [256] (GPTQ g_idx has one entry per input row)");
  const int64_t qw3[] = {24, 64}, qz3[] = {2, 6};
  gptq::Config c3g{3, 128, true, gptq::Format::V1};
  EXPECT_EQ(gptq::validateShapes(qw3, qz3, sc, {}, 256, 64, c3g), std::nullopt);
}
