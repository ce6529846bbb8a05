// The reference executor on small modules whose results are computed by hand in the test.
#include <gtest/gtest.h>

#include <cmath>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "runtime/reference_executor.h"
#include "schemes/all_schemes.h"

using namespace qlc;

namespace {

std::string hexF32(const std::vector<float> &v) {
  std::string s;
  static const char d[] = "0123456789ABCDEF";
  for (float f : v) {
    uint8_t b[4];
    std::memcpy(b, &f, 4);
    for (uint8_t x : b) {
      s += d[x >> 4];
      s += d[x & 15];
    }
  }
  return s;
}

std::unique_ptr<Module> parse(const std::string &text, llvm::SourceMgr &sm) {
  schemes::registerAllSchemes();
  std::string errs;
  llvm::raw_string_ostream os(errs);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  auto m = parseModuleString(text, "t.qir", sm, diag);
  if (m && llvm::failed(verifyModule(*m, diag)))
    m.reset();
  EXPECT_TRUE(m) << errs;
  return m;
}

std::vector<float> run1(const Module &m, const char *fn, std::vector<Tensor> in) {
  ReferenceExecutor ex(m, nullptr);
  auto out = ex.run(fn, in);
  if (!out) {
    ADD_FAILURE() << llvm::toString(out.takeError());
    return {};
  }
  return (*out)[0].toF32();
}

TEST(ReferenceExecutor, LinearWithBias) {
  // W = [[1, 2], [3, 4], [5, 6]] ([N=3, K=2]), bias = [0.5, 0, -1]
  llvm::SourceMgr sm;
  auto m = parse("weight @w : tensor<3x2xf32> { data = tensor<3x2xf32> = hex\"" +
                     hexF32({1, 2, 3, 4, 5, 6}) + "\" }\n"
                     "weight @b : tensor<3xf32> { data = tensor<3xf32> = hex\"" +
                     hexF32({0.5f, 0, -1}) + "\" }\n"
                     "func @f(%x: tensor<?x2xf32>) -> tensor<?x3xf32> {\n"
                     "  %y = linear %x, @w, @b\n  return %y\n}\n",
                 sm);
  ASSERT_TRUE(m);
  auto y = run1(*m, "f", {Tensor::fromF32({2, 2}, {1, 1, 2, -1})});
  // x0 = [1, 1]: [3.5, 7, 10]; x1 = [2, -1]: [0.5, 2, 3]
  EXPECT_EQ(y, (std::vector<float>{3.5f, 7, 10, 0.5f, 2, 3}));
}

TEST(ReferenceExecutor, ElementwiseSoftmaxTopkNorm) {
  llvm::SourceMgr sm;
  auto m = parse("weight @g : tensor<4xf32> { data = tensor<4xf32> = hex\"" +
                     hexF32({1, 2, 1, 1}) + "\" }\n"
                     "func @f(%x: tensor<1x4xf32>, %b: tensor<4xf32>) -> (tensor<1x4xf32>, "
                     "tensor<1x2xf32>, tensor<1x2xi64>, tensor<1x4xf32>, tensor<1x4xf32>) {\n"
                     "  %s = add %x, %b\n"
                     "  %p = softmax %s\n"
                     "  %v, %i = topk %s {k = 2}\n"
                     "  %n = rms_norm %x, @g {eps = 0.0000001}\n"
                     "  %a = silu %x\n"
                     "  return %p, %v, %i, %n, %a\n}\n",
                 sm);
  ASSERT_TRUE(m);
  ReferenceExecutor ex(*m, nullptr);
  auto out = ex.run("f", {Tensor::fromF32({1, 4}, {1, -1, 3, 0}), Tensor::fromF32({4}, {0, 0, 0, 1})});
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  // s = [1, -1, 3, 1]
  std::vector<float> p = (*out)[0].toF32();
  double z = std::exp(1.0) * 2 + std::exp(-1.0) + std::exp(3.0);
  EXPECT_NEAR(p[2], std::exp(3.0) / z, 1e-7);
  EXPECT_NEAR(p[0] + p[1] + p[2] + p[3], 1.0, 1e-6);
  EXPECT_EQ((*out)[1].toF32(), (std::vector<float>{3, 1}));
  EXPECT_EQ((*out)[2].elem(), ElemKind::I64);
  EXPECT_EQ((*out)[2].toF32(), (std::vector<float>{2, 0})); // tie 1 vs 1: lower index first
  // rms of [1, -1, 3, 0] = sqrt(11/4)
  std::vector<float> n = (*out)[3].toF32();
  double r = std::sqrt(11.0 / 4);
  EXPECT_NEAR(n[0], 1 / r, 1e-6);
  EXPECT_NEAR(n[1], -2 / r, 1e-6); // weight 2 on the second channel
  EXPECT_NEAR(n[2], 3 / r, 1e-6);
  std::vector<float> a = (*out)[4].toF32();
  EXPECT_NEAR(a[0], 1 / (1 + std::exp(-1.0)), 1e-7);
}

TEST(ReferenceExecutor, F16ResultsAreRounded) {
  llvm::SourceMgr sm;
  auto m = parse("func @f(%x: tensor<1xf32>) -> tensor<1xf16> {\n"
                 "  %y = convert %x : tensor<1xf16>\n  return %y\n}\n",
                 sm);
  ASSERT_TRUE(m);
  auto y = run1(*m, "f", {Tensor::fromF32({1}, {1.0f + 1.0f / 4096})});
  EXPECT_EQ(y, std::vector<float>{1.0f}); // below half an f16 ulp at 1.0 (2^-11)
}

// The same experts as unfused (gate, up, down) and fused (w13 = [gate ; up], w2) give the same
// result, and both equal a hand computation for one token routed to one expert.
TEST(ReferenceExecutor, MoeFusedEqualsUnfusedAndHandValue) {
  // E = 2, H = 2, I = 1. gate_e = [[1, 0]] / [[0, 1]], up_e = [[1, 1]], down_e = [[1], [2]].
  std::vector<float> gate = {1, 0, 0, 1}, up = {1, 1, 1, 1}, down = {1, 2, 1, 2};
  std::vector<float> w13 = {1, 0, 1, 1, 0, 1, 1, 1}; // per expert: gate row then up row
  llvm::SourceMgr sm;
  std::string weights =
      "weight @gate : tensor<2x1x2xf32> { data = tensor<2x1x2xf32> = hex\"" + hexF32(gate) + "\" }\n"
      "weight @up : tensor<2x1x2xf32> { data = tensor<2x1x2xf32> = hex\"" + hexF32(up) + "\" }\n"
      "weight @down : tensor<2x2x1xf32> { data = tensor<2x2x1xf32> = hex\"" + hexF32(down) + "\" }\n"
      "weight @w13 : tensor<2x2x2xf32> { data = tensor<2x2x2xf32> = hex\"" + hexF32(w13) + "\" }\n";
  auto m = parse(weights + "func @unfused(%x: tensor<?x2xf32>, %l: tensor<?x2xf32>) -> tensor<?x2xf32> {\n"
                           "  %y = moe %x, %l, @gate, @up, @down {top_k = 1, renormalize = true}\n"
                           "  return %y\n}\n"
                           "func @fused(%x: tensor<?x2xf32>, %l: tensor<?x2xf32>) -> tensor<?x2xf32> {\n"
                           "  %y = moe %x, %l, @w13, @down {top_k = 1, renormalize = true}\n"
                           "  return %y\n}\n",
                 sm);
  ASSERT_TRUE(m);
  Tensor x = Tensor::fromF32({2, 2}, {2, 3, 1, -1});
  Tensor l = Tensor::fromF32({2, 2}, {5, 0, -3, 4}); // token 0 -> expert 0, token 1 -> expert 1
  auto a = run1(*m, "unfused", {x, l});
  auto b = run1(*m, "fused", {x, l});
  EXPECT_EQ(a, b);
  // token 0, expert 0: g = 2, u = 5, h = silu(2) * 5, out = [h, 2h] (renormalized weight 1)
  double h0 = 2 / (1 + std::exp(-2.0)) * 5;
  // token 1, expert 1: g = -1, u = 0 -> 0
  ASSERT_EQ(a.size(), 4u);
  EXPECT_NEAR(a[0], h0, 1e-5);
  EXPECT_NEAR(a[1], 2 * h0, 1e-5);
  EXPECT_EQ(a[2], 0.0f);
  EXPECT_EQ(a[3], 0.0f);
}

TEST(ReferenceExecutor, EmbeddingAndErrors) {
  llvm::SourceMgr sm;
  auto m = parse("weight @t : tensor<3x2xf32> { data = tensor<3x2xf32> = hex\"" +
                     hexF32({0, 1, 10, 11, 20, 21}) + "\" }\n"
                     "func @f(%ids: tensor<?xi32>) -> tensor<?x2xf32> {\n"
                     "  %y = embedding %ids, @t\n  return %y\n}\n",
                 sm);
  ASSERT_TRUE(m);
  Tensor ids = Tensor::fromF32As(ElemKind::I32, {3}, {2, 0, 1});
  EXPECT_EQ(run1(*m, "f", {ids}), (std::vector<float>{20, 21, 0, 1, 10, 11}));
  ReferenceExecutor ex(*m, nullptr);
  auto bad = ex.run("f", {Tensor::fromF32As(ElemKind::I32, {1}, {3})});
  ASSERT_FALSE(bool(bad));
  EXPECT_EQ(llvm::toString(bad.takeError()),
            "t.qir:3:8: 'embedding' id 3 at position 0 is outside the vocabulary [0, 3)");
  auto wrongType = ex.run("f", {Tensor::fromF32({1}, {0})});
  ASSERT_FALSE(bool(wrongType));
  EXPECT_EQ(llvm::toString(wrongType.takeError()),
            "input #0 of @f is tensor<1xf32> but the function takes tensor<?xi32>");
  auto noFunc = ex.run("g", {});
  ASSERT_FALSE(bool(noFunc));
  EXPECT_EQ(llvm::toString(noFunc.takeError()), "no function @g in the module");
}

TEST(ReferenceExecutor, MissingCheckpointIsAnError) {
  llvm::SourceMgr sm;
  auto m = parse("weight @w : tensor<2x2xf32> { data = tensor<2x2xf32> from \"w\" }\n"
                 "func @f(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {\n"
                 "  %y = linear %x, @w\n  return %y\n}\n",
                 sm);
  ASSERT_TRUE(m);
  ReferenceExecutor ex(*m, nullptr);
  auto r = ex.run("f", {Tensor::fromF32({1, 2}, {1, 1})});
  ASSERT_FALSE(bool(r));
  EXPECT_NE(llvm::toString(r.takeError()).find("the module names no checkpoint"), std::string::npos);
}

} // namespace
