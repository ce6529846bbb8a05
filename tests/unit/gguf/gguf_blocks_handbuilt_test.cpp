// Hand-built ggml blocks with known values, checked bit-exactly against
//  (a) literal expected numbers worked out by hand in the comments, and
//  (b) an independent per-element closed form written from FORMATS.md §6.5 (index arithmetic per
//      element i, as opposed to the codec's ggml-style loops), over random block bytes.
#include "schemes/gguf/blocks.h"
#include "gguf_test_util.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

using namespace qlc;
using namespace qlc::gguf;
using qlc::gguf::test::putHalf;

namespace {

std::vector<float> deq(uint32_t type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> y(size_t(n), NAN);
  dequantizeRow(type, bytes.data(), y.data(), n);
  return y;
}

uint32_t bitsOf(float f) { return std::bit_cast<uint32_t>(f); }

// ------------------------------------------------------------------------------------------------
// Independent reference: element i of one block, straight from FORMATS.md §6.5.
// ------------------------------------------------------------------------------------------------
float h16(const uint8_t* p) { return halfToFloat(uint16_t(p[0] | (p[1] << 8))); }
int bit(const uint8_t* bytes, int bitIndex) { return (bytes[bitIndex / 8] >> (bitIndex % 8)) & 1; }

// Q3_K 6-bit scale S[s] (unsigned 0..63), the four cases of FORMATS.md §6.5.
int q3kScale(const uint8_t* b, int s) {
  const int t = s % 4;
  switch (s / 4) {
  case 0: return (b[t] & 0xF) | (((b[8 + t] >> 0) & 3) << 4);
  case 1: return (b[4 + t] & 0xF) | (((b[8 + t] >> 2) & 3) << 4);
  case 2: return (b[t] >> 4) | (((b[8 + t] >> 4) & 3) << 4);
  default: return (b[4 + t] >> 4) | (((b[8 + t] >> 6) & 3) << 4);
  }
}

// Q4_K/Q5_K get_scale_min_k4 as written in FORMATS.md §6.5.
void k4ScaleMin(const uint8_t* b, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = b[s] & 63;
    *m = b[s + 4] & 63;
  } else {
    *sc = (b[s + 4] & 0xF) | ((b[s - 4] >> 6) << 4);
    *m = (b[s + 4] >> 4) | ((b[s] >> 6) << 4);
  }
}

float refElem(uint32_t type, const uint8_t* b, int i) {
  switch (type) {
  case kQ4_0: {
    const int j = i % 16, nib = i < 16 ? (b[2 + j] & 0xF) : (b[2 + j] >> 4);
    return float(nib - 8) * h16(b);
  }
  case kQ4_1: {
    const int j = i % 16, nib = i < 16 ? (b[4 + j] & 0xF) : (b[4 + j] >> 4);
    return float(nib) * h16(b) + h16(b + 2);
  }
  case kQ5_0: {
    const int j = i % 16, nib = i < 16 ? (b[6 + j] & 0xF) : (b[6 + j] >> 4);
    const int h = bit(b + 2, i); // bit i of the little-endian u32 qh
    return float((nib | (h << 4)) - 16) * h16(b);
  }
  case kQ5_1: {
    const int j = i % 16, nib = i < 16 ? (b[8 + j] & 0xF) : (b[8 + j] >> 4);
    const int h = bit(b + 4, i);
    return float(nib | (h << 4)) * h16(b) + h16(b + 2);
  }
  case kQ8_0: return float(int8_t(b[2 + i])) * h16(b);
  case kQ8_1: return float(int8_t(b[4 + i])) * h16(b);
  case kQ2_K: {
    const uint8_t *scales = b, *qs = b + 16;
    const float d = h16(b + 80), dmin = h16(b + 82);
    const int h = i / 128, j = (i % 128) / 32, l = i % 32;
    const int q = (qs[32 * h + l] >> (2 * j)) & 3;
    const int sc = scales[i / 16];
    return (d * float(sc & 0xF)) * float(q) - dmin * float(sc >> 4);
  }
  case kQ3_K: {
    const uint8_t *hmask = b, *qs = b + 32, *scales = b + 96;
    const float d = h16(b + 108);
    const int h = i / 128, j = (i % 128) / 32, l = i % 32;
    const int low = (qs[32 * h + l] >> (2 * j)) & 3;
    const int hb = (hmask[l] >> (4 * h + j)) & 1;
    const int q = low - (hb ? 0 : 4);
    return (d * float(q3kScale(scales, i / 16) - 32)) * float(q);
  }
  case kQ4_K:
  case kQ5_K: {
    const bool five = type == kQ5_K;
    const float d = h16(b), dmin = h16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qs = b + (five ? 48 : 16);
    const int c = i / 64, hi = (i % 64) / 32, l = i % 32, s = i / 32;
    int q = (qs[32 * c + l] >> (4 * hi)) & 0xF;
    if (five)
      q |= ((b[16 + l] >> (2 * c + hi)) & 1) << 4;
    int sc, m;
    k4ScaleMin(scales, s, &sc, &m);
    return (d * float(sc)) * float(q) - dmin * float(m);
  }
  case kQ6_K: {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = h16(b + 208);
    const int h = i / 128, quad = (i % 128) / 32, l = i % 32;
    const int lo = (ql[64 * h + l + 32 * (quad & 1)] >> (4 * (quad >> 1))) & 0xF;
    const int hi2 = (qh[32 * h + l] >> (2 * quad)) & 3;
    return (d * float(scales[i / 16])) * float((lo | (hi2 << 4)) - 32);
  }
  case kQ8_K: {
    float d;
    std::memcpy(&d, b, 4);
    return d * float(int8_t(b[4 + i]));
  }
  }
  ADD_FAILURE() << "no reference for type " << type;
  return NAN;
}

struct TypeInfo {
  uint32_t type;
  const char* name;
  int blck, bytes;
  std::vector<size_t> halfFields; // byte offsets of fp16 fields within the block
};

const std::vector<TypeInfo>& quantTypes() {
  static const std::vector<TypeInfo> t = {
      {kQ4_0, "Q4_0", 32, 18, {0}},        {kQ4_1, "Q4_1", 32, 20, {0, 2}},
      {kQ5_0, "Q5_0", 32, 22, {0}},        {kQ5_1, "Q5_1", 32, 24, {0, 2}},
      {kQ8_0, "Q8_0", 32, 34, {0}},        {kQ8_1, "Q8_1", 32, 36, {0, 2}},
      {kQ2_K, "Q2_K", 256, 84, {80, 82}},  {kQ3_K, "Q3_K", 256, 110, {108}},
      {kQ4_K, "Q4_K", 256, 144, {0, 2}},   {kQ5_K, "Q5_K", 256, 176, {0, 2}},
      {kQ6_K, "Q6_K", 256, 210, {208}},    {kQ8_K, "Q8_K", 256, 292, {}},
  };
  return t;
}

} // namespace

// ------------------------------------------------------------------------------------------------
// Type table
// ------------------------------------------------------------------------------------------------
TEST(GgufBlocks, TypeTable) {
  for (const auto& t : quantTypes()) {
    EXPECT_TRUE(hasBlockCodec(t.type)) << t.name;
    EXPECT_EQ(blockElements(t.type), t.blck) << t.name;
    EXPECT_EQ(blockBytes(t.type), t.bytes) << t.name;
    const std::vector<int> offs = halfFieldOffsets(t.type);
    EXPECT_EQ(std::vector<size_t>(offs.begin(), offs.end()), t.halfFields) << t.name;
  }
  EXPECT_TRUE(hasBlockCodec(0));
  EXPECT_TRUE(hasBlockCodec(1));
  EXPECT_TRUE(hasBlockCodec(30));
  EXPECT_EQ(blockBytes(0), 4);
  EXPECT_EQ(blockBytes(1), 2);
  EXPECT_EQ(blockBytes(30), 2);
  for (uint32_t id : {4u, 5u, 16u, 20u, 23u, 24u, 28u, 29u, 31u, 34u, 35u, 39u, 1000u})
    EXPECT_FALSE(hasBlockCodec(id)) << id;
}

// halfFieldOffsets names the f16 fields (the table above lists them independently): random
// bytes elsewhere with finite f16 there decode to finite values; a NaN in any one of them (but
// Q8_1's unused s) reaches the output. Q8_K's d is f32: no offsets.
TEST(GgufBlocks, HalfFieldOffsetsAreTheScales) {
  std::mt19937 rng(7);
  for (const auto& t : quantTypes()) {
    const std::vector<int> offs = halfFieldOffsets(t.type);
    if (t.type == kQ8_K) {
      EXPECT_TRUE(offs.empty());
      continue;
    }
    ASSERT_FALSE(offs.empty()) << t.name;
    std::vector<uint8_t> block(size_t(t.bytes));
    for (uint8_t& b : block)
      b = uint8_t(rng());
    for (int o : offs) {
      ASSERT_LE(o + 2, t.bytes) << t.name;
      putHalf(block, size_t(o), 0.01f);
    }
    for (float y : deq(t.type, block, t.blck))
      ASSERT_TRUE(std::isfinite(y)) << t.name;
    for (int o : offs) {
      if (t.type == kQ8_1 && o == 2)
        continue; // s = d * sum(q): an f16 field the dequantization does not read
      std::vector<uint8_t> bad = block;
      bad[size_t(o)] = 0x00;
      bad[size_t(o) + 1] = 0x7E; // f16 NaN
      bool nan = false;
      for (float y : deq(t.type, bad, t.blck))
        nan = nan || std::isnan(y);
      EXPECT_TRUE(nan) << t.name << " offset " << o;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Literal, worked-by-hand blocks
// ------------------------------------------------------------------------------------------------

// Q4_0 element order: element j is the LOW nibble of qs[j], element j+16 the HIGH nibble of qs[j]
// (not adjacent pairs).
TEST(GgufBlocks, Q4_0ElementOrder) {
  std::vector<uint8_t> b(18, 0);
  b[0] = 0x00; // d = 0.5 = fp16 0x3800
  b[1] = 0x38;
  for (int j = 0; j < 16; ++j)
    b[2 + j] = uint8_t(j | ((15 - j) << 4));
  auto y = deq(kQ4_0, b, 32);
  EXPECT_EQ(y[0], -4.0f);  // (0-8)*0.5
  EXPECT_EQ(y[1], -3.5f);  // (1-8)*0.5   (adjacent-pair order would give (15-8)*0.5 = 3.5)
  EXPECT_EQ(y[8], 0.0f);   // (8-8)*0.5
  EXPECT_EQ(y[15], 3.5f);  // (15-8)*0.5
  EXPECT_EQ(y[16], 3.5f);  // high nibble of qs[0] = 15
  EXPECT_EQ(y[17], 3.0f);  // high nibble of qs[1] = 14
  EXPECT_EQ(y[31], -4.0f); // high nibble of qs[15] = 0
  for (int i = 0; i < 32; ++i) {
    const float want = i < 16 ? (i - 8) * 0.5f : (7 - (i - 16)) * 0.5f;
    EXPECT_EQ(y[i], want) << i;
  }
}

TEST(GgufBlocks, Q4_1Literal) {
  std::vector<uint8_t> b(20, 0);
  putHalf(b, 0, 0.25f);
  putHalf(b, 2, -1.0f);
  for (int j = 0; j < 16; ++j)
    b[4 + j] = uint8_t(j | ((15 - j) << 4));
  auto y = deq(kQ4_1, b, 32);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(y[i], i * 0.25f - 1.0f) << i;
    EXPECT_EQ(y[16 + i], (15 - i) * 0.25f - 1.0f) << i;
  }
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[16], 2.75f);
}

// Q5_0 high bits: bit i of the little-endian u32 qh belongs to element i (i = 0..31).
TEST(GgufBlocks, Q5_0HighBits) {
  std::vector<uint8_t> b(22, 0);
  putHalf(b, 0, 1.0f);
  b[2] = 0x01; // qh bit 0  -> element 0
  b[3] = 0x00;
  b[4] = 0x02; // qh bit 17 -> element 17
  b[5] = 0x80; // qh bit 31 -> element 31
  b[6 + 0] = 0x35;  // elem 0 nibble 5, elem 16 nibble 3
  b[6 + 1] = 0x9A;  // elem 1 nibble 10, elem 17 nibble 9
  b[6 + 15] = 0xF0; // elem 15 nibble 0, elem 31 nibble 15
  auto y = deq(kQ5_0, b, 32);
  EXPECT_EQ(y[0], 5.0f);    // (5|16)-16
  EXPECT_EQ(y[16], -13.0f); // 3-16 (no high bit)
  EXPECT_EQ(y[1], -6.0f);   // 10-16
  EXPECT_EQ(y[17], 9.0f);   // (9|16)-16
  EXPECT_EQ(y[15], -16.0f); // 0-16
  EXPECT_EQ(y[31], 15.0f);  // (15|16)-16
  EXPECT_EQ(y[2], -16.0f);
}

TEST(GgufBlocks, Q5_1Literal) {
  std::vector<uint8_t> b(24, 0);
  putHalf(b, 0, 0.5f);
  putHalf(b, 2, 2.0f);
  b[4 + 2] = 0x02;  // qh bit 17
  b[4 + 0] = 0x08;  // qh bit 3
  b[8 + 1] = 0x30;  // elem 17 nibble 3
  b[8 + 3] = 0x07;  // elem 3 nibble 7
  auto y = deq(kQ5_1, b, 32);
  EXPECT_EQ(y[17], 11.5f); // (3|16)*0.5 + 2
  EXPECT_EQ(y[3], 13.5f);  // (7|16)*0.5 + 2
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], 2.0f);
}

TEST(GgufBlocks, Q8_0AndQ8_1Literal) {
  std::vector<uint8_t> a(34, 0), c(36, 0);
  putHalf(a, 0, 0.125f);
  putHalf(c, 0, 0.125f);
  putHalf(c, 2, 999.0f); // s is not used to dequantize
  for (int i = 0; i < 32; ++i) {
    a[2 + i] = uint8_t(int8_t(i * 8 - 128));
    c[4 + i] = uint8_t(int8_t(i * 8 - 128));
  }
  auto ya = deq(kQ8_0, a, 32), yc = deq(kQ8_1, c, 32);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(ya[i], (i * 8 - 128) * 0.125f) << i;
    EXPECT_EQ(yc[i], (i * 8 - 128) * 0.125f) << i;
  }
  EXPECT_EQ(ya[0], -16.0f);
}

// Q2_K: scales[s] = sc | m<<4; element i's 2 bits at qs[32*(i/128) + i%32] >> 2*((i%128)/32).
TEST(GgufBlocks, Q2_KLiteral) {
  std::vector<uint8_t> b(84, 0);
  putHalf(b, 80, 1.0f); // d
  putHalf(b, 82, 0.5f); // dmin
  b[0] = 0x21;          // sub-block 0: sc 1, m 2
  b[1] = 0x14;          // sub-block 1: sc 4, m 1
  b[15] = 0xF3;         // sub-block 15: sc 3, m 15
  b[16 + 0] = 0x03;     // elem 0: q 3 (bits 0-1 of qs[0])
  b[16 + 16] = 0x02;    // elem 16 (sub-block 1): q 2 (bits 0-1 of qs[16])
  b[16 + 63] = 0xC0;    // elem 255: q 3 (bits 6-7 of qs[63])
  auto y = deq(kQ2_K, b, 256);
  EXPECT_EQ(y[0], 2.0f);    // 1*3 - 0.5*2
  EXPECT_EQ(y[1], -1.0f);   // 1*0 - 1
  EXPECT_EQ(y[15], -1.0f);  // last of sub-block 0
  EXPECT_EQ(y[16], 7.5f);   // 4*2 - 0.5*1
  EXPECT_EQ(y[17], -0.5f);  // 4*0 - 0.5
  EXPECT_EQ(y[255], 1.5f);  // 3*3 - 0.5*15
  EXPECT_EQ(y[240], -7.5f); // 3*0 - 7.5
  EXPECT_EQ(y[32], 0.0f);   // sub-block 2 all zero
}

// Q3_K: packed 6-bit scales (incl. sub-blocks >= 4), negative effective scale, hmask logic
// (bit set -> q = low, bit clear -> q = low - 4).
TEST(GgufBlocks, Q3_KLiteral) {
  std::vector<uint8_t> b(110, 0);
  uint8_t* hmask = b.data();
  uint8_t* qs = b.data() + 32;
  uint8_t* sc = b.data() + 96;
  putHalf(b, 108, 1.0f);
  // All S default to 0 -> effective scale -32. Set a few:
  // S[0] = 37 = 0b10'0101: low 4 bits in sc[0] low nibble, high 2 bits in sc[8] bits 0-1.
  sc[0] = 0x05;
  sc[8] = 0x02;
  // S[4] = 39 = 0b10'0111: sc[4] low nibble, sc[8] bits 2-3.
  sc[4] = 0x07;
  sc[8] |= 0x02 << 2;
  // S[9] = 63: sc[1] high nibble (0xF), sc[9] bits 4-5 (3).
  sc[1] = 0xF0;
  sc[9] = 0x03 << 4;
  // S[15] stays 0 -> -32; S[14] = 20 = 0b01'0100: sc[6] high nibble 4, sc[10] bits 6-7 = 1.
  sc[6] = 0x40;
  sc[10] = 0x01 << 6;
  // elem 0 (h0 j0 l0): low 1, hmask[0] bit 0 clear -> q = -3
  qs[0] = 0x01;
  // elem 64 (h0 j2 l0, sub-block 4): low 2 (qs[0] bits 4-5), hmask[0] bit 2 set -> q = 2
  qs[0] |= 0x02 << 4;
  hmask[0] |= 1 << 2;
  // elem 144 (h1 j0 l16, sub-block 9): low 3 (qs[48] bits 0-1), hmask[16] bit 4 set -> q = 3
  qs[48] = 0x03;
  hmask[16] = 1 << 4;
  // elem 255 (h1 j3 l31, sub-block 15): low 3 (qs[63] bits 6-7), hmask[31] bit 7 set -> q = 3
  qs[63] = 0xC0;
  hmask[31] = 1 << 7;
  // elem 224 (h1 j3 l0, sub-block 14): low 0, hmask[0] bit 7 clear -> q = -4
  auto y = deq(kQ3_K, b, 256);
  EXPECT_EQ(y[0], -15.0f);  // (37-32) * -3
  EXPECT_EQ(y[1], -20.0f);  // (37-32) * (0-4)
  EXPECT_EQ(y[64], 14.0f);  // (39-32) * 2
  EXPECT_EQ(y[144], 93.0f); // (63-32) * 3
  EXPECT_EQ(y[255], -96.0f);// (0-32) * 3
  EXPECT_EQ(y[224], 48.0f); // (20-32) * -4
  EXPECT_EQ(y[16], 128.0f); // S[1]=0: -32 * (0-4)
}

// Q4_K: the 6-bit scale/min packing for sub-blocks s >= 4 (low nibbles in scales[s+4], high
// 2 bits in the top bits of scales[s-4] (scale) and scales[s] (min)).
TEST(GgufBlocks, Q4_KScalePackingHighSubBlocks) {
  std::vector<uint8_t> b(144, 0);
  putHalf(b, 0, 1.0f);  // d
  putHalf(b, 2, 1.0f);  // dmin
  uint8_t* s = b.data() + 4;
  uint8_t* qs = b.data() + 16;
  // Sub-block 1: sc 3, m 5 (low 6 bits of s[1], s[5]).
  // Sub-block 5: sc 42 = 0b10'1010, m 19 = 0b01'0011.
  s[1] = uint8_t(3 | (2 << 6));  // + high bits of sc[5]
  s[5] = uint8_t(5 | (1 << 6));  // + high bits of m[5]
  s[9] = uint8_t(0xA | (0x3 << 4));
  // Sub-block 7: sc 63, m 63.
  s[3] |= 3 << 6;
  s[7] |= 3 << 6;
  s[11] = 0xFF;
  // elem 32 (c0 hi1 l0: high nibble of qs[0]) q 9 -> sub-block 1
  qs[0] = 0x90;
  // elem 160 (c2 hi1 l0: high nibble of qs[64]) q 7 -> sub-block 5
  qs[64] = 0x70;
  // elem 255 (c3 hi1 l31: high nibble of qs[127]) q 15 -> sub-block 7
  qs[127] = 0xF0;
  // elem 128 (c2 hi0 l0: low nibble of qs[64]) -> sub-block 4: sc (s[8]&15)|(s[0]>>6)<<4 = 0
  auto y = deq(kQ4_K, b, 256);
  EXPECT_EQ(y[32], 22.0f);    // 3*9 - 5
  EXPECT_EQ(y[33], -5.0f);    // 3*0 - 5
  EXPECT_EQ(y[160], 275.0f);  // 42*7 - 19
  EXPECT_EQ(y[161], -19.0f);
  EXPECT_EQ(y[255], 882.0f);  // 63*15 - 63
  EXPECT_EQ(y[128], 0.0f);
  EXPECT_EQ(y[0], 0.0f);      // sub-block 0: sc = s[0]&63 = 0, m = s[4]&63 = 0
}

TEST(GgufBlocks, Q5_KLiteral) {
  std::vector<uint8_t> b(176, 0);
  putHalf(b, 0, 0.5f);
  putHalf(b, 2, 0.25f);
  uint8_t* s = b.data() + 4;
  uint8_t* qh = b.data() + 16;
  uint8_t* qs = b.data() + 48;
  // Sub-block 6: sc 33 = 0b10'0001 (s[10] low nibble 1, s[2] bits 6-7 = 2),
  //              m 20 = 0b01'0100 (s[10] high nibble 4, s[6] bits 6-7 = 1).
  s[10] = 0x41;
  s[2] = 2 << 6;
  s[6] = 1 << 6;
  // elem 200 = sub-block 6 (c3 hi0 l8): low nibble of qs[96+8], qh[8] bit 6.
  qs[104] = 0x0B;
  qh[8] = 1 << 6;
  // elem 201: nibble 11, no high bit.
  qs[105] = 0x0B;
  auto y = deq(kQ5_K, b, 256);
  EXPECT_EQ(y[200], 440.5f); // (0.5*33)*(11|16) - 0.25*20 = 16.5*27 - 5 = 445.5 - 5
  EXPECT_EQ(y[201], 176.5f); // 16.5*11 - 5
  EXPECT_EQ(y[192], -5.0f);
}

// Q6_K with negative int8 scales.
TEST(GgufBlocks, Q6_KNegativeScales) {
  std::vector<uint8_t> b(210, 0);
  uint8_t* ql = b.data();
  uint8_t* qh = b.data() + 128;
  int8_t* sc = reinterpret_cast<int8_t*>(b.data() + 192);
  putHalf(b, 208, 1.0f);
  sc[3] = -5;
  sc[0] = 2;
  sc[15] = -128;
  // elem 48: sub-block 3, h0 quad1 l16 -> ql[48] low nibble, qh[16] bits 2-3.
  ql[48] = 0x05;
  qh[16] = 2 << 2;
  // elem 0: h0 quad0 l0 -> ql[0] low nibble, qh[0] bits 0-1. q = 0x3F - 32 = 31.
  ql[0] = 0x0F;
  qh[0] = 3;
  // elem 255: h1 quad3 l31 -> ql[64+31+32] high nibble, qh[32+31] bits 6-7. q = 0 - 32.
  auto y = deq(kQ6_K, b, 256);
  EXPECT_EQ(y[48], -25.0f);   // 1*(-5) * (0x25-32 = 5)
  EXPECT_EQ(y[49], 160.0f);   // -5 * (0-32)
  EXPECT_EQ(y[0], 62.0f);     // 2 * 31
  EXPECT_EQ(y[255], 4096.0f); // -128 * -32
}

TEST(GgufBlocks, Q8_KLiteral) {
  std::vector<uint8_t> b(292, 0);
  const float d = -0.375f;
  std::memcpy(b.data(), &d, 4);
  b[4 + 0] = uint8_t(int8_t(-127));
  b[4 + 255] = 100;
  auto y = deq(kQ8_K, b, 256);
  EXPECT_EQ(y[0], 47.625f);
  EXPECT_EQ(y[255], -37.5f);
  EXPECT_EQ(y[1], -0.0f);
}

TEST(GgufBlocks, PlainFloatTypes) {
  // F16: 1.0, -2.5, 65504 (max), smallest subnormal, -0.
  std::vector<uint8_t> h = {0x00, 0x3C, 0x00, 0xC1, 0xFF, 0x7B, 0x01, 0x00, 0x00, 0x80};
  auto y = deq(kF16, h, 5);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.5f);
  EXPECT_EQ(y[2], 65504.0f);
  EXPECT_EQ(y[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(bitsOf(y[4]), 0x80000000u);
  // BF16: 1.0 = 0x3F80, -3.0 = 0xC040.
  std::vector<uint8_t> bf = {0x80, 0x3F, 0x40, 0xC0};
  y = deq(kBF16, bf, 2);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.0f);
  // F32: 0.1f bits 0x3DCCCCCD little-endian.
  std::vector<uint8_t> f = {0xCD, 0xCC, 0xCC, 0x3D};
  y = deq(kF32, f, 1);
  EXPECT_EQ(y[0], 0.1f);
}

// ------------------------------------------------------------------------------------------------
// Random block bytes, several blocks per row, codec vs closed-form reference, bit-exact.
// ------------------------------------------------------------------------------------------------
TEST(GgufBlocks, RandomBlocksMatchClosedForm) {
  std::mt19937 rng(20250220);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(-3.0f, 3.0f);
  const int nBlocks = 7;
  for (const auto& t : quantTypes()) {
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<uint8_t> bytes(size_t(nBlocks * t.bytes));
      for (auto& v : bytes)
        v = uint8_t(byte(rng));
      for (int blk = 0; blk < nBlocks; ++blk) {
        for (size_t off : t.halfFields) // finite fp16 d / m / dmin of either sign
          putHalf(bytes, size_t(blk * t.bytes) + off, std::ldexp(mag(rng), -(blk % 5)));
        if (t.type == kQ8_K) {
          float d = mag(rng) * 0.01f;
          std::memcpy(&bytes[size_t(blk * t.bytes)], &d, 4);
        }
      }
      const int64_t n = int64_t(nBlocks) * t.blck;
      auto y = deq(t.type, bytes, n);
      int bad = 0;
      for (int blk = 0; blk < nBlocks; ++blk)
        for (int i = 0; i < t.blck; ++i) {
          const float want = refElem(t.type, bytes.data() + size_t(blk * t.bytes), i);
          const float got = y[size_t(blk * t.blck + i)];
          if (bitsOf(want) != bitsOf(got) && bad++ < 5)
            ADD_FAILURE() << t.name << " block " << blk << " elem " << i << ": got " << got
                          << " want " << want;
        }
      ASSERT_EQ(bad, 0) << t.name;
    }
  }
}

// Every single-bit flip of the quant payload (scale and fp16/f32 fields excepted, to keep the
// values finite) still decodes exactly as the closed form says: covers every bit position.
TEST(GgufBlocks, SingleBitFlipsMatchClosedForm) {
  std::mt19937 rng(7);
  for (const auto& t : quantTypes()) {
    std::vector<uint8_t> base(size_t(t.bytes));
    for (auto& v : base)
      v = uint8_t(rng());
    for (size_t off : t.halfFields)
      putHalf(base, off, 0.75f);
    if (t.type == kQ8_K) {
      float d = 0.5f;
      std::memcpy(base.data(), &d, 4);
    }
    auto isFloatField = [&](int byteIdx) {
      if (t.type == kQ8_K)
        return byteIdx < 4;
      for (size_t off : t.halfFields)
        if (size_t(byteIdx) == off || size_t(byteIdx) == off + 1)
          return true;
      return false;
    };
    for (int byteIdx = 0; byteIdx < t.bytes; ++byteIdx) {
      if (isFloatField(byteIdx))
        continue;
      for (int bitIdx = 0; bitIdx < 8; ++bitIdx) {
        auto b = base;
        b[size_t(byteIdx)] ^= uint8_t(1 << bitIdx);
        auto y = deq(t.type, b, t.blck);
        for (int i = 0; i < t.blck; ++i) {
          const float want = refElem(t.type, b.data(), i);
          ASSERT_EQ(bitsOf(y[size_t(i)]), bitsOf(want))
              << t.name << " byte " << byteIdx << " bit " << bitIdx << " elem " << i;
        }
      }
    }
  }
}
