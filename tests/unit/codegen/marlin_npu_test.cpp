// JIT kernels for the Marlin (!marlin, FORMATS.md §4) and Ascend NPU (!npu_w4 / !npu_w8, §5)
// layouts against the reference: the kernel's y = x · Wᵀ is compared with the exact (f64) product
// of x and the type's reference dequantization (the !marlin / !npu_* hooks), for M in
// {1, 3, 16, 128, 513}, every bit width and group the types allow, zero points / offsets on and
// off, Marlin act_order, f16 / bf16 / f32 scales, odd NPU shapes, vector widths 16 and 8; and the
// multi-threaded result bit-identical to the single-threaded one.
//
// Bound: these are ColsN kernels (one sequential FMA chain along K per output, in the layout's k
// order: Marlin walks a 16-row tile as k = 2j, 2j+1, 2j+8, 2j+9, and act_order in the repacked
// order) and unpack W bit-identically to the hooks (Marlin: (q - z) as integers, one conversion,
// times the scale; NPU: (float(c) + offset) * scale, the hook's order), so
//     |y_kernel - y_exact| <= gamma(K + 1) * sum_k |x_k w_k|     (accumulationDepth() = K + 1)
// per output, whatever the order of the chain.
//
// MoE: marlin.moe (lower-marlin of an AWQ / GPTQ MoE) and npu.fused_experts (lower-npu) through
// the cpu executor against the reference executor on the same lowered module, with the first-order
// bound of moe_check.h, with f32 and int8 activations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "codegen/jit.h"
#include "codegen/kernel_spec.h"
#include "codegen/qmatmul.h"
#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/moe_routing.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "schemes/marlin/codec.h"
#include "schemes/npu/codec.h"
#include "schemes/common/part_data.h"
#include "tests/unit/codegen/moe_check.h"
#include "tests/unit/codegen/test_modules.h"

namespace qlc {
namespace {

using codegen::KernelSpec;
using namespace testw;

std::vector<uint16_t> randomHalves(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (uint16_t &x : h)
    x = floatToHalf(d(rng));
  return h;
}

/// A !marlin weight with random codes, scales, zero points and (act_order) a random permutation
/// with a random sorted g_idx (groups of unequal sizes, some empty: stronger than real act-order).
TestWeight marlinWeight(int64_t n, int64_t k, int bits, int64_t g, bool zp, bool actOrder,
                        ElemKind se, uint32_t seed) {
  TestWeight t;
  t.type = makeType("marlin", {{"bits", Attribute(int64_t(bits))},
                               {"group", Attribute(g)},
                               {"zero_point", Attribute(zp)},
                               {"act_order", Attribute(actOrder)},
                               {"shape", Attribute(std::vector<int64_t>{n, k})}});
  std::mt19937 rng(seed);
  const int64_t groups = marlin::numGroups(k, g);
  std::vector<uint8_t> codes(size_t(k * n)), zeros(size_t(groups * n));
  for (uint8_t &c : codes)
    c = uint8_t(rng() & ((1u << bits) - 1));
  for (uint8_t &z : zeros)
    z = uint8_t(rng() & ((1u << bits) - 1));
  t.parts["qweight"] = {ElemKind::I32, bytesOf(marlin::packWeights(codes, k, n, bits))};
  auto sc = scalesAs(randomHalves(groups * n, seed + 1, 0.001f, 0.05f), se);
  t.parts["scales"] = {sc.first, marlin::permuteScales(sc.second, groups, n,
                                                       se == ElemKind::F32 ? 4 : 2, g, k)};
  if (zp)
    t.parts["qzeros"] = {ElemKind::I32, bytesOf(marlin::packZeros(zeros, groups, n, bits))};
  if (actOrder) {
    std::vector<int32_t> gIdx(static_cast<size_t>(k));
    for (int32_t &x : gIdx)
      x = int32_t(rng() % uint32_t(groups));
    std::sort(gIdx.begin(), gIdx.end());
    t.parts["g_idx"] = {ElemKind::I32, bytesOf(gIdx)};
    t.parts["perm"] = {ElemKind::I32, bytesOf(permutation(k, seed + 2))};
  }
  return t;
}

/// !npu_w4 (bits 4) or !npu_w8 (bits 8): random signed codes, scales, optional offsets (random
/// values, not only the integers a conversion gives: the hook takes any; `integerOffsets`: the
/// integers 2^(b-1) - z of a conversion, z < 2^b, which the int8 kernels take).
TestWeight npuWeight(int64_t n, int64_t k, int bits, int64_t g, bool offset, ElemKind se,
                     uint32_t seed, bool integerOffsets = false) {
  TestWeight t;
  t.type = makeType(bits == 4 ? "npu_w4" : "npu_w8",
                    {{"group", Attribute(g)}, {"shape", Attribute(std::vector<int64_t>{n, k})}});
  std::mt19937 rng(seed);
  const int64_t groups = k / (g == -1 ? k : g);
  std::vector<int8_t> codes(size_t(k * n));
  for (int8_t &c : codes)
    c = bits == 4 ? int8_t(int(rng() % 16) - 8) : int8_t(int(rng() % 256) - 128);
  if (bits == 4)
    t.parts["weight"] = {ElemKind::I32, bytesOf(npu::packInt4(codes, k, n))};
  else
    t.parts["weight"] = {ElemKind::I8, bytesOf(codes)};
  t.parts["antiquant_scale"] = scalesAs(randomHalves(groups * n, seed + 1, -0.05f, 0.05f), se);
  std::vector<uint16_t> off = randomHalves(groups * n, seed + 2, -8.f, 8.f);
  if (integerOffsets)
    for (uint16_t &o : off)
      o = floatToHalf(float((1 << (bits - 1)) - int(rng() % (1u << bits))));
  if (offset)
    t.parts["antiquant_offset"] = scalesAs(off, se);
  return t;
}

/// Whether the int8 kernels take `tw`'s NPU offsets (integers 2^(b-1) - z, 0 <= z < 2^b).
bool integerOffsets(const TestWeight &tw, int bits) {
  auto it = tw.parts.find("antiquant_offset");
  if (it == tw.parts.end())
    return true;
  for (float f : schemes::parts::decodeFloats(it->second.second, it->second.first))
    if (f != std::nearbyint(f) || f > float(1 << (bits - 1)) ||
        f < float((1 << (bits - 1)) - ((1 << bits) - 1)))
      return false;
  return true;
}

/// The int8-activation kernel of `spec` on the Channels16 repack of `tw` (kernelParts, as the cpu
/// executor prepares it) for every M, with test_weights.h's int8 bound (C = 0: no min term).
void checkInt8(const TestWeight &tw, KernelSpec spec, const std::vector<float> &w,
               const std::vector<int64_t> &ms) {
  spec.act = codegen::Activations::Int8;
  ASSERT_EQ(spec.packing(), codegen::Packing::Channels16);
  std::vector<std::vector<uint8_t>> repacked;
  std::vector<const uint8_t *> ptrs = kernelParts(spec, tw, repacked);
  for (int64_t m : ms) {
    KernelSpec used = spec;
    used.mclass = codegen::mClassFor(m);
    SCOPED_TRACE("M = " + std::to_string(m) + ", int8 kernel " + used.key());
    KernelErrors e = checkKernelOutputs(spec, ptrs.data(), w, m, uint32_t(2000 + m), 0);
    if (m == ms.back())
      std::printf("%-52s M=%-3lld |err|/bound %.3f, vs f32 reference: |err|/bound %.3f, max "
                  "|err|/sum|xw| %.2e\n", used.key().c_str(), (long long)m, e.arith, e.ref,
                  e.relMag);
  }
}

/// The kernels of `tw` for every M against the f64 product with the hook's W: the f32 kernel
/// (bound above) and, where the spec and the host allow, the int8 kernel (checkInt8).
void checkWeight(const TestWeight &tw, int vectorWidth = 0, const std::vector<int64_t> &ms = kMs) {
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  ASSERT_TRUE(sr.spec.has_value()) << sr.reason;
  KernelSpec spec = *sr.spec;
  spec.vectorWidth = vectorWidth;
  const int64_t n = spec.n, k = spec.k;
  std::vector<float> w(size_t(n * k));
  ASSERT_EQ(tw.type.def->dequantize(tw.type, tw.view(), w.data()), "");
  if (spec.int8Capable() && codegen::hostHasInt8Dot() && vectorWidth == 0 &&
      integerOffsets(tw, spec.bits))
    checkInt8(tw, spec, w, ms);
  spec.act = codegen::Activations::F32;
  std::vector<const uint8_t *> ptrs;
  for (const std::string &s : spec.partSlots())
    ptrs.push_back(s.empty() ? nullptr : tw.parts.at(s).second.data());
  for (int64_t m : ms) {
    SCOPED_TRACE("M = " + std::to_string(m) + ", spec " + spec.key());
    std::vector<float> x = randomVec(m * k, uint32_t(1000 + m));
    std::vector<float> y(size_t(m * n), NAN), yMt(size_t(m * n), NAN);
    ASSERT_FALSE(bool(codegen::runQMatmul(spec, ptrs.data(), x.data(), m, y.data(), nullptr)));
    ASSERT_FALSE(bool(codegen::runQMatmul(spec, ptrs.data(), x.data(), m, yMt.data(), &pool3())));
    KernelSpec used = spec;
    used.mclass = codegen::mClassFor(m);
    ASSERT_EQ(used.accumulationDepth(), k + 1);
    const double g = gamma(used.accumulationDepth());
    int64_t bad = 0;
    double worst = 0, rel = 0, maxY = 0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0, mag = 0;
        for (int64_t q = 0; q < k; ++q) {
          double p = double(x[size_t(i * k + q)]) * double(w[size_t(j * k + q)]);
          exact += p;
          mag += std::fabs(p);
        }
        double got = y[size_t(i * n + j)], e = std::fabs(got - exact), bound = g * mag + 1e-30;
        worst = std::max(worst, e / bound);
        rel = std::max(rel, e);
        maxY = std::max(maxY, std::fabs(exact));
        if (!(e <= bound) && bad++ < 5)
          ADD_FAILURE() << "y[" << i << ", " << j << "] = " << got << ", exact " << exact
                        << ", |err| " << e << " > bound " << bound;
        if (std::memcmp(&y[size_t(i * n + j)], &yMt[size_t(i * n + j)], 4) != 0 && bad++ < 5)
          ADD_FAILURE() << "multi-threaded y[" << i << ", " << j << "] = " << yMt[size_t(i * n + j)]
                        << " differs from single-threaded " << got;
      }
    EXPECT_EQ(bad, 0) << "worst |err| / bound = " << worst;
    if (m == ms.back())
      std::printf("%-52s M=%-3lld |err|/bound %.3f, max |err|/max|y| %.2e\n", used.key().c_str(),
                  (long long)m, worst, rel / (maxY + 1e-30));
  }
}

TEST(CodegenMarlin, FourBitGroupsZeroPointsScaleTypes) {
  for (int64_t g : {int64_t(-1), int64_t(32), int64_t(64), int64_t(128)})
    for (bool zp : {false, true}) {
      SCOPED_TRACE("group " + std::to_string(g) + (zp ? " zero points" : " uint4b8"));
      checkWeight(marlinWeight(192, 256, 4, g, zp, false, ElemKind::F16, 1));
    }
  checkWeight(marlinWeight(64, 128, 4, 128, true, false, ElemKind::BF16, 2)); // G = K: 32-perm
  checkWeight(marlinWeight(128, 384, 4, 64, false, false, ElemKind::F32, 3));
}

TEST(CodegenMarlin, EightBit) {
  for (int64_t g : {int64_t(-1), int64_t(32), int64_t(128)})
    for (bool zp : {false, true}) {
      SCOPED_TRACE("group " + std::to_string(g) + (zp ? " zero points" : " uint8b128"));
      checkWeight(marlinWeight(128, 256, 8, g, zp, false, ElemKind::F16, 4));
    }
  checkWeight(marlinWeight(64, 128, 8, 64, true, false, ElemKind::BF16, 5));
}

TEST(CodegenMarlin, ActOrder) {
  checkWeight(marlinWeight(128, 256, 4, 32, false, true, ElemKind::F16, 6));
  checkWeight(marlinWeight(64, 384, 4, 128, true, true, ElemKind::BF16, 7));
  checkWeight(marlinWeight(192, 128, 8, 64, false, true, ElemKind::F32, 8));
}

TEST(CodegenMarlin, VectorWidth8) {
  checkWeight(marlinWeight(192, 256, 4, 64, true, false, ElemKind::F16, 9), 8, {1, 3, 16});
  checkWeight(marlinWeight(128, 128, 8, 32, true, true, ElemKind::F16, 10), 8, {1, 16});
}

TEST(CodegenNpu, W4GroupsOffsetsScaleTypes) {
  for (int64_t g : {int64_t(-1), int64_t(16), int64_t(56), int64_t(7)})
    for (bool off : {false, true}) {
      SCOPED_TRACE("group " + std::to_string(g) + (off ? " offset" : " symmetric"));
      checkWeight(npuWeight(136, 112, 4, g, off, ElemKind::F16, 11));
    }
  checkWeight(npuWeight(8, 1, 4, -1, true, ElemKind::BF16, 12));
  checkWeight(npuWeight(24, 35, 4, 5, true, ElemKind::F32, 13));
  checkWeight(npuWeight(72, 96, 4, 32, true, ElemKind::F16, 14), 8, {1, 16});
}

TEST(CodegenNpu, W8OddShapes) {
  for (int64_t nn : {int64_t(1), int64_t(5), int64_t(37), int64_t(100)})
    for (bool off : {false, true}) {
      SCOPED_TRACE("N = " + std::to_string(nn) + (off ? " offset" : " symmetric"));
      checkWeight(npuWeight(nn, 99, 8, 33, off, ElemKind::F16, 15));
    }
  checkWeight(npuWeight(67, 3, 8, -1, true, ElemKind::BF16, 16));
  checkWeight(npuWeight(130, 256, 8, 64, false, ElemKind::F32, 17));
  checkWeight(npuWeight(45, 64, 8, 32, true, ElemKind::F16, 18), 8, {1, 16});
}

// Int8 activations on the Channels16 repack (Marlin's are exercised by the tests above, every
// one of whose shapes and groups allows them): the NPU's signed codes with integer offsets, or
// none, at N % 16 == 0.
TEST(CodegenNpu, Int8Activations) {
  for (int64_t g : {int64_t(-1), int64_t(32), int64_t(128)})
    for (bool off : {false, true}) {
      SCOPED_TRACE("w4 group " + std::to_string(g) + (off ? " offset" : " symmetric"));
      checkWeight(npuWeight(144, 256, 4, g, off, ElemKind::F16, 21, true));
    }
  checkWeight(npuWeight(48, 96, 4, 32, true, ElemKind::BF16, 22, true));
  for (int64_t g : {int64_t(-1), int64_t(64)})
    for (bool off : {false, true}) {
      SCOPED_TRACE("w8 group " + std::to_string(g) + (off ? " offset" : " symmetric"));
      checkWeight(npuWeight(80, 128, 8, g, off, ElemKind::F16, 23, true));
    }
  checkWeight(npuWeight(32, 64, 8, 32, true, ElemKind::F32, 24, true));
}

// Through the cpu executor: NPU offsets that are integers run the int8 kernel on the repacked
// weight (no note), fractional ones the f32 kernel, with a note naming the first offset that is
// not an integer; each bit-identical to its kernel called directly.
TEST(CodegenNpu, CpuExecutorIntegerAndFractionalOffsets) {
  for (bool integer : {true, false}) {
    SCOPED_TRACE(integer ? "integer offsets" : "fractional offsets");
    TestWeight tw = npuWeight(64, 128, 4, 32, true, ElemKind::F16, 31, integer);
    std::string text = denseWeight("w", tw) +
                       "func @f(%x: tensor<?x128xf32>) -> tensor<?x64xf32> {\n"
                       "  %y = linear %x, @w : tensor<?x64xf32>\n  return %y\n}\n";
    llvm::SourceMgr sm;
    auto m = parseAndLower(text, sm);
    ASSERT_TRUE(m);
    std::vector<float> x = randomVec(5 * 128, 3);
    std::vector<Tensor> in = {Tensor::fromF32As(ElemKind::F32, {5, 128}, x)};
    std::string notes;
    llvm::raw_string_ostream nos(notes);
    CpuExecutorOptions o;
    o.notes = &nos;
    CpuExecutor cpu(*m, nullptr, o);
    auto y = cpu.run("f", in);
    ASSERT_TRUE(bool(y)) << llvm::toString(y.takeError());
    EXPECT_EQ(cpu.stats().jitOps, 1u);
    EXPECT_EQ(cpu.stats().fallbacks, 0u);
    KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
    const bool int8 = integer && codegen::hostHasInt8Dot();
    if (integer || !codegen::hostHasInt8Dot()) {
      EXPECT_EQ(notes, "");
    } else {
      EXPECT_NE(notes.find("@w has antiquant_offset["), std::string::npos) << notes;
      EXPECT_NE(notes.find("keep f32 activations"), std::string::npos) << notes;
    }
    s.act = int8 ? codegen::Activations::Int8 : codegen::Activations::F32;
    std::vector<std::vector<uint8_t>> repacked;
    std::vector<const uint8_t *> ptrs = kernelParts(s, tw, repacked);
    std::vector<float> direct(5 * 64);
    ASSERT_FALSE(bool(codegen::runQMatmul(s, ptrs.data(), x.data(), 5, direct.data(), nullptr)));
    std::vector<float> got = (*y)[0].toF32();
    EXPECT_EQ(std::memcmp(got.data(), direct.data(), direct.size() * 4), 0);
  }
}

TEST(CodegenMarlinNpu, SpecsAndKeys) {
  auto spec = [](const TestWeight &t) { return codegen::specForWeightType(t.type, t.elems()); };
  auto m4 = spec(marlinWeight(64, 128, 4, 32, true, false, ElemKind::F16, 1));
  auto m8 = spec(marlinWeight(64, 128, 8, 32, false, true, ElemKind::F16, 1));
  auto n4 = spec(npuWeight(64, 128, 4, 32, true, ElemKind::F16, 1));
  auto n8 = spec(npuWeight(63, 128, 8, -1, false, ElemKind::BF16, 1));
  ASSERT_TRUE(m4.spec && m8.spec && n4.spec && n8.spec);
  EXPECT_EQ(m4.spec->key().substr(0, 30), "marlin.g32.asym.b4.f16.n64.k12");
  EXPECT_NE(m8.spec->key().find(".gidx"), std::string::npos);
  EXPECT_EQ(m8.spec->partSlots(),
            (std::vector<std::string>{"qweight", "", "scales", "g_idx", "perm"}));
  EXPECT_EQ(n4.spec->partSlots(),
            (std::vector<std::string>{"weight", "antiquant_offset", "antiquant_scale"}));
  EXPECT_EQ(n8.spec->partSlots(), (std::vector<std::string>{"weight", "", "antiquant_scale"}));
  EXPECT_EQ(n8.spec->nAlign(), 1);
  EXPECT_EQ(n8.spec->group, 128);
  // int8: K and the group multiples of 32, N of 16, no act_order (x would go through perm)
  EXPECT_TRUE(m4.spec->int8Capable());
  EXPECT_FALSE(m8.spec->int8Capable());
  EXPECT_TRUE(n4.spec->int8Capable());
  EXPECT_FALSE(n8.spec->int8Capable()); // N = 63
  KernelSpec m4a8 = *m4.spec;
  m4a8.act = codegen::Activations::Int8;
  EXPECT_EQ(m4a8.packing(), codegen::Packing::Channels16);
  EXPECT_NE(m4a8.key().find(".a8.c16"), std::string::npos);
}

/// JIT compile time (IR generation + O3 + machine code) of the new kernels at N = 64, K = 4096
/// (as CodegenCache.CompileTimeReport); a loose bound guards against blow-ups only.
TEST(CodegenMarlinNpu, CompileTimeReport) {
  codegen::KernelCache cache;
  std::vector<std::pair<std::string, TestWeight>> ws;
  ws.push_back({"marlin 4-bit g128 zp", marlinWeight(64, 4096, 4, 128, true, false, ElemKind::F16, 1)});
  ws.push_back({"marlin 8-bit g128", marlinWeight(64, 4096, 8, 128, false, false, ElemKind::F16, 1)});
  ws.push_back({"marlin 4-bit act_order", marlinWeight(64, 4096, 4, 128, false, true, ElemKind::F16, 1)});
  ws.push_back({"npu_w4 g128 offset", npuWeight(64, 4096, 4, 128, true, ElemKind::F16, 1)});
  ws.push_back({"npu_w8 g128 offset", npuWeight(64, 4096, 8, 128, true, ElemKind::F16, 1)});
  for (auto &[name, tw] : ws)
    for (auto [c, a] : {std::pair{codegen::MClass::Gemv, codegen::Activations::F32},
                        {codegen::MClass::Gemm, codegen::Activations::F32},
                        {codegen::MClass::Gemv, codegen::Activations::Int8},
                        {codegen::MClass::Gemm, codegen::Activations::Int8}}) {
      KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
      if (a == codegen::Activations::Int8 && !(s.int8Capable() && codegen::hostHasInt8Dot()))
        continue;
      s.mclass = c;
      s.act = a;
      auto k = cache.get(s);
      ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
      std::printf("compile %-24s %s: %7.1f ms (CPU %7.1f ms) %s\n", name.c_str(),
                  c == codegen::MClass::Gemv ? "gemv" : "gemm", (*k)->compileMs,
                  (*k)->compileCpuMs, s.key().c_str());
      EXPECT_LT((*k)->compileMs, 5000.0);
    }
}

// ---- MoE through the cpu executor ----------------------------------------------------------

/// `moe` on stacks of `w13` / `w2`, lowered with `pipeline`; the lowered op must be `expectOp`.
/// Cpu vs reference executor (moe_check.h's bound), with f32 activations and, where the w13
/// kernel has one and the host int8 dot products, int8.
void checkMoe(const std::string &pipeline, const std::string &expectOp,
              const std::vector<TestWeight> &w13s, const std::vector<TestWeight> &w2s, int64_t h,
              int64_t topK) {
  const int64_t e = int64_t(w13s.size());
  std::string hs = std::to_string(h), es = std::to_string(e);
  std::string text = stackedWeight("w13", w13s) + stackedWeight("w2", w2s) +
                     "func @moe(%x: tensor<?x" + hs + "xf32>, %l: tensor<?x" + es +
                     "xf32>) -> tensor<?x" + hs + "xf32> {\n  %y = moe %x, %l, @w13, @w2 {top_k = " +
                     std::to_string(topK) + ", renormalize = true}\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parseAndLower(text, sm, pipeline);
  ASSERT_TRUE(m);
  bool lowered = false;
  for (const auto &op : m->lookupFunction("moe")->ops())
    lowered |= op->name() == expectOp;
  ASSERT_TRUE(lowered) << pipeline << " did not produce " << expectOp;
  codegen::KernelSpec s13 = *codegen::specForWeight(*m->lookupWeight("w13")).spec;
  const bool int8 = s13.int8Capable() && codegen::hostHasInt8Dot();
  for (codegen::Activations a : {codegen::Activations::F32, codegen::Activations::Int8}) {
    if (a == codegen::Activations::Int8 && !int8)
      continue;
    codegen::setActivationOverride(a);
    SCOPED_TRACE(a == codegen::Activations::Int8 ? "int8 activations" : "f32 activations");
    for (int64_t t : {1, 3, 16, 128, 513})
      testw::checkMoe(*m, "moe", t, "w13", "", "w2", topK, true, false);
  }
  codegen::setActivationOverride(std::nullopt);
}

TEST(CodegenMarlinNpuMoe, MarlinFromAwq) {
  const int64_t h = 128, inter = 64;
  std::vector<TestWeight> w13, w2;
  for (int64_t ex = 0; ex < 4; ++ex) {
    w13.push_back(awqWeight(2 * inter, h, 32, ElemKind::F16, uint32_t(100 + ex)));
    w2.push_back(awqWeight(h, inter, 32, ElemKind::F16, uint32_t(200 + ex)));
  }
  checkMoe("lower-marlin", "marlin.moe", w13, w2, h, 2);
}

TEST(CodegenMarlinNpuMoe, MarlinFromGptqActOrder) {
  const int64_t h = 128, inter = 64;
  std::vector<TestWeight> w13, w2;
  for (int64_t ex = 0; ex < 3; ++ex) {
    w13.push_back(gptqWeight(2 * inter, h, 64, true, false, true, ElemKind::BF16, uint32_t(300 + ex)));
    w2.push_back(gptqWeight(h, inter, 32, true, false, true, ElemKind::BF16, uint32_t(400 + ex)));
  }
  checkMoe("lower-marlin", "marlin.moe", w13, w2, h, 2);
}

TEST(CodegenMarlinNpuMoe, NpuFromAwq) {
  const int64_t h = 96, inter = 40;
  std::vector<TestWeight> w13, w2;
  for (int64_t ex = 0; ex < 5; ++ex) {
    w13.push_back(awqWeight(2 * inter, h, 32, ElemKind::F16, uint32_t(500 + ex)));
    w2.push_back(awqWeight(h, inter, 8, ElemKind::F16, uint32_t(600 + ex)));
  }
  checkMoe("lower-npu", "npu.fused_experts", w13, w2, h, 3);
}

} // namespace
} // namespace qlc
