// materialize-experts on every scheme: the merged w13 splits back into the original gate and up
// bits exactly (the test's own inverse, splitting each part along the N dim the type declares),
// and the reference executor gives bit-identical results before and after the pass.
#include <gtest/gtest.h>

#include <random>

#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"
#include "support/float16.h"

using namespace qlc;

namespace {

/// Random but valid bytes for one part: scales are small positive f16/f32, codes anything.
std::vector<uint8_t> partBytes(const std::string &mnemonic, const WeightPart &p, std::mt19937 &rng) {
  size_t n = size_t(*p.type.numBytes());
  std::vector<uint8_t> b(n);
  for (uint8_t &x : b)
    x = uint8_t(rng());
  bool isScale = p.name.find("scale") != std::string::npos || p.name == "data";
  std::uniform_real_distribution<float> pos(0.01f, 0.1f);
  if (p.type.elem == ElemKind::F16 && isScale)
    for (size_t i = 0; i < n; i += 2) {
      uint16_t h = floatToHalf(p.name == "data" ? pos(rng) - 0.055f : pos(rng));
      std::memcpy(&b[i], &h, 2);
    }
  if (p.type.elem == ElemKind::F32 && isScale)
    for (size_t i = 0; i < n; i += 4) {
      float f = pos(rng);
      std::memcpy(&b[i], &f, 4);
    }
  if (mnemonic == "gguf") // Q8_0 blocks: f16 d then 32 int8 codes; keep d finite
    for (size_t i = 0; i + 34 <= n; i += 34) {
      uint16_t h = floatToHalf(pos(rng));
      std::memcpy(&b[i], &h, 2);
    }
  return b;
}

std::unique_ptr<Weight> makeWeight(const std::string &name, const std::string &type, int64_t e,
                                   int64_t n, int64_t k, std::mt19937 &rng, std::string &err) {
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup(type);
  AttrDict params;
  if (type == "awq")
    params = {{"group", Attribute(int64_t(32))}};
  else if (type == "gptq")
    params = {{"bits", Attribute(int64_t(4))}, {"group", Attribute(int64_t(32))},
              {"sym", Attribute(false)}, {"format", Attribute::ident("v2")}};
  else if (type == "ct_wna16")
    params = {{"bits", Attribute(int64_t(4))}, {"group", Attribute(int64_t(32))},
              {"symmetric", Attribute(false)}};
  else if (type == "gguf")
    params = {{"type", Attribute::ident("Q8_0")}};
  params["shape"] = Attribute(std::vector<int64_t>{n, k});
  params["experts"] = Attribute(e);
  auto t = WeightTypeRegistry::get().build(def, params, err);
  if (!t)
    return nullptr;
  auto w = std::make_unique<Weight>(name, *t, Location{});
  for (const PartSpec &s : t->expectedParts()) {
    if (s.optional)
      continue;
    WeightPart p;
    p.name = s.name;
    p.type = TensorType(s.elems.front(), s.shape);
    p.data = std::make_shared<std::vector<uint8_t>>(partBytes(type, p, rng));
    w->parts().push_back(std::move(p));
  }
  return w;
}

/// The test's inverse: takes rows [from, from + count) of N out of a part split along nDim.
std::vector<uint8_t> sliceN(const WeightPart &p, int nDim, int64_t n, int64_t from, int64_t count) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < nDim; ++i)
    outer *= p.type.dims[size_t(i)];
  for (size_t i = size_t(nDim) + 1; i < p.type.rank(); ++i)
    inner *= p.type.dims[i];
  int64_t dimLen = p.type.dims[size_t(nDim)], unit = elemKindBytes(p.type.elem);
  // Channels per element along nDim (packed parts hold several channels per element).
  int64_t perElem = n / dimLen;
  std::vector<uint8_t> out;
  for (int64_t o = 0; o < outer; ++o) {
    const uint8_t *base = p.data->data() + (o * dimLen + from / perElem) * inner * unit;
    out.insert(out.end(), base, base + count / perElem * inner * unit);
  }
  return out;
}

class MaterializeExperts : public ::testing::TestWithParam<std::string> {};

TEST_P(MaterializeExperts, SplitsBackAndComputesTheSame) {
  schemes::registerAllSchemes();
  registerGenericPasses();
  const std::string type = GetParam();
  std::mt19937 rng(11);
  const int64_t e = 3, h = 64, inter = 32;
  Module m;
  std::string err;
  auto gate = makeWeight("gate", type, e, inter, h, rng, err);
  ASSERT_TRUE(gate) << err;
  auto up = makeWeight("up", type, e, inter, h, rng, err);
  auto down = makeWeight("down", type, e, h, inter, rng, err);
  ASSERT_TRUE(up && down) << err;
  m.addWeight(std::move(gate));
  m.addWeight(std::move(up));
  m.addWeight(std::move(down));
  auto f = std::make_unique<Function>("f", Location{});
  Value *x = f->addArgument(TensorType(ElemKind::F32, {TensorType::kDynamic, h}), "x");
  Value *l = f->addArgument(TensorType(ElemKind::F32, {TensorType::kDynamic, e}), "l");
  auto op = std::make_unique<Operation>(OpRegistry::get().lookup("moe"), Location{});
  op->setOperands({x, l});
  op->setSymbols({"gate", "up", "down"});
  op->setAttr("top_k", Attribute(int64_t(2)));
  Value *y = op->addResult(TensorType(ElemKind::F32, {TensorType::kDynamic, h}), "y");
  f->append(std::move(op));
  auto ret = std::make_unique<Operation>(OpRegistry::get().lookup("return"), Location{});
  ret->setOperands({y});
  f->append(std::move(ret));
  f->setResultTypes({y->type()});
  m.addFunction(std::move(f));
  DiagnosticEngine diag;
  ASSERT_TRUE(llvm::succeeded(verifyModule(m, diag)));

  std::normal_distribution<float> nd(0, 1);
  std::vector<float> xs(5 * h), ls(5 * e);
  for (float &v : xs)
    v = nd(rng);
  for (float &v : ls)
    v = nd(rng);
  std::vector<Tensor> in{Tensor::fromF32({5, h}, xs), Tensor::fromF32({5, e}, ls)};
  ReferenceExecutor before(m, nullptr);
  auto r0 = before.run("f", in);
  ASSERT_TRUE(bool(r0)) << llvm::toString(r0.takeError());
  std::vector<float> y0 = (*r0)[0].toF32();

  auto original = m.clone();
  PassContext ctx{diag, {}};
  PassManager pm(ctx);
  ASSERT_EQ(pm.addPipeline("materialize-experts"), "");
  ASSERT_TRUE(llvm::succeeded(pm.run(m)));
  const Weight *w13 = m.lookupWeight("gate.w13");
  ASSERT_NE(w13, nullptr);
  EXPECT_EQ(m.lookupFunction("f")->ops().front()->symbols(),
            (std::vector<std::string>{"gate.w13", "down"}));
  EXPECT_EQ(w13->logicalShape(), (std::vector<int64_t>{e, 2 * inter, h}));

  // Inverse: every part of w13 splits into gate's and up's bits.
  for (const PartSpec &s : w13->quantType().expectedParts()) {
    const WeightPart *p = w13->part(s.name);
    if (!p)
      continue;
    const WeightPart *pg = original->lookupWeight("gate")->part(s.name);
    const WeightPart *pu = original->lookupWeight("up")->part(s.name);
    if (s.nDim < 0) {
      EXPECT_EQ(*p->data, *pg->data) << s.name;
      continue;
    }
    EXPECT_EQ(sliceN(*p, s.nDim, 2 * inter, 0, inter), *pg->data) << s.name;
    EXPECT_EQ(sliceN(*p, s.nDim, 2 * inter, inter, inter), *pu->data) << s.name;
  }

  // Computing: the same bits give the same result, to the last bit.
  ReferenceExecutor after(m, nullptr);
  auto r1 = after.run("f", in);
  ASSERT_TRUE(bool(r1)) << llvm::toString(r1.takeError());
  EXPECT_EQ((*r1)[0].toF32(), y0);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, MaterializeExperts,
                         ::testing::Values("awq", "gptq", "ct_wna16", "w8a8", "gguf"));

} // namespace
