// JIT kernels for GGUF Q2_K, Q3_K, Q5_K, Q4_1, Q5_0, Q5_1 (f32 and int8 activations), against
// the exact (f64) product of x and the scheme hook's dequantized W, for M in {1, 3, 16, 128, 513}
// (gemv and gemm), N not a multiple of the tiles (37, 100), 64 and 96 (int8: the Channels16
// packing, 96 with its 32-channel tail tile), and K = 256 / 512 / 768 (K-quants) or odd / even
// block counts (the 32-blocks). Weights: the reference quantizer's blocks, and blocks of random
// bytes with finite random d / dmin (every bit pattern of codes, scales and high bits).
//
// f32 activations: the kernels' weights are bit-identical to the hook's (the reference's
// operation order), so |y - x·w| <= gamma(accumulationDepth) * sum |x w| (codegen/README.md).
// int8 activations (codegen/README.md): against the exact product with the kernel's own x̂,
//   |y - x̂·w| <= gamma(4K/32 + 16) * sum_k (|w_k| + C A_k) |x̂_k|,
// where the kernel's terms per element are sw (c - zp) x̂ (block dot products) and ml x̂ (the
// separate min accumulator), |sw (c - zp)| + |ml| <= |w| + 2 |ml|, and with >= 2 distinct codes
// in a scale group (or sw = 0) |sw| <= 2 A (A_k = max |w| over k's 32-block), so
// |ml| = |sw c - w| <= (2 cmax + 1) A: C = 2 (2 cmax + 1) = 14 (Q2_K, codes 0..3), 126 (Q5_K and
// Q5_1, codes 0..31), 62 (Q4_1); 0 for Q3_K and Q5_0 (no min term: |sw (c - zp)| = |w|).
// Against the f32 reference add sum_k |w_k| dx_b / 2 (1 + 2^-17) (rounding x to the block grid).
// Multi-threaded results must be bit-identical to single-threaded ones.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "codegen/jit.h"
#include "codegen/kernel_spec.h"
#include "codegen/qmatmul.h"
#include "support/float16.h"
#include "tests/unit/codegen/test_weights.h"

namespace qlc {
namespace {

using codegen::KernelSpec;
using namespace testw;

/// C of the int8 bound (module comment) for a ggml type.
double minFactor(const std::string &type) {
  if (type == "Q2_K")
    return 14;
  if (type == "Q5_K" || type == "Q5_1")
    return 126;
  if (type == "Q4_1")
    return 62;
  return 0;
}

/// Blocks of random bytes whose f16 scale fields (d, dmin / m) are finite random values.
TestWeight randomBlocks(const std::string &type, int64_t n, int64_t k, uint32_t seed) {
  TestWeight t = ggufWeight(type, n, k, seed); // for the type; the bytes are replaced
  uint32_t id = *schemes::ggufTypeId(type);
  const int64_t bb = gguf::blockBytes(id);
  const std::vector<int> halves = gguf::halfFieldOffsets(id);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  std::vector<uint8_t> &data = t.parts["data"].second;
  for (uint8_t &x : data)
    x = uint8_t(byte(rng));
  for (size_t b0 = 0; b0 < data.size(); b0 += size_t(bb))
    for (int off : halves) {
      uint16_t h = floatToHalf(scale(rng));
      std::memcpy(&data[b0 + size_t(off)], &h, 2);
    }
  return t;
}


/// Runs the kernel of `tw` with activations `act` for every M; asserts the bounds above.
KernelErrors check(const TestWeight &tw, const std::string &type, codegen::Activations act,
                   int vectorWidth = 0, const std::vector<int64_t> &ms = kMs) {
  KernelErrors out;
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  EXPECT_TRUE(sr.spec.has_value()) << sr.reason;
  if (!sr.spec)
    return out;
  KernelSpec spec = *sr.spec;
  spec.vectorWidth = vectorWidth;
  spec.act = act;
  std::vector<float> w(size_t(spec.n * spec.k));
  EXPECT_EQ(tw.type.def->dequantize(tw.type, tw.view(), w.data()), "");
  std::vector<std::vector<uint8_t>> repacked;
  std::vector<const uint8_t *> ptrs = kernelParts(spec, tw, repacked);
  for (int64_t m : ms) {
    SCOPED_TRACE("M = " + std::to_string(m) + ", spec " + spec.key());
    out.merge(checkKernelOutputs(spec, ptrs.data(), w, m, uint32_t(3000 + m), minFactor(type)));
  }
  return out;
}

/// Every shape of a type, f32 and (with VNNI) int8, quantizer blocks and random blocks.
void checkType(const std::string &type, const std::vector<std::pair<int64_t, int64_t>> &shapes,
               uint32_t seed) {
  SCOPED_TRACE(type);
  std::vector<codegen::Activations> acts = {codegen::Activations::F32};
  if (codegen::hostHasInt8Dot())
    acts.push_back(codegen::Activations::Int8);
  for (codegen::Activations act : acts) {
    const bool int8 = act == codegen::Activations::Int8;
    SCOPED_TRACE(int8 ? "int8 activations" : "f32 activations");
    KernelErrors all;
    auto merge = [&](const KernelErrors &e) { all.merge(e); };
    for (auto [n, k] : shapes) {
      SCOPED_TRACE("N = " + std::to_string(n) + ", K = " + std::to_string(k));
      merge(check(ggufWeight(type, n, k, seed), type, act));
      merge(check(randomBlocks(type, n, k, seed + 1), type, act, 0, {1, 3, 128}));
    }
    // 8-lane vectors (AVX2 hosts' f32 kernels).
    merge(check(ggufWeight(type, shapes[0].first, shapes[0].second, seed + 2), type, act, 8, {1, 16}));
    std::printf("%s %-4s worst |err|/bound %.3f", int8 ? "int8" : "f32 ", type.c_str(), all.arith);
    if (int8)
      std::printf("; vs f32 reference |err|/bound %.3f, max |err|/sum|xw| %.2e", all.ref, all.relMag);
    std::printf("\n");
  }
}

const std::vector<std::pair<int64_t, int64_t>> kKShapes = {{37, 256}, {64, 512}, {100, 768}};
// N = 64 and 96 (int8): the Channels16 packing, 96 with the 2-group tile for N's last 32.
const std::vector<std::pair<int64_t, int64_t>> kLegacyShapes = {{37, 96}, {64, 512}, {100, 256}, {96, 64}};

TEST(CodegenGgufKQuants, Q2_K) { checkType("Q2_K", kKShapes, 101); }
TEST(CodegenGgufKQuants, Q3_K) { checkType("Q3_K", kKShapes, 111); }
TEST(CodegenGgufKQuants, Q5_K) { checkType("Q5_K", kKShapes, 121); }
TEST(CodegenGgufKQuants, Q4_1) { checkType("Q4_1", kLegacyShapes, 131); }
TEST(CodegenGgufKQuants, Q5_0) { checkType("Q5_0", kLegacyShapes, 141); }
TEST(CodegenGgufKQuants, Q5_1) { checkType("Q5_1", kLegacyShapes, 151); }

// Every quantized type the GGUF importer accepts has a kernel, with f32 activations too (hosts
// without VNNI, QLC_CPU_ACTIVATIONS=f32); the dense GGUF types say why they have none.
TEST(CodegenGgufKQuants, EveryQuantizedTypeHasAKernel) {
  for (const char *type : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}) {
    SCOPED_TRACE(type);
    TestWeight tw = ggufWeight(type, 8, 256, 1);
    codegen::setActivationOverride(codegen::Activations::F32);
    auto f = codegen::specForWeightType(tw.type, tw.elems());
    codegen::setActivationOverride(std::nullopt);
    ASSERT_TRUE(f.spec.has_value()) << f.reason;
    EXPECT_EQ(f.spec->act, codegen::Activations::F32);
    EXPECT_TRUE(f.spec->int8Capable());
    auto d = codegen::specForWeightType(tw.type, tw.elems());
    ASSERT_TRUE(d.spec.has_value()) << d.reason;
    EXPECT_EQ(d.spec->act, codegen::hostHasInt8Dot() ? codegen::Activations::Int8
                                                     : codegen::Activations::F32);
  }
  WeightType f16 = makeType("gguf", {{"type", Attribute::ident("F16")},
                                     {"shape", Attribute(std::vector<int64_t>{8, 64})}});
  auto r = codegen::specForWeightType(f16, {{"data", ElemKind::U8}});
  EXPECT_FALSE(r.spec.has_value());
  EXPECT_EQ(r.reason, "gguf F16 is not block-quantized (the GGUF importer makes it a dense tensor)");
}

/// Compile time (IR generation + O3 + machine code) of the new kernels at N = 64, K = 4096.
TEST(CodegenGgufKQuants, CompileTimeReport) {
  codegen::KernelCache cache;
  for (const char *type : {"Q2_K", "Q3_K", "Q5_K", "Q4_1", "Q5_0", "Q5_1"}) {
    TestWeight tw = ggufWeight(type, 64, 4096, 1);
    KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
    for (codegen::Activations a : {codegen::Activations::F32, codegen::Activations::Int8}) {
      if (a == codegen::Activations::Int8 && !codegen::hostHasInt8Dot())
        continue;
      for (codegen::MClass c : {codegen::MClass::Gemv, codegen::MClass::Gemm}) {
        s.mclass = c;
        s.act = a;
        auto k = cache.get(s);
        ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
        std::printf("compile %-4s %s %s: %7.1f ms (CPU %7.1f ms) %s\n", type,
                    a == codegen::Activations::Int8 ? "int8" : "f32 ",
                    c == codegen::MClass::Gemv ? "gemv" : "gemm", (*k)->compileMs,
                    (*k)->compileCpuMs, s.key().c_str());
        EXPECT_LT((*k)->compileMs, 5000.0);
      }
    }
  }
}

} // namespace
} // namespace qlc
