// The !marlin weight type: verifier messages, parts, and the reference dequantize hook, which reads
// the Marlin layout with the closed forms; here its input is built with the table-driven reference
// algorithm (marlin_reference.h) and its output checked against W[n][perm[k]] = (q − z) · s.
#include "marlin_reference.h"
#include "marlin_test_util.h"

using namespace qlc;
using namespace qlc::marlin_test;

namespace {

const WeightTypeDef *marlinDef() {
  schemes::registerAllSchemes();
  return WeightTypeRegistry::get().lookup("marlin");
}

std::string typeError(AttrDict p) {
  std::string err;
  auto t = WeightTypeRegistry::get().build(marlinDef(), p, err);
  return t ? std::string() : err;
}

Attribute shape(int64_t n, int64_t k) { return Attribute(std::vector<int64_t>{n, k}); }

TEST(MarlinType, VerifierSaysWhatFits) {
  EXPECT_EQ(typeError({{"group", int64_t(128)}, {"shape", shape(100, 128)}}),
            "N = 100 is not a multiple of 64 (Marlin tiles N by 64; pad N to 128)");
  EXPECT_EQ(typeError({{"group", int64_t(32)}, {"shape", shape(64, 96)}}),
            "K = 96 is not a multiple of 128 (Marlin's linear kernel needs K % 128 == 0; pad K "
            "to 128)");
  // An expert stack follows the MoE rule K % max(64, G): 192 is fine with G = 64, not 128.
  EXPECT_EQ(typeError({{"group", int64_t(64)}, {"shape", shape(64, 192)}, {"experts", int64_t(2)}}),
            "");
  EXPECT_NE(typeError({{"group", int64_t(128)}, {"shape", shape(64, 192)}, {"experts", int64_t(2)}})
                .find("K = 192 is not a multiple of 128 (Marlin MoE"),
            std::string::npos);
  EXPECT_NE(typeError({{"group", int64_t(16)}, {"shape", shape(64, 128)}})
                .find("group = 16 is not a Marlin group size (-1, 32, 64 or 128"),
            std::string::npos);
  EXPECT_NE(typeError({{"bits", int64_t(2)}, {"group", int64_t(32)}, {"shape", shape(64, 128)}})
                .find("bits = 2 has no Marlin kernel"),
            std::string::npos);
  EXPECT_NE(typeError({{"group", int64_t(-1)}, {"act_order", true}, {"shape", shape(64, 128)}})
                .find("act_order = true needs a group size"),
            std::string::npos);
  EXPECT_EQ(typeError({{"group", int64_t(-1)}, {"shape", shape(64, 128)}}), "");
}

TEST(MarlinType, Parts) {
  std::string err;
  auto t = WeightTypeRegistry::get().build(marlinDef(),
                                           {{"bits", int64_t(8)},
                                            {"group", int64_t(32)},
                                            {"zero_point", true},
                                            {"act_order", true},
                                            {"shape", shape(128, 256)},
                                            {"experts", int64_t(3)}},
                                           err);
  ASSERT_TRUE(t) << err;
  std::vector<PartSpec> p = t->expectedParts();
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].name, "qweight");
  EXPECT_EQ(p[0].shape, (std::vector<int64_t>{3, 16, 512})); // [E, K/16, N*16/4]
  EXPECT_EQ(p[1].name, "scales");
  EXPECT_EQ(p[1].shape, (std::vector<int64_t>{3, 8, 128}));
  EXPECT_EQ(p[2].name, "qzeros");
  EXPECT_EQ(p[2].shape, (std::vector<int64_t>{3, 8, 32}));
  EXPECT_EQ(p[3].name, "perm");
  EXPECT_EQ(p[4].name, "g_idx");
  EXPECT_EQ(p[4].shape, (std::vector<int64_t>{3, 256}));
  auto plain = WeightTypeRegistry::get().build(
      marlinDef(), {{"group", int64_t(-1)}, {"shape", shape(64, 128)}}, err);
  ASSERT_TRUE(plain);
  std::vector<PartSpec> q = plain->expectedParts();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[1].shape, (std::vector<int64_t>{1, 64})); // channelwise: one scale row
}

struct HookCase {
  int bits;
  int64_t group;
  bool zp, act;
};

class MarlinHook : public ::testing::TestWithParam<HookCase> {};

TEST_P(MarlinHook, ReadsTheLayoutInOriginalOrder) {
  const HookCase hc = GetParam();
  const int64_t N = 128, K = 256, rows = hc.group == -1 ? 1 : K / hc.group;
  std::mt19937 rng(uint32_t(hc.bits * 1000 + hc.group * 10 + hc.zp * 2 + hc.act));
  std::uniform_int_distribution<int> code(0, (1 << hc.bits) - 1), m(1, 255);
  std::vector<uint8_t> codes(size_t(K * N)), zeros(size_t(rows * N));
  for (auto &x : codes)
    x = uint8_t(code(rng));
  for (auto &x : zeros)
    x = uint8_t(code(rng));
  std::vector<float> s(size_t(rows * N));
  for (auto &x : s)
    x = float(m(rng)) / 512.f - 0.25f;
  // Act-order: a random perm, and sorted g_idx (rows k of group g are contiguous).
  std::vector<int32_t> perm(static_cast<size_t>(K)), gIdx(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    perm[size_t(k)] = int32_t(k);
    gIdx[size_t(k)] = hc.group == -1 ? 0 : int32_t(k / hc.group);
  }
  if (hc.act)
    std::shuffle(perm.begin(), perm.end(), rng);

  std::string err;
  auto t = WeightTypeRegistry::get().build(marlinDef(),
                                           {{"bits", int64_t(hc.bits)},
                                            {"group", hc.group},
                                            {"zero_point", hc.zp},
                                            {"act_order", hc.act},
                                            {"shape", shape(N, K)}},
                                           err);
  ASSERT_TRUE(t) << err;
  std::vector<uint16_t> sh(s.size());
  for (size_t i = 0; i < s.size(); ++i)
    sh[i] = floatToHalf(s[i]);
  auto qw = toBytes(referencePack(codes, K, N, hc.bits));
  auto sc = toBytes(referencePermuteScales(sh, hc.group, K));
  auto qz = toBytes(referenceZeroPoints(zeros, rows, N, hc.bits));
  auto pb = toBytes(perm), gb = toBytes(gIdx);
  PartBytesMap parts{{"qweight", {ElemKind::I32, qw}}, {"scales", {ElemKind::F16, sc}}};
  if (hc.zp)
    parts["qzeros"] = {ElemKind::I32, qz};
  if (hc.act) {
    parts["perm"] = {ElemKind::I32, pb};
    parts["g_idx"] = {ElemKind::I32, gb};
  }
  std::vector<float> out(size_t(N * K), std::nanf(""));
  ASSERT_EQ(t->def->dequantize(*t, parts, out.data()), "");
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      int64_t g = gIdx[size_t(k)];
      int z = hc.zp ? zeros[size_t(g * N + n)] : 1 << (hc.bits - 1);
      float want = float(int(codes[size_t(k * N + n)]) - z) * halfToFloat(sh[size_t(g * N + n)]);
      ASSERT_EQ(out[size_t(n * K + perm[size_t(k)])], want) << "k " << k << " n " << n;
    }

  if (hc.act) { // broken act-order data is reported, not read
    std::vector<int32_t> dup = perm;
    dup[1] = dup[0];
    auto db = toBytes(dup);
    PartBytesMap bad = parts;
    bad["perm"] = {ElemKind::I32, db};
    EXPECT_NE(t->def->dequantize(*t, bad, out.data()).find("perm[1] = "), std::string::npos);
    std::vector<int32_t> unsorted = gIdx;
    std::swap(unsorted.front(), unsorted.back());
    auto ub = toBytes(unsorted);
    bad = parts;
    bad["g_idx"] = {ElemKind::I32, ub};
    std::string msg = t->def->dequantize(*t, bad, out.data());
    EXPECT_NE(msg.find("Marlin's g_idx is sorted"), std::string::npos) << msg;
  }
}

std::vector<HookCase> hookCases() {
  std::vector<HookCase> v;
  for (int bits : {4, 8})
    for (int64_t g : {-1, 32, 64, 128})
      for (bool zp : {false, true})
        for (bool act : {false, true})
          if (!(act && g == -1))
            v.push_back({bits, g, zp, act});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, MarlinHook, ::testing::ValuesIn(hookCases()), [](const auto &i) {
  const HookCase &c = i.param;
  std::string s = "b";
  s += std::to_string(c.bits);
  s += "_g";
  s += c.group < 0 ? std::string("all") : std::to_string(c.group);
  if (c.zp)
    s += "_zp";
  if (c.act)
    s += "_act";
  return s;
});

} // namespace
