// !ct_wna16: verifier, reference dequantization hook vs qlc::ct::dequantize (bit-exact) and vs the
// original f32 (§3.1 quantizer bound) for 4/8 bits, group / channel strategy, symmetric and
// asymmetric, actorder none / group / weight, padded K and N, f16/bf16/f32 scales, weight_shape
// i32/i64/absent and expert stacks; verifier rejections; bad weight_g_idx / weight_shape data.
#include "scheme_type_test_util.h"

#include "schemes/common/packing.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/compressed_tensors/compressed_tensors_type.h"

using namespace qlc;
using namespace qlc::test;

namespace {

enum class WShape { None, I64, I32 };

struct CtCase {
  int bits;
  bool channel;
  int64_t group; // group strategy only
  bool sym;
  const char *actorder; // none | group | weight
  ElemKind scales = ElemKind::F16;
  int64_t experts = 0;
  int64_t n = 32, k = 128;
  WShape wshape = WShape::I64;
};

std::string caseName(const ::testing::TestParamInfo<CtCase> &i) {
  const CtCase &c = i.param;
  std::string s = "b";
  s += std::to_string(c.bits);
  s += c.channel ? std::string("_channel") : "_g" + (c.group < 0 ? std::string("all")
                                                                 : std::to_string(c.group));
  s += c.sym ? "_sym" : "_asym";
  s += "_";
  s += c.actorder;
  s += "_";
  s += elemKindName(c.scales).str();
  s += "_e";
  s += std::to_string(c.experts);
  s += "_n" + std::to_string(c.n) + "k" + std::to_string(c.k);
  s += c.wshape == WShape::None ? "_nows" : c.wshape == WShape::I32 ? "_ws32" : "";
  return s;
}

ct::Config configOf(const CtCase &c) {
  ct::Config cfg;
  cfg.bits = c.bits;
  cfg.strategy = c.channel ? ct::Strategy::Channel : ct::Strategy::Group;
  cfg.groupSize = c.channel ? 0 : c.group;
  cfg.symmetric = c.sym;
  cfg.scaleType = c.scales == ElemKind::BF16 ? ct::ScaleType::BF16 : ct::ScaleType::F16;
  return cfg;
}

AttrDict paramsOf(const CtCase &c) {
  AttrDict p{{"bits", c.bits},
             {"strategy", id(c.channel ? "channel" : "group")},
             {"symmetric", c.sym},
             {"actorder", id(c.actorder)},
             {"shape", shapeAttr(c.n, c.k)},
             {"experts", c.experts}};
  if (!c.channel)
    p["group"] = Attribute(c.group);
  return p;
}

ExpertCase ctExpert(const CtCase &c, uint32_t seed) {
  const int64_t N = c.n, K = c.k;
  ct::Config cfg = configOf(c);
  int64_t groups = ct::numGroups(K, cfg), pf = 32 / c.bits;
  ExpertCase ec;
  ec.orig = randomWeights(N * K, seed);
  std::vector<int32_t> perm;
  if (std::string(c.actorder) == "group")
    perm = randomPermutation(K, seed + 1);
  ct::Checkpoint ck = ct::quantize(ec.orig, K, N, cfg, perm);
  std::vector<float> sv = ct::decodeScales(ck.weightScale, cfg.scaleType);
  ec.parts = {{"weight_packed", ElemKind::I32, {N, codec::ceilDiv(K, pf)}, toBytes(ck.weightPacked)},
              {"weight_scale", c.scales, {N, groups}, floatBytes(sv, c.scales)}};
  if (!c.sym)
    ec.parts.push_back({"weight_zero_point", ElemKind::I32, {codec::ceilDiv(N, pf), groups},
                        toBytes(ck.weightZeroPoint)});
  if (!perm.empty())
    ec.parts.push_back({"weight_g_idx", ElemKind::I32, {K}, toBytes(ck.weightGIdx)});
  if (c.wshape == WShape::I64)
    ec.parts.push_back({"weight_shape", ElemKind::I64, {2}, toBytes(ck.weightShape)});
  if (c.wshape == WShape::I32)
    ec.parts.push_back({"weight_shape", ElemKind::I32, {2},
                        toBytes(std::vector<int32_t>{int32_t(N), int32_t(K)})});
  ec.codecOut.resize(size_t(N * K));
  ct::dequantize(ck.weightPacked, sv, ck.weightZeroPoint, ck.weightGIdx, K, N, cfg, ec.codecOut);
  // Bound as in the codec test: levels = 2^b, plus half a step for the symmetric /8 grid whose
  // top value (qmax·s) may lie one step below max|w|.
  double u = c.scales == ElemKind::BF16 ? kBf16Roundoff : kF16Roundoff;
  ec.bound.resize(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      int64_t g = perm.empty() ? ct::groupOf(k, K, cfg) : ck.weightGIdx[k];
      double s = sv[n * groups + g];
      ec.bound[n * K + k] = roundTripBound(s, double(1 << c.bits), u) + (c.sym ? 0.5 * s : 0.0);
    }
  return ec;
}

TypedDequant typedOf(ElemKind se) {
  return [se](const WeightType &t, const PartBytesMap &m, float *out) {
    return schemes::dequantizeCtWna16(t, m, se, out);
  };
}

class CtType : public ::testing::TestWithParam<CtCase> {};

TEST_P(CtType, DequantMatchesCodec) {
  const CtCase &c = GetParam();
  WeightType t = makeType("ct_wna16", paramsOf(c));
  std::vector<ExpertCase> cases;
  for (int64_t e = 0; e < std::max<int64_t>(c.experts, 1); ++e)
    cases.push_back(ctExpert(c, uint32_t(300 + c.bits * 7 + c.group * 3 + c.sym * 11 + e * 41 +
                                         c.channel * 5 + c.actorder[0])));
  checkRoundTrip(t, cases, c.scales != ElemKind::BF16, typedOf(c.scales));
}

std::vector<CtCase> ctCases() {
  std::vector<CtCase> v;
  for (int bits : {4, 8})
    for (bool sym : {true, false}) {
      for (int64_t g : {int64_t(32), int64_t(-1)})
        for (const char *a : {"none", "group", "weight"})
          v.push_back({bits, false, g, sym, a});
      v.push_back({bits, true, 0, sym, "none"});
      v.push_back({bits, true, 0, sym, "weight"});
      for (ElemKind s : {ElemKind::BF16, ElemKind::F32})
        v.push_back({bits, false, 32, sym, "none", s});
    }
  // K and N not multiples of the pack factor: padded weight_packed rows and zero-point columns.
  v.push_back({4, false, 20, false, "none", ElemKind::F16, 0, 13, 100});
  v.push_back({4, false, 25, false, "group", ElemKind::BF16, 0, 13, 100, WShape::I32});
  v.push_back({8, true, 0, false, "none", ElemKind::F32, 0, 7, 30, WShape::None});
  // Expert stacks.
  v.push_back({4, false, 32, true, "none", ElemKind::F16, 3});
  v.push_back({4, false, 32, false, "group", ElemKind::BF16, 2});
  v.push_back({8, true, 0, false, "none", ElemKind::F32, 2, 32, 64, WShape::None});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, CtType, ::testing::ValuesIn(ctCases()), caseName);

TEST(CtTypeVerify, ParameterRejections) {
  auto p = [](int bits, int64_t n, int64_t k) {
    return AttrDict{{"bits", bits}, {"group", int64_t(32)}, {"shape", shapeAttr(n, k)}};
  };
  EXPECT_EQ(typeError("ct_wna16", p(4, 32, 128)), "");
  EXPECT_EQ(typeError("ct_wna16", p(2, 32, 128)),
            "bits = 2 is not a pack-quantized WNA16 width (4 or 8)");
  EXPECT_EQ(typeError("ct_wna16", p(4, 32, 100)), "K = 100 is not a multiple of group size 32");
  EXPECT_EQ(typeError("ct_wna16", {{"bits", 4}, {"shape", shapeAttr(32, 128)}}),
            "strategy = group needs group = G (a positive group size along K, or -1 for one group)");
  AttrDict ch = p(4, 32, 128);
  ch["strategy"] = id("channel");
  EXPECT_EQ(typeError("ct_wna16", ch), "strategy = channel has one scale per output row: drop "
                                       "group = 32 (or use strategy = group)");
  ch.erase("group");
  ch["actorder"] = id("group");
  EXPECT_EQ(typeError("ct_wna16", ch),
            "actorder = group needs strategy = group (weight_g_idx maps columns to groups)");
  AttrDict bad = p(4, 32, 128);
  bad["actorder"] = id("dynamic");
  EXPECT_EQ(typeError("ct_wna16", bad),
            "parameter 'actorder' of !ct_wna16 must be one of none, group, weight, got dynamic");
}

TEST(CtTypeVerify, PartRejections) {
  {
    CtCase c{4, false, 32, false, "none"};
    WeightType t = makeType("ct_wna16", paramsOf(c));
    auto parts = ctExpert(c, 3).parts;
    parts.erase(parts.begin() + 2); // weight_zero_point, required when asymmetric
    auto msgs = verifyMessages(*makeModule(t, {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_EQ(msgs[0], "weight @w of type !ct_wna16<bits = 4, group = 32, symmetric = false, "
                       "shape = [32, 128]> is missing part 'weight_zero_point' "
                       "(weight_zero_point = tensor<4x4xi32>)");
  }
  {
    CtCase asym{4, false, 32, false, "none"};
    CtCase sym = asym;
    sym.sym = true;
    auto msgs = verifyMessages(*makeModule(makeType("ct_wna16", paramsOf(sym)),
                                           {ctExpert(asym, 3).parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_NE(msgs[0].find("has no part 'weight_zero_point' (its parts are: weight_packed, "
                           "weight_scale, weight_shape)"),
              std::string::npos)
        << msgs[0];
  }
  {
    CtCase c{4, false, 32, true, "group"};
    auto parts = ctExpert(c, 3).parts;
    parts.erase(parts.begin() + 2); // weight_g_idx, required with actorder = group
    auto msgs = verifyMessages(*makeModule(makeType("ct_wna16", paramsOf(c)), {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_NE(msgs[0].find("is missing part 'weight_g_idx' (weight_g_idx = tensor<128xi32>)"),
              std::string::npos)
        << msgs[0];
  }
  {
    CtCase c{4, true, 0, true, "none"};
    auto parts = ctExpert(c, 3).parts;
    parts[1].shape = {32, 4}; // channel strategy: weight_scale is [N, 1]
    parts[1].bytes.resize(32 * 4 * 2);
    auto msgs = verifyMessages(*makeModule(makeType("ct_wna16", paramsOf(c)), {parts}));
    ASSERT_EQ(msgs.size(), 1u) << joined(msgs);
    EXPECT_NE(msgs[0].find("has shape [32, 4] but"), std::string::npos);
    EXPECT_NE(msgs[0].find("needs [32, 1]"), std::string::npos);
  }
}

TEST(CtTypeDequant, BadGIdxIsReported) {
  CtCase c{4, false, 32, false, "group"}; // K = 128, G = 32: groups 0..3
  ExpertCase ec = ctExpert(c, 9);
  std::vector<int32_t> g(128);
  std::memcpy(g.data(), ec.parts[3].bytes.data(), 512);
  g[5] = 9;
  ec.parts[3].bytes = toBytes(g);
  auto m = makeModule(makeType("ct_wna16", paramsOf(c)), {ec.parts});
  ASSERT_TRUE(verifyMessages(*m).empty());
  std::vector<float> out;
  EXPECT_EQ(runHook(*m->weights().front(), 0, out),
            "weight_g_idx[5] = 9 is not a group index (0..3)");
}

TEST(CtTypeDequant, WrongWeightShapeValueIsReported) {
  CtCase c{4, false, 32, true, "none"};
  ExpertCase ec = ctExpert(c, 9);
  ec.parts.back().bytes = toBytes(std::vector<int64_t>{128, 32}); // swapped
  auto m = makeModule(makeType("ct_wna16", paramsOf(c)), {ec.parts});
  ASSERT_TRUE(verifyMessages(*m).empty());
  std::vector<float> out;
  EXPECT_EQ(runHook(*m->weights().front(), 0, out),
            "weight_shape value has shape [128, 32], expected [32, 128] (weight_shape records the "
            "unpadded [N, K] of the Linear)");
}

TEST(CtTypeDequant, ShortPartIsAnErrorNotARead) {
  CtCase c{4, false, 32, false, "none"};
  WeightType t = makeType("ct_wna16", paramsOf(c));
  ExpertCase ec = ctExpert(c, 5);
  PartBytesMap m;
  for (const auto &p : ec.parts)
    m[p.name] = PartView{p.elem, llvm::ArrayRef<uint8_t>(p.bytes)};
  std::vector<float> out(32 * 128);
  m["weight_zero_point"].bytes = m["weight_zero_point"].bytes.drop_back(4);
  EXPECT_EQ(t.def->dequantize(t, m, out.data()),
            "part 'weight_zero_point' has 60 bytes, expected 16 x 4 (symmetric = false)");
}

} // namespace
