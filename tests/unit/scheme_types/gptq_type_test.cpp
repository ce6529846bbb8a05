// !gptq: verifier, reference dequantization hook vs qlc::gptq::dequantize (bit-exact) and vs the
// original f32 (find_params grid error bound) for 2/3/4/8 bits, divisor and non-divisor groups,
// sym/asym, v1/v2, desc_act with act-order g_idx, f16/bf16/f32 scales and expert stacks;
// verifier rejections; bad g_idx / qzeros data reported by the hook.
#include "scheme_type_test_util.h"

#include "schemes/gptq/codec.h"
#include "schemes/gptq/gptq_type.h"

using namespace qlc;
using namespace qlc::test;

namespace {

struct GptqCase {
  int bits;
  int64_t group;
  bool sym;
  bool v2;
  bool descAct;
  ElemKind scales = ElemKind::F16;
  int64_t experts = 0;
  bool withGIdx = true; // g_idx part given (always when descAct)
};

std::string caseName(const ::testing::TestParamInfo<GptqCase> &i) {
  const GptqCase &c = i.param;
  std::string s = "b";
  s += std::to_string(c.bits);
  s += "_g";
  s += c.group < 0 ? std::string("all") : std::to_string(c.group);
  s += c.sym ? "_sym" : "_asym";
  s += c.v2 ? "_v2" : "_v1";
  s += c.descAct ? "_act" : "";
  s += c.withGIdx ? "" : "_nogidx";
  s += "_";
  s += elemKindName(c.scales).str();
  s += "_e";
  s += std::to_string(c.experts);
  return s;
}

gptq::Config configOf(const GptqCase &c) {
  return {c.bits, c.group, c.sym, c.v2 ? gptq::Format::V2 : gptq::Format::V1};
}

AttrDict paramsOf(const GptqCase &c, int64_t N, int64_t K) {
  return {{"bits", c.bits},        {"group", c.group},
          {"sym", c.sym},          {"format", id(c.v2 ? "v2" : "v1")},
          {"desc_act", c.descAct}, {"shape", shapeAttr(N, K)},
          {"experts", c.experts}};
}

ExpertCase gptqExpert(const GptqCase &c, int64_t N, int64_t K, uint32_t seed,
                      gptq::Checkpoint *ckOut = nullptr) {
  gptq::Config cfg = configOf(c);
  int64_t groups = gptq::numGroups(K, c.group);
  double maxq = (1 << c.bits) - 1;
  ExpertCase ec;
  ec.orig = randomWeights(N * K, seed);
  std::vector<int32_t> perm;
  if (c.descAct)
    perm = randomPermutation(K, seed + 1);
  gptq::Checkpoint ck = gptq::quantize(ec.orig, K, N, cfg, perm);
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
  ec.parts = {
      {"qweight", ElemKind::I32, {gptq::qweightRows(K, c.bits), N}, toBytes(ck.qweight)},
      {"qzeros", ElemKind::I32, {groups, gptq::qzerosCols(N, c.bits)}, toBytes(ck.qzeros)},
      {"scales", c.scales, {groups, N}, floatBytes(sv, c.scales)}};
  if (c.descAct || c.withGIdx)
    ec.parts.push_back({"g_idx", ElemKind::I32, {K}, toBytes(ck.gIdx)});
  ec.codecOut.resize(size_t(N * K));
  gptq::dequantize(ck.qweight, ck.qzeros, codecScales, ck.gIdx, K, N, cfg, ec.codecOut);
  ec.bound.resize(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      ec.bound[n * K + k] = roundTripBound(halfToFloat(ck.scales[ck.gIdx[k] * N + n]), maxq, u);
  if (ckOut)
    *ckOut = ck;
  return ec;
}

TypedDequant typedOf(ElemKind se) {
  return [se](const WeightType &t, const PartBytesMap &m, float *out) {
    return schemes::dequantizeGptq(t, m, se, out);
  };
}

class GptqType : public ::testing::TestWithParam<GptqCase> {};

TEST_P(GptqType, DequantMatchesCodec) {
  const GptqCase &c = GetParam();
  const int64_t N = 32, K = 128;
  WeightType t = makeType("gptq", paramsOf(c, N, K));
  std::vector<ExpertCase> cases;
  for (int64_t e = 0; e < std::max<int64_t>(c.experts, 1); ++e)
    cases.push_back(gptqExpert(
        c, N, K, uint32_t(77 + c.bits * 13 + c.group * 5 + c.sym * 3 + c.v2 * 17 + e * 101)));
  checkRoundTrip(t, cases, c.scales != ElemKind::BF16, typedOf(c.scales));
}

std::vector<GptqCase> gptqCases() {
  std::vector<GptqCase> v;
  for (int bits : {2, 3, 4, 8})
    for (int64_t g : {int64_t(32), int64_t(48), int64_t(-1)}) // 48: ceil(128/48) = 3 groups
      for (bool sym : {true, false})
        for (bool v2 : {false, true})
          for (bool act : {false, true})
            v.push_back({bits, g, sym, v2, act});
  v.push_back({4, 32, true, false, false, ElemKind::F16, 0, /*withGIdx=*/false});
  v.push_back({4, 32, false, false, true, ElemKind::BF16});
  v.push_back({4, 32, false, true, false, ElemKind::F32});
  v.push_back({3, 32, true, false, true, ElemKind::F32});
  v.push_back({8, -1, false, true, false, ElemKind::BF16, 0, false});
  v.push_back({4, 32, true, false, false, ElemKind::F16, 4});
  v.push_back({4, 32, false, true, true, ElemKind::F16, 2});
  v.push_back({2, 48, false, false, true, ElemKind::F32, 3});
  v.push_back({3, -1, true, true, false, ElemKind::BF16, 2, false});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, GptqType, ::testing::ValuesIn(gptqCases()), caseName);

TEST(GptqTypeVerify, ParameterRejections) {
  auto p = [](int bits, int64_t g, int64_t n, int64_t k) {
    return AttrDict{{"bits", bits}, {"group", g}, {"shape", shapeAttr(n, k)}};
  };
  EXPECT_EQ(typeError("gptq", p(5, 32, 32, 64)), "bits = 5 is not a GPTQ width (2, 3, 4 or 8)");
  EXPECT_EQ(typeError("gptq", p(4, 32, 32, 100)),
            "K = 100 is not a multiple of 8 (4-bit codes are packed 8 per int32 along K in "
            "qweight)");
  EXPECT_EQ(typeError("gptq", p(3, 32, 48, 64)),
            "N = 48 is not a multiple of 32 (3-bit codes are packed 32 per 3 int32 words along N "
            "in qzeros)");
  EXPECT_EQ(typeError("gptq", p(4, 0, 32, 64)),
            "group size 0 is invalid (must be positive or -1)");
  EXPECT_EQ(typeError("gptq", p(4, 32, 32, 64)), ""); // sanity
  AttrDict f = p(4, 32, 32, 64);
  f["format"] = id("v3");
  EXPECT_EQ(typeError("gptq", f), "parameter 'format' of !gptq must be one of v1, v2, got v3");
  AttrDict missing{{"bits", 4}, {"shape", shapeAttr(32, 64)}};
  EXPECT_EQ(typeError("gptq", missing), "missing parameter 'group' of !gptq");
}

TEST(GptqTypeVerify, PartRejections) {
  GptqCase c{4, 32, true, false, true};
  WeightType t = makeType("gptq", paramsOf(c, 32, 128));
  ExpertCase ec = gptqExpert(c, 32, 128, 5);
  {
    auto parts = ec.parts;
    parts.pop_back(); // g_idx, required with desc_act
    auto msgs = verifyMessages(*makeModule(t, {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_EQ(msgs[0], "weight @w of type !gptq<bits = 4, group = 32, desc_act = true, shape = "
                       "[32, 128]> is missing part 'g_idx' (g_idx = tensor<128xi32>)");
  }
  {
    auto parts = ec.parts;
    parts[0].shape = {32, 32}; // qweight of 4-bit K = 128 is [16, 32]
    parts[0].bytes.resize(32 * 32 * 4);
    auto msgs = verifyMessages(*makeModule(t, {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_NE(msgs[0].find("part 'qweight' of weight @w has shape [32, 32] but"),
              std::string::npos);
    EXPECT_NE(msgs[0].find("needs [16, 32]"), std::string::npos);
  }
  {
    // Without desc_act g_idx is optional: dropping it verifies.
    GptqCase c2{4, 32, true, false, false};
    WeightType t2 = makeType("gptq", paramsOf(c2, 32, 128));
    auto parts = gptqExpert(c2, 32, 128, 5).parts;
    parts.pop_back();
    EXPECT_TRUE(verifyMessages(*makeModule(t2, {parts})).empty());
  }
}

// The hook range-checks g_idx on the data: a bad entry is an error naming it, not a wild read.
TEST(GptqTypeDequant, BadGIdxIsReported) {
  GptqCase c{4, 32, false, true, true}; // K = 128, G = 32: groups 0..3
  WeightType t = makeType("gptq", paramsOf(c, 32, 128));
  for (int32_t bad : {9, 4, -1}) {
    ExpertCase ec = gptqExpert(c, 32, 128, 11);
    std::vector<int32_t> g(128);
    std::memcpy(g.data(), ec.parts[3].bytes.data(), 512);
    g[5] = bad;
    ec.parts[3].bytes = toBytes(g);
    auto m = makeModule(t, {ec.parts});
    ASSERT_TRUE(verifyMessages(*m).empty()); // shapes are fine; the data is not
    std::vector<float> out;
    EXPECT_EQ(runHook(*m->weights().front(), 0, out),
              "g_idx[5] = " + std::to_string(bad) + " is not a group index (0..3)");
  }
}

TEST(GptqTypeDequant, GIdxDisagreeingWithoutDescActIsReported) {
  GptqCase act{4, 32, false, true, true};
  gptq::Checkpoint ck;
  ExpertCase ec = gptqExpert(act, 32, 128, 13, &ck); // an act-order g_idx
  GptqCase plain = act;
  plain.descAct = false;
  WeightType t = makeType("gptq", paramsOf(plain, 32, 128));
  auto m = makeModule(t, {ec.parts});
  ASSERT_TRUE(verifyMessages(*m).empty());
  int64_t k = 0;
  while (ck.gIdx[k] == k / 32)
    ++k;
  std::vector<float> out;
  EXPECT_EQ(runHook(*m->weights().front(), 0, out),
            "g_idx[" + std::to_string(k) + "] = " + std::to_string(ck.gIdx[k]) +
                " but desc_act = false means group k / G = " + std::to_string(k / 32) +
                " (set desc_act = true to use g_idx)");
}

TEST(GptqTypeDequant, SymmetricWithRealZerosIsReported) {
  GptqCase asym{4, 32, false, false, false};
  ExpertCase ec = gptqExpert(asym, 32, 128, 17);
  GptqCase sym = asym;
  sym.sym = true;
  auto m = makeModule(makeType("gptq", paramsOf(sym, 32, 128)), {ec.parts});
  std::vector<float> out;
  std::string msg = runHook(*m->weights().front(), 0, out);
  EXPECT_NE(msg.find("but sym = true stores 7 in format v1 (set sym = false for real zeros)"),
            std::string::npos)
      << msg;
}

TEST(GptqTypeDequant, ShortPartIsAnErrorNotARead) {
  GptqCase c{4, 32, true, false, true};
  WeightType t = makeType("gptq", paramsOf(c, 32, 128));
  ExpertCase ec = gptqExpert(c, 32, 128, 5);
  PartBytesMap m;
  for (const auto &p : ec.parts)
    m[p.name] = PartView{p.elem, llvm::ArrayRef<uint8_t>(p.bytes)};
  std::vector<float> out(32 * 128);
  m["g_idx"].bytes = m["g_idx"].bytes.drop_back(4);
  EXPECT_EQ(t.def->dequantize(t, m, out.data()), "part 'g_idx' has 508 bytes, expected 128 x 4");
  m.erase("g_idx");
  EXPECT_EQ(t.def->dequantize(t, m, out.data()), "part 'g_idx' is missing (desc_act = true)");
}

} // namespace
