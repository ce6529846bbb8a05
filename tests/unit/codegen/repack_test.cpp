// The load-time re-layout of weights for the kernels (codegen/repack.h): bytes move (and the bits
// within Q5_0 / Q5_1 high-bit words), none change, and the inverse gives the input back bit for
// bit. The kernels on the re-laid-out weights are checked against the reference in
// codegen_test.cpp (CodegenGguf.Q8_0 / Q4_0 / Q4_K / Q6_K, int8 activations) and
// gguf_kquants_test.cpp (Q4_1, Q5_0, Q5_1, Q5_K).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "codegen/kernel_spec.h"
#include "codegen/repack.h"
#include "schemes/awq/codec.h"
#include "schemes/marlin/codec.h"

namespace qlc {
namespace {

using codegen::KernelSpec;

KernelSpec q4_0(int64_t n, int64_t k, codegen::Activations act) {
  KernelSpec s;
  s.layout = codegen::Layout::GgufQ4_0;
  s.bits = 4;
  s.ggmlType = "Q4_0";
  s.n = n;
  s.k = k;
  s.act = act;
  return s;
}

std::vector<uint8_t> randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t &b : v)
    b = uint8_t(rng());
  return v;
}

/// Repacks `in`, checks that unrepacking gives it back bit for bit, returns the packed bytes.
std::vector<uint8_t> packedRoundTrip(const KernelSpec &s, const std::vector<uint8_t> &in,
                                     int64_t stacks, size_t slot = 0) {
  std::vector<uint8_t> packed(in.size(), 0xAA), back(in.size(), 0x55);
  codegen::repackPart(s, slot, in.data(), packed.data(), stacks);
  codegen::unrepackPart(s, slot, packed.data(), back.data(), stacks);
  EXPECT_EQ(back, in);
  return packed;
}

TEST(Repack, WhichSpecsRepack) {
  using codegen::Activations;
  EXPECT_EQ(q4_0(64, 128, Activations::Int8).packing(), codegen::Packing::Channels16);
  EXPECT_TRUE(codegen::isRepackedPart(q4_0(64, 128, Activations::Int8), 0));
  // f32 kernels read rows; N must be a multiple of 32 (no ragged wide tile).
  EXPECT_EQ(q4_0(64, 128, Activations::F32).packing(), codegen::Packing::Rows);
  EXPECT_EQ(q4_0(48, 128, Activations::Int8).packing(), codegen::Packing::Rows);
  EXPECT_FALSE(codegen::isRepackedPart(q4_0(48, 128, Activations::Int8), 0));
  KernelSpec q4k = q4_0(64, 256, Activations::Int8);
  q4k.layout = codegen::Layout::GgufQ4_K;
  EXPECT_EQ(q4k.packing(), codegen::Packing::Channels16);
  for (auto layout : {codegen::Layout::GgufQ2_K, codegen::Layout::GgufQ3_K}) {
    KernelSpec k = q4_0(64, 256, Activations::Int8);
    k.layout = layout;
    EXPECT_EQ(k.packing(), codegen::Packing::Channels16);
    k.n = 48;
    EXPECT_EQ(k.packing(), codegen::Packing::Rows);
  }
}

TEST(Repack, Q4_0Channels16RoundTripAndClosedForm) {
  for (auto [n, k, stacks] : {std::tuple<int64_t, int64_t, int64_t>{32, 32, 1}, {96, 128, 1},
                              {64, 4096, 1}, {160, 96, 3}}) {
    SCOPED_TRACE("N = " + std::to_string(n) + ", K = " + std::to_string(k) + ", stacks " +
                 std::to_string(stacks));
    KernelSpec s = q4_0(n, k, codegen::Activations::Int8);
    const int64_t blocks = k / 32, matrix = n * blocks * 18;
    std::vector<uint8_t> in = randomBytes(size_t(matrix * stacks), uint32_t(n + k));
    std::vector<uint8_t> packed = packedRoundTrip(s, in, stacks);
    // The layout the kernels read (KernelSpec::Packing): group g, block b at (g·blocks + b)·288;
    // channel c's d at 2c, its code bytes 4j..4j+3 at 32 + 4(16j + c).
    int64_t wrong = 0;
    for (int64_t e = 0; e < stacks; ++e)
      for (int64_t row = 0; row < n; ++row)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const uint8_t *src = in.data() + e * matrix + (row * blocks + blk) * 18;
          const uint8_t *grp = packed.data() + e * matrix + ((row / 16) * blocks + blk) * 288;
          const int64_t c = row % 16;
          wrong += std::memcmp(grp + 2 * c, src, 2) != 0;
          for (int64_t j = 0; j < 4; ++j)
            wrong += std::memcmp(grp + 32 + 4 * (16 * j + c), src + 2 + 4 * j, 4) != 0;
        }
    EXPECT_EQ(wrong, 0);
    // A permutation: every byte of the input lands somewhere (the multiset of bytes is kept).
    std::vector<int64_t> hin(256), hout(256);
    for (size_t i = 0; i < in.size(); ++i) {
      ++hin[in[i]];
      ++hout[packed[i]];
    }
    EXPECT_EQ(hin, hout);
  }
}

TEST(Repack, Q4_KChannels16RoundTripAndClosedForm) {
  for (auto [n, k, stacks] : {std::tuple<int64_t, int64_t, int64_t>{32, 256, 1}, {96, 512, 2}}) {
    KernelSpec s = q4_0(n, k, codegen::Activations::Int8);
    s.layout = codegen::Layout::GgufQ4_K;
    const int64_t blocks = k / 256, matrix = n * blocks * 144;
    std::vector<uint8_t> in = randomBytes(size_t(matrix * stacks), uint32_t(n + k));
    std::vector<uint8_t> packed = packedRoundTrip(s, in, stacks);
    // Group g, super-block b at (g·blocks + b)·2304: d of channel c at 2c, dmin at 32 + 2c, scale
    // bytes 4s.. at 64 + 4(16s + c), code bytes 4j.. at 256 + 4(16j + c).
    int64_t wrong = 0;
    for (int64_t e = 0; e < stacks; ++e)
      for (int64_t row = 0; row < n; ++row)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const uint8_t *src = in.data() + e * matrix + (row * blocks + blk) * 144;
          const uint8_t *grp = packed.data() + e * matrix + ((row / 16) * blocks + blk) * 2304;
          const int64_t c = row % 16;
          wrong += std::memcmp(grp + 2 * c, src, 2) != 0;
          wrong += std::memcmp(grp + 32 + 2 * c, src + 2, 2) != 0;
          for (int64_t j = 0; j < 3; ++j)
            wrong += std::memcmp(grp + 64 + 4 * (16 * j + c), src + 4 + 4 * j, 4) != 0;
          for (int64_t j = 0; j < 32; ++j)
            wrong += std::memcmp(grp + 256 + 4 * (16 * j + c), src + 16 + 4 * j, 4) != 0;
        }
    EXPECT_EQ(wrong, 0);
  }
}

// Q8_0 / Q6_K / Q4_1 / Q5_0 / Q5_1 / Q2_K / Q3_K / Q5_K: the fields' places in a 16-channel
// unit (the offsets the kernels read, codegen/kernel_emitter.cpp c16Blocks), and Q5_0 / Q5_1's
// qh word with bit 4k + i at bit 8i + k (the fifth bit of byte i of operand k, one rotate from
// bit 4).
TEST(Repack, OtherGgufChannels16RoundTripAndClosedForm) {
  struct Field {
    int64_t src, bytes, unit, packed;
    bool transposed;
  };
  struct Type {
    codegen::Layout layout;
    int64_t blockBytes, blockK;
    std::vector<Field> fields;
  };
  const Type types[] = {
      {codegen::Layout::GgufQ8_0, 34, 32, {{0, 2, 2, 0, false}, {2, 32, 4, 32, false}}},
      {codegen::Layout::GgufQ6_K, 210, 256,
       {{0, 128, 4, 0, false}, {128, 64, 4, 2048, false}, {192, 16, 4, 3072, false}, {208, 2, 2, 3328, false}}},
      {codegen::Layout::GgufQ4_1, 20, 32, {{0, 2, 2, 0, false}, {2, 2, 2, 32, false}, {4, 16, 4, 64, false}}},
      {codegen::Layout::GgufQ5_0, 22, 32, {{0, 2, 2, 0, false}, {2, 4, 4, 32, true}, {6, 16, 4, 96, false}}},
      {codegen::Layout::GgufQ5_1, 24, 32,
       {{0, 2, 2, 0, false}, {2, 2, 2, 32, false}, {4, 4, 4, 64, true}, {8, 16, 4, 128, false}}},
      {codegen::Layout::GgufQ2_K, 84, 256,
       {{0, 16, 4, 0, false}, {16, 64, 4, 256, false}, {80, 2, 2, 1280, false}, {82, 2, 2, 1312, false}}},
      {codegen::Layout::GgufQ3_K, 110, 256,
       {{0, 32, 4, 0, false}, {32, 64, 4, 512, false}, {96, 12, 4, 1536, false}, {108, 2, 2, 1728, false}}},
      {codegen::Layout::GgufQ5_K, 176, 256,
       {{0, 2, 2, 0, false}, {2, 2, 2, 32, false}, {4, 12, 4, 64, false}, {16, 32, 4, 256, false},
        {48, 128, 4, 768, false}}},
  };
  for (const Type &t : types)
    for (auto [n, k, stacks] : {std::tuple<int64_t, int64_t, int64_t>{32, 256, 1}, {96, 512, 2}}) {
      SCOPED_TRACE("layout " + std::to_string(int(t.layout)) + ", N = " + std::to_string(n) +
                   ", K = " + std::to_string(k));
      KernelSpec s = q4_0(n, k, codegen::Activations::Int8);
      s.layout = t.layout;
      ASSERT_EQ(s.packing(), codegen::Packing::Channels16);
      const int64_t blocks = k / t.blockK, matrix = n * blocks * t.blockBytes;
      ASSERT_EQ(codegen::repackedPartBytes(s, 0), matrix);
      std::vector<uint8_t> in = randomBytes(size_t(matrix * stacks), uint32_t(5 * n + k));
      std::vector<uint8_t> packed = packedRoundTrip(s, in, stacks);
      int64_t wrong = 0;
      for (int64_t e = 0; e < stacks; ++e)
        for (int64_t row = 0; row < n; ++row)
          for (int64_t blk = 0; blk < blocks; ++blk) {
            const uint8_t *src = in.data() + e * matrix + (row * blocks + blk) * t.blockBytes;
            const uint8_t *unit =
                packed.data() + e * matrix + ((row / 16) * blocks + blk) * 16 * t.blockBytes;
            const int64_t c = row % 16;
            for (const Field &f : t.fields)
              for (int64_t j = 0; j < f.bytes / f.unit; ++j) {
                const uint8_t *p = unit + f.packed + (16 * j + c) * f.unit, *q = src + f.src + j * f.unit;
                if (!f.transposed) {
                  wrong += std::memcmp(p, q, size_t(f.unit)) != 0;
                  continue;
                }
                uint32_t pw, qw;
                std::memcpy(&pw, p, 4);
                std::memcpy(&qw, q, 4);
                for (int kk = 0; kk < 8; ++kk)
                  for (int i = 0; i < 4; ++i)
                    wrong += ((pw >> (8 * i + kk)) & 1u) != ((qw >> (4 * kk + i)) & 1u);
              }
          }
      EXPECT_EQ(wrong, 0);
    }
}

// AWQ / GPTQ qweight, 4- and 8-bit: 16-channel strips of GPTQ-oriented words; the codes read
// back through the packed layout's closed form equal the scheme codecs' (awq::unpackCode, GPTQ's
// k-major fields).
TEST(Repack, AwqGptqChannels16RoundTripAndCodes) {
  for (int bits : {4, 8})
    for (auto layout : {codegen::Layout::Awq4, codegen::Layout::Gptq4})
      for (auto [n, k, stacks] : {std::tuple<int64_t, int64_t, int64_t>{16, 32, 1}, {48, 96, 2},
                                  {144, 256, 1}}) {
        SCOPED_TRACE(std::string(layout == codegen::Layout::Awq4 ? "AWQ" : "GPTQ") + " " +
                     std::to_string(bits) + "-bit N = " + std::to_string(n) + ", K = " +
                     std::to_string(k));
        KernelSpec s = q4_0(n, k, codegen::Activations::Int8);
        s.layout = layout;
        s.bits = bits;
        s.group = 32;
        ASSERT_EQ(s.packing(), codegen::Packing::Channels16);
        const int64_t matrix = k * n * bits / 8, pf = 32 / bits; // codes a word
        const uint32_t mask = (1u << bits) - 1;
        ASSERT_EQ(codegen::repackedPartBytes(s, 0), matrix);
        std::vector<uint8_t> in = randomBytes(size_t(matrix * stacks), uint32_t(3 * n + k + bits));
        std::vector<uint8_t> packed = packedRoundTrip(s, in, stacks);
        int64_t wrong = 0;
        for (int64_t e = 0; e < stacks; ++e) {
          std::vector<uint32_t> words(size_t(matrix / 4)), pw(size_t(matrix / 4));
          std::memcpy(words.data(), in.data() + e * matrix, size_t(matrix));
          std::memcpy(pw.data(), packed.data() + e * matrix, size_t(matrix));
          for (int64_t kk = 0; kk < k; ++kk)
            for (int64_t nn = 0; nn < n; ++nn) {
              uint32_t want = layout == codegen::Layout::Awq4
                                  ? awq::unpackCode(words.data(), n, kk, nn, bits)
                                  : (words[size_t((kk / pf) * n + nn)] >> (bits * (kk % pf))) & mask;
              // group nn / 16, block kk / 32: bits x 16 words; word row (kk % 32) / pf
              size_t at = size_t(((nn / 16) * (k / 32) + kk / 32) * 16 * bits +
                                 (kk % 32) / pf * 16 + nn % 16);
              wrong += ((pw[at] >> (bits * (kk % pf))) & mask) != want;
            }
        }
        EXPECT_EQ(wrong, 0);
      }
}

/// Code (k, n) of a Channels16 qweight (permuteCols' layout).
uint32_t channels16Code(const std::vector<uint8_t> &packed, int64_t e, int64_t n, int64_t k,
                        int64_t kk, int64_t nn, int bits) {
  const int64_t pf = 32 / bits, matrix = k * n * bits / 8;
  const size_t at = size_t(((nn / 16) * (k / 32) + kk / 32) * 16 * bits + (kk % 32) / pf * 16 +
                           nn % 16);
  uint32_t word;
  std::memcpy(&word, packed.data() + e * matrix + 4 * at, 4);
  return (word >> (bits * (kk % pf))) & ((1u << bits) - 1);
}

// Marlin (int8 activations): qweight into the Channels16 words (codes as marlin::weightCode reads
// them), the scales' columns un-permuted (marlin::scaleColumn), the zero points packed
// sequentially (marlin::zeroCode); the NPU's signed codes into the same words with the top bit
// flipped (c + 2^(b-1)). Every slot round-trips bit for bit, for 2 stacked experts.
TEST(Repack, MarlinNpuChannels16RoundTripAndCodes) {
  for (int bits : {4, 8})
    for (int64_t g : {int64_t(64), int64_t(128)}) { // 128 = K: the 32-column scale perm
      SCOPED_TRACE("Marlin " + std::to_string(bits) + "-bit group " + std::to_string(g));
      const int64_t n = 128, k = 128, stacks = 2, groups = k / g, pf = 32 / bits;
      KernelSpec s = q4_0(n, k, codegen::Activations::Int8);
      s.layout = codegen::Layout::Marlin;
      s.bits = bits;
      s.group = g;
      s.zeroPoint = true;
      ASSERT_EQ(s.packing(), codegen::Packing::Channels16);
      for (size_t slot : {0, 1, 2})
        EXPECT_TRUE(codegen::isRepackedPart(s, slot)) << slot;
      const int64_t matrix = k * n * bits / 8, zeroBytes = groups * n * bits / 8,
                    scaleBytes = groups * n * 2;
      EXPECT_EQ(codegen::repackedPartBytes(s, 0), matrix);
      EXPECT_EQ(codegen::repackedPartBytes(s, 1), zeroBytes);
      EXPECT_EQ(codegen::repackedPartBytes(s, 2), scaleBytes);
      std::vector<uint8_t> q = randomBytes(size_t(matrix * stacks), uint32_t(bits + g));
      std::vector<uint8_t> z = randomBytes(size_t(zeroBytes * stacks), uint32_t(bits + g + 1));
      std::vector<uint8_t> sc = randomBytes(size_t(scaleBytes * stacks), uint32_t(bits + g + 2));
      std::vector<uint8_t> pq = packedRoundTrip(s, q, stacks, 0);
      std::vector<uint8_t> pz = packedRoundTrip(s, z, stacks, 1);
      std::vector<uint8_t> ps = packedRoundTrip(s, sc, stacks, 2);
      int64_t wrong = 0;
      for (int64_t e = 0; e < stacks; ++e) {
        std::vector<uint32_t> qw(size_t(matrix / 4)), zw(size_t(zeroBytes / 4)), pzw(zw.size());
        std::memcpy(qw.data(), q.data() + e * matrix, size_t(matrix));
        std::memcpy(zw.data(), z.data() + e * zeroBytes, size_t(zeroBytes));
        std::memcpy(pzw.data(), pz.data() + e * zeroBytes, size_t(zeroBytes));
        for (int64_t kk = 0; kk < k; ++kk)
          for (int64_t nn = 0; nn < n; ++nn)
            wrong += channels16Code(pq, e, n, k, kk, nn, bits) !=
                     marlin::weightCode(qw.data(), n, kk, nn, bits);
        for (int64_t r = 0; r < groups; ++r)
          for (int64_t nn = 0; nn < n; ++nn) {
            const uint32_t seq = (pzw[size_t(r * n / pf + nn / pf)] >> (bits * (nn % pf))) &
                                 ((1u << bits) - 1);
            wrong += seq != marlin::zeroCode(zw.data(), n, r, nn, bits);
            const int64_t col = marlin::scaleColumn(nn, g < k);
            wrong += std::memcmp(ps.data() + e * scaleBytes + (r * n + nn) * 2,
                                 sc.data() + e * scaleBytes + (r * n + col) * 2, 2) != 0;
          }
      }
      EXPECT_EQ(wrong, 0);
    }
  for (auto layout : {codegen::Layout::NpuW4, codegen::Layout::NpuW8}) {
    const int bits = layout == codegen::Layout::NpuW4 ? 4 : 8;
    SCOPED_TRACE("NPU " + std::to_string(bits) + "-bit");
    const int64_t n = 48, k = 96, stacks = 2, matrix = k * n * bits / 8, pf = 32 / bits;
    KernelSpec s = q4_0(n, k, codegen::Activations::Int8);
    s.layout = layout;
    s.bits = bits;
    s.group = 32;
    s.zeroPoint = true;
    EXPECT_TRUE(codegen::isRepackedPart(s, 0));
    EXPECT_FALSE(codegen::isRepackedPart(s, 1)); // offsets and scales are in channel order
    EXPECT_FALSE(codegen::isRepackedPart(s, 2));
    std::vector<uint8_t> q = randomBytes(size_t(matrix * stacks), uint32_t(40 + bits));
    std::vector<uint8_t> pq = packedRoundTrip(s, q, stacks, 0);
    int64_t wrong = 0;
    for (int64_t e = 0; e < stacks; ++e)
      for (int64_t kk = 0; kk < k; ++kk)
        for (int64_t nn = 0; nn < n; ++nn) {
          const int64_t flat = kk * n + nn; // [K, N] natural order, pf codes a word
          uint32_t word;
          std::memcpy(&word, q.data() + e * matrix + 4 * (flat / pf), 4);
          const uint32_t signedCode = (word >> (bits * (flat % pf))) & ((1u << bits) - 1);
          wrong += channels16Code(pq, e, n, k, kk, nn, bits) != (signedCode ^ (1u << (bits - 1)));
        }
    EXPECT_EQ(wrong, 0);
  }
}

} // namespace
} // namespace qlc
