// JIT kernels of every AWQ / GPTQ / compressed-tensors width the importers accept, against the
// reference: AWQ 4 / 8-bit, GPTQ 2 / 3 / 4 / 8-bit, compressed-tensors WNA16 4 / 8-bit; group
// sizes 32 / 64 / 128 / channel, sym / asym, GPTQ v1 / v2, f32 and int8 activations, M in
// {1, 3, 16, 128, 513}, odd shapes the layouts allow (N tails of 16 / 8 / 4 channels, ceil(K/G)
// groups, groups not aligned to a packing unit, act-order g_idx). The kernel's y = x · Wᵀ is
// compared with the exact (f64) product of x and the scheme hook's dequantized W, per output:
//
//  f32 activations: the kernels unpack W bit-identically to the hook (integer codes minus integer
//    zeros, one conversion, the hook's multiply), so the only error is the f32 accumulation:
//    |y - x·w| <= gamma(d) sum_k |x_k w_k|, d = KernelSpec::accumulationDepth() (K + 1 for the
//    N-vectorised AWQ / GPTQ kernels; K/VL + log2 VL + (K mod 16) + 2 for CT).
//  int8 activations (codegen/README.md "Int8 activations"): against the exact product with the
//    kernel's own x̂ = dx·xq (quantizedX repeats the kernel's IEEE operations), the integer block
//    sums are exact and |y - x̂·w| <= gamma(K/32 + 3) sum |w_k||x̂_k| for AWQ / GPTQ (lanes are
//    channels: the product s·dx, a chain of K/32 FMAs, the hook's rounding of (c - z)·s), and
//    gamma(4K/32 + 16) sum (|w_k| + 64 A_k)|x̂_k| for CT (the GGUF pair / wide-panel kernels, with
//    their 16-lane reduction; A_k = max |w| over k's 32-block). Against the f32 reference add
//    the activation rounding sum_k |w_k| dx_b / 2 (1 + 2^-17).
// Every case also runs on 3 threads and must be bit-identical to the single-threaded result.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "codegen/jit.h"
#include "codegen/kernel_spec.h"
#include "codegen/qmatmul.h"
#include "tests/unit/codegen/test_weights.h"

namespace qlc {
namespace {

using codegen::Activations;
using codegen::KernelSpec;
using namespace testw;


/// One weight, one activation mode, every M in `ms`: the bounds of the file comment.
void check(const TestWeight &tw, Activations act, int vectorWidth = 0,
           const std::vector<int64_t> &ms = kMs) {
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  ASSERT_TRUE(sr.spec.has_value()) << sr.reason;
  KernelSpec spec = *sr.spec;
  spec.vectorWidth = vectorWidth;
  spec.act = act;
  const bool int8 = act == Activations::Int8;
  const bool cols = spec.family() == codegen::Family::ColsN;
  std::vector<float> w(size_t(spec.n * spec.k));
  ASSERT_EQ(tw.type.def->dequantize(tw.type, tw.view(), w.data()), "");
  std::vector<std::vector<uint8_t>> repacked;
  std::vector<const uint8_t *> ptrs = kernelParts(spec, tw, repacked);
  for (int64_t m : ms) {
    KernelSpec used = spec;
    used.mclass = codegen::mClassFor(m);
    SCOPED_TRACE("M = " + std::to_string(m) + ", kernel " + used.key());
    KernelErrors e = checkKernelOutputs(spec, ptrs.data(), w, m, uint32_t(7000 + m), cols ? 0 : 64);
    std::printf("%-4s %-50s M=%-3lld |err|/bound %.3f", int8 ? "int8" : "f32", used.key().c_str(),
                (long long)m, e.arith);
    if (int8)
      std::printf("; vs reference |err|/bound %.3f, max |err|/sum|xw| %.2e", e.ref, e.relMag);
    std::printf("\n");
  }
}

/// f32, and int8 where the specialisation has an int8 kernel and the host the dot products.
void checkModes(const TestWeight &tw, int vectorWidth = 0, const std::vector<int64_t> &ms = kMs) {
  {
    SCOPED_TRACE("f32 activations");
    check(tw, Activations::F32, vectorWidth, ms);
  }
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  if (codegen::hostHasInt8Dot() && sr.spec && sr.spec->int8Capable()) {
    SCOPED_TRACE("int8 activations");
    check(tw, Activations::Int8, vectorWidth, ms);
  }
}

std::string gname(int64_t g) { return g == -1 ? "channel" : (llvm::Twine("g") + llvm::Twine(g)).str(); }

// AWQ 8-bit (awq_marlin input: N a multiple of 4). N = 132 = 2 gemv tiles of 64 + a 4-channel
// tail; N = 60 = 32 + 16 + 8 + 4 (every tile width of both M-classes); K = 96 = 3 blocks.
TEST(CodegenBits, Awq8) {
  for (int64_t g : {32, 64, 128, -1}) {
    SCOPED_TRACE(gname(g));
    checkModes(awqWeightBits(8, 132, 256, g, ElemKind::F16, 110));
    checkModes(awqWeightBits(8, 60, g == -1 || g == 32 ? 96 : 3 * g, g, ElemKind::F16, 111), 0,
               {1, 16, 513});
  }
  checkModes(awqWeightBits(8, 60, 256, 64, ElemKind::BF16, 112), 0, {1, 128});
  checkModes(awqWeightBits(8, 60, 256, 64, ElemKind::F32, 113), 0, {3, 16});
  checkModes(awqWeightBits(8, 36, 128, 32, ElemKind::F16, 114), 8, {1, 16});
}

// 8-bit AWQ / GPTQ with N a multiple of 16: the int8 kernels read the qweight re-laid out at load
// (Packing::Channels16, 16-channel strips of GPTQ-oriented byte words). N = 144 = 2 gemv tiles of
// 64 + a 16-channel tail, gemm tiles of 32 + 16; every group size, GPTQ sym / asym, v1 / v2.
TEST(CodegenBits, Width8Channels16) {
  for (int64_t g : {32, 64, 128, -1}) {
    SCOPED_TRACE(gname(g));
    checkModes(awqWeightBits(8, 144, 256, g, ElemKind::F16, 115), 0, {1, 3, 16, 513});
    for (bool sym : {true, false})
      for (bool v1 : {true, false})
        checkModes(gptqWeightBits(8, 144, 256, g, sym, v1, false, ElemKind::F16, 116), 0,
                   g == 64 ? kMs : std::vector<int64_t>{1, 16});
  }
  auto spec = codegen::specForWeightType(awqWeightBits(8, 144, 256, 64, ElemKind::F16, 1).type,
                                         awqWeightBits(8, 144, 256, 64, ElemKind::F16, 1).elems());
  ASSERT_TRUE(spec.spec);
  spec.spec->act = Activations::Int8;
  EXPECT_EQ(spec.spec->packing(), codegen::Packing::Channels16);
}

// GPTQ 2 / 3 / 8-bit: N a multiple of 16 / 32 / 4 (qzeros packed along N), K of 16 / 32 / 4.
struct GptqShape {
  int64_t n, k;
};
GptqShape bigShape(int bits) { return bits == 8 ? GptqShape{132, 256} : bits == 2 ? GptqShape{144, 256} : GptqShape{160, 256}; }
GptqShape smallShape(int bits) { return bits == 8 ? GptqShape{60, 96} : bits == 2 ? GptqShape{48, 96} : GptqShape{96, 96}; }

TEST(CodegenBits, GptqSymAsymV1V2) {
  for (int bits : {2, 3, 8})
    for (bool sym : {true, false})
      for (bool v1 : {true, false})
        for (int64_t g : {32, 64, 128, -1}) {
          SCOPED_TRACE(std::to_string(bits) + "-bit " + (sym ? "sym" : "asym") + (v1 ? " v1 " : " v2 ") +
                       gname(g));
          GptqShape a = bigShape(bits), c = smallShape(bits);
          checkModes(gptqWeightBits(bits, a.n, a.k, g, sym, v1, false, ElemKind::F16, 120 + bits),
                     0, g == 64 ? kMs : std::vector<int64_t>{1, 16});
          checkModes(gptqWeightBits(bits, c.n, c.k, g, sym, v1, false, ElemKind::F16, 130 + bits),
                     0, {3, 513});
        }
}

TEST(CodegenBits, GptqActOrderRaggedAndWidth8) {
  for (int bits : {2, 3, 8})
    for (bool sym : {true, false}) {
      SCOPED_TRACE(std::to_string(bits) + "-bit " + (sym ? "sym" : "asym"));
      // g_idx (f32 only); ceil(K/G) groups (K = 224, G = 64: int8 for 8-bit); G = 20, not a
      // multiple of a packing unit (the per-k group path).
      checkModes(gptqWeightBits(bits, 64, 256, 32, sym, false, true, ElemKind::F16, 140), 0, {1, 16});
      checkModes(gptqWeightBits(bits, 64, 224, 64, sym, true, false, ElemKind::F16, 141), 0, {3, 128});
      checkModes(gptqWeightBits(bits, 64, 320, 20, sym, false, false, ElemKind::F16, 142), 0, {1, 16});
    }
  checkModes(gptqWeightBits(8, 60, 256, 64, false, true, false, ElemKind::BF16, 143), 0, {1, 128});
  checkModes(gptqWeightBits(3, 96, 256, 128, false, true, false, ElemKind::F32, 144), 0, {3, 16});
  // 8-lane vectors: N = 48 puts 2-bit tiles at n % 16 = 8 (zeros straddle their packing word).
  checkModes(gptqWeightBits(2, 48, 128, 32, false, true, false, ElemKind::F16, 145), 8, {1, 16});
  checkModes(gptqWeightBits(3, 96, 128, 64, false, false, false, ElemKind::F16, 146), 8, {3, 16});
  checkModes(gptqWeightBits(8, 36, 128, 32, true, true, false, ElemKind::F16, 147), 8, {1, 16});
}

// Compressed-tensors 4 / 8-bit: N = 37 (one wide int8 gemm tile of 32 + a 4-row and a 1-row
// tail), K = 96 (an odd number of 32-blocks); channel strategy (g = 0) too.
TEST(CodegenBits, CtInt8AndWidths) {
  for (int bits : {4, 8})
    for (bool sym : {true, false})
      for (int64_t g : {32, 64, 128, 0}) {
        SCOPED_TRACE(std::to_string(bits) + "-bit " + (sym ? "sym " : "asym ") + gname(g ? g : -1));
        checkModes(ctWeightBits(bits, 37, 256, g, sym, false, g == 64, 150 + bits),
                   0, g == 32 ? kMs : std::vector<int64_t>{1, 16});
        checkModes(ctWeightBits(bits, 37, g == 0 || g == 32 ? 96 : 3 * g, g, sym, false, false, 160 + bits),
                   0, {3, 513});
      }
}

TEST(CodegenBits, Ct8RaggedActOrderAndWidth8) {
  for (bool sym : {true, false}) {
    SCOPED_TRACE(sym ? "sym" : "asym");
    checkModes(ctWeightBits(8, 20, 100, 0, sym, false, false, 170), 0, {1, 16});  // K % 16 != 0
    checkModes(ctWeightBits(8, 20, 100, 20, sym, false, true, 171), 0, {3, 128}); // ragged groups
    checkModes(ctWeightBits(8, 37, 256, 64, sym, true, false, 172), 0, {1, 16});  // g_idx: f32
  }
  checkModes(ctWeightBits(8, 37, 256, 32, false, false, false, 173), 8, {1, 16});
  checkModes(ctWeightBits(4, 37, 256, 32, false, false, true, 174), 8, {1, 16});
}

TEST(CodegenBits, EveryAcceptedWidthHasAKernel) {
  std::vector<TestWeight> ws = {
      awqWeightBits(4, 32, 64, 32, ElemKind::F16, 1), awqWeightBits(8, 32, 64, 32, ElemKind::F16, 1),
      gptqWeightBits(2, 32, 64, 32, true, true, false, ElemKind::F16, 1),
      gptqWeightBits(3, 32, 64, 32, true, true, false, ElemKind::F16, 1),
      gptqWeightBits(4, 32, 64, 32, true, true, false, ElemKind::F16, 1),
      gptqWeightBits(8, 32, 64, 32, true, true, false, ElemKind::F16, 1),
      ctWeightBits(4, 32, 64, 32, true, false, false, 1), ctWeightBits(8, 32, 64, 32, true, false, false, 1)};
  const std::vector<std::string> prefix = {"awq4.", "awq8.", "gptq2.", "gptq3.", "gptq4.", "gptq8.", "ct4.", "ct8."};
  const std::vector<bool> int8 = {true, true, false, false, true, true, true, true};
  std::set<std::string> keys;
  for (size_t i = 0; i < ws.size(); ++i) {
    auto r = codegen::specForWeightType(ws[i].type, ws[i].elems());
    ASSERT_TRUE(r.spec.has_value()) << r.reason;
    EXPECT_EQ(r.spec->key().rfind(prefix[i], 0), 0u) << r.spec->key();
    EXPECT_EQ(r.spec->int8Capable(), int8[i]) << r.spec->key();
    EXPECT_EQ(r.spec->act, int8[i] && codegen::hostHasInt8Dot() ? Activations::Int8 : Activations::F32);
    keys.insert(r.spec->key());
  }
  EXPECT_EQ(keys.size(), ws.size());
}

/// Compile times of the new kernels at N = 64, K = 4096 (as CodegenCache.CompileTimeReport).
TEST(CodegenBits, CompileTimeReport) {
  codegen::KernelCache cache;
  std::vector<std::pair<std::string, TestWeight>> ws;
  ws.push_back({"awq8 g128", awqWeightBits(8, 64, 4096, 128, ElemKind::F16, 1)});
  ws.push_back({"gptq2 asym g128", gptqWeightBits(2, 64, 4096, 128, false, true, false, ElemKind::F16, 1)});
  ws.push_back({"gptq3 asym g128", gptqWeightBits(3, 64, 4096, 128, false, true, false, ElemKind::F16, 1)});
  ws.push_back({"gptq3 asym g_idx", gptqWeightBits(3, 64, 4096, 128, false, true, true, ElemKind::F16, 1)});
  ws.push_back({"gptq2 sym G=20", gptqWeightBits(2, 64, 4000, 20, true, true, false, ElemKind::F16, 1)});
  ws.push_back({"gptq8 sym g128", gptqWeightBits(8, 64, 4096, 128, true, false, false, ElemKind::F16, 1)});
  ws.push_back({"ct4 asym g128", ctWeightBits(4, 64, 4096, 128, false, false, false, 1)});
  ws.push_back({"ct8 asym g128", ctWeightBits(8, 64, 4096, 128, false, false, false, 1)});
  ws.push_back({"ct8 sym channel", ctWeightBits(8, 64, 4096, 0, true, false, false, 1)});
  for (auto &[name, tw] : ws)
    for (Activations a : {Activations::F32, Activations::Int8})
      for (codegen::MClass c : {codegen::MClass::Gemv, codegen::MClass::Gemm}) {
        KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
        if (a == Activations::Int8 && !(s.int8Capable() && codegen::hostHasInt8Dot()))
          continue;
        s.act = a;
        s.mclass = c;
        auto k = cache.get(s);
        ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
        std::printf("compile %-16s %s %s: %7.1f ms (CPU %7.1f ms) %s\n", name.c_str(),
                    a == Activations::Int8 ? "int8" : "f32 ", c == codegen::MClass::Gemv ? "gemv" : "gemm",
                    (*k)->compileMs, (*k)->compileCpuMs, s.key().c_str());
        EXPECT_LT((*k)->compileMs, 5000.0);
      }
}

} // namespace
} // namespace qlc
