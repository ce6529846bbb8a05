// cpu.moe on the JIT against the reference executor, for every layout with a kernel (GGUF Q8_0,
// Q4_0, Q4_K with a Q6_K w2, Q6_K, Q2_K with a Q3_K w2, Q5_K, Q4_1 with a Q5_0 w2, Q5_1, AWQ, GPTQ with act-order, compressed-tensors) and tokens in
// {1, 3, 16, 128, 513} (gemv for experts with <= 8 routed rows, gemm above). The module is written
// with the core `moe` op and lowered with `lower-cpu` (fuse-dequant makes it a cpu.moe); the
// reference runs the same lowered module. Also: the unfused (gate, up, down) form with gelu and no
// renormalization, and multi-threaded results bit-identical to single-threaded ones.
//
// The bound is moe_check.h's.
#include <gtest/gtest.h>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "codegen/kernel_spec.h"
#include "codegen/moe.h"
#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/moe_routing.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "tests/unit/codegen/moe_check.h"
#include "tests/unit/codegen/test_modules.h"

namespace qlc {
namespace {

using namespace testw;

struct MoeCase {
  std::string name;
  std::function<TestWeight(int64_t n, int64_t k, uint32_t seed)> make13, make2;
  int64_t h, inter, experts = 4, topK = 2;
};

void runCase(const MoeCase &c) {
  SCOPED_TRACE(c.name);
  std::vector<TestWeight> w13, w2;
  for (int64_t ex = 0; ex < c.experts; ++ex) {
    w13.push_back(c.make13(2 * c.inter, c.h, uint32_t(100 + ex)));
    w2.push_back(c.make2(c.h, c.inter, uint32_t(200 + ex)));
  }
  std::string hs = std::to_string(c.h), es = std::to_string(c.experts);
  std::string text = stackedWeight("w13", w13) + stackedWeight("w2", w2) +
                     "func @moe(%x: tensor<?x" + hs + "xf32>, %l: tensor<?x" + es +
                     "xf32>) -> tensor<?x" + hs + "xf32> {\n"
                     "  %y = moe %x, %l, @w13, @w2 {top_k = " + std::to_string(c.topK) +
                     ", renormalize = true}\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parseAndLower(text, sm);
  ASSERT_TRUE(m);
  bool lowered = false;
  for (const auto &op : m->lookupFunction("moe")->ops())
    lowered |= op->name() == "cpu.moe";
  ASSERT_TRUE(lowered) << "lower-cpu did not produce a cpu.moe";
  // Layouts with an int8-activation kernel run both ways (f32, then int8 where the host has it).
  const bool int8 = codegen::specForWeight(*m->lookupWeight("w13")).spec->int8Capable() &&
                    codegen::hostHasInt8Dot();
  for (codegen::Activations a : {codegen::Activations::F32, codegen::Activations::Int8}) {
    if (a == codegen::Activations::Int8 && !int8)
      continue;
    codegen::setActivationOverride(a);
    SCOPED_TRACE(a == codegen::Activations::Int8 ? "int8 activations" : "f32 activations");
    for (int64_t t : {1, 3, 16, 128, 513})
      checkMoe(*m, "moe", t, "w13", "", "w2", c.topK, true, false);
  }
  codegen::setActivationOverride(std::nullopt);
}

auto gguf(const std::string &type) {
  return [type](int64_t n, int64_t k, uint32_t seed) { return ggufWeight(type, n, k, seed); };
}

TEST(CodegenMoe, GgufQ8_0) { runCase({"Q8_0", gguf("Q8_0"), gguf("Q8_0"), 96, 64}); }
TEST(CodegenMoe, GgufQ4_0) { runCase({"Q4_0", gguf("Q4_0"), gguf("Q4_0"), 128, 96, 5, 3}); }
TEST(CodegenMoe, GgufQ4_KWithQ6_KDown) { runCase({"Q4_K/Q6_K", gguf("Q4_K"), gguf("Q6_K"), 256, 256}); }
TEST(CodegenMoe, GgufQ6_K) { runCase({"Q6_K", gguf("Q6_K"), gguf("Q6_K"), 256, 256}); }
TEST(CodegenMoe, GgufQ2_KWithQ3_KDown) { runCase({"Q2_K/Q3_K", gguf("Q2_K"), gguf("Q3_K"), 256, 256}); }
TEST(CodegenMoe, GgufQ5_K) { runCase({"Q5_K", gguf("Q5_K"), gguf("Q5_K"), 256, 256}); }
TEST(CodegenMoe, GgufQ4_1WithQ5_0Down) { runCase({"Q4_1/Q5_0", gguf("Q4_1"), gguf("Q5_0"), 96, 64}); }
TEST(CodegenMoe, GgufQ5_1) { runCase({"Q5_1", gguf("Q5_1"), gguf("Q5_1"), 128, 96, 5, 3}); }

// W8A8_DYNAMIC stacks (per-token int8 activations on VNNI hosts): H = 100, I = 72 (K tails of
// the 64-byte steps; N = 144 / 100: wide tiles and 4-row tails).
TEST(CodegenMoe, W8a8) {
  auto mk = [](int64_t n, int64_t k, uint32_t seed) { return w8a8Weight(n, k, ElemKind::F16, seed); };
  runCase({"w8a8", mk, mk, 100, 72});
}

TEST(CodegenMoe, Awq) {
  auto mk = [](int64_t n, int64_t k, uint32_t seed) {
    return awqWeight(n, k, 32, ElemKind::F16, seed);
  };
  runCase({"awq g32", mk, mk, 128, 96});
}

TEST(CodegenMoe, GptqActOrder) {
  auto mk = [](int64_t n, int64_t k, uint32_t seed) {
    return gptqWeight(n, k, 32, false, true, true, ElemKind::F16, seed);
  };
  runCase({"gptq asym v1 desc_act g32", mk, mk, 128, 96});
}

TEST(CodegenMoe, CompressedTensors) {
  auto mk13 = [](int64_t n, int64_t k, uint32_t seed) {
    return ctWeight(n, k, 0, true, false, false, seed); // channel, K = 100 (not a multiple of 8)
  };
  auto mk2 = [](int64_t n, int64_t k, uint32_t seed) {
    return ctWeight(n, k, 16, false, false, true, seed); // asym group 16, bf16 scales
  };
  runCase({"ct", mk13, mk2, 100, 48});
}

TEST(CodegenMoe, EightBit) {
  auto awq8 = [](int64_t n, int64_t k, uint32_t seed) {
    return awqWeightBits(8, n, k, 32, ElemKind::F16, seed);
  };
  runCase({"awq 8-bit g32", awq8, awq8, 128, 96});
  auto ct8 = [](int64_t n, int64_t k, uint32_t seed) {
    return ctWeightBits(8, n, k, 32, false, false, false, seed);
  };
  runCase({"ct 8-bit asym g32", ct8, ct8, 128, 96});
}

/// The unfused form (gate, up, down: as checkpoints store experts) with gelu, no renormalization,
/// top_k = 3 of 6 experts, written directly as cpu.moe.
TEST(CodegenMoe, UnfusedGelu) {
  const int64_t h = 64, inter = 96, e = 6;
  std::vector<TestWeight> gate, up, down;
  for (int64_t ex = 0; ex < e; ++ex) {
    gate.push_back(ggufWeight("Q4_0", inter, h, uint32_t(300 + ex)));
    up.push_back(ggufWeight("Q4_0", inter, h, uint32_t(400 + ex)));
    down.push_back(ggufWeight("Q4_0", h, inter, uint32_t(500 + ex)));
  }
  std::string text = stackedWeight("gate", gate) + stackedWeight("up", up) +
                     stackedWeight("down", down) +
                     "func @moe(%x: tensor<?x64xf32>, %l: tensor<?x6xf32>) -> tensor<?x64xf32> {\n"
                     "  %y = cpu.moe %x, %l, @gate, @up, @down {layout = gguf, type = Q4_0, "
                     "top_k = 3, activation = gelu} : tensor<?x64xf32>\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parseAndLower(text, sm);
  ASSERT_TRUE(m);
  for (int64_t t : {1, 16, 513})
    checkMoe(*m, "moe", t, "gate", "up", "down", 3, false, true);
}

TEST(CodegenMoe, RoutingMatchesReferenceTies) {
  // Equal logits: ties go to the lower expert index; renormalized weights sum to 1.
  std::vector<float> l = {0.5f, 1.f, 1.f, 1.f, -2.f, 1.f};
  MoeRoutes r = routeTopK(l.data(), 1, 6, 3, /*renormalize=*/true);
  const std::vector<int64_t> &ex = r.expert;
  const std::vector<double> &w = r.weight;
  EXPECT_EQ(ex, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_NEAR(w[0] + w[1] + w[2], 1.0, 1e-15);
  EXPECT_EQ(w[0], w[1]);
}

} // namespace
} // namespace qlc
