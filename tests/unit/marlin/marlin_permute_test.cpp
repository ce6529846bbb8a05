// marlin-permute: (1) rewrite then inverse gives the input bits back, over random shapes the layout
// allows, AWQ / GPTQ / compressed-tensors, 4 and 8 bit, every group size, act-order on and off;
// (2) the reference executor gives the same result before and after the pass; (3) MoE: each
// weight's scales are permuted with its own K, and the size_k of FORMATS.md §4.8 (w13 permuted
// with I) would change both the bits and the result.
//
// Tolerance of (2): none — results are compared bit for bit. Both dequantizers compute
// float(q − z) · s in f32 (a small integer times a 16-bit float or an f32: one rounding at most,
// the same operands on both sides), the !marlin hook returns W in the original k order, and
// marlin.gemm / marlin.moe run the same reference loops (f64 accumulation in the same k order) as
// linear / moe. Any difference would be a layout bug, not rounding.
#include "marlin_reference.h"
#include "marlin_test_util.h"
#include "schemes/marlin/codec.h"

using namespace qlc;
using namespace qlc::marlin_test;

namespace {

std::string caseName(const SourceCase &c) {
  std::string s = c.scheme == Scheme::Awq ? "awq" : c.scheme == Scheme::Gptq ? "gptq" : "ct";
  s += "_b" + std::to_string(c.bits) + "_g" + (c.group < 0 ? "all" : std::to_string(c.group));
  if (c.actOrder)
    s += "_act";
  if (c.asym)
    s += "_asym";
  if (c.channel)
    s += "_channel";
  if (c.gptqV2)
    s += "_v2";
  return s + "_" + elemName(c.scaleElem);
}

std::vector<SourceCase> allCases() {
  std::vector<SourceCase> cases;
  const ElemKind elems[] = {ElemKind::F16, ElemKind::BF16, ElemKind::F32};
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> nPick(1, 3), kPick(1, 3);
  int i = 0;
  auto add = [&](SourceCase c) {
    c.scaleElem = elems[i++ % 3];
    c.n = 64 * nPick(rng);  // N % 64
    c.k = 128 * kPick(rng); // K % 128 (linear)
    cases.push_back(c);
  };
  for (int bits : {4, 8})
    for (int64_t g : {-1, 32, 64, 128}) {
      add({Scheme::Awq, bits, g});
      for (bool act : {false, true}) {
        SourceCase gp{Scheme::Gptq, bits, g, act};
        gp.gptqV2 = (bits + g) % 3 == 0;
        add(gp);
        for (bool asym : {false, true})
          add({Scheme::Ct, bits, g, act, asym});
      }
    }
  for (int bits : {4, 8})
    for (bool asym : {false, true}) {
      SourceCase c{Scheme::Ct, bits, -1, false, asym};
      c.channel = true;
      add(c);
    }
  return cases;
}

class MarlinPermuteRoundTrip : public ::testing::TestWithParam<SourceCase> {};

/// Undoes the act-order sort of an inverse: back to the source's row order and g_idx.
NaturalData toSourceOrder(const SourceCase &c, const NaturalWeight &w) {
  NaturalData d;
  d.codes = w.codes;
  if (!w.perm.empty()) {
    d.gIdx.resize(size_t(c.k));
    for (int64_t k = 0; k < c.k; ++k) {
      int32_t orig = w.perm[size_t(k)];
      std::copy_n(w.codes.begin() + k * c.n, c.n, d.codes.begin() + orig * c.n);
      d.gIdx[size_t(orig)] = w.gIdx[size_t(k)];
    }
  } else if (c.actOrder) {
    d.gIdx.assign(size_t(c.k), 0); // desc_act with group -1: one group, no act-order in Marlin
  }
  d.zeros = w.zeros;
  d.scales = decodeFloatBytes(w.scales, c.scaleElem);
  return d;
}

TEST_P(MarlinPermuteRoundTrip, InverseGivesInputBitsAndSameResult) {
  const SourceCase c = GetParam();
  std::mt19937 rng(uint32_t(std::hash<std::string>()(caseName(c))));
  NaturalData nat = randomNatural(c, rng);
  std::string text = weightText("w", c, {nat}) + "func @f(%x: tensor<3x" + std::to_string(c.k) +
                     "xf32>) -> tensor<3x" + std::to_string(c.n) + "xf32> {\n" +
                     "  %y = linear %x, @w\n  return %y\n}\n";
  auto t = parseText(text);
  ASSERT_TRUE(t->m);
  std::unique_ptr<Module> before = t->m->clone();
  Tensor x = randomInput({3, c.k}, rng);
  std::vector<float> yBefore = runFunc(*before, "f", {x});

  ASSERT_TRUE(runPipeline(*t, "marlin-permute{self-check=true}"));
  const Weight &w = *t->m->lookupWeight("w");
  ASSERT_FALSE(w.isDense());
  const WeightType &mt = w.quantType();
  ASSERT_EQ(mt.mnemonic(), "marlin");
  EXPECT_EQ(mt.intParam("bits"), c.bits);
  EXPECT_EQ(mt.intParam("group"), c.group);
  EXPECT_EQ(mt.boolParam("zero_point"), c.hasZeros());
  EXPECT_EQ(mt.boolParam("act_order"), c.actOrder && c.group != -1);
  EXPECT_EQ(t->m->functions()[0]->ops().front()->name(), "marlin.gemm");

  // Inverse (table-driven, marlin_reference.h) back to the natural data, then to the source
  // format with the schemes' own packers: the exact bytes of the input parts.
  NaturalData back = toSourceOrder(c, inverse(mt, expertParts(w, 0)));
  EXPECT_TRUE(back.codes == nat.codes);
  EXPECT_TRUE(back.zeros == nat.zeros);
  EXPECT_TRUE(back.scales == nat.scales);
  EXPECT_TRUE(back.gIdx == nat.gIdx);
  std::vector<SourcePart> again = sourceParts(c, back);
  const Weight &orig = *before->lookupWeight("w");
  ASSERT_EQ(again.size(), orig.parts().size());
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].name, orig.parts()[i].name);
    EXPECT_TRUE(again[i].bytes == *orig.parts()[i].data) << "part " << again[i].name;
  }

  std::vector<float> yAfter = runFunc(*t->m, "f", {x});
  EXPECT_TRUE(sameBits(yBefore, yAfter));
}

INSTANTIATE_TEST_SUITE_P(AllSources, MarlinPermuteRoundTrip, ::testing::ValuesIn(allCases()),
                         [](const auto &i) { return caseName(i.param); });

/// A MoE block: w13 [E, 2I, H], w2 [E, H, I], both of scheme `c` (shapes filled in here).
struct MoeModule {
  SourceCase c13, c2;
  std::vector<NaturalData> n13, n2;
  std::string text;
};

MoeModule moeModule(SourceCase c, int64_t E, int64_t H, int64_t I, std::mt19937 &rng) {
  MoeModule mm;
  mm.c13 = mm.c2 = c;
  mm.c13.experts = mm.c2.experts = E;
  mm.c13.n = 2 * I;
  mm.c13.k = H;
  mm.c2.n = H;
  mm.c2.k = I;
  for (int64_t e = 0; e < E; ++e) {
    mm.n13.push_back(randomNatural(mm.c13, rng));
    mm.n2.push_back(randomNatural(mm.c2, rng));
  }
  std::string h = std::to_string(H), ex = std::to_string(E);
  mm.text = weightText("w13", mm.c13, mm.n13) + weightText("w2", mm.c2, mm.n2) +
            "func @f(%x: tensor<5x" + h + "xf32>, %l: tensor<5x" + ex + "xf32>) -> tensor<5x" + h +
            "xf32> {\n  %y = moe %x, %l, @w13, @w2 {top_k = 2, renormalize = true}\n" +
            "  return %y\n}\n";
  return mm;
}

class MarlinPermuteMoe : public ::testing::TestWithParam<SourceCase> {};

TEST_P(MarlinPermuteMoe, SameResultAndEachWeightRoundTrips) {
  std::mt19937 rng(99);
  // H = 256, I = 128, G = 128: w13 (K = H) has 2 groups -> grouped perm; w2 (K = I) has one
  // group -> single perm.
  MoeModule mm = moeModule(GetParam(), 3, 256, 128, rng);
  auto t = parseText(mm.text);
  ASSERT_TRUE(t->m);
  std::unique_ptr<Module> before = t->m->clone();
  std::vector<Tensor> in = {randomInput({5, 256}, rng), randomInput({5, 3}, rng)};
  std::vector<float> yBefore = runFunc(*before, "f", in);
  ASSERT_TRUE(runPipeline(*t, "lower-marlin"));
  EXPECT_EQ(t->m->functions()[0]->ops().front()->name(), "marlin.moe");
  for (auto [name, c, nat] : {std::tuple{"w13", mm.c13, mm.n13}, std::tuple{"w2", mm.c2, mm.n2}}) {
    const Weight &w = *t->m->lookupWeight(name);
    ASSERT_EQ(w.quantType().mnemonic(), "marlin") << name;
    for (int64_t e = 0; e < c.experts; ++e)
      EXPECT_TRUE(toSourceOrder(c, inverse(w.quantType(), expertParts(w, e))) == nat[size_t(e)])
          << name << " expert " << e;
  }
  EXPECT_TRUE(sameBits(yBefore, runFunc(*t->m, "f", in)));
}

std::vector<SourceCase> moeCases() {
  SourceCase awq{Scheme::Awq, 4, 128};
  SourceCase gptqAct{Scheme::Gptq, 4, 128, true};
  SourceCase ctAsym8{Scheme::Ct, 8, 128, false, true};
  ctAsym8.scaleElem = ElemKind::BF16;
  SourceCase gptq64{Scheme::Gptq, 8, 64};
  return {awq, gptqAct, ctAsym8, gptq64};
}

INSTANTIATE_TEST_SUITE_P(Sources, MarlinPermuteMoe, ::testing::ValuesIn(moeCases()),
                         [](const auto &i) { return caseName(i.param); });

/// Natural f16 scales of one expert as bytes.
std::vector<uint8_t> naturalScaleBytes(const NaturalData &d) {
  return floatBytes(d.scales, ElemKind::F16);
}

// FORMATS.md §4.8: I_pp = 128, G = 128, H = 256 (the H = 4096 case scaled down: the flip only
// needs I <= G < H). The pass permutes w13's scales with size_k = H (grouped: 2 groups) and w2's
// with size_k = I (single: 1 group). The buggy size_k (I for w13) gives other bits and another
// result; so does H for w2.
TEST(MarlinPermuteMoe, ScalePermUsesEachWeightsOwnK) {
  const int64_t E = 2, H = 256, I = 128, G = 128;
  std::mt19937 rng(4813);
  MoeModule mm = moeModule({Scheme::Awq, 4, G}, E, H, I, rng);
  auto t = parseText(mm.text);
  ASSERT_TRUE(t->m);
  std::vector<Tensor> in = {randomInput({5, H}, rng), randomInput({5, E}, rng)};
  std::vector<float> yBefore = runFunc(*t->m, "f", in);
  ASSERT_TRUE(runPipeline(*t, "marlin-permute"));
  std::vector<float> yAfter = runFunc(*t->m, "f", in);
  EXPECT_TRUE(sameBits(yBefore, yAfter));

  ASSERT_TRUE(marlin::groupedScalePerm(G, H));
  ASSERT_FALSE(marlin::groupedScalePerm(G, I)); // the flip
  Weight &w13 = *t->m->lookupWeight("w13");
  Weight &w2 = *t->m->lookupWeight("w2");
  std::vector<uint8_t> right13, wrong13, right2, wrong2;
  for (int64_t e = 0; e < E; ++e) {
    auto s13 = naturalScaleBytes(mm.n13[size_t(e)]), s2 = naturalScaleBytes(mm.n2[size_t(e)]);
    auto add = [](std::vector<uint8_t> &to, const std::vector<uint8_t> &b) {
      to.insert(to.end(), b.begin(), b.end());
    };
    add(right13, marlin::permuteScales(s13, H / G, 2 * I, 2, G, /*sizeK=*/H));
    add(wrong13, marlin::permuteScales(s13, H / G, 2 * I, 2, G, /*sizeK=*/I)); // §4.8 bug
    add(right2, marlin::permuteScales(s2, I / G, H, 2, G, /*sizeK=*/I));
    add(wrong2, marlin::permuteScales(s2, I / G, H, 2, G, /*sizeK=*/H));
  }
  // The reference algorithm agrees with the pass for the right size_k.
  for (int64_t e = 0; e < E; ++e) {
    std::vector<uint16_t> s(size_t(2 * 2 * I));
    std::memcpy(s.data(), naturalScaleBytes(mm.n13[size_t(e)]).data(), s.size() * 2);
    std::vector<uint16_t> ref = referencePermuteScales(s, G, H);
    EXPECT_EQ(std::memcmp(ref.data(), right13.data() + e * int64_t(s.size()) * 2, s.size() * 2), 0);
  }
  WeightPart *sc13 = w13.part("scales"), *sc2 = w2.part("scales");
  ASSERT_TRUE(sc13 && sc2);
  EXPECT_TRUE(*sc13->data == right13);
  EXPECT_TRUE(*sc2->data == right2);
  EXPECT_FALSE(right13 == wrong13) << "size_k = I would not change w13's bits";
  EXPECT_FALSE(right2 == wrong2) << "size_k = H would not change w2's bits";

  // The buggy bits, read by a correct Marlin kernel (the !marlin hook), give another result.
  auto correct13 = sc13->data, correct2 = sc2->data;
  sc13->data = std::make_shared<const std::vector<uint8_t>>(wrong13);
  std::vector<float> yBug13 = runFunc(*t->m, "f", in);
  EXPECT_FALSE(sameBits(yAfter, yBug13)) << "w13 permuted with size_k = I gives the same result";
  sc13->data = correct13;
  sc2->data = std::make_shared<const std::vector<uint8_t>>(wrong2);
  std::vector<float> yBug2 = runFunc(*t->m, "f", in);
  EXPECT_FALSE(sameBits(yAfter, yBug2)) << "w2 permuted with size_k = H gives the same result";
  sc2->data = correct2;
  EXPECT_TRUE(sameBits(yAfter, runFunc(*t->m, "f", in)));
}

// A weight that another op also reads (a tied embedding) stays as it is, with a remark; a weight
// only linear reads in the same module is still repacked.
TEST(MarlinPermute, SharedWeightStays) {
  std::mt19937 rng(5);
  SourceCase c{Scheme::Awq, 4, 128};
  c.n = 128;
  c.k = 128;
  std::string text = weightText("tied", c, {randomNatural(c, rng)}) +
                     weightText("w", c, {randomNatural(c, rng)}) +
                     "func @f(%ids: tensor<2xi32>) -> tensor<2x128xf32> {\n"
                     "  %e = embedding %ids, @tied\n"
                     "  %a = linear %e, @tied\n"
                     "  %b = linear %a, @w\n"
                     "  return %b\n}\n";
  auto t = parseText(text);
  ASSERT_TRUE(t->m);
  ASSERT_TRUE(runPipeline(*t, "marlin-permute"));
  EXPECT_EQ(t->m->lookupWeight("tied")->quantType().mnemonic(), "awq");
  EXPECT_EQ(t->m->lookupWeight("w")->quantType().mnemonic(), "marlin");
  ASSERT_EQ(t->messages.size(), 1u);
  EXPECT_NE(t->messages[0].find("@tied stays !awq: it is also read by 'embedding'"),
            std::string::npos)
      << t->messages[0];
  std::vector<std::string> names;
  for (const auto &op : t->m->functions()[0]->ops())
    names.push_back(op->name());
  EXPECT_EQ(names, (std::vector<std::string>{"embedding", "linear", "marlin.gemm", "return"}));
}

// The unfused form (moe %x, %l, @gate, @up, @down, before materialize-experts) becomes marlin.moe
// with the same three weights, each repacked with its own K (gate/up: H, down: I).
TEST(MarlinPermute, UnfusedMoe) {
  std::mt19937 rng(77);
  const int64_t E = 2, H = 128, I = 64;
  SourceCase gate{Scheme::Gptq, 4, 64, true}, down = gate;
  gate.experts = down.experts = E;
  gate.n = I;
  gate.k = H;
  down.n = H;
  down.k = I;
  std::vector<NaturalData> g, u, d;
  for (int64_t e = 0; e < E; ++e) {
    g.push_back(randomNatural(gate, rng));
    u.push_back(randomNatural(gate, rng));
    d.push_back(randomNatural(down, rng));
  }
  std::string text = weightText("gate", gate, g) + weightText("up", gate, u) +
                     weightText("down", down, d) +
                     "func @f(%x: tensor<4x128xf32>, %l: tensor<4x2xf32>) -> tensor<4x128xf32> {\n"
                     "  %y = moe %x, %l, @gate, @up, @down {top_k = 2}\n  return %y\n}\n";
  auto t = parseText(text);
  ASSERT_TRUE(t->m);
  std::vector<Tensor> in = {randomInput({4, H}, rng), randomInput({4, E}, rng)};
  std::vector<float> before = runFunc(*t->m, "f", in);
  ASSERT_TRUE(runPipeline(*t, "marlin-permute{self-check=true}"));
  const Operation &op = *t->m->functions()[0]->ops().front();
  EXPECT_EQ(op.name(), "marlin.moe");
  EXPECT_EQ(op.symbols(), (std::vector<std::string>{"gate", "up", "down"}));
  EXPECT_TRUE(sameBits(before, runFunc(*t->m, "f", in)));
}

// Data the source's own dequantizer rejects is reported at the weight, not repacked.
TEST(MarlinPermute, BadSourceDataIsAnError) {
  std::mt19937 rng(3);
  SourceCase c{Scheme::Gptq, 4, 32, true};
  NaturalData nat = randomNatural(c, rng);
  nat.gIdx[5] = 99;
  auto t =
      parseText(weightText("w", c, {nat}) + "func @f(%x: tensor<1x128xf32>) -> tensor<1x64xf32> {\n"
                                            "  %y = linear %x, @w\n  return %y\n}\n");
  ASSERT_TRUE(t->m);
  EXPECT_FALSE(runPipeline(*t, "marlin-permute"));
  ASSERT_EQ(t->messages.size(), 1u);
  EXPECT_EQ(t->messages[0], "marlin-permute: @w (!gptq) cannot be repacked for Marlin: g_idx[5] = "
                            "99 is not a group index (0..3)");
  EXPECT_EQ(t->m->lookupWeight("w")->quantType().mnemonic(), "gptq"); // nothing changed
}

} // namespace
