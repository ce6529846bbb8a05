// AWQ GEMM codec tests (FORMATS.md §1).
#include "schemes/awq/codec.h"
#include "support/float16.h"
#include "codec_test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace qlc;

namespace {

// Independent transcription of AutoAWQ gemm.py from_linear:
//   qweight[:, col] |= intweight[:, col*8 + order_map[i]] << (4*i)
std::vector<uint32_t> referencePack4(const std::vector<uint8_t> &codes, int64_t rows, int64_t N) {
  const int orderMap[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  std::vector<uint32_t> out(static_cast<size_t>(rows * N / 8), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < N / 8; ++col)
      for (int i = 0; i < 8; ++i)
        out[r * (N / 8) + col] |= uint32_t(codes[r * N + col * 8 + orderMap[i]]) << (4 * i);
  return out;
}

// 8-bit (vLLM quant_utils.awq_pack with interleave [0, 2, 1, 3]): byte i holds column 4c + il[i].
std::vector<uint32_t> referencePack8(const std::vector<uint8_t> &codes, int64_t rows, int64_t N) {
  const int il[4] = {0, 2, 1, 3};
  std::vector<uint32_t> out(static_cast<size_t>(rows * N / 4), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < N / 4; ++col)
      for (int i = 0; i < 4; ++i)
        out[r * (N / 4) + col] |= uint32_t(codes[r * N + col * 4 + il[i]]) << (8 * i);
  return out;
}

} // namespace

TEST(AwqCodec, HandVectorWord76543210) {
  // §1.2 test vector: word 0x76543210 decodes to columns 8c..8c+7 = [0,4,1,5,2,6,3,7].
  const uint32_t qweight[2] = {0x76543210u, 0x76543210u}; // one row, N = 16 (c = 0 and c = 1)
  const uint32_t expected[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  for (int64_t n = 0; n < 16; ++n)
    EXPECT_EQ(awq::unpackCode(qweight, 16, 0, n), expected[n % 8]) << "column " << n;
}

TEST(AwqCodec, PackPutsColumnIntoTableNibble) {
  // §1.2 table: a single code 0xF in column 8c+j lands in nibble REV[j].
  const int nibbleOfColumn[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  for (int j = 0; j < 8; ++j) {
    std::vector<uint8_t> codes(8, 0);
    codes[j] = 0xF;
    auto packed = awq::packAwq(codes, 1, 8);
    ASSERT_EQ(packed.size(), 1u);
    EXPECT_EQ(packed[0], 0xFu << (4 * nibbleOfColumn[j])) << "column " << j;
  }
}

TEST(AwqCodec, PackMatchesAutoAwqLoop4And8Bit) {
  for (int64_t rows : {1, 3, 17})
    for (int64_t N : {8, 16, 64, 136}) {
      auto c4 = test::randomCodes(rows * N, 4, uint32_t(rows * 1000 + N));
      EXPECT_EQ(awq::packAwq(c4, rows, N, 4), referencePack4(c4, rows, N));
      auto c8 = test::randomCodes(rows * N, 8, uint32_t(rows * 1000 + N + 1));
      EXPECT_EQ(awq::packAwq(c8, rows, N, 8), referencePack8(c8, rows, N));
    }
}

TEST(AwqCodec, PackUnpackIdentity) {
  for (int bits : {4, 8})
    for (int64_t rows : {1, 2, 5, 32})
      for (int64_t N : {8, 24, 128, 200}) {
        if (N % (32 / bits))
          continue;
        auto codes = test::randomCodes(rows * N, bits, uint32_t(bits * 7919 + rows * 31 + N));
        auto packed = awq::packAwq(codes, rows, N, bits);
        ASSERT_EQ(int64_t(packed.size()), rows * N * bits / 32);
        EXPECT_EQ(awq::unpackAwq(packed, rows, N, bits), codes)
            << bits << "-bit rows=" << rows << " N=" << N;
      }
}

class AwqRoundTrip : public ::testing::TestWithParam<std::tuple<int, int64_t>> {};

TEST_P(AwqRoundTrip, QuantizeDequantize) {
  auto [bits, G] = GetParam();
  const int64_t K = 256, N = 48;
  const int64_t g = G == -1 ? K : G, groups = K / g;
  const double maxq = (1 << bits) - 1;
  auto w = test::randomWeights(N * K, uint32_t(bits * 100 + G + 7));
  ASSERT_FALSE(awq::validate(K, N, G, bits));
  auto ck = awq::quantize(w, K, N, G, bits);
  ASSERT_EQ(int64_t(ck.qweight.size()), K * N * bits / 32);
  ASSERT_EQ(int64_t(ck.qzeros.size()), groups * N * bits / 32);
  ASSERT_EQ(int64_t(ck.scales.size()), groups * N);

  std::vector<float> out(static_cast<size_t>(N * K));
  awq::dequantize(ck.qweight, ck.qzeros, ck.scales, K, N, G, out, bits);

  // Independent dequant from the unpacked codes: W[n][k] = (q[k][n] - z[k/G][n]) * s[k/G][n].
  auto q = awq::unpackAwq(ck.qweight, K, N, bits);
  auto z = awq::unpackAwq(ck.qzeros, groups, N, bits);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      float s = halfToFloat(ck.scales[(k / g) * N + n]);
      float naive = float(int(q[k * N + n]) - int(z[(k / g) * N + n])) * s;
      ASSERT_EQ(std::bit_cast<uint32_t>(out[n * K + k]), std::bit_cast<uint32_t>(naive))
          << "n=" << n << " k=" << k;
    }

  // Error bound (codec_test_util.h: roundTripBound). Precondition of the s/2 bound for AutoAWQ's
  // un-widened grid: every group straddles 0 (checked, not assumed).
  for (int64_t n = 0; n < N; ++n)
    for (int64_t grp = 0; grp < groups; ++grp) {
      float mn = 1e9f, mx = -1e9f;
      for (int64_t k = grp * g; k < (grp + 1) * g; ++k) {
        mn = std::min(mn, w[n * K + k]);
        mx = std::max(mx, w[n * K + k]);
      }
      ASSERT_TRUE(mn < 0 && mx > 0);
      double s = halfToFloat(ck.scales[grp * N + n]);
      double bound = test::roundTripBound(s, maxq, test::kF16Roundoff);
      for (int64_t k = grp * g; k < (grp + 1) * g; ++k)
        ASSERT_LE(std::fabs(double(w[n * K + k]) - double(out[n * K + k])), bound)
            << "n=" << n << " k=" << k << " s=" << s;
    }
}

INSTANTIATE_TEST_SUITE_P(AllGroups, AwqRoundTrip,
                         ::testing::Combine(::testing::Values(4, 8),
                                            ::testing::Values(int64_t(32), int64_t(64),
                                                              int64_t(128), int64_t(-1))));

TEST(AwqCodec, QuantizerFormulaOnKnownGroup) {
  // One group of 8 values in one column (K = 8, N = 8 so the column packs into one word).
  // min = -0.5, max = 1.0: s = fp16(1.5/15) = fp16(0.1), z = -round(-0.5/s) = 5.
  const int64_t K = 8, N = 8;
  std::vector<float> w(N * K, 0.f);
  const float col0[8] = {-0.5f, 1.0f, 0.f, 0.25f, -0.26f, 0.7f, 0.05f, 0.15f};
  for (int k = 0; k < 8; ++k)
    w[0 * K + k] = col0[k];
  auto ck = awq::quantize(w, K, N, -1);
  float s = halfToFloat(ck.scales[0]);
  EXPECT_EQ(ck.scales[0], floatToHalf(0.1f));
  EXPECT_EQ(awq::unpackCode(ck.qzeros.data(), N, 0, 0), 5u);
  for (int k = 0; k < 8; ++k) {
    float expect = std::clamp(std::nearbyint(col0[k] / s) + 5.f, 0.f, 15.f);
    EXPECT_EQ(awq::unpackCode(ck.qweight.data(), N, k, 0), uint32_t(expect)) << k;
  }
  // Columns 1..7 are all zero: scale = fp16(1e-5/15), zero 0, codes 0, dequant exactly 0.
  EXPECT_EQ(ck.scales[1], floatToHalf(1e-5f / 15.f));
  std::vector<float> out(N * K);
  awq::dequantize(ck.qweight, ck.qzeros, ck.scales, K, N, -1, out);
  for (int64_t n = 1; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      EXPECT_EQ(out[n * K + k], 0.f);
}

TEST(AwqCodec, OneSidedGroupSaturatesLikeAutoAwq) {
  // AutoAWQ does not widen min/max to 0: for a group in [1.0, 1.1] the zero clamps to 0 and the
  // codes saturate at 15 (the documented upstream behaviour we reproduce, codec.h).
  const int64_t K = 32, N = 8;
  std::vector<float> w(N * K);
  for (int64_t i = 0; i < N * K; ++i)
    w[i] = 1.0f + 0.1f * float(i % K) / float(K - 1);
  auto ck = awq::quantize(w, K, N, 32);
  EXPECT_EQ(awq::unpackCode(ck.qzeros.data(), N, 0, 3), 0u);
  for (int64_t k = 0; k < K; ++k)
    EXPECT_EQ(awq::unpackCode(ck.qweight.data(), N, k, 3), 15u);
}

TEST(AwqCodec, Validators) {
  EXPECT_EQ(awq::validate(100, 64, 32), "K = 100 is not a multiple of group size 32");
  EXPECT_EQ(awq::validate(128, 100, 32),
            "N = 100 is not a multiple of 8 (AWQ packs 8 4-bit codes per int32 along the output "
            "dimension)");
  EXPECT_EQ(awq::validate(128, 100, 32, 8), std::nullopt); // 8-bit packs 4 per word
  EXPECT_EQ(awq::validate(128, 102, 32, 8),
            "N = 102 is not a multiple of 4 (AWQ packs 4 8-bit codes per int32 along the output "
            "dimension)");
  EXPECT_EQ(awq::validate(128, 64, 32, 3),
            "AWQ supports 4-bit codes (and 8-bit for awq_marlin), not 3-bit");
  EXPECT_EQ(awq::validate(128, 64, 0), "group size 0 is invalid (must be positive or -1)");
  EXPECT_EQ(awq::validate(100, 64, -1), std::nullopt);

  const int64_t qw[] = {256, 8}, qz[] = {2, 8}, sc[] = {2, 64}, badSc[] = {3, 64};
  EXPECT_EQ(awq::validateShapes(qw, qz, sc, 256, 64, 128), std::nullopt);
  EXPECT_EQ(awq::validateShapes(qw, qz, badSc, 256, 64, 128),
            "scales has shape [3, 64], expected [2, 64] (AWQ scales is [K/G, N])");
  const int64_t qwT[] = {8, 256};
  EXPECT_EQ(awq::validateShapes(qwT, qz, sc, 256, 64, 128),
            "qweight has shape [8, 256], expected [256, 8] (AWQ qweight is [K, N/8])");
}
