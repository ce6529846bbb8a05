// The IR API: building modules, symbol lookup, cloning, replacing uses, erasing.
#include <gtest/gtest.h>

#include "llvm/Support/SourceMgr.h"

#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/op_registry.h"
#include "ir/printer.h"
#include "ir/verifier.h"

using namespace qlc;

namespace {

const OpDef *op(const char *name) {
  registerCoreOps();
  const OpDef *d = OpRegistry::get().lookup(name);
  EXPECT_NE(d, nullptr) << name;
  return d;
}

TensorType f32(std::vector<int64_t> dims) { return TensorType(ElemKind::F32, std::move(dims)); }

/// Builds: weight @w [8, 4]; func @f(%x [?, 4]) -> [?, 8] { %y = linear %x, @w; return %y }
std::unique_ptr<Module> buildLinearModule() {
  auto m = std::make_unique<Module>();
  auto w = std::make_unique<Weight>("w", f32({8, 4}), Location{"t", 1, 1});
  w->parts().push_back({"data", f32({8, 4}), {"model.w"}, nullptr, {}});
  m->addWeight(std::move(w));
  auto f = std::make_unique<Function>("f", Location{"t", 2, 1});
  Value *x = f->addArgument(f32({TensorType::kDynamic, 4}), "x");
  f->setResultTypes({f32({TensorType::kDynamic, 8})});
  auto lin = std::make_unique<Operation>(op("linear"), Location{"t", 3, 3});
  lin->setOperands({x});
  lin->setSymbols({"w"});
  Value *y = lin->addResult(f32({TensorType::kDynamic, 8}), "y");
  f->append(std::move(lin));
  auto ret = std::make_unique<Operation>(op("return"), Location{"t", 4, 3});
  ret->setOperands({y});
  f->append(std::move(ret));
  m->addFunction(std::move(f));
  return m;
}

bool verifies(const Module &m, std::string *messages = nullptr) {
  DiagnosticEngine diag;
  std::string all;
  diag.setHandler([&](const Diagnostic &d) { all += d.loc.str() + ": " + d.message + "\n"; });
  bool ok = llvm::succeeded(verifyModule(m, diag));
  if (messages)
    *messages = all;
  return ok;
}

TEST(IrApi, BuildAndVerify) {
  auto m = buildLinearModule();
  std::string msg;
  EXPECT_TRUE(verifies(*m, &msg)) << msg;
  EXPECT_EQ(printModuleToString(*m), "weight @w : tensor<8x4xf32> {\n"
                                     "  data = tensor<8x4xf32> from \"model.w\"\n"
                                     "}\n\n"
                                     "func @f(%x: tensor<?x4xf32>) -> tensor<?x8xf32> {\n"
                                     "  %y = linear %x, @w : tensor<?x8xf32>\n"
                                     "  return %y\n"
                                     "}\n");
}

TEST(IrApi, SymbolLookup) {
  auto m = buildLinearModule();
  EXPECT_NE(m->lookupWeight("w"), nullptr);
  EXPECT_EQ(m->lookupWeight("missing"), nullptr);
  EXPECT_NE(m->lookupFunction("f"), nullptr);
  EXPECT_EQ(m->lookupFunction("w"), nullptr); // weights and functions are separate tables
  // A second symbol of the same name is refused.
  EXPECT_EQ(m->addWeight(std::make_unique<Weight>("w", f32({1}), Location{})), nullptr);
  EXPECT_EQ(m->addFunction(std::make_unique<Function>("f", Location{})), nullptr);
  m->eraseWeight("w");
  EXPECT_EQ(m->lookupWeight("w"), nullptr);
  EXPECT_TRUE(m->weights().empty());
  // The linear op now names a weight that does not exist: the verifier says so.
  std::string msg;
  EXPECT_FALSE(verifies(*m, &msg));
  EXPECT_NE(msg.find("unknown weight @w"), std::string::npos) << msg;
  EXPECT_NE(msg.find("t:3:3"), std::string::npos) << msg; // located at the op
}

TEST(IrApi, CloneIsDeepAndEqual) {
  auto m = buildLinearModule();
  auto c = m->clone();
  EXPECT_EQ(printModuleToString(*m), printModuleToString(*c));
  // Mutating the clone leaves the original alone.
  Function *cf = c->lookupFunction("f");
  Operation *lin = cf->ops().front().get();
  lin->setAttr("note", Attribute("x"));
  EXPECT_NE(printModuleToString(*m), printModuleToString(*c));
  // The clone's operands point at the clone's own values.
  EXPECT_EQ(lin->operand(0), cf->argument(0));
  EXPECT_NE(lin->operand(0), m->lookupFunction("f")->argument(0));
}

TEST(IrApi, ReplaceAllUsesAndErase) {
  auto m = buildLinearModule();
  Function *f = m->lookupFunction("f");
  Operation *lin = f->ops().front().get();
  // Insert a silu after the linear and route the return through it.
  auto silu = std::make_unique<Operation>(op("silu"), lin->loc());
  silu->setOperands({lin->result(0)});
  Value *s = silu->addResult(lin->result(0)->type(), "s");
  Operation *ret = f->terminator();
  ASSERT_NE(ret, nullptr);
  f->insertBefore(ret, std::move(silu));
  EXPECT_EQ(f->numUses(lin->result(0)), 2u);
  f->replaceAllUsesWith(lin->result(0), s);
  // The silu now uses itself: undo for its own operand, which is what a pass would do.
  Operation *siluOp = s->definingOp();
  siluOp->setOperand(0, lin->result(0));
  EXPECT_EQ(f->numUses(lin->result(0)), 1u);
  EXPECT_EQ(ret->operand(0), s);
  EXPECT_TRUE(verifies(*m));
  // Erasing the silu while the return uses it is a programmer error; after rerouting it is fine.
  ret->setOperand(0, lin->result(0));
  f->erase(siluOp);
  EXPECT_EQ(f->ops().size(), 2u);
  EXPECT_TRUE(verifies(*m));
}

TEST(IrApi, VerifierCatchesUseBeforeDef) {
  auto m = buildLinearModule();
  Function *f = m->lookupFunction("f");
  Operation *lin = f->ops().front().get();
  // A silu placed before the linear but using its result violates dominance.
  auto silu = std::make_unique<Operation>(op("silu"), Location{"t", 9, 9});
  silu->setOperands({lin->result(0)});
  silu->addResult(lin->result(0)->type());
  f->insertBefore(lin, std::move(silu));
  std::string msg;
  EXPECT_FALSE(verifies(*m, &msg));
  EXPECT_NE(msg.find("not defined before it"), std::string::npos) << msg;
}

TEST(IrApi, InferenceRejectsWrongDeclaredType) {
  auto m = buildLinearModule();
  Function *f = m->lookupFunction("f");
  Operation *lin = f->ops().front().get();
  lin->result(0)->setType(f32({TensorType::kDynamic, 9}));
  std::string msg;
  EXPECT_FALSE(verifies(*m, &msg));
  EXPECT_NE(msg.find("operands imply tensor<?x8xf32>"), std::string::npos) << msg;
}

TEST(IrApi, TensorTypeArithmeticIsChecked) {
  TensorType big(ElemKind::F32, {int64_t(1) << 40, int64_t(1) << 40});
  EXPECT_FALSE(big.numElements().has_value()); // 2^80 overflows
  EXPECT_FALSE(big.numBytes().has_value());
  TensorType dyn(ElemKind::F16, {TensorType::kDynamic, 4});
  EXPECT_FALSE(dyn.numElements().has_value());
  EXPECT_EQ(TensorType(ElemKind::BF16, {3, 5}).numBytes(), 30);
  EXPECT_EQ(TensorType(ElemKind::F32, {}).numElements(), 1); // scalar
  EXPECT_TRUE(typesCompatible(dyn, TensorType(ElemKind::F16, {7, 4})));
  EXPECT_FALSE(typesCompatible(dyn, TensorType(ElemKind::F32, {7, 4})));
}

TEST(IrApi, AttributesPrintAndCompare) {
  EXPECT_EQ(Attribute(int64_t(-3)).str(), "-3");
  EXPECT_EQ(Attribute(1e-5).str(), "1e-05");
  EXPECT_EQ(Attribute(2.0).str(), "2.0"); // stays a float when read back
  EXPECT_EQ(Attribute(true).str(), "true");
  EXPECT_EQ(Attribute("a\"b\n").str(), "\"a\\\"b\\n\"");
  EXPECT_EQ(Attribute::ident("silu").str(), "silu");
  EXPECT_EQ(Attribute(std::vector<int64_t>{1, -2}).str(), "[1, -2]");
  EXPECT_NE(Attribute(int64_t(1)), Attribute(1.0));
  EXPECT_EQ(Attribute::ident("x"), Attribute::ident("x"));
}

} // namespace
