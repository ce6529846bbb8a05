// The Marlin layout codec (schemes/marlin/codec.h) against the FORMATS.md §4.3 test vectors and
// against the table-driven reference algorithm of §4.2 / §4.5 / §4.6 (marlin_reference.h).
#include <gtest/gtest.h>

#include <random>

#include "marlin_reference.h"
#include "schemes/marlin/codec.h"

using namespace qlc;
using namespace qlc::marlin_test;

namespace {

/// §4.3 test-vector codes: q[k][n] = (7k + 3n + (n >> 4)) & mask.
std::vector<uint8_t> vectorCodes(int64_t K, int64_t N, int bits) {
  std::vector<uint8_t> q(size_t(K * N));
  uint32_t mask = (1u << bits) - 1;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      q[size_t(k * N + n)] = uint8_t((7 * k + 3 * n + (n >> 4)) & mask);
  return q;
}

std::vector<uint8_t> randomCodes(int64_t count, int bits, std::mt19937 &rng) {
  std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
  std::vector<uint8_t> v(static_cast<size_t>(count));
  for (auto &x : v)
    x = uint8_t(d(rng));
  return v;
}

TEST(MarlinLayout, Vectors4Bit) {
  auto q = vectorCodes(16, 64, 4);
  std::vector<uint32_t> out = marlin::packWeights(q, 16, 64, 4);
  ASSERT_EQ(out.size(), 128u); // [K/16, 2N] = [1, 128]
  const uint32_t want[] = {0x7ff70880, 0x80081991, 0x91192aa2, 0xa22a3bb3, 0x5dd5e66e, 0x6ee6f77f};
  for (int w = 0; w < 6; ++w)
    EXPECT_EQ(out[size_t(w)], want[w]) << "word " << w;
  EXPECT_EQ(out[127], 0x91192aa2u);
  EXPECT_EQ(out, referencePack(q, 16, 64, 4));
}

TEST(MarlinLayout, Vectors8Bit) {
  auto q = vectorCodes(16, 64, 8);
  std::vector<uint32_t> out = marlin::packWeights(q, 16, 64, 8);
  ASSERT_EQ(out.size(), 256u); // [1, 4N]
  const uint32_t want[] = {0x3f073800, 0x571f5018, 0x70386931, 0x88508149};
  for (int w = 0; w < 4; ++w)
    EXPECT_EQ(out[size_t(w)], want[w]) << "word " << w;
  EXPECT_EQ(out[255], 0x29f122eau);
  EXPECT_EQ(out, referencePack(q, 16, 64, 8));
}

TEST(MarlinLayout, WeightPermFirstEntries) {
  std::vector<int> p = weightPerm(4);
  const int want[] = {0, 128, 8, 136, 16, 144, 24, 152, 256, 384, 264, 392};
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(p[size_t(i)], want[i]) << i;
}

// The closed form is the reference algorithm, over random shapes the tile allows, both widths;
// weightCode reads back every code.
TEST(MarlinLayout, ClosedFormMatchesReferenceAlgorithm) {
  std::mt19937 rng(7);
  for (int bits : {4, 8})
    for (int64_t K : {16, 32, 48, 128})
      for (int64_t N : {64, 128, 192}) {
        SCOPED_TRACE("bits " + std::to_string(bits) + " K " + std::to_string(K) + " N " +
                     std::to_string(N));
        auto q = randomCodes(K * N, bits, rng);
        std::vector<uint32_t> out = marlin::packWeights(q, K, N, bits);
        ASSERT_EQ(out, referencePack(q, K, N, bits));
        ASSERT_EQ(referenceUnpack(out, K, N, bits), q);
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < N; ++n)
            ASSERT_EQ(marlin::weightCode(out.data(), N, k, n, bits), q[size_t(k * N + n)]);
      }
}

TEST(MarlinLayout, ScalePermClosedForms) {
  std::vector<int> grouped = scalePerm(), single = scalePermSingle();
  // The tables of §4.5 as printed.
  EXPECT_EQ(std::vector<int>(grouped.begin(), grouped.begin() + 9),
            (std::vector<int>{0, 8, 16, 24, 32, 40, 48, 56, 1}));
  EXPECT_EQ(grouped.back(), 63);
  EXPECT_EQ(std::vector<int>(single.begin(), single.begin() + 10),
            (std::vector<int>{0, 1, 8, 9, 16, 17, 24, 25, 2, 3}));
  EXPECT_EQ(single.back(), 31);
  // out[scaleColumn(n)] = s[n]  <=>  out[m] = s[perm[m]]
  for (int64_t n = 0; n < 256; ++n) {
    int64_t g = marlin::scaleColumn(n, true), s = marlin::scaleColumn(n, false);
    EXPECT_EQ(grouped[size_t(g % 64)] + 64 * (g / 64), n);
    EXPECT_EQ(single[size_t(s % 32)] + 32 * (s / 32), n);
  }
}

// permuteScales picks grouped iff group < size_k (and not -1), on any element width.
TEST(MarlinLayout, PermuteScalesChoosesByOwnK) {
  EXPECT_TRUE(marlin::groupedScalePerm(32, 128));
  EXPECT_FALSE(marlin::groupedScalePerm(128, 128)); // one group of 128: single
  EXPECT_FALSE(marlin::groupedScalePerm(-1, 4096));
  EXPECT_TRUE(marlin::groupedScalePerm(128, 4096));
  const int64_t N = 128;
  for (auto [G, K] :
       std::vector<std::pair<int64_t, int64_t>>{{32, 128}, {128, 128}, {-1, 256}, {64, 256}}) {
    int64_t rows = G == -1 ? 1 : K / G;
    std::vector<uint16_t> s(size_t(rows * N));
    for (size_t i = 0; i < s.size(); ++i)
      s[i] = uint16_t(0x3C00 + i);
    std::vector<uint8_t> bytes(s.size() * 2);
    std::memcpy(bytes.data(), s.data(), bytes.size());
    std::vector<uint8_t> out = marlin::permuteScales(bytes, rows, N, 2, G, K);
    std::vector<uint16_t> got(s.size());
    std::memcpy(got.data(), out.data(), out.size());
    EXPECT_EQ(got, referencePermuteScales(s, G, K)) << "G " << G << " K " << K;
  }
}

TEST(MarlinLayout, ZeroPointClosedForm) {
  std::mt19937 rng(11);
  for (int bits : {4, 8})
    for (int64_t rows : {1, 4})
      for (int64_t N : {64, 128, 256}) {
        auto z = randomCodes(rows * N, bits, rng);
        std::vector<uint32_t> got = marlin::packZeros(z, rows, N, bits);
        ASSERT_EQ(got, referenceZeroPoints(z, rows, N, bits)) << bits << " " << rows << " " << N;
        ASSERT_EQ(referenceUnpackZeroPoints(got, rows, N, bits), z);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t n = 0; n < N; ++n)
            ASSERT_EQ(marlin::zeroCode(got.data(), N, r, n, bits), z[size_t(r * N + n)]);
      }
  // A hand-checked instance of §4.6: column n = 8 (4-bit) is word 0, nibble REV[1] = 4.
  std::vector<uint8_t> z(64, 0);
  z[8] = 0xA;
  EXPECT_EQ(marlin::packZeros(z, 1, 64, 4)[0], 0x000A0000u);
}

TEST(MarlinLayout, ActOrderPermIsStable) {
  std::vector<int32_t> g = {1, 0, 1, 0, 2, 0};
  EXPECT_EQ(marlin::actOrderPerm(g), (std::vector<int32_t>{1, 3, 5, 0, 2, 4}));
}

TEST(MarlinLayout, CheckShapeSaysWhatFits) {
  EXPECT_EQ(*marlin::checkShape(100, 128, 128, 4, false),
            "N = 100 is not a multiple of 64 (Marlin tiles N by 64; pad N to 128)");
  EXPECT_EQ(*marlin::checkShape(64, 96, 32, 4, false),
            "K = 96 is not a multiple of 128 (Marlin's linear kernel needs K % 128 == 0; pad K "
            "to 128)");
  EXPECT_FALSE(marlin::checkShape(64, 192, 64, 8, true)); // MoE: K % max(64, G)
  EXPECT_EQ(*marlin::checkShape(64, 192, 128, 4, true),
            "K = 192 is not a multiple of 128 (Marlin MoE needs each expert's K to be a multiple "
            "of max(64, group); pad K to 256)");
  EXPECT_NE(marlin::checkShape(64, 128, 16, 4, false)->find("group = 16 is not a Marlin group"),
            std::string::npos);
  EXPECT_NE(marlin::checkShape(64, 128, 128, 3, false)->find("bits = 3"), std::string::npos);
  EXPECT_FALSE(marlin::checkShape(64, 128, -1, 4, false));
}

} // namespace
