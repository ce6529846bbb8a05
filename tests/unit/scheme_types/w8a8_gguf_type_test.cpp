// !w8a8 and !gguf: verifier, reference dequantization hooks vs the codecs (bit-exact) and vs the
// original f32, expert stacks, verifier rejections.
#include "scheme_type_test_util.h"

#include "schemes/gguf/blocks.h"
#include "schemes/gguf/gguf_type.h"
#include "schemes/w8a8/codec.h"
#include "schemes/w8a8/w8a8_type.h"

using namespace qlc;
using namespace qlc::test;

namespace {

//===--- !w8a8 ---===//

enum class Offset { None, Zero, NonZero };

struct W8a8Case {
  ElemKind scales;
  Offset offset;
  int64_t experts;
};

ExpertCase w8a8Expert(const W8a8Case &c, int64_t N, int64_t K, uint32_t seed) {
  ExpertCase ec;
  ec.orig = randomWeights(N * K, seed, -0.3f, 0.2f);
  w8a8::Checkpoint ck = w8a8::quantize(ec.orig, K, N);
  // Stored scales: f32 as quantized, or rounded to f16 / bf16 (the codes stay those of the f32
  // scale, so the bound grows by 127·u·s).
  std::vector<float> stored = ck.weightScale;
  double u = 0;
  if (c.scales != ElemKind::F32) {
    u = c.scales == ElemKind::BF16 ? kBf16Roundoff : kF16Roundoff;
    for (float &s : stored)
      s = c.scales == ElemKind::BF16 ? bf16ToFloat(floatToBf16(s)) : halfToFloat(floatToHalf(s));
  }
  ec.parts = {{"weight", ElemKind::I8, {N, K}, toBytes(ck.weight)},
              {"weight_scale", c.scales, {N, 1}, floatBytes(stored, c.scales)}};
  if (c.offset != Offset::None) {
    std::vector<float> off(size_t(N), c.offset == Offset::Zero ? 0.f : 0.25f);
    ec.parts.push_back({"weight_offset", c.scales, {N, 1}, floatBytes(off, c.scales)});
  }
  ec.codecOut.resize(size_t(N * K));
  w8a8::dequantize(ck.weight, stored, K, N, ec.codecOut);
  ec.bound.resize(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      ec.bound[n * K + k] = roundTripBound(ck.weightScale[n], 127, u);
  return ec;
}

class W8a8Type : public ::testing::TestWithParam<W8a8Case> {};

TEST_P(W8a8Type, DequantMatchesCodec) {
  const W8a8Case &c = GetParam();
  const int64_t N = 24, K = 40;
  WeightType t = makeType("w8a8", {{"shape", shapeAttr(N, K)}, {"experts", c.experts}});
  std::vector<ExpertCase> cases;
  for (int64_t e = 0; e < std::max<int64_t>(c.experts, 1); ++e)
    cases.push_back(w8a8Expert(c, N, K, uint32_t(500 + int(c.scales) * 3 + e)));
  ElemKind se = c.scales;
  checkRoundTrip(t, cases, se != ElemKind::BF16,
                 [se](const WeightType &t, const PartBytesMap &m, float *out) {
                   return schemes::dequantizeW8a8(t, m, se, out);
                 });
}

INSTANTIATE_TEST_SUITE_P(
    All, W8a8Type,
    ::testing::Values(W8a8Case{ElemKind::F32, Offset::Zero, 0},
                      W8a8Case{ElemKind::F32, Offset::None, 0},
                      W8a8Case{ElemKind::F16, Offset::Zero, 0},
                      W8a8Case{ElemKind::BF16, Offset::Zero, 0},
                      W8a8Case{ElemKind::F32, Offset::NonZero, 0}, // offsets are ignored (§5.4)
                      W8a8Case{ElemKind::F16, Offset::Zero, 3},
                      W8a8Case{ElemKind::BF16, Offset::None, 2}));

TEST(W8a8TypeVerify, Rejections) {
  EXPECT_EQ(typeError("w8a8", {{"shape", shapeAttr(0, 4)}}),
            "shape must be [N, K] with positive dims, got [0, 4]");
  EXPECT_EQ(typeError("w8a8", {{"shape", shapeAttr(4, w8a8::kMaxExactK + 1)}}),
            "K = 132105 exceeds 132104: the int32 accumulation of 127*128 per product could "
            "overflow");
  WeightType t = makeType("w8a8", {{"shape", shapeAttr(24, 40)}});
  auto parts = w8a8Expert({ElemKind::F32, Offset::Zero, 0}, 24, 40, 1).parts;
  {
    auto p = parts;
    p[0].elem = ElemKind::U8;
    auto msgs = verifyMessages(*makeModule(t, {p}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_EQ(msgs[0], "part 'weight' of weight @w must have element type i8, got tensor<24x40xu8>");
  }
  {
    auto p = parts;
    p[1].shape = {24};
    auto msgs = verifyMessages(*makeModule(t, {p}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_EQ(msgs[0], "part 'weight_scale' of weight @w has shape [24] but !w8a8<shape = [24, "
                       "40]> needs [24, 1]");
  }
  {
    auto p = parts;
    p[2].bytes.pop_back(); // inline data one byte short
    auto msgs = verifyMessages(*makeModule(t, {p}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_EQ(msgs[0], "part 'weight_offset' of weight @w has 95 bytes of data but "
                       "tensor<24x1xf32> needs 96");
  }
}

TEST(W8a8TypeDequant, ShortPartIsAnErrorNotARead) {
  WeightType t = makeType("w8a8", {{"shape", shapeAttr(24, 40)}});
  auto parts = w8a8Expert({ElemKind::F32, Offset::Zero, 0}, 24, 40, 1).parts;
  PartBytesMap m;
  for (const auto &p : parts)
    m[p.name] = PartView{p.elem, llvm::ArrayRef<uint8_t>(p.bytes)};
  m["weight_scale"].bytes = m["weight_scale"].bytes.drop_back(3);
  std::vector<float> out(24 * 40);
  // The hook checks the size of the part against its element type and reports the mismatch.
  EXPECT_EQ(t.def->dequantize(t, m, out.data()), "part 'weight_scale' has 93 bytes, expected 24 x 4");
}

//===--- !gguf ---===//

struct GgufCase {
  const char *name;
  uint32_t id;
  double maxRel; // max|x − y| / max|x| (tests/unit/gguf bounds; exact float conversions)
  int64_t experts;
};

std::string ggufName(const ::testing::TestParamInfo<GgufCase> &i) {
  std::string s = i.param.name;
  s += "_e";
  s += std::to_string(i.param.experts);
  return s;
}

ExpertCase ggufExpert(const GgufCase &c, int64_t N, int64_t K, uint32_t seed) {
  ExpertCase ec;
  ec.orig = randomWeights(N * K, seed);
  int64_t rowBytes = K / gguf::blockElements(c.id) * gguf::blockBytes(c.id);
  std::vector<uint8_t> data(size_t(N * rowBytes));
  ec.codecOut.resize(size_t(N * K));
  for (int64_t n = 0; n < N; ++n) {
    gguf::quantizeRow(c.id, ec.orig.data() + n * K, data.data() + n * rowBytes, K);
    gguf::dequantizeRow(c.id, data.data() + n * rowBytes, ec.codecOut.data() + n * K, K);
  }
  ec.parts = {{"data", ElemKind::U8, {N, rowBytes}, data}};
  float amax = 0;
  for (float x : ec.orig)
    amax = std::max(amax, std::fabs(x));
  ec.bound.assign(size_t(N * K), c.maxRel * amax);
  return ec;
}

class GgufType : public ::testing::TestWithParam<GgufCase> {};

TEST_P(GgufType, DequantMatchesCodec) {
  const GgufCase &c = GetParam();
  const int64_t N = 6, K = 512;
  ASSERT_EQ(schemes::ggufTypeId(c.name), c.id);
  WeightType t =
      makeType("gguf", {{"type", id(c.name)}, {"shape", shapeAttr(N, K)}, {"experts", c.experts}});
  std::vector<ExpertCase> cases;
  for (int64_t e = 0; e < std::max<int64_t>(c.experts, 1); ++e)
    cases.push_back(ggufExpert(c, N, K, uint32_t(900 + c.id * 7 + e)));
  checkRoundTrip(t, cases, /*hookOk=*/true);
}

std::vector<GgufCase> ggufCases() {
  std::vector<GgufCase> v = {
      {"Q4_0", gguf::kQ4_0, 0.09, 0},  {"Q4_1", gguf::kQ4_1, 0.068, 0},
      {"Q5_0", gguf::kQ5_0, 0.045, 0}, {"Q5_1", gguf::kQ5_1, 0.033, 0},
      {"Q8_0", gguf::kQ8_0, 0.004, 0}, {"Q2_K", gguf::kQ2_K, 0.33, 0},
      {"Q3_K", gguf::kQ3_K, 0.17, 0},  {"Q4_K", gguf::kQ4_K, 0.07, 0},
      {"Q5_K", gguf::kQ5_K, 0.035, 0}, {"Q6_K", gguf::kQ6_K, 0.016, 0},
      {"F16", gguf::kF16, 1.0 / 2048, 0}, {"BF16", gguf::kBF16, 1.0 / 256, 0},
      {"F32", gguf::kF32, 0.0, 0},
  };
  v.push_back({"Q4_K", gguf::kQ4_K, 0.07, 3});
  v.push_back({"Q8_0", gguf::kQ8_0, 0.004, 2});
  v.push_back({"Q6_K", gguf::kQ6_K, 0.016, 2});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, GgufType, ::testing::ValuesIn(ggufCases()), ggufName);

TEST(GgufTypeVerify, Rejections) {
  EXPECT_EQ(typeError("gguf", {{"type", id("Q4_K")}, {"shape", shapeAttr(4, 100)}}),
            "K = 100 is not a multiple of the Q4_K block size 256 (GGUF rows are whole blocks of "
            "256 elements along K)");
  EXPECT_EQ(typeError("gguf", {{"type", id("Q8_0")}, {"shape", shapeAttr(4, 48)}}),
            "K = 48 is not a multiple of the Q8_0 block size 32 (GGUF rows are whole blocks of 32 "
            "elements along K)");
  EXPECT_NE(typeError("gguf", {{"type", id("Q8_K")}, {"shape", shapeAttr(4, 256)}})
                .find("parameter 'type' of !gguf must be one of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
                      "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, F16, BF16, F32, got Q8_K"),
            std::string::npos);
  EXPECT_EQ(typeError("gguf", {{"type", id("F16")}, {"shape", shapeAttr(4, 3)}}), "");
  WeightType t = makeType("gguf", {{"type", id("Q4_K")}, {"shape", shapeAttr(6, 512)}});
  auto parts = ggufExpert({"Q4_K", gguf::kQ4_K, 0.07, 0}, 6, 512, 1).parts;
  parts[0].shape = {6, 256}; // Q4_K rows of 512 are 2 blocks of 144 bytes
  parts[0].bytes.resize(6 * 256);
  auto msgs = verifyMessages(*makeModule(t, {parts}));
  ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
  EXPECT_EQ(msgs[0], "part 'data' of weight @w has shape [6, 256] but !gguf<type = Q4_K, shape = "
                     "[6, 512]> needs [6, 288]");
}

TEST(GgufTypeDequant, ShortPartIsAnErrorNotARead) {
  WeightType t = makeType("gguf", {{"type", id("Q4_K")}, {"shape", shapeAttr(6, 512)}});
  auto parts = ggufExpert({"Q4_K", gguf::kQ4_K, 0.07, 0}, 6, 512, 1).parts;
  PartBytesMap m{{"data", PartView{ElemKind::U8, llvm::ArrayRef<uint8_t>(parts[0].bytes).drop_back(1)}}};
  std::vector<float> out(6 * 512);
  EXPECT_EQ(t.def->dequantize(t, m, out.data()), "part 'data' has 1727 bytes, expected 1728 x 1");
}

} // namespace
