// !awq: verifier, reference dequantization hook vs qlc::awq::dequantize (bit-exact) and vs the
// original f32 (AutoAWQ quantizer error bound), for 4/8 bits, several groups, f16/bf16/f32 scales
// and expert stacks; verifier rejections.
#include "scheme_type_test_util.h"

#include "schemes/awq/awq_type.h"
#include "schemes/awq/codec.h"

using namespace qlc;
using namespace qlc::test;

namespace {

struct AwqCase {
  int bits;
  int64_t group;
  ElemKind scales;
  int64_t experts;
};

std::string caseName(const ::testing::TestParamInfo<AwqCase> &i) {
  const AwqCase &c = i.param;
  std::string s = "b";
  s += std::to_string(c.bits);
  s += "_g";
  s += c.group < 0 ? std::string("all") : std::to_string(c.group);
  s += "_";
  s += elemKindName(c.scales).str();
  s += "_e";
  s += std::to_string(c.experts);
  return s;
}

ExpertCase awqExpert(const AwqCase &c, int64_t N, int64_t K, uint32_t seed) {
  int64_t g = c.group == -1 ? K : c.group, groups = K / g, words = N * c.bits / 32;
  double maxq = (1 << c.bits) - 1;
  ExpertCase ec;
  ec.orig = randomWeights(N * K, seed);
  awq::Checkpoint ck = awq::quantize(ec.orig, K, N, c.group, c.bits);
  // Scales as stored: fp16 from the quantizer, or that value in f32 (exact) or bf16 (rounded;
  // the codec is then fed the fp16 bits of the bf16 value, which are exact).
  std::vector<uint16_t> codecScales = ck.scales;
  std::vector<float> sv(ck.scales.size());
  for (size_t i = 0; i < sv.size(); ++i)
    sv[i] = halfToFloat(ck.scales[i]);
  double u = kF16Roundoff;
  if (c.scales == ElemKind::BF16) {
    for (size_t i = 0; i < sv.size(); ++i) {
      float b = bf16ToFloat(floatToBf16(sv[i]));
      codecScales[i] = floatToHalf(b);
      EXPECT_EQ(halfToFloat(codecScales[i]), b);
    }
    u += kBf16Roundoff;
  }
  ec.parts = {{"qweight", ElemKind::I32, {K, words}, toBytes(ck.qweight)},
              {"qzeros", ElemKind::I32, {groups, words}, toBytes(ck.qzeros)},
              {"scales", c.scales, {groups, N}, floatBytes(sv, c.scales)}};
  ec.codecOut.resize(size_t(N * K));
  awq::dequantize(ck.qweight, ck.qzeros, codecScales, K, N, c.group, ec.codecOut, c.bits);
  ec.bound.resize(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      ec.bound[n * K + k] = roundTripBound(halfToFloat(ck.scales[(k / g) * N + n]), maxq, u);
  return ec;
}

class AwqType : public ::testing::TestWithParam<AwqCase> {};

TEST_P(AwqType, DequantMatchesCodec) {
  const AwqCase &c = GetParam();
  const int64_t N = 32, K = 64;
  AttrDict p{{"bits", c.bits}, {"group", c.group}, {"shape", shapeAttr(N, K)},
             {"experts", c.experts}};
  WeightType t = makeType("awq", p);
  std::vector<ExpertCase> cases;
  for (int64_t e = 0; e < std::max<int64_t>(c.experts, 1); ++e)
    cases.push_back(awqExpert(c, N, K, uint32_t(1000 + c.bits * 31 + c.group * 7 + e)));
  ElemKind se = c.scales;
  checkRoundTrip(t, cases, /*hookOk=*/se != ElemKind::BF16,
                 [se](const WeightType &t, const PartBytesMap &m, float *out) {
                   return schemes::dequantizeAwq(t, m, se, out);
                 });
}

std::vector<AwqCase> awqCases() {
  std::vector<AwqCase> v;
  for (int bits : {4, 8})
    for (int64_t g : {int64_t(16), int64_t(32), int64_t(-1)})
      for (ElemKind s : {ElemKind::F16, ElemKind::BF16, ElemKind::F32})
        v.push_back({bits, g, s, 0});
  v.push_back({4, 16, ElemKind::F16, 3});
  v.push_back({8, 32, ElemKind::F32, 2});
  v.push_back({4, -1, ElemKind::BF16, 2});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, AwqType, ::testing::ValuesIn(awqCases()), caseName);

TEST(AwqTypeVerify, ParameterRejections) {
  EXPECT_NE(typeError("awq", {{"bits", 3}, {"group", 8}, {"shape", shapeAttr(8, 8)}})
                .find("AWQ supports 4-bit codes (and 8-bit for awq_marlin), not 3-bit"),
            std::string::npos);
  EXPECT_EQ(typeError("awq", {{"group", 8}, {"shape", shapeAttr(12, 16)}}),
            "N = 12 is not a multiple of 8 (AWQ packs 8 4-bit codes per int32 along the output "
            "dimension)");
  EXPECT_EQ(typeError("awq", {{"group", 32}, {"shape", shapeAttr(8, 48)}}),
            "K = 48 is not a multiple of group size 32");
  EXPECT_EQ(typeError("awq", {{"group", 8}, {"shape", shapeAttr(8, 8)}, {"zero_point", false}}),
            "zero_point = false (symmetric AWQ) is not a GEMM checkpoint layout (FORMATS.md §1.3)");
  EXPECT_EQ(typeError("awq", {{"group", 8}, {"shape", Attribute(std::vector<int64_t>{8})}}),
            "shape must be [N, K] with positive dims, got [8]");
}

TEST(AwqTypeVerify, PartRejections) {
  AwqCase c{4, 16, ElemKind::F16, 0};
  WeightType t = makeType("awq", {{"group", 16}, {"shape", shapeAttr(32, 64)}});
  ExpertCase ec = awqExpert(c, 32, 64, 7);
  {
    auto parts = ec.parts;
    parts[1].shape = {3, 4}; // qzeros must be [64/16, 32/8] = [4, 4]
    parts[1].bytes.resize(3 * 4 * 4);
    auto msgs = verifyMessages(*makeModule(t, {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_EQ(msgs[0], "part 'qzeros' of weight @w has shape [3, 4] but !awq<group = 16, shape = "
                       "[32, 64]> needs [4, 4]");
  }
  {
    auto parts = ec.parts;
    parts.pop_back();
    auto msgs = verifyMessages(*makeModule(t, {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_NE(msgs[0].find("is missing part 'scales' (scales = tensor<4x32xf16>)"),
              std::string::npos)
        << msgs[0];
  }
  {
    auto parts = ec.parts;
    parts[2].elem = ElemKind::I32;
    auto msgs = verifyMessages(*makeModule(t, {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_NE(msgs[0].find("must have element type f16, bf16 or f32"), std::string::npos);
  }
}

TEST(AwqTypeDequant, ShortPartIsAnErrorNotARead) {
  AwqCase c{4, 16, ElemKind::F16, 0};
  WeightType t = makeType("awq", {{"group", 16}, {"shape", shapeAttr(32, 64)}});
  ExpertCase ec = awqExpert(c, 32, 64, 7);
  PartBytesMap m;
  for (const auto &p : ec.parts)
    m[p.name] = PartView{p.elem, llvm::ArrayRef<uint8_t>(p.bytes)};
  m["qweight"].bytes = m["qweight"].bytes.drop_back(4);
  std::vector<float> out(32 * 64);
  EXPECT_EQ(t.def->dequantize(t, m, out.data()), "part 'qweight' has 1020 bytes, expected 256 x 4");
  m.erase("qweight");
  EXPECT_EQ(t.def->dequantize(t, m, out.data()), "part 'qweight' is missing");
}

} // namespace
