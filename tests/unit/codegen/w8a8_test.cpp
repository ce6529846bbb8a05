// W8A8_DYNAMIC (vllm-ascend, FORMATS.md §5.4) JIT kernels against the scheme's codec and the
// reference executor: shapes with odd N (tails of the 32-channel wide tile and the 4-row tile)
// and K not a multiple of 64 or 16 (the masked weight tail, the scalar x tails), f16 / bf16 /
// f32 scales, M in {1, 3, 16, 128, 513} (gemv and gemm), int8 and f32 activations, 1 and 3
// threads (bit-identical), and cpu.moe on W8A8 expert stacks.
//
// Int8 activations (the scheme's own arithmetic): per row m of x, s_m = max|x_m| / 127 and
// xq = roundeven(x / s_m) (f32 operations, as w8a8::quantizePerToken); acc = sum_k xq w in
// int32 (exact); y = f32(acc) * f32(s_m * ws[n]). Asserted per output:
//  (1) bit for bit: y == float(acc) * (s_m * ws[n]) with xq, s_m and acc from the codec
//      (quantizePerToken, accumulate) — the kernel's quantization equals the codec's and its
//      integer sums are exact; and |y - s_m ws acc| <= gamma(3) |s_m ws acc| (three roundings).
//  (2) against the f32 reference (x · W, W = f32(w · ws) as the hook): x̂_k = s_m xq_k differs
//      from x_k by <= s_m (1/2 + 2^-18) = s_m / 2 (1 + 2^-17) (|x / s_m| <= 127 + ulp, half an
//      ulp of a value below 128 is 2^-18), and W from w · ws by <= u |W|, so
//      |y - x·W| <= sum_k |W_k| s_m / 2 (1 + 2^-17) + u sum_k |x̂_k W_k| + gamma(3) |x̂·(w ws)|.
//      The test prints the observed error relative to sum |x W| and to max |y|.
// f32 activations (hosts without VNNI): w -> f32(w) * ws exactly as the hook, so the only error
// is the f32 accumulation: |y - x·W| <= gamma(KernelSpec::accumulationDepth()) sum |x W|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

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
#include "tests/unit/codegen/test_modules.h"

namespace qlc {
namespace {

using codegen::Activations;
using codegen::KernelSpec;
using namespace testw;

/// Restores the default activation mode when a test ends.
struct ActivationGuard {
  ~ActivationGuard() { codegen::setActivationOverride(std::nullopt); }
};

std::vector<float> decodedScales(const TestWeight &tw) {
  const auto &[e, bytes] = tw.parts.at("weight_scale");
  std::vector<float> s(bytes.size() / (e == ElemKind::F32 ? 4 : 2));
  for (size_t i = 0; i < s.size(); ++i) {
    if (e == ElemKind::F32) {
      std::memcpy(&s[i], bytes.data() + 4 * i, 4);
      continue;
    }
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    s[i] = e == ElemKind::BF16 ? bf16ToFloat(h) : halfToFloat(h);
  }
  return s;
}

std::vector<int8_t> codesOf(const TestWeight &tw) {
  const auto &bytes = tw.parts.at("weight").second;
  std::vector<int8_t> w(bytes.size());
  std::memcpy(w.data(), bytes.data(), bytes.size());
  return w;
}

/// Runs the kernel of `tw` for every M in `ms` with activations `act` and checks the bounds of
/// the module comment. x is random N(0, 1), then changed by `xEdit` if given.
void checkW8a8(const TestWeight &tw, Activations act, const std::vector<int64_t> &ms = kMs,
               int vectorWidth = 0,
               const std::function<void(std::vector<float> &, int64_t)> &xEdit = nullptr) {
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  ASSERT_TRUE(sr.spec.has_value()) << sr.reason;
  KernelSpec spec = *sr.spec;
  spec.act = act;
  spec.vectorWidth = vectorWidth;
  const bool int8 = act == Activations::Int8;
  const int64_t n = spec.n, k = spec.k;
  std::vector<float> w(size_t(n * k));
  ASSERT_EQ(tw.type.def->dequantize(tw.type, tw.view(), w.data()), "");
  const std::vector<float> ws = decodedScales(tw);
  const std::vector<int8_t> codes = codesOf(tw);
  std::vector<const uint8_t *> ptrs;
  for (const std::string &s : spec.partSlots())
    ptrs.push_back(tw.parts.at(s).second.data());
  const double u = std::ldexp(1.0, -24);
  for (int64_t m : ms) {
    KernelSpec used = spec;
    used.mclass = codegen::mClassFor(m);
    SCOPED_TRACE("M = " + std::to_string(m) + ", spec " + used.key());
    std::vector<float> x = randomVec(m * k, uint32_t(2000 + m));
    if (xEdit)
      xEdit(x, m);
    std::vector<float> y(size_t(m * n), NAN), yMt(size_t(m * n), NAN);
    ASSERT_FALSE(bool(codegen::runQMatmul(spec, ptrs.data(), x.data(), m, y.data(), nullptr)));
    ASSERT_FALSE(bool(codegen::runQMatmul(spec, ptrs.data(), x.data(), m, yMt.data(), &pool3())));
    w8a8::TokenQuant tq;
    std::vector<int32_t> acc;
    if (int8) {
      tq = w8a8::quantizePerToken(x, m, k);
      acc = w8a8::accumulate(tq.q, codes, m, k, n);
    }
    const double g = int8 ? gamma(3) : gamma(used.accumulationDepth());
    int64_t bad = 0;
    double worstArith = 0, worstRef = 0, relMag = 0, maxErr = 0, maxY = 0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const float got = y[size_t(i * n + j)];
        double exact = 0, mag = 0, quant = 0, magQ = 0;
        for (int64_t q = 0; q < k; ++q) {
          double wq = w[size_t(j * k + q)], p = double(x[size_t(i * k + q)]) * wq;
          exact += p;
          mag += std::fabs(p);
          if (int8) {
            quant += std::fabs(wq) * double(tq.scale[size_t(i)]) / 2 * (1 + 0x1p-17);
            magQ += std::fabs(double(tq.scale[size_t(i)]) * tq.q[size_t(i * k + q)] * wq);
          }
        }
        maxY = std::max(maxY, std::fabs(exact));
        double bound;
        if (int8) {
          // (1) the codec's integers, one f32 formula
          const float expect = float(acc[size_t(i * n + j)]) * (tq.scale[size_t(i)] * ws[size_t(j)]);
          const double yq = double(tq.scale[size_t(i)]) * ws[size_t(j)] * acc[size_t(i * n + j)];
          const double eq = std::fabs(got - yq), bq = g * std::fabs(yq);
          worstArith = std::max(worstArith, eq / (bq + 1e-300));
          if ((std::memcmp(&got, &expect, 4) != 0 || !(eq <= bq)) && bad++ < 5)
            ADD_FAILURE() << "y[" << i << ", " << j << "] = " << got << ", codec formula " << expect
                          << ", exact " << yq << " (acc " << acc[size_t(i * n + j)] << ")";
          bound = quant + u * magQ + g * std::fabs(yq);
        } else {
          bound = g * mag;
        }
        // (2) against the reference
        const double e = std::fabs(got - exact);
        worstRef = std::max(worstRef, e / (bound + 1e-300));
        relMag = std::max(relMag, e / (mag + 1e-300));
        maxErr = std::max(maxErr, e);
        if (!(e <= bound + 1e-30) && bad++ < 5)
          ADD_FAILURE() << "y[" << i << ", " << j << "] = " << got << ", reference " << exact
                        << ", |err| " << e << " > bound " << bound;
        if (std::memcmp(&got, &yMt[size_t(i * n + j)], 4) != 0 && bad++ < 5)
          ADD_FAILURE() << "multi-threaded y[" << i << ", " << j << "] = " << yMt[size_t(i * n + j)]
                        << " differs from single-threaded " << got;
      }
    EXPECT_EQ(bad, 0);
    std::printf("%-4s %-36s M=%-3lld %s|err|/bound vs reference %.3f, max |err|/sum|xw| %.2e, "
                "max |err|/max|y| %.2e\n",
                int8 ? "int8" : "f32", used.key().c_str(), (long long)m,
                int8 ? ("arith |err|/gamma(3)|y| " + std::to_string(worstArith) + "; ").c_str() : "",
                worstRef, relMag, maxErr / (maxY + 1e-300));
  }
}

void checkBoth(const TestWeight &tw, const std::vector<int64_t> &ms = kMs) {
  {
    SCOPED_TRACE("f32 activations");
    checkW8a8(tw, Activations::F32, ms);
  }
  if (codegen::hostHasInt8Dot()) {
    SCOPED_TRACE("int8 activations");
    checkW8a8(tw, Activations::Int8, ms);
  }
}

// N = 37: one wide tile (32) + a 4-row + a 1-row tail; N = 100: 3 wide tiles + one 4-row tile;
// N = 5: no wide tile. K = 100 (K % 64 = 36, K % 16 = 4), 64, 1000 (K % 64 = 40, K % 16 = 8),
// 7 (only tails), 4096.
TEST(CodegenW8a8, ShapesF16Scales) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 100}, {100, 64}, {5, 1000}, {37, 7}}) {
    SCOPED_TRACE("N = " + std::to_string(n) + ", K = " + std::to_string(k));
    checkBoth(w8a8Weight(n, k, ElemKind::F16, uint32_t(n + k)));
  }
  checkBoth(w8a8Weight(64, 4096, ElemKind::F16, 3), {1, 16});
}

TEST(CodegenW8a8, Bf16AndF32Scales) {
  checkBoth(w8a8Weight(37, 1000, ElemKind::BF16, 5));
  checkBoth(w8a8Weight(100, 130, ElemKind::F32, 6));
}

TEST(CodegenW8a8, Width8F32Kernel) {
  checkW8a8(w8a8Weight(37, 100, ElemKind::F16, 7), Activations::F32, kMs, 8);
}

// A row of zeros (s_m = 0: codes 0, y = 0 exactly) and a row with one outlier (the other codes
// mostly 0: the per-token scheme's weakness, still within the bound).
TEST(CodegenW8a8, ZeroAndOutlierRows) {
  if (!codegen::hostHasInt8Dot())
    GTEST_SKIP() << "no 8-bit dot products on this host";
  TestWeight tw = w8a8Weight(37, 100, ElemKind::F16, 8);
  checkW8a8(tw, Activations::Int8, {3, 16}, 0, [](std::vector<float> &x, int64_t m) {
    const int64_t k = int64_t(x.size()) / m;
    std::fill_n(x.begin(), k, 0.f);
    x[size_t(k + 5)] = 1000.f;
  });
}

TEST(CodegenW8a8, SpecAndDefaults) {
  ActivationGuard guard;
  TestWeight tw = w8a8Weight(37, 100, ElemKind::BF16, 9);
  auto sr = codegen::specForWeightType(tw.type, tw.elems());
  ASSERT_TRUE(sr.spec.has_value()) << sr.reason;
  EXPECT_EQ(sr.spec->layout, codegen::Layout::W8a8);
  EXPECT_EQ(sr.spec->partSlots(), (std::vector<std::string>{"weight", "weight_scale"}));
  EXPECT_TRUE(sr.spec->int8Capable());
  EXPECT_EQ(sr.spec->act, codegen::hostHasInt8Dot() ? Activations::Int8 : Activations::F32);
  EXPECT_NE(sr.spec->key().find("w8a8.bf16.n37.k100"), std::string::npos) << sr.spec->key();
  codegen::setActivationOverride(Activations::F32);
  EXPECT_EQ(codegen::specForWeightType(tw.type, tw.elems()).spec->act, Activations::F32);
}

/// One row through the int8 W8A8 kernel as the codec computes it: per-token quantization, exact
/// int32 sums, y = f32(acc) * (s * ws[n]).
std::vector<float> w8Row(const float *v, int64_t k, const int8_t *w, const float *ws, int64_t n) {
  w8a8::TokenQuant tq = w8a8::quantizePerToken(std::span<const float>(v, size_t(k)), 1, k);
  std::vector<int32_t> acc =
      w8a8::accumulate(tq.q, std::span<const int8_t>(w, size_t(n * k)), 1, k, n);
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    y[size_t(j)] = float(acc[size_t(j)]) * (tq.scale[0] * ws[j]);
  return y;
}

// cpu.moe on W8A8 expert stacks (the module's `moe` lowered by lower-cpu): the same kernels per
// expert. Int8 activations: the cpu result equals, bit for bit, an emulation built from the
// codec (per-token quantization of x and of the activation output, exact int32 sums, the one f32
// scaling; routing, silu in f64 and the f64 combine as runtime/moe_routing and the reference),
// for 1 and 3 threads. Against the reference (f32 x · dequantized W): the relative error
// max |y - y_ref| / max |y_ref| is printed and held to the cpu int8 tolerance 5e-2 of the API
// tests; the per-output first-order bound is moe_test.cpp's (CodegenMoe.W8a8). f32 activations:
// within 1e-4 of max |y_ref| (three f32-accumulated stages, see moe_test.cpp for the bound).
TEST(CodegenW8a8, MoeMatchesCodecEmulation) {
  ActivationGuard guard;
  const int64_t h = 100, inter = 72, e = 4, topK = 2;
  std::vector<TestWeight> w13, w2;
  for (int64_t ex = 0; ex < e; ++ex) {
    w13.push_back(w8a8Weight(2 * inter, h, ElemKind::F16, uint32_t(600 + ex)));
    w2.push_back(w8a8Weight(h, inter, ElemKind::BF16, uint32_t(700 + ex)));
  }
  std::string hs = std::to_string(h), es = std::to_string(e);
  std::string text = stackedWeight("w13", w13) + stackedWeight("w2", w2) + "func @moe(%x: tensor<?x" + hs +
                     "xf32>, %l: tensor<?x" + es + "xf32>) -> tensor<?x" + hs +
                     "xf32> {\n  %y = moe %x, %l, @w13, @w2 {top_k = " + std::to_string(topK) +
                     ", renormalize = true}\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parseAndLower(text, sm);
  ASSERT_TRUE(m);
  bool lowered = false;
  for (const auto &op : m->lookupFunction("moe")->ops())
    lowered |= op->name() == "cpu.moe";
  ASSERT_TRUE(lowered);
  for (Activations a : {Activations::F32, Activations::Int8}) {
    if (a == Activations::Int8 && !codegen::hostHasInt8Dot())
      continue;
    codegen::setActivationOverride(a);
    const bool int8 = a == Activations::Int8;
    for (int64_t tokens : {1, 3, 16, 128, 513}) {
      SCOPED_TRACE(std::string(int8 ? "int8" : "f32") + ", " + std::to_string(tokens) + " tokens");
      std::vector<float> x = randomVec(tokens * h, uint32_t(11 + tokens));
      std::vector<float> logits = randomVec(tokens * e, uint32_t(77 + tokens), 2.f);
      std::vector<Tensor> in = {Tensor::fromF32As(ElemKind::F32, {tokens, h}, x),
                                Tensor::fromF32As(ElemKind::F32, {tokens, e}, logits)};
      ReferenceExecutor ref(*m, nullptr);
      auto yr = ref.run("moe", in);
      ASSERT_TRUE(bool(yr)) << llvm::toString(yr.takeError());
      std::vector<float> vr = (*yr)[0].toF32(), v[2];
      for (unsigned t : {1u, 3u}) {
        std::string notes;
        llvm::raw_string_ostream nos(notes);
        CpuExecutorOptions o;
        o.threads = t;
        o.notes = &nos;
        CpuExecutor cpu(*m, nullptr, o);
        auto y = cpu.run("moe", in);
        ASSERT_TRUE(bool(y)) << llvm::toString(y.takeError());
        EXPECT_EQ(notes, "");
        EXPECT_EQ(cpu.stats().fallbacks, 0u);
        EXPECT_EQ(cpu.stats().jitOps, 1u);
        v[t == 3] = (*y)[0].toF32();
      }
      ASSERT_EQ(v[0].size(), size_t(tokens * h));
      EXPECT_EQ(std::memcmp(v[0].data(), v[1].data(), v[0].size() * 4), 0) << "3 threads differ";
      double maxRef = 0, maxErr = 0;
      for (size_t i = 0; i < vr.size(); ++i) {
        maxRef = std::max(maxRef, std::fabs(double(vr[i])));
        maxErr = std::max(maxErr, std::fabs(double(v[0][i]) - vr[i]));
      }
      EXPECT_LE(maxErr / maxRef, int8 ? 5e-2 : 1e-4);
      std::printf("w8a8 moe %s tokens=%-3lld max |y - y_ref| / max |y_ref| = %.3g\n",
                  int8 ? "int8" : "f32 ", (long long)tokens, maxErr / maxRef);
      if (!int8)
        continue;
      MoeRoutes routes = routeTopK(logits.data(), tokens, e, topK, true);
      int64_t bad = 0;
      for (int64_t t = 0; t < tokens; ++t) {
        std::vector<double> acc(static_cast<size_t>(h), 0.0);
        for (int64_t s = 0; s < topK; ++s) {
          int64_t ex = routes.expert[size_t(t * topK + s)];
          const TestWeight &a13 = w13[size_t(ex)], &a2 = w2[size_t(ex)];
          std::vector<float> gu = w8Row(x.data() + t * h, h, codesOf(a13).data(),
                                        decodedScales(a13).data(), 2 * inter);
          std::vector<float> act(static_cast<size_t>(inter));
          for (int64_t i = 0; i < inter; ++i) {
            double g = gu[size_t(i)];
            act[size_t(i)] = float(g / (1.0 + std::exp(-g)) * double(gu[size_t(inter + i)]));
          }
          std::vector<float> o = w8Row(act.data(), inter, codesOf(a2).data(),
                                       decodedScales(a2).data(), h);
          for (int64_t j = 0; j < h; ++j)
            acc[size_t(j)] += routes.weight[size_t(t * topK + s)] * o[size_t(j)];
        }
        for (int64_t j = 0; j < h; ++j) {
          float want = float(acc[size_t(j)]), got = v[0][size_t(t * h + j)];
          if (std::memcmp(&want, &got, 4) != 0 && bad++ < 5)
            ADD_FAILURE() << "y[" << t << ", " << j << "] = " << got << ", emulation " << want;
        }
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

// A W8A8 linear through the cpu executor runs as a JIT kernel (no fallback note).
TEST(CodegenW8a8, CpuExecutorLinear) {
  TestWeight tw = w8a8Weight(37, 100, ElemKind::F16, 10);
  std::string text = denseWeight("w", tw) + "func @f(%x: tensor<?x100xf32>) -> tensor<?x37xf32> {\n"
         "  %y = linear %x, @w : tensor<?x37xf32>\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parseAndLower(text, sm);
  ASSERT_TRUE(m);
  std::vector<float> x = randomVec(5 * 100, 3);
  std::vector<Tensor> in = {Tensor::fromF32As(ElemKind::F32, {5, 100}, x)};
  std::string notes;
  llvm::raw_string_ostream nos(notes);
  CpuExecutorOptions o;
  o.notes = &nos;
  CpuExecutor cpu(*m, nullptr, o);
  auto y = cpu.run("f", in);
  ASSERT_TRUE(bool(y)) << llvm::toString(y.takeError());
  EXPECT_EQ(notes, "");
  EXPECT_EQ(cpu.stats().jitOps, 1u);
  EXPECT_EQ(cpu.stats().fallbacks, 0u);
  // the same values as the kernel called directly
  KernelSpec s = *codegen::specForWeightType(tw.type, tw.elems()).spec;
  std::vector<const uint8_t *> ptrs = {tw.parts.at("weight").second.data(),
                                       tw.parts.at("weight_scale").second.data()};
  std::vector<float> direct(5 * 37);
  ASSERT_FALSE(bool(codegen::runQMatmul(s, ptrs.data(), x.data(), 5, direct.data(), nullptr)));
  std::vector<float> got = (*y)[0].toF32();
  EXPECT_EQ(std::memcmp(got.data(), direct.data(), direct.size() * 4), 0);
}

/// JIT compile time of the W8A8 kernels at realistic shapes (printed; a loose bound only).
TEST(CodegenW8a8, CompileTimeReport) {
  codegen::KernelCache cache;
  for (auto [n, k] : {std::pair<int64_t, int64_t>{64, 4096}, {4096, 4096}, {14336, 4096}, {4096, 14336}}) {
    TestWeight tw = w8a8Weight(4, 4, ElemKind::F16, 1); // only the type's shape matters
    KernelSpec base = *codegen::specForWeightType(tw.type, tw.elems()).spec;
    base.n = n;
    base.k = k;
    for (Activations a : {Activations::F32, Activations::Int8})
      for (codegen::MClass c : {codegen::MClass::Gemv, codegen::MClass::Gemm}) {
        if (a == Activations::Int8 && !codegen::hostHasInt8Dot())
          continue;
        KernelSpec s = base;
        s.act = a;
        s.mclass = c;
        auto kf = cache.get(s);
        ASSERT_TRUE(bool(kf)) << llvm::toString(kf.takeError());
        std::printf("compile %-40s %7.1f ms (CPU %7.1f ms)\n", s.key().c_str(), (*kf)->compileMs,
                    (*kf)->compileCpuMs);
        EXPECT_LT((*kf)->compileMs, 5000.0);
      }
  }
}

} // namespace
} // namespace qlc
