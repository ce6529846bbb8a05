// cpu.moe on the JIT against the reference executor, for every layout with a kernel (GGUF Q8_0,
// Q4_0, Q4_K with a Q6_K w2, Q6_K, Q2_K with a Q3_K w2, Q5_K, Q4_1 with a Q5_0 w2, Q5_1, AWQ, GPTQ with act-order, compressed-tensors) and tokens in
// {1, 3, 16, 128, 513} (gemv for experts with <= 8 routed rows, gemm above). The module is written
// with the core `moe` op and lowered with `lower-cpu` (fuse-dequant makes it a cpu.moe); the
// reference runs the same lowered module. Also: the unfused (gate, up, down) form with gelu and no
// renormalization, and multi-threaded results bit-identical to single-threaded ones.
//
// Bound (per output, first order, both executors route identically: same f64 softmax, stable
// sort and renormalization; u = 2^-24, exact quantities in f64 from the hook-dequantized W):
//   gate / up   δg_i = γ(d13) Σ_k |x_k W13_ik| + u |g_i|        (kernel chain; reference rounding)
//   act         δa_i = L δg_i (|up_i| + δu_i) + |act(g_i)| δu_i + 2u |a_i|,  L = 1.13 ≥ |act'|
//   down        δo_h = Σ_i |W2_hi| δa_i + γ(d2) Σ_i |a_i W2_hi| + u |o_h|
//   combine     δy_h = Σ_slots w_s δo_h + 2u |y_h|               (both accumulate in f64)
// with d = KernelSpec::accumulationDepth() of the kernel that ran. Int8-activation kernels
// (GGUF on a host with VNNI; codegen_test.cpp derives their bound) add the activation rounding
// Σ_k |W_ik| e_k, e_k = (max |v| over k's 32-block; 256 for the K-quant gemm, KernelSpec::
// actScaleBlock) / 254 (1 + 2^-17) of their input v (x for
// gate / up; for down the act output, its block max taken as max (|a_i| + δa_i)), and their
// arithmetic term is γ(4K/32 + 16) Σ_k (|W_ik| + C A_ik)(|v_k| + e_k) with A = max |W| over the
// 32-block and C = 64 (126 for Q5_K / Q5_1, whose min term can reach 63 A; gguf_kquants_test.cpp). The test requires |y_cpu - y_ref| <= 1.05 δy (5% for the neglected second-order terms).
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
#include "tests/unit/codegen/test_modules.h"

namespace qlc {
namespace {

using namespace testw;

struct MoeCase {
  std::string name;
  std::function<TestWeight(int64_t n, int64_t k, uint32_t seed)> make13, make2;
  int64_t h, inter, experts = 4, topK = 2;
};

double actOf(double g, bool gelu) {
  return gelu ? 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0))) : g / (1.0 + std::exp(-g));
}

/// Runs `fn` of `m` on random inputs with `tokens` rows through the reference and the cpu
/// executor (1 and 3 threads) and checks the bound above. `w13` / `up` / `w2` name the weights.
void checkMoe(const Module &m, const std::string &fn, int64_t tokens, const std::string &w13Name,
              const std::string &upName, const std::string &w2Name, int64_t topK,
              bool renormalize, bool gelu) {
  SCOPED_TRACE(fn + " with " + std::to_string(tokens) + " tokens");
  const Weight *w13 = m.lookupWeight(w13Name), *w2 = m.lookupWeight(w2Name);
  const Weight *wu = upName.empty() ? nullptr : m.lookupWeight(upName);
  ASSERT_TRUE(w13 && w2);
  const int64_t e = w13->experts(), h = w2->logicalShape()[1], inter = w2->logicalShape()[2];
  std::vector<float> x = randomVec(tokens * h, uint32_t(7 + tokens));
  std::vector<float> logits = randomVec(tokens * e, uint32_t(99 + tokens), 2.f);
  std::vector<Tensor> in = {Tensor::fromF32As(ElemKind::F32, {tokens, h}, x),
                            Tensor::fromF32As(ElemKind::F32, {tokens, e}, logits)};
  ReferenceExecutor ref(m, nullptr);
  auto yr = ref.run(fn, in);
  ASSERT_TRUE(bool(yr)) << llvm::toString(yr.takeError());
  std::string notes;
  llvm::raw_string_ostream nos(notes);
  CpuExecutorOptions o1;
  o1.threads = 1;
  o1.notes = &nos;
  CpuExecutor cpu1(m, nullptr, o1);
  auto y1 = cpu1.run(fn, in);
  ASSERT_TRUE(bool(y1)) << llvm::toString(y1.takeError());
  EXPECT_EQ(notes, "");
  EXPECT_EQ(cpu1.stats().fallbacks, 0u);
  CpuExecutorOptions o3 = o1;
  o3.threads = 3;
  CpuExecutor cpu3(m, nullptr, o3);
  auto y3 = cpu3.run(fn, in);
  ASSERT_TRUE(bool(y3)) << llvm::toString(y3.takeError());
  std::vector<float> vr = (*yr)[0].toF32(), v1 = (*y1)[0].toF32(), v3 = (*y3)[0].toF32();
  ASSERT_EQ(v1.size(), size_t(tokens * h));
  EXPECT_EQ(std::memcmp(v1.data(), v3.data(), v1.size() * 4), 0)
      << "3 threads differ from 1 thread";

  // The exact quantities and the bound.
  auto d13 = dequantizeWeight(*w13, nullptr), d2 = dequantizeWeight(*w2, nullptr);
  ASSERT_TRUE(d13 && d2);
  std::vector<float> dUp;
  if (wu) {
    auto d = dequantizeWeight(*wu, nullptr);
    ASSERT_TRUE(bool(d));
    dUp = std::move(*d);
  }
  auto depth = [](const Weight &w, int64_t rows) {
    codegen::KernelSpec s = *codegen::specForWeight(w).spec;
    s.mclass = codegen::mClassFor(rows);
    if (s.act == codegen::Activations::Int8)
      return gamma(4 * s.k / codegen::kActBlock + 16); // test_weights.h: <= 4 FMAs a block
    return gamma(s.accumulationDepth());
  };
  auto minFactor = [](const Weight &w) {
    codegen::Layout l = codegen::specForWeight(w).spec->layout;
    return l == codegen::Layout::GgufQ5_K || l == codegen::Layout::GgufQ5_1 ? 126.0 : 64.0;
  };
  const double c13 = minFactor(*w13), c2 = minFactor(*w2);
  const bool int8_13 = codegen::specForWeight(*w13).spec->act == codegen::Activations::Int8;
  const bool int8_2 = codegen::specForWeight(*w2).spec->act == codegen::Activations::Int8;
  // x elements per activation scale of the kernel that ran on `rows` tokens (W8A8: per token;
  // the K-quant gemm: per 256).
  auto tokenBlock = [](const Weight &w, int64_t rows) {
    codegen::KernelSpec s = *codegen::specForWeight(w).spec;
    s.mclass = codegen::mClassFor(rows);
    return s.layout == codegen::Layout::W8a8 ? s.k : s.actScaleBlock();
  };
  // Per-element activation rounding bounds of a vector v (|v_k| + slack_k) and the int8 kernels'
  // error of one output: sum |w| e + g * sum (|w| + 64 A)(|v| + slack + e).
  // W8A8 quantizes per token: one block of the whole row (its arithmetic, gamma(3) |x̂ w| plus
  // the hook's rounding of w * ws, is within the GGUF term below).
  auto int8Err = [](const double *absv, const float *w, int64_t k, double g, double C,
                    int64_t blk) {
    double quant = 0, arith = 0;
    for (int64_t b0 = 0; b0 < k; b0 += blk) {
      double vmax = 0, wmax = 0;
      for (int64_t q = b0; q < b0 + blk; ++q) {
        vmax = std::max(vmax, absv[q]);
        wmax = std::max(wmax, std::fabs(double(w[q])));
      }
      double e = vmax / 254 * (1 + 0x1p-17) * (1 + 1e-6);
      for (int64_t q = b0; q < b0 + blk; ++q) {
        quant += std::fabs(double(w[q])) * e;
        arith += g * (std::fabs(double(w[q])) + C * wmax) * (absv[q] + e);
      }
    }
    return quant + arith;
  };
  std::vector<double> absx(static_cast<size_t>(h)), absa(static_cast<size_t>(inter));
  const double u = std::ldexp(1.0, -24), L = 1.13;
  codegen::MoeConfig cfg;
  cfg.topK = topK;
  cfg.renormalize = renormalize;
  MoeRoutes routes = routeTopK(logits.data(), tokens, e, topK, renormalize);
  const std::vector<int64_t> &expertOf = routes.expert;
  const std::vector<double> &weightOf = routes.weight;
  std::vector<int64_t> rowsOf(static_cast<size_t>(e), 0);
  for (int64_t ex : expertOf)
    ++rowsOf[size_t(ex)];
  const int64_t n13 = wu ? inter : 2 * inter;
  int64_t bad = 0;
  double worst = 0;
  std::vector<double> a(static_cast<size_t>(inter)), da(static_cast<size_t>(inter));
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> yx(static_cast<size_t>(h), 0.0), dy(static_cast<size_t>(h), 0.0);
    const float *xt = x.data() + t * h;
    for (int64_t k = 0; k < h; ++k)
      absx[size_t(k)] = std::fabs(double(xt[k]));
    for (int64_t s = 0; s < topK; ++s) {
      int64_t ex = expertOf[size_t(t * topK + s)];
      double wt = weightOf[size_t(t * topK + s)];
      const double g13 = depth(*w13, rowsOf[size_t(ex)]), g2 = depth(*w2, rowsOf[size_t(ex)]);
      const int64_t blk13 = tokenBlock(*w13, rowsOf[size_t(ex)]);
      const int64_t blk2 = tokenBlock(*w2, rowsOf[size_t(ex)]);
      for (int64_t i = 0; i < inter; ++i) {
        const float *gw = d13->data() + (ex * n13 + i) * h;
        const float *uw = wu ? dUp.data() + (ex * inter + i) * h : gw + inter * h;
        double g = 0, mg = 0, up = 0, mu = 0;
        for (int64_t k = 0; k < h; ++k) {
          g += double(xt[k]) * gw[k];
          mg += std::fabs(double(xt[k]) * gw[k]);
          up += double(xt[k]) * uw[k];
          mu += std::fabs(double(xt[k]) * uw[k]);
        }
        double dg = g13 * mg + u * std::fabs(g), du = g13 * mu + u * std::fabs(up);
        if (int8_13) {
          dg = int8Err(absx.data(), gw, h, g13, c13, blk13) + u * std::fabs(g);
          du = int8Err(absx.data(), uw, h, g13, c13, blk13) + u * std::fabs(up);
        }
        double act = actOf(g, gelu);
        a[size_t(i)] = act * up;
        da[size_t(i)] = L * dg * (std::fabs(up) + du) + std::fabs(act) * du +
                        2 * u * std::fabs(a[size_t(i)]);
        absa[size_t(i)] = std::fabs(a[size_t(i)]) + da[size_t(i)];
      }
      for (int64_t j = 0; j < h; ++j) {
        const float *dw = d2->data() + (ex * h + j) * inter;
        double oj = 0, mo = 0, prop = 0;
        for (int64_t i = 0; i < inter; ++i) {
          oj += a[size_t(i)] * dw[i];
          mo += std::fabs(a[size_t(i)] * dw[i]);
          prop += std::fabs(double(dw[i])) * da[size_t(i)];
        }
        yx[size_t(j)] += wt * oj;
        double kern = int8_2 ? int8Err(absa.data(), dw, inter, g2, c2, blk2) : g2 * mo;
        dy[size_t(j)] += wt * (prop + kern + u * std::fabs(oj));
      }
    }
    for (int64_t j = 0; j < h; ++j) {
      double bound = 1.05 * (dy[size_t(j)] + 2 * u * std::fabs(yx[size_t(j)])) + 1e-30;
      double err = std::fabs(double(v1[size_t(t * h + j)]) - double(vr[size_t(t * h + j)]));
      worst = std::max(worst, err / bound);
      if (!(err <= bound) && bad++ < 5)
        ADD_FAILURE() << "y[" << t << ", " << j << "] = " << v1[size_t(t * h + j)]
                      << ", reference " << vr[size_t(t * h + j)] << ", |diff| " << err
                      << " > bound " << bound;
    }
  }
  EXPECT_EQ(bad, 0) << "worst |diff| / bound = " << worst;
}

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
