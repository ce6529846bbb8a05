// The MoE check shared by moe_test.cpp and marlin_npu_test.cpp: a function of a lowered module
// run on random inputs through the reference and the cpu executor (1 and 3 threads).
//
// Bound (per output, first order, both executors route identically: same f64 softmax, stable
// sort and renormalization; u = 2^-24, exact quantities in f64 from the hook-dequantized W):
//   gate / up   δg_i = γ(d13) Σ_k |x_k W13_ik| + u |g_i|        (kernel chain; reference rounding)
//   act         δa_i = L δg_i (|up_i| + δu_i) + |act(g_i)| δu_i + 2u |a_i|,  L = 1.13 ≥ |act'|
//   down        δo_h = Σ_i |W2_hi| δa_i + γ(d2) Σ_i |a_i W2_hi| + u |o_h|
//   combine     δy_h = Σ_slots w_s δo_h + 2u |y_h|               (both accumulate in f64)
// with d = KernelSpec::accumulationDepth() of the kernel that ran. Int8-activation kernels
// (on a host with VNNI; codegen_test.cpp derives their bound) add the activation rounding
// Σ_k |W_ik| e_k, e_k = (max |v| over k's 32-block; 256 for the K-quant gemm, KernelSpec::
// actScaleBlock) / 254 (1 + 2^-17) of their input v (x for
// gate / up; for down the act output, its block max taken as max (|a_i| + δa_i)), and their
// arithmetic term is γ(4K/32 + 16) Σ_k (|W_ik| + C A_ik)(|v_k| + e_k) with A = max |W| over the
// 32-block and C = 64 (126 for Q5_K / Q5_1, whose min term can reach 63 A; gguf_kquants_test.cpp;
// the channel-lane AWQ / GPTQ / Marlin / NPU kernels have no min term, so it only loosens theirs).
// The test requires |y_cpu - y_ref| <= 1.05 δy (5% for the neglected second-order terms).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "llvm/Support/raw_ostream.h"

#include "codegen/kernel_spec.h"
#include "codegen/moe.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/moe_routing.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "tests/unit/codegen/test_weights.h"

namespace qlc::testw {

inline double actOf(double g, bool gelu) {
  return gelu ? 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0))) : g / (1.0 + std::exp(-g));
}

/// Runs `fn` of `m` on random inputs with `tokens` rows through the reference and the cpu
/// executor (1 and 3 threads) and checks the bound above. `w13` / `up` / `w2` name the weights.
inline void checkMoe(const Module &m, const std::string &fn, int64_t tokens, const std::string &w13Name,
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

} // namespace qlc::testw
