// JIT kernels against the reference: for every covered layout x bits x group size x zero-point /
// format variant, odd shapes the layout allows and M in {1, 3, 16, 128, 513}, the kernel's
// y = x · Wᵀ is compared with the exact (f64) product of x and the scheme hook's dequantized W.
//
// Error bound (derivation in codegen/README.md): the kernels unpack W bit-identically to the
// hooks, so the only error is the f32 accumulation. An output accumulated through a chain of d
// sequential roundings (fmuladd / fadd, u = 2^-24) satisfies
//     |y_kernel - y_exact| <= gamma(d) * sum_k |x_k * w_k|,   gamma(d) = d*u / (1 - d*u)
// with d = KernelSpec::accumulationDepth(): K/VL + log2(VL) + (K mod 16) + 2 for the K-vectorised
// kernels (GGUF, CT), K + 1 for the N-vectorised ones (AWQ, GPTQ). The test asserts exactly that.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "codegen/jit.h"
#include "codegen/kernel_spec.h"
#include "codegen/qmatmul.h"
#include "codegen/repack.h"
#include "ir/weight_type.h"
#include "schemes/all_schemes.h"
#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gguf/blocks.h"
#include "schemes/gptq/codec.h"
#include "schemes/gguf/gguf_type.h"
#include "support/float16.h"
#include "tests/unit/codegen/test_weights.h"

namespace qlc {
namespace {

using codegen::KernelSpec;
using namespace testw;

/// Runs the kernel of `tw` for every M and checks it against the f64 product with the hook's W.
///
/// f32 activations: |y - x·w| <= gamma(accumulationDepth) * sum |x w| (module comment).
/// int8 activations, two assertions per output:
///  (1) kernel arithmetic, against the exact product with the kernel's quantized x̂ (quantizedX):
///      the integer dot products are exact; what rounds is the per-block scale product sw * dx,
///      the FMAs of the accumulation chain per lane (up to 4 a 32-block: scale terms per
///      16-element half and min terms), the 8-lane reduction and Q4_K's min term, so
///      |y - x̂·w| <= gamma(4K/32 + 16) * sum (|w_k| + 64 A_k) |x̂_k|,
///      where A_k = max |w| over k's 32-block bounds the Q4_K sub-block's d*sc*q and dmin*m
///      parts (w = dl*q - ml with >= 2 distinct codes among 32 gives |dl| <= 2A, |ml| <= 31A).
///      AWQ / GPTQ (lanes = channels, one group per block): |y - x̂·w| <= gamma(K/32 + 3) *
///      sum |w_k| |x̂_k| (the exact int32 block sum, the product s * dx, the FMA chain of K/32
///      blocks, and the hook's own rounding of w = (c - z) * s for f32 / bf16 scales).
///  (2) accuracy against the f32 reference: |x̂_k - x_k| <= dx_b (1/2 + 2^-18) (round to
///      nearest of x / dx_b, itself rounded to f32 below 128: half an ulp is <= 2^-18), so
///      |y - x·w| <= sum_k |w_k| dx_b / 2 (1 + 2^-17) + the bound of (1). The test
///      prints the observed error relative to sum |x w| and to max |y|.
void checkWeight(const TestWeight &tw, int vectorWidth = 0, const std::vector<int64_t> &ms = kMs,
                 codegen::Activations act = codegen::Activations::F32) {
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  ASSERT_TRUE(sr.spec.has_value()) << sr.reason;
  KernelSpec spec = *sr.spec;
  spec.vectorWidth = vectorWidth;
  spec.act = act;
  const bool int8 = act == codegen::Activations::Int8;
  const int64_t n = spec.n, k = spec.k;
  std::vector<float> w(size_t(n * k));
  std::string err = tw.type.def->dequantize(tw.type, tw.view(), w.data());
  ASSERT_EQ(err, "");
  std::vector<std::vector<uint8_t>> repacked;
  std::vector<const uint8_t *> ptrs = kernelParts(spec, tw, repacked);
  for (int64_t m : ms) {
    SCOPED_TRACE("M = " + std::to_string(m) + ", spec " + spec.key());
    // C = 64: Q4_K's separate min term (the comment above); 0 for the channel-lane kernels.
    const bool cols = spec.family() == codegen::Family::ColsN;
    KernelErrors e = checkKernelOutputs(spec, ptrs.data(), w, m, uint32_t(1000 + m), cols ? 0 : 64);
    if (int8) {
      KernelSpec used = spec;
      used.mclass = codegen::mClassFor(m);
      std::printf("int8 %-44s M=%-3lld arith |err|/bound %.3f; vs f32 reference: |err|/bound "
                  "%.3f, max |err|/sum|xw| %.2e, max |err|/max|y| %.2e\n",
                  used.key().c_str(), (long long)m, e.arith, e.ref, e.relMag, e.relMaxY);
    }
  }
}

/// The f32 kernel and, where the host has int8 dot products and the specialisation an int8
/// kernel, the int8-activation kernel.
void checkBoth(const TestWeight &tw, int vectorWidth = 0, const std::vector<int64_t> &ms = kMs) {
  {
    SCOPED_TRACE("f32 activations");
    checkWeight(tw, vectorWidth, ms, codegen::Activations::F32);
  }
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  if (codegen::hostHasInt8Dot() && sr.spec && sr.spec->int8Capable()) {
    SCOPED_TRACE("int8 activations");
    checkWeight(tw, vectorWidth, ms, codegen::Activations::Int8);
  }
}

TEST(CodegenGguf, Q8_0) {
  // 64 / 160 / 96: int8 kernels on the Channels16 packing (4-group tiles, the 2-group tail).
  for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 96}, {64, 512}, {5, 32}, {160, 96}, {96, 64}})
    checkBoth(ggufWeight("Q8_0", n, k, 11));
  checkBoth(ggufWeight("Q8_0", 37, 96, 12), 8);
}

TEST(CodegenGguf, Q4_0) {
  // 64 / 160 / 96: int8 kernels on the Channels16 packing (4-group tiles, the 2-group tail).
  for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 96}, {64, 512}, {5, 32}, {160, 96}, {96, 64}})
    checkBoth(ggufWeight("Q4_0", n, k, 21));
  checkBoth(ggufWeight("Q4_0", 37, 96, 22), 8);
}

TEST(CodegenGguf, Q4_K) {
  // 64 / 160: int8 kernels on the Channels16 packing (2-group tiles).
  for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 256}, {20, 512}, {64, 512}, {160, 256}})
    checkBoth(ggufWeight("Q4_K", n, k, 31));
  checkBoth(ggufWeight("Q4_K", 13, 512, 32), 8);
}

TEST(CodegenGguf, Q6_K) {
  // 64 / 160: int8 kernels on the Channels16 packing (1-group tiles).
  for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 256}, {20, 512}, {64, 512}, {160, 256}})
    checkBoth(ggufWeight("Q6_K", n, k, 41));
  checkBoth(ggufWeight("Q6_K", 13, 512, 42), 8);
}

// GGUF Q4_1, Q5_0, Q5_1 int8-activation kernels (their f32 kernels: gguf_kquants_test.cpp).
// Same shapes as Q4_0: N = 37 (wide tiles + 4-row + 1-row tails), an odd number of blocks
// (K = 96), K = 32.
TEST(CodegenGguf, Q4_1Q5_0Q5_1Int8) {
  for (const char *type : {"Q4_1", "Q5_0", "Q5_1"}) {
    SCOPED_TRACE(type);
    if (!codegen::hostHasInt8Dot())
      continue;
    for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 96}, {64, 512}, {5, 32}})
      checkWeight(ggufWeight(type, n, k, 24), 0, kMs, codegen::Activations::Int8);
    checkWeight(ggufWeight(type, 40, 256, 25), 8, {1, 128}, codegen::Activations::Int8);
  }
}

// AWQ / GPTQ shapes: N = 136 = 2 gemv tiles of 64 + an 8-channel tail; N = 56 = 32 + 16 + 8
// (every tile width of both M-classes, int8 and f32); K = 96 = 3 blocks of 32 (odd).
TEST(CodegenAwq, Groups) {
  for (int64_t g : {32, 64, 128, -1}) {
    SCOPED_TRACE(testing::Message() << "g" << g);
    checkBoth(awqWeight(136, 256, g, ElemKind::F16, 51));
    checkBoth(awqWeight(144, 256, g, ElemKind::F16, 58)); // N % 16 == 0: Packing::Channels16
  }
  checkBoth(awqWeight(96, 96, 32, ElemKind::BF16, 59));
  checkBoth(awqWeight(56, 384, 64, ElemKind::F16, 52));
  checkBoth(awqWeight(40, 96, 32, ElemKind::F16, 56));
  checkBoth(awqWeight(56, 96, -1, ElemKind::F16, 57));
}

TEST(CodegenAwq, ScaleTypesAndWidth8) {
  checkBoth(awqWeight(40, 256, 64, ElemKind::BF16, 53), 0, {1, 16});
  checkBoth(awqWeight(40, 256, 64, ElemKind::F32, 54), 0, {3, 128});
  checkBoth(awqWeight(136, 256, 128, ElemKind::F16, 55), 8);
}

TEST(CodegenGptq, SymAsymV1V2) {
  for (bool sym : {true, false})
    for (bool v1 : {true, false})
      for (int64_t g : {32, 64, 128, -1}) {
        SCOPED_TRACE(std::string(sym ? "sym" : "asym") + (v1 ? " v1" : " v2") + " g" +
                     std::to_string(g));
        checkBoth(gptqWeight(136, 256, g, sym, v1, false, ElemKind::F16, 61));
        checkBoth(gptqWeight(144, 256, g, sym, v1, false, ElemKind::F16, 63)); // Channels16
        checkBoth(gptqWeight(56, 96, g, sym, v1, false, ElemKind::F16, 62), 0, {1, 16, 513});
      }
}

TEST(CodegenGptq, ActOrderAndRaggedGroups) {
  for (bool sym : {true, false}) {
    SCOPED_TRACE(sym ? "sym" : "asym");
    checkBoth(gptqWeight(40, 256, 32, sym, false, true, ElemKind::F16, 71));  // g_idx: f32 only
    checkBoth(gptqWeight(40, 200, 64, sym, true, false, ElemKind::F16, 72));  // ceil(K/G), K % 32
    checkBoth(gptqWeight(56, 224, 64, sym, true, false, ElemKind::F16, 76));  // ceil(K/G), int8
    checkBoth(gptqWeight(48, 224, 64, sym, true, false, ElemKind::F16, 78));  // the same, packed
    checkBoth(gptqWeight(40, 120, 20, sym, false, false, ElemKind::F16, 73)); // G % 8 != 0
  }
  checkBoth(gptqWeight(40, 256, 32, false, true, true, ElemKind::BF16, 74), 0, {1, 128});
  checkBoth(gptqWeight(136, 256, 128, false, true, false, ElemKind::F32, 75), 8);
  checkBoth(gptqWeight(56, 256, 64, true, false, false, ElemKind::BF16, 77), 0, {3, 128});
}

TEST(CodegenCt, GroupsAndChannel) {
  for (bool sym : {true, false}) {
    SCOPED_TRACE(sym ? "sym" : "asym");
    checkWeight(ctWeight(37, 256, 32, sym, false, false, 81));
    checkWeight(ctWeight(37, 256, 128, sym, false, true, 82));
    checkWeight(ctWeight(20, 100, 0, sym, false, false, 83)); // channel, K % 8 != 0
  }
}

TEST(CodegenCt, ActOrderRaggedAndWidth8) {
  for (bool sym : {true, false}) {
    checkWeight(ctWeight(37, 256, 64, sym, true, false, 91)); // weight_g_idx
    checkWeight(ctWeight(20, 100, 20, sym, false, false, 92)); // groups not aligned to units
  }
  checkWeight(ctWeight(37, 256, 32, false, false, false, 93), 8);
  checkWeight(ctWeight(20, 100, 0, true, false, false, 94), 8);
}

TEST(CodegenCache, SameSpecCompilesOnce) {
  codegen::KernelCache cache;
  TestWeight tw = ggufWeight("Q4_0", 8, 64, 5);
  KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
  auto a = cache.get(s);
  ASSERT_TRUE(bool(a));
  auto b = cache.get(s);
  ASSERT_TRUE(bool(b));
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(cache.compilations(), 1u);
  KernelSpec other = s;
  other.n = 16;
  ASSERT_TRUE(bool(cache.get(other)));
  EXPECT_EQ(cache.compilations(), 2u);
  KernelSpec gemm = s;
  gemm.mclass = codegen::MClass::Gemm;
  ASSERT_TRUE(bool(cache.get(gemm)));
  ASSERT_TRUE(bool(cache.get(s)));
  EXPECT_EQ(cache.compilations(), 3u);
  EXPECT_GT((*a)->compileMs, 0.0);
}

TEST(CodegenSpec, UnsupportedLayoutsSayWhy) {
  // Every quantized layout the importers produce has a kernel; a hand-written f16 GGUF weight
  // (the importer makes those dense) says why it has none.
  WeightType f16 = makeType("gguf", {{"type", Attribute::ident("F16")},
                                     {"shape", Attribute(std::vector<int64_t>{8, 256})}});
  auto r = codegen::specForWeightType(f16, {});
  EXPECT_FALSE(r.spec.has_value());
  EXPECT_EQ(r.reason, "gguf F16 is not block-quantized (the GGUF importer makes it a dense tensor)");
}

TEST(CodegenSpec, Int8OnlyWhereThereIsAKernel) {
  // GPTQ 3-bit has f32 kernels only: asking for int8 activations is an error naming the kernel.
  TestWeight a = gptqWeightBits(3, 64, 256, 32, false, false, false, ElemKind::F16, 1);
  KernelSpec s = *codegen::specForWeightType(a.type, a.elems()).spec;
  EXPECT_EQ(s.act, codegen::Activations::F32);
  s.act = codegen::Activations::Int8;
  codegen::KernelCache cache;
  auto k = cache.get(s);
  ASSERT_FALSE(bool(k));
  EXPECT_EQ(llvm::toString(k.takeError()),
            "qlc codegen: no int8-activation kernel for " + s.key() +
                " (the layout has f32 kernels only)");
  // GGUF: int8 by default exactly where the host has the dot products; the override wins.
  TestWeight g = ggufWeight("Q4_0", 8, 64, 2);
  auto act = [&] { return codegen::specForWeightType(g.type, g.elems()).spec->act; };
  EXPECT_EQ(act(), codegen::hostHasInt8Dot() ? codegen::Activations::Int8
                                             : codegen::Activations::F32);
  codegen::setActivationOverride(codegen::Activations::F32);
  EXPECT_EQ(act(), codegen::Activations::F32);
  codegen::setActivationOverride(std::nullopt);
  // AWQ / GPTQ: int8 on VNNI hosts when every 32-block lies in one group; act-order keeps f32.
  auto actOf = [](const TestWeight &t) { return codegen::specForWeightType(t.type, t.elems()).spec->act; };
  const auto hostInt8 = codegen::hostHasInt8Dot() ? codegen::Activations::Int8 : codegen::Activations::F32;
  EXPECT_EQ(actOf(awqWeight(40, 256, 64, ElemKind::F16, 1)), hostInt8);
  EXPECT_EQ(actOf(gptqWeight(40, 256, 32, false, true, false, ElemKind::F16, 1)), hostInt8);
  EXPECT_EQ(actOf(gptqWeight(40, 256, 32, false, true, true, ElemKind::F16, 1)),
            codegen::Activations::F32);
  EXPECT_EQ(actOf(gptqWeight(40, 120, 20, true, false, false, ElemKind::F16, 1)),
            codegen::Activations::F32);
}

TEST(CodegenSpec, KeysDistinguishSpecialisations) {
  TestWeight a = gptqWeight(40, 256, 32, true, true, false, ElemKind::F16, 1);
  TestWeight b = gptqWeight(40, 256, 32, false, true, false, ElemKind::F16, 1);
  TestWeight c = gptqWeight(40, 256, 32, true, false, false, ElemKind::F16, 1);
  std::string ka = codegen::specForWeightType(a.type, a.elems()).spec->key();
  std::string kb = codegen::specForWeightType(b.type, b.elems()).spec->key();
  std::string kc = codegen::specForWeightType(c.type, c.elems()).spec->key();
  EXPECT_NE(ka, kb);
  EXPECT_NE(ka, kc);
  EXPECT_NE(kb, kc);
}

} // namespace
} // namespace qlc

namespace qlc {
namespace {

/// Prints the JIT compile time (IR generation + O3 + machine code) of representative kernels at
/// a realistic shape; a loose upper bound guards against pathological blow-ups only.
TEST(CodegenCache, CompileTimeReport) {
  codegen::KernelCache cache;
  std::vector<std::pair<std::string, TestWeight>> ws;
  ws.push_back({"Q8_0", ggufWeight("Q8_0", 64, 4096, 1)});
  ws.push_back({"Q4_0", ggufWeight("Q4_0", 64, 4096, 1)});
  ws.push_back({"Q4_K", ggufWeight("Q4_K", 64, 4096, 1)});
  ws.push_back({"Q6_K", ggufWeight("Q6_K", 64, 4096, 1)});
  ws.push_back({"awq g128", awqWeight(64, 4096, 128, ElemKind::F16, 1)});
  ws.push_back({"gptq asym v1 g128", gptqWeight(64, 4096, 128, false, true, false, ElemKind::F16, 1)});
  ws.push_back({"gptq sym g_idx", gptqWeight(64, 4096, 128, true, false, true, ElemKind::F16, 1)});
  ws.push_back({"ct asym g128", ctWeight(64, 4096, 128, false, false, false, 1)});
  for (auto &[name, tw] : ws)
    for (codegen::MClass c : {codegen::MClass::Gemv, codegen::MClass::Gemm}) {
      KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
      s.mclass = c;
      auto k = cache.get(s);
      ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
      std::printf("compile %-20s %s: %7.1f ms (CPU %7.1f ms) %s\n", name.c_str(),
                  c == codegen::MClass::Gemv ? "gemv" : "gemm", (*k)->compileMs,
                  (*k)->compileCpuMs, s.key().c_str());
      EXPECT_LT((*k)->compileMs, 5000.0);
    }
  std::printf("compile total: %u kernels, %.1f ms\n", cache.compilations(), cache.totalCompileMs());
}

} // namespace
} // namespace qlc
