// Print -> parse -> print of a module holding one weight of every registered scheme type (with
// inline data from the codecs' quantizers): the text is a fixed point, the types and bytes survive,
// and parameters equal to their defaults are not printed.
#include "scheme_type_test_util.h"

#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gguf/blocks.h"
#include "schemes/gptq/codec.h"
#include "schemes/w8a8/codec.h"

using namespace qlc;
using namespace qlc::test;

namespace {

void addWeight(Module &m, const std::string &name, const WeightType &t,
               const std::vector<PartData> &parts) {
  auto w = std::make_unique<Weight>(name, t, Location{});
  for (const PartData &p : parts) {
    WeightPart wp;
    wp.name = p.name;
    wp.type = TensorType(p.elem, p.shape);
    wp.data = std::make_shared<std::vector<uint8_t>>(p.bytes);
    w->parts().push_back(std::move(wp));
  }
  ASSERT_NE(m.addWeight(std::move(w)), nullptr);
}

std::unique_ptr<Module> parseText(const std::string &text, std::string &errors) {
  llvm::SourceMgr sm;
  llvm::raw_string_ostream os(errors);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  auto m = parseModuleString(text, "roundtrip.qir", sm, diag);
  if (m && llvm::failed(verifyModule(*m, diag)))
    m.reset();
  return m;
}

std::unique_ptr<Module> everyType() {
  auto m = std::make_unique<Module>();
  { // !awq, all defaults but group / shape
    auto w = randomWeights(8 * 16, 1);
    auto ck = awq::quantize(w, 16, 8, 8, 4);
    std::vector<float> s(ck.scales.size());
    for (size_t i = 0; i < s.size(); ++i)
      s[i] = halfToFloat(ck.scales[i]);
    addWeight(*m, "awq", makeType("awq", {{"group", 8}, {"shape", shapeAttr(8, 16)}, {"bits", 4}}),
              {{"qweight", ElemKind::I32, {16, 1}, toBytes(ck.qweight)},
               {"qzeros", ElemKind::I32, {2, 1}, toBytes(ck.qzeros)},
               {"scales", ElemKind::BF16, {2, 8}, floatBytes(s, ElemKind::BF16)}});
  }
  { // !gptq with act-order, v2, asymmetric
    gptq::Config cfg{4, 8, false, gptq::Format::V2};
    auto w = randomWeights(8 * 16, 2);
    auto ck = gptq::quantize(w, 16, 8, cfg, randomPermutation(16, 3));
    addWeight(*m, "gptq",
              makeType("gptq", {{"bits", 4}, {"group", 8}, {"sym", false}, {"format", id("v2")},
                                {"desc_act", true}, {"shape", shapeAttr(8, 16)}}),
              {{"qweight", ElemKind::I32, {2, 8}, toBytes(ck.qweight)},
               {"qzeros", ElemKind::I32, {2, 1}, toBytes(ck.qzeros)},
               {"scales", ElemKind::F16, {2, 8}, toBytes(ck.scales)},
               {"g_idx", ElemKind::I32, {16}, toBytes(ck.gIdx)}});
  }
  { // !ct_wna16 channel, asymmetric, padded K and N
    ct::Config cfg;
    cfg.bits = 4;
    cfg.strategy = ct::Strategy::Channel;
    cfg.symmetric = false;
    auto w = randomWeights(3 * 10, 4);
    auto ck = ct::quantize(w, 10, 3, cfg);
    addWeight(*m, "ct",
              makeType("ct_wna16", {{"bits", 4}, {"strategy", id("channel")},
                                    {"symmetric", false}, {"actorder", id("none")},
                                    {"shape", shapeAttr(3, 10)}}),
              {{"weight_packed", ElemKind::I32, {3, 2}, toBytes(ck.weightPacked)},
               {"weight_scale", ElemKind::F16, {3, 1}, toBytes(ck.weightScale)},
               {"weight_zero_point", ElemKind::I32, {1, 1}, toBytes(ck.weightZeroPoint)},
               {"weight_shape", ElemKind::I64, {2}, toBytes(ck.weightShape)}});
  }
  { // !w8a8
    auto w = randomWeights(2 * 4, 5);
    auto ck = w8a8::quantize(w, 4, 2);
    addWeight(*m, "w8a8", makeType("w8a8", {{"shape", shapeAttr(2, 4)}}),
              {{"weight", ElemKind::I8, {2, 4}, toBytes(ck.weight)},
               {"weight_scale", ElemKind::F32, {2, 1}, toBytes(ck.weightScale)},
               {"weight_offset", ElemKind::F32, {2, 1}, toBytes(ck.weightOffset)}});
  }
  { // !gguf expert stack
    auto w = randomWeights(2 * 2 * 32, 6);
    std::vector<uint8_t> data(2 * 2 * 18);
    for (int r = 0; r < 4; ++r)
      gguf::quantizeRow(gguf::kQ4_0, w.data() + r * 32, data.data() + r * 18, 32);
    addWeight(*m, "gguf",
              makeType("gguf", {{"type", id("Q4_0")}, {"shape", shapeAttr(2, 32)}, {"experts", 2}}),
              {{"data", ElemKind::U8, {2, 2, 18}, data}});
  }
  return m;
}

TEST(SchemeTypesRoundTrip, EveryTypePrintParsePrint) {
  auto m = everyType();
  auto msgs = verifyMessages(*m);
  ASSERT_TRUE(msgs.empty()) << joined(msgs);
  std::string text = printModuleToString(*m);
  // Parameters equal to their defaults are not printed; the others are, in declaration order.
  EXPECT_NE(text.find("weight @awq : !awq<group = 8, shape = [8, 16]> {"), std::string::npos)
      << text;
  EXPECT_NE(text.find("weight @gptq : !gptq<bits = 4, group = 8, sym = false, format = v2, "
                      "desc_act = true, shape = [8, 16]> {"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("weight @ct : !ct_wna16<bits = 4, strategy = channel, symmetric = false, "
                      "shape = [3, 10]> {"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("weight @w8a8 : !w8a8<shape = [2, 4]> {"), std::string::npos) << text;
  EXPECT_NE(text.find("weight @gguf : !gguf<type = Q4_0, shape = [2, 32], experts = 2> {"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("data = tensor<2x2x18xu8> = hex\""), std::string::npos) << text;

  std::string errors;
  auto back = parseText(text, errors);
  ASSERT_TRUE(back) << errors << "\n" << text;
  EXPECT_EQ(printModuleToString(*back), text);
  ASSERT_EQ(back->weights().size(), m->weights().size());
  for (size_t i = 0; i < m->weights().size(); ++i) {
    const Weight &a = *m->weights()[i], &b = *back->weights()[i];
    EXPECT_EQ(a.name(), b.name());
    EXPECT_TRUE(a.quantType() == b.quantType()) << a.name();
    ASSERT_EQ(a.parts().size(), b.parts().size());
    for (size_t p = 0; p < a.parts().size(); ++p) {
      EXPECT_EQ(a.parts()[p].type, b.parts()[p].type);
      EXPECT_EQ(*a.parts()[p].data, *b.parts()[p].data);
    }
    // The parsed weight dequantizes exactly like the built one.
    for (int64_t e = 0; e < std::max<int64_t>(a.experts(), 1); ++e) {
      std::vector<float> x, y;
      ASSERT_EQ(runHook(a, e, x), "");
      ASSERT_EQ(runHook(b, e, y), "");
      EXPECT_TRUE(sameBits(x, y)) << a.name();
    }
  }
}

TEST(SchemeTypesRoundTrip, EveryTypeIsRegistered) {
  schemes::registerAllSchemes();
  for (const char *m : {"awq", "gptq", "ct_wna16", "w8a8", "gguf"}) {
    const WeightTypeDef *d = WeightTypeRegistry::get().lookup(m);
    ASSERT_NE(d, nullptr) << m;
    EXPECT_TRUE(d->verify && d->logicalShape && d->parts && d->dequantize) << m;
  }
}

} // namespace
