// The Ascend NPU codec (FORMATS.md §5.1, §5.2): the documented example word, the zero → offset
// mapping, word and zero-point round trips, and antiquant == AWQ dequant element for element.
#include <gtest/gtest.h>

#include <random>

#include "schemes/awq/codec.h"
#include "schemes/npu/codec.h"
#include "support/float16.h"

using namespace qlc;

namespace {

TEST(NpuCodec, FormatsExampleWord) {
  // §5.2: AWQ word 0x76543210 → natural order 0x73625140 → after XOR 0xfbead9c8.
  EXPECT_EQ(npu::awqOrderToNatural(0x76543210u), 0x73625140u);
  EXPECT_EQ(npu::awqWordToNpu(0x76543210u), 0xfbead9c8u);
  EXPECT_EQ(npu::npuWordToAwq(0xfbead9c8u), 0x76543210u);
  EXPECT_EQ(npu::naturalOrderToAwq(0x73625140u), 0x76543210u);
  // §1.2 test vector: 0x76543210 decodes to columns [0,4,1,5,2,6,3,7]; on the NPU element j of the
  // converted word is that code minus 8.
  const int codes[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  for (int j = 0; j < 8; ++j)
    EXPECT_EQ(npu::int4At(0xfbead9c8u, j), codes[j] - 8) << "element " << j;
}

TEST(NpuCodec, EveryNibbleMapsToCodeMinus8) {
  // Put code u in column c (AWQ order) for all u, c and read element c of the NPU word.
  for (uint32_t u = 0; u < 16; ++u)
    for (int c = 0; c < 8; ++c) {
      std::vector<uint8_t> codes(8, 0);
      codes[size_t(c)] = uint8_t(u);
      uint32_t awqWord = awq::packAwq(codes, 1, 8)[0];
      uint32_t npuWord = npu::awqWordToNpu(awqWord);
      EXPECT_EQ(npu::int4At(npuWord, c), int32_t(u) - 8) << "u = " << u << ", c = " << c;
      EXPECT_EQ((npuWord >> (4 * c)) & 0xFu, u ^ 8u); // two's complement nibble of u − 8
    }
}

TEST(NpuCodec, ZeroToOffset) {
  for (uint32_t z = 0; z < 16; ++z) {
    EXPECT_EQ(npu::offsetFromZero(z), 8.0f - float(z));
    EXPECT_EQ(npu::zeroFromOffset(npu::offsetFromZero(z)), z);
    // (u − 8 + 8 − z) = u − z: the NPU formula reproduces the AWQ one for every code.
    for (int u = 0; u < 16; ++u)
      EXPECT_EQ(float(u - 8) + npu::offsetFromZero(z), float(u) - float(z));
    // Offsets are small integers: exact in f16 and bf16, as the pass writes them.
    EXPECT_EQ(halfToFloat(floatToHalf(npu::offsetFromZero(z))), npu::offsetFromZero(z));
    EXPECT_EQ(bf16ToFloat(floatToBf16(npu::offsetFromZero(z))), npu::offsetFromZero(z));
  }
  EXPECT_EQ(npu::offsetFromZero(0), 8.0f);
  EXPECT_EQ(npu::offsetFromZero(8), 0.0f);
  EXPECT_EQ(npu::offsetFromZero(15), -7.0f);
  EXPECT_FALSE(npu::zeroFromOffset(8.5f));
  EXPECT_FALSE(npu::zeroFromOffset(9.0f));
  EXPECT_FALSE(npu::zeroFromOffset(-8.0f));
  // qzeros word 0x76543210: zeros [0,4,1,5,2,6,3,7] in natural order → offsets 8 − z.
  std::vector<uint32_t> qz = {0x76543210u};
  std::vector<float> off = npu::zerosToOffsets(qz);
  EXPECT_EQ(off, (std::vector<float>{8, 4, 7, 3, 6, 2, 5, 1}));
  std::vector<uint32_t> back;
  EXPECT_FALSE(npu::offsetsToZeros(off, back));
  EXPECT_EQ(back, qz);
  off[3] = 0.5f;
  auto e = npu::offsetsToZeros(off, back);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("index 3"), std::string::npos) << *e;
}

TEST(NpuCodec, RandomWordsRoundTrip) {
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    uint32_t w = uint32_t(rng());
    ASSERT_EQ(npu::npuWordToAwq(npu::awqWordToNpu(w)), w);
    ASSERT_EQ(npu::awqWordToNpu(npu::npuWordToAwq(w)), w);
  }
  std::vector<uint32_t> qz(64);
  for (uint32_t &w : qz)
    w = uint32_t(rng());
  std::vector<uint32_t> back;
  ASSERT_FALSE(npu::offsetsToZeros(npu::zerosToOffsets(qz), back));
  EXPECT_EQ(back, qz);
}

TEST(NpuCodec, ValidateW4) {
  EXPECT_FALSE(npu::validateW4(128, 64, 32));
  EXPECT_FALSE(npu::validateW4(128, 64, -1));
  EXPECT_FALSE(npu::validateW4(96, 8, 96));
  auto e = npu::validateW4(64, 12, 32);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("N = 12 is not a multiple of 8"), std::string::npos) << *e;
  e = npu::validateW4(48, 16, 32);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("K = 48 is not a multiple of group = 32"), std::string::npos) << *e;
  e = npu::validateW4(64, 16, 0);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("group = 0 is invalid"), std::string::npos) << *e;
}

/// The NPU antiquant of the converted weight equals the AWQ dequant of the checkpoint, bit for bit:
/// (u − 8) + (8 − z) = u − z exactly, and (u − z) · s is exact in f32 for an f16 s.
class NpuAntiquantVsAwq : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(NpuAntiquantVsAwq, BitExact) {
  auto [k, n, g] = GetParam();
  int64_t gs = g == -1 ? k : g;
  std::mt19937 rng(uint32_t(k * 131 + n * 7 + gs));
  std::uniform_real_distribution<float> wd(-1.f, 1.f);
  std::vector<float> w(size_t(n * k));
  for (float &x : w)
    x = wd(rng);
  awq::Checkpoint ck = awq::quantize(w, k, n, g);
  std::vector<float> ref(size_t(n * k)), got(size_t(n * k));
  awq::dequantize(ck.qweight, ck.qzeros, ck.scales, k, n, g, ref);
  std::vector<float> scale(ck.scales.size());
  for (size_t i = 0; i < scale.size(); ++i)
    scale[i] = halfToFloat(ck.scales[i]);
  npu::antiquant(npu::convertWeightWords(ck.qweight), scale, npu::zerosToOffsets(ck.qzeros), k, n,
                 gs, got);
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_EQ(got[i], ref[i]) << "element " << i << " (n = " << i / size_t(k)
                              << ", k = " << i % size_t(k) << ")";
}

INSTANTIATE_TEST_SUITE_P(Shapes, NpuAntiquantVsAwq,
                         ::testing::Values(std::make_tuple(128, 64, 32),
                                           std::make_tuple(128, 8, 64),
                                           std::make_tuple(256, 48, 128),
                                           std::make_tuple(96, 16, -1), std::make_tuple(64, 24, 32),
                                           std::make_tuple(384, 32, 128)));

} // namespace
