// npu-layout-rewrite checked by computing: the reference executor on a module before and after the
// pass (AWQ linear / MoE, W8A8 linear), and the test-only inverse giving back the input bits.
#include <cmath>

#include "ir/printer.h"
#include "npu_test_util.h"
#include "schemes/npu/npu_convert.h"
#include "schemes/w8a8/codec.h"

using namespace qlc;
using namespace qlc::npu_test;

namespace {

std::string fnLinear(int64_t m, int64_t n, int64_t k, const std::string &xElem, bool bias) {
  return "func @f(%x: tensor<" + std::to_string(m) + "x" + std::to_string(k) + "x" + xElem +
         ">) -> tensor<" + std::to_string(m) + "x" + std::to_string(n) + "x" + xElem + "> {\n" +
         "  %y = linear %x, @w" + (bias ? ", @b" : "") + "\n  return %y\n}\n";
}

/// Every op of @f, by name.
std::vector<std::string> opNames(const Module &m) {
  std::vector<std::string> r;
  for (const auto &op : m.lookupFunction("f")->ops())
    r.push_back(op->name());
  return r;
}

/// The bytes of part `name` of `w` (inline).
std::vector<uint8_t> bytesOf(const Weight &w, const std::string &name) {
  const WeightPart *p = w.part(name);
  EXPECT_TRUE(p && p->isInline()) << "@" << w.name() << " part " << name;
  return p && p->isInline() ? *p->data : std::vector<uint8_t>{};
}

/// Applies the inverse to `npuW` and compares every AWQ part with `awqW`'s bytes.
void expectInverseGivesBack(const Weight &npuW, const Weight &awqW) {
  auto back = schemes::npuW4ToAwq(npuW, nullptr);
  ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(weightSymbolTypeStr(back->type), weightSymbolTypeStr(awqW.type()));
  for (const WeightPart &p : back->parts) {
    ASSERT_TRUE(p.isInline());
    EXPECT_EQ(p.type, awqW.part(p.name)->type) << p.name;
    EXPECT_EQ(*p.data, bytesOf(awqW, p.name)) << "@" << awqW.name() << " part " << p.name;
  }
}

struct LinearCase {
  int64_t m, n, k, g;
  std::string scaleElem, xElem;
  bool bias;
};
void PrintTo(const LinearCase &c, std::ostream *os) {
  *os << "M=" << c.m << " N=" << c.n << " K=" << c.k << " G=" << c.g << " scales " << c.scaleElem
      << " x " << c.xElem << (c.bias ? " +bias" : "");
}

class NpuRewriteAwqLinear : public ::testing::TestWithParam<LinearCase> {};

// Before: linear on !awq (dequant (q − z)·s). After: npu.weight_quant_batchmatmul on !npu_w4
// (antiquant (w + offset)·s). The antiquantized weights are bit-identical (npu_codec_test) and both
// ops accumulate in the same order in f64, so the tolerance is ZERO: the outputs must be equal
// bit for bit (also after rounding to f16 / bf16 outputs, which are then the same rounding of the
// same value). On the device only the accumulation order would differ.
TEST_P(NpuRewriteAwqLinear, SameOutputsAndInverse) {
  const LinearCase &c = GetParam();
  std::mt19937 rng(uint32_t(c.n * 1000 + c.k * 10 + c.m + (c.g == -1 ? 1 : c.g)));
  std::string text = randomAwqWeight(rng, "w", c.n, c.k, c.g, 0, c.scaleElem) +
                     (c.bias ? denseWeight(rng, "b", {c.n}) : "") +
                     fnLinear(c.m, c.n, c.k, c.xElem, c.bias);
  llvm::SourceMgr sm;
  auto before = parse(text, sm);
  ASSERT_TRUE(before);
  auto after = before->clone();
  ASSERT_EQ(runPipeline(*after, sm, "npu-layout-rewrite"), "");
  EXPECT_EQ(after->lookupWeight("w")->quantType().mnemonic(), "npu_w4");
  EXPECT_EQ(opNames(*after), (std::vector<std::string>{"npu.weight_quant_batchmatmul", "return"}));

  ElemKind xe = *parseElemKind(c.xElem);
  Tensor x = Tensor::fromF32As(xe, {c.m, c.k}, randomValues(rng, size_t(c.m * c.k), -2.f, 2.f));
  std::vector<float> ref = run(*before, "f", {x}), got = run(*after, "f", {x});
  ASSERT_EQ(ref.size(), size_t(c.m * c.n));
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_EQ(got[i], ref[i]) << "output " << i;

  expectInverseGivesBack(*after->lookupWeight("w"), *before->lookupWeight("w"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, NpuRewriteAwqLinear,
                         ::testing::Values(LinearCase{3, 64, 128, 32, "f16", "f32", false},
                                           LinearCase{5, 16, 128, 64, "f16", "f16", true},
                                           LinearCase{2, 24, 256, 128, "bf16", "bf16", true},
                                           LinearCase{4, 8, 96, -1, "f32", "f32", false},
                                           LinearCase{1, 40, 64, 32, "bf16", "f32", true},
                                           LinearCase{7, 32, 384, 128, "f16", "f32", false},
                                           LinearCase{2, 8, 32, -1, "f16", "bf16", false}));

struct MoeCase {
  int64_t t, h, inter, e, topK, g;
  bool renormalize, unfused;
  std::string scaleElem;
};
void PrintTo(const MoeCase &c, std::ostream *os) {
  *os << "T=" << c.t << " H=" << c.h << " I=" << c.inter << " E=" << c.e << " top_k=" << c.topK
      << " G=" << c.g << (c.renormalize ? " renormalize" : "")
      << (c.unfused ? " unfused" : " fused") << " scales " << c.scaleElem;
}

class NpuRewriteAwqMoe : public ::testing::TestWithParam<MoeCase> {};

// Before: core moe (routing in f64 inside the op). After: npu.moe_gating_topk (routing weights
// rounded to f32) + npu.fused_experts (init_routing, gmm, swiglu, gmm, finalize). Per expert row
// every intermediate is computed in the same order as the core op, so the only difference is the
// f32 rounding of each routing weight w_j (relative 2^-24): |Δy| <= 2^-24 · Σ_j w_j |o_j| plus
// one f32 rounding of y. Checked with |Δy| <= 1e-6 · max|y| (+ 1e-12).
TEST_P(NpuRewriteAwqMoe, SameOutputsAndInverse) {
  const MoeCase &c = GetParam();
  std::mt19937 rng(uint32_t(c.t * 31 + c.h * 7 + c.inter + c.e * 101 + c.unfused));
  std::string text;
  if (c.unfused) {
    text += randomAwqWeight(rng, "experts.gate_proj", c.inter, c.h, c.g, c.e, c.scaleElem);
    text += randomAwqWeight(rng, "experts.up_proj", c.inter, c.h, c.g, c.e, c.scaleElem);
  } else {
    text += randomAwqWeight(rng, "experts.w13", 2 * c.inter, c.h, c.g, c.e, c.scaleElem);
  }
  text += randomAwqWeight(rng, "experts.down_proj", c.h, c.inter, c.g, c.e, c.scaleElem);
  std::string ts = std::to_string(c.t), hs = std::to_string(c.h);
  text += "func @f(%x: tensor<" + ts + "x" + hs + "xf32>, %l: tensor<" + ts + "x" +
          std::to_string(c.e) + "xf32>) -> tensor<" + ts + "x" + hs +
          "xf32> {\n  %y = moe %x, %l, " +
          (c.unfused ? "@experts.gate_proj, @experts.up_proj" : "@experts.w13") +
          ", @experts.down_proj {top_k = " + std::to_string(c.topK) +
          ", renormalize = " + (c.renormalize ? "true" : "false") + "}\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto before = parse(text, sm);
  ASSERT_TRUE(before);
  auto after = before->clone();
  ASSERT_EQ(runPipeline(*after, sm, "lower-npu"), "");
  EXPECT_EQ(opNames(*after),
            (std::vector<std::string>{"npu.moe_gating_topk", "npu.fused_experts", "return"}));
  if (c.unfused) { // dce dropped gate and up; the merged stack took their place
    EXPECT_FALSE(after->lookupWeight("experts.gate_proj"));
    EXPECT_FALSE(after->lookupWeight("experts.up_proj"));
  }
  ASSERT_TRUE(after->lookupWeight("experts.w13"));
  EXPECT_EQ(after->lookupWeight("experts.w13")->quantType().mnemonic(), "npu_w4");

  Tensor x = Tensor::fromF32({c.t, c.h}, randomValues(rng, size_t(c.t * c.h), -2.f, 2.f));
  Tensor l = Tensor::fromF32({c.t, c.e}, randomValues(rng, size_t(c.t * c.e), -3.f, 3.f));
  std::vector<float> ref = run(*before, "f", {x, l}), got = run(*after, "f", {x, l});
  ASSERT_EQ(ref.size(), size_t(c.t * c.h));
  ASSERT_EQ(got.size(), ref.size());
  float maxAbs = 0;
  for (float v : ref)
    maxAbs = std::max(maxAbs, std::fabs(v));
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(got[i], ref[i], 1e-6 * maxAbs + 1e-12) << "output " << i;

  // Inverse: w2 gives back the checkpoint bits; the merged w13 gives back [gate ; up] per expert
  // (which for AWQ words is the concatenation of the two word rows, since I % 8 == 0).
  expectInverseGivesBack(*after->lookupWeight("experts.down_proj"),
                         *before->lookupWeight("experts.down_proj"));
  if (!c.unfused) {
    expectInverseGivesBack(*after->lookupWeight("experts.w13"),
                           *before->lookupWeight("experts.w13"));
    return;
  }
  auto back = schemes::npuW4ToAwq(*after->lookupWeight("experts.w13"), nullptr);
  ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
  const Weight &gate = *before->lookupWeight("experts.gate_proj");
  const Weight &up = *before->lookupWeight("experts.up_proj");
  for (const WeightPart &p : back->parts) {
    std::vector<uint8_t> a = bytesOf(gate, p.name), b = bytesOf(up, p.name), want;
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < p.type.dims.size(); ++i)
      rows *= p.type.dims[i];
    size_t ra = a.size() / size_t(rows), rb = b.size() / size_t(rows);
    for (int64_t r = 0; r < rows; ++r) {
      want.insert(want.end(), a.begin() + r * ra, a.begin() + (r + 1) * ra);
      want.insert(want.end(), b.begin() + r * rb, b.begin() + (r + 1) * rb);
    }
    EXPECT_EQ(*p.data, want) << "w13 part " << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, NpuRewriteAwqMoe,
                         ::testing::Values(MoeCase{5, 64, 32, 4, 2, 32, true, false, "f16"},
                                           MoeCase{6, 128, 64, 8, 3, 64, false, false, "bf16"},
                                           MoeCase{4, 64, 32, 4, 2, 32, true, true, "f16"},
                                           MoeCase{3, 128, 16, 3, 1, -1, false, true, "f32"},
                                           MoeCase{9, 256, 128, 6, 2, 128, true, true, "f16"}));

// W8A8: before = linear with the f32 reference (x · Wᵀ, W = w · scale); after = npu.dynamic_quant
// + npu.quant_matmul, which quantizes x per token. Two checks:
//  1. exact: the NPU path equals an independent computation with the codec's quantizePerToken and
//     w8a8::matmul (same integers, same f64 product, one rounding) — bit for bit;
//  2. bounded: per token m, |x_q·s_m − x| <= s_m / 2 = max|x_m| / 254 elementwise (round to
//  nearest,
//     |x/s| <= 127 so no clamping), the weight is exact on both sides, hence
//     |y_npu − y_ref|[m, n] <= max|x_m| / 254 · Σ_k |W[n, k]|  (+ f32 rounding, 1e-5 relative
//     slack).
TEST(NpuRewriteW8a8, DynamicQuantMatchesCodecAndBound) {
  std::mt19937 rng(11);
  for (auto [m, n, k, bias] : {std::tuple{4, 16, 64, false}, std::tuple{3, 40, 128, true},
                               std::tuple{1, 8, 256, true}, std::tuple{6, 24, 32, false}}) {
    std::vector<float> wf = randomValues(rng, size_t(n * k), -0.5f, 0.5f);
    w8a8::Checkpoint ck = w8a8::quantize(wf, k, n);
    std::vector<float> b = randomValues(rng, size_t(n));
    std::string ns = std::to_string(n), ks = std::to_string(k);
    std::string text = "weight @w : !w8a8<shape = [" + ns + ", " + ks + "]> {\n  weight = tensor<" +
                       ns + "x" + ks + "xi8> = hex\"" + hexOf(ck.weight) +
                       "\",\n  weight_scale = tensor<" + ns + "x1xf32> = hex\"" +
                       hexOf(ck.weightScale) + "\",\n  weight_offset = tensor<" + ns +
                       "x1xf32> = hex\"" + hexOf(ck.weightOffset) + "\"\n}\n";
    if (bias)
      text += "weight @b : tensor<" + ns + "xf32> { data = tensor<" + ns + "xf32> = hex\"" +
              hexOf(b) + "\" }\n";
    text += fnLinear(m, n, k, "f32", bias);
    llvm::SourceMgr sm;
    auto before = parse(text, sm);
    ASSERT_TRUE(before);
    auto after = before->clone();
    ASSERT_EQ(runPipeline(*after, sm, "lower-npu"), "");
    EXPECT_EQ(opNames(*after),
              (std::vector<std::string>{"npu.dynamic_quant", "npu.quant_matmul", "return"}));
    EXPECT_EQ(after->lookupWeight("w")->quantType().mnemonic(), "npu_w8a8");

    std::vector<float> xv = randomValues(rng, size_t(m * k), -3.f, 3.f);
    Tensor x = Tensor::fromF32({m, k}, xv);
    std::vector<float> ref = run(*before, "f", {x}), got = run(*after, "f", {x});
    ASSERT_EQ(got.size(), size_t(m * n));

    w8a8::TokenQuant tq = w8a8::quantizePerToken(xv, m, k);
    std::vector<float> indep =
        w8a8::matmul(tq.q, tq.scale, ck.weight, ck.weightScale,
                     bias ? std::span<const float>(b) : std::span<const float>(), m, k, n);
    for (int64_t r = 0; r < m; ++r) {
      float amax = 0;
      for (int64_t i = 0; i < k; ++i)
        amax = std::max(amax, std::fabs(xv[size_t(r * k + i)]));
      for (int64_t c = 0; c < n; ++c) {
        size_t o = size_t(r * n + c);
        ASSERT_EQ(got[o], indep[o]) << "m = " << r << ", n = " << c;
        double l1 = 0;
        for (int64_t i = 0; i < k; ++i)
          l1 += std::fabs(double(ck.weight[size_t(c * k + i)]) * ck.weightScale[size_t(c)]);
        double bound = double(amax) / 254.0 * l1 * (1 + 1e-5) + 1e-5 * std::fabs(ref[o]) + 1e-7;
        ASSERT_LE(std::fabs(double(got[o]) - double(ref[o])), bound)
            << "m = " << r << ", n = " << c;
      }
    }
  }
}

// The !w8a8 → !npu_w8a8 conversion keeps every value: weight transposed, scale f16 → f32 exactly.
TEST(NpuRewriteW8a8, ConvertedWeightDequantizesTheSame) {
  std::string text = R"(weight @w : !w8a8<shape = [2, 4]> {
  weight = tensor<2x4xi8> = hex"7F8101FF00000102",
  weight_scale = tensor<2x1xf16> = hex"003C0040"
}
func @f(%x: tensor<1x4xf16>) -> tensor<1x2xf16> {
  %y = linear %x, @w
  return %y
}
)";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  auto before = dequantizeWeight(*m->lookupWeight("w"), nullptr);
  ASSERT_TRUE(bool(before));
  ASSERT_EQ(runPipeline(*m, sm, "npu-layout-rewrite"), "");
  const Weight &w = *m->lookupWeight("w");
  EXPECT_EQ(bytesOf(w, "weight"),
            (std::vector<uint8_t>{0x7F, 0x00, 0x81, 0x00, 0x01, 0x01, 0xFF, 0x02}));
  std::vector<float> s = {1.0f, 2.0f};
  std::vector<uint8_t> sb(8);
  std::memcpy(sb.data(), s.data(), 8);
  EXPECT_EQ(bytesOf(w, "weight_scale"), sb);
  auto after = dequantizeWeight(w, nullptr);
  ASSERT_TRUE(bool(after));
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(*after, (std::vector<float>{127, -127, 1, -1, 0, 0, 2, 4}));
}

// npu.dynamic_quant codes and scales equal the codec's quantizePerToken (an independent
// implementation of the same formula), including an all-zero row (scale 0, codes 0) and exact
// ties at ±127 (the row maximum maps to ±127).
TEST(NpuOps, DynamicQuantMatchesCodec) {
  std::string text = R"(func @f(%x: tensor<3x2x8xf32>) -> (tensor<3x2x8xi8>, tensor<3x2xf32>) {
  %q, %s = npu.dynamic_quant %x
  return %q, %s
}
)";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  std::mt19937 rng(5);
  std::vector<float> xv = randomValues(rng, 48, -4.f, 4.f);
  std::fill(xv.begin() + 8, xv.begin() + 16, 0.f); // row 1: all zero
  xv[20] = -9.5f;                                  // row 2: negative maximum
  ReferenceExecutor ex(*m, nullptr);
  auto out = ex.run("f", {Tensor::fromF32({3, 2, 8}, xv)});
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  w8a8::TokenQuant tq = w8a8::quantizePerToken(xv, 6, 8);
  const auto *q = reinterpret_cast<const int8_t *>((*out)[0].data());
  for (size_t i = 0; i < 48; ++i)
    ASSERT_EQ(q[i], tq.q[i]) << "element " << i;
  EXPECT_EQ((*out)[1].toF32(), tq.scale);
  EXPECT_EQ(tq.scale[1], 0.f);
  EXPECT_EQ(q[20], -127);
}

// The type system keeps checkpoint bits away from the device ops: npu.* ops reject !awq weights,
// and an AWQ-order word can only sit in an !awq part.
TEST(NpuTypes, DeviceOpsRejectCheckpointTypes) {
  std::string text = R"(weight @w : !awq<group = 8, shape = [8, 8]> {
  qweight = tensor<8x1xi32> from "q",
  qzeros = tensor<1x1xi32> from "z",
  scales = tensor<1x8xf16> from "s"
}
func @f(%x: tensor<1x8xf16>) -> tensor<1x8xf16> {
  %y = npu.weight_quant_batchmatmul %x, @w
  return %y
}
)";
  llvm::SourceMgr sm;
  std::string errs;
  auto m = parse(text, sm, &errs);
  EXPECT_FALSE(m);
  EXPECT_NE(
      errs.find("npu.weight_quant_batchmatmul weight @w must be !npu_w4 or !npu_w8, got !awq"),
      std::string::npos)
      << errs;
}

// Re-running lower-npu on its own output changes nothing (NPU-layout weights are taken as they
// are).
TEST(NpuRewrite, IdempotentOnNpuLayouts) {
  std::mt19937 rng(3);
  std::string text =
      randomAwqWeight(rng, "w", 16, 64, 32, 0, "f16") + fnLinear(2, 16, 64, "f16", false);
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  ASSERT_EQ(runPipeline(*m, sm, "lower-npu"), "");
  std::string once = printModuleToString(*m);
  ASSERT_EQ(runPipeline(*m, sm, "lower-npu"), "");
  EXPECT_EQ(printModuleToString(*m), once);
}

} // namespace
