// Every npu.* op on the npu-emu device against the reference executor on the same lowered module
// (whose npu.* ops have the reference semantics of schemes/npu/npu_reference_ops.cpp).
//
// Tolerances. The reference accumulates in f64 and rounds once; the device accumulates in f32 in k
// order (recursive summation: |error| <= (K + 2)·2^-24·S with S = Σ_k |x_k|·|W_kn| (+ |bias_n|),
// the two extra terms for the rounding of each product and of the antiquant multiply). With f16
// / bf16 activations the device also rounds every antiquantized weight to that type (the matmul's
// operand type, u·S with the unit roundoff u = 2^-11 / 2^-9) and both sides round the output to it
// from different f32 / f64 values (one ulp, 2u·|y|). These bounds are computed per output element
// from the reference's dequantized weight.
#include <cstring>

#include "npu_emu_test_util.h"
#include "runtime/npu_emu/npu_kernels.h"

using namespace qlc;
using namespace qlc::npu_emu_test;

namespace {

std::string str(int64_t v) { return std::to_string(v); }

/// |got − ref| per element within the accumulation bound described at the top of the file.
void expectWithinMatmulBound(const std::vector<float> &x, const std::vector<float> &w, // [N, K]
                             const std::vector<float> &bias, int64_t m, int64_t n, int64_t k,
                             ElemKind xElem, const std::vector<float> &got,
                             const std::vector<float> &ref) {
  ASSERT_EQ(got.size(), size_t(m * n));
  ASSERT_EQ(ref.size(), size_t(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) {
      double s = bias.empty() ? 0 : std::fabs(bias[size_t(c)]);
      for (int64_t i = 0; i < k; ++i)
        s += std::fabs(double(x[size_t(r * k + i)]) * w[size_t(c * k + i)]);
      const double y = ref[size_t(r * n + c)];
      double bound = double(k + 2) * std::ldexp(1.0, -24) * s + std::ldexp(1.0, -24) * std::fabs(y);
      if (xElem != ElemKind::F32) { // unit roundoff u: f16 2^-11, bf16 2^-9
        const double u = std::ldexp(1.0, xElem == ElemKind::F16 ? -11 : -9);
        bound += u * s + 2 * u * std::fabs(y);
      }
      ASSERT_LE(std::fabs(got[size_t(r * n + c)] - y), bound + 1e-30)
          << "y[" << r << ", " << c << "] = " << got[size_t(r * n + c)] << ", reference " << y;
    }
}

// The offset is ADDED (FORMATS.md §5.1): the AWQ word 0x76543210 as the NPU word 0xfbead9c8 holds
// u − 8 for u = 0, 4, 1, 5, 2, 6, 3, 7 (natural order); with offset 8 and scale 1 the device must
// give back u exactly (a subtracted offset would give u − 16).
TEST(NpuEmuOps, AntiquantOffsetIsAdded) {
  const std::string text = R"(weight @w : !npu_w4<group = -1, shape = [8, 1]> {
  weight = tensor<1x1xi32> = hex"C8D9EAFB",
  antiquant_scale = tensor<1x8xf32> = hex")" +
                           hexOf(std::vector<float>(8, 1.f)) + R"(",
  antiquant_offset = tensor<1x8xf32> = hex")" +
                           hexOf(std::vector<float>(8, 8.f)) + R"("
}
func @f(%x: tensor<2x1xf32>) -> tensor<2x8xf32> {
  %y = npu.weight_quant_batchmatmul %x, @w
  return %y
}
)";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  auto out = runDevice(*m, "f", {Tensor::fromF32({2, 1}, {1.f, -0.5f})});
  ASSERT_TRUE(out);
  std::vector<float> u = {0, 4, 1, 5, 2, 6, 3, 7}, want;
  for (float s : {1.f, -0.5f})
    for (float v : u)
      want.push_back(s * v);
  EXPECT_EQ((*out)[0].toF32(), want);
}

struct WqbmmCase {
  int64_t m, n, k, g;
  std::string paramElem, xElem;
  bool offsets, bias;
  int bits = 4; // 4: !npu_w4 (int4 in int32), 8: !npu_w8 (int8)
};
void PrintTo(const WqbmmCase &c, std::ostream *os) {
  *os << "M=" << c.m << " N=" << c.n << " K=" << c.k << " G=" << c.g << " params " << c.paramElem
      << " x " << c.xElem << (c.offsets ? " +offset" : "") << (c.bias ? " +bias" : "")
      << " int" << c.bits;
}

class NpuEmuWeightQuantBatchMatmul : public ::testing::TestWithParam<WqbmmCase> {};

TEST_P(NpuEmuWeightQuantBatchMatmul, MatchesReference) {
  const WqbmmCase &c = GetParam();
  std::mt19937 rng(uint32_t(c.m * 1000 + c.n * 10 + c.k + c.offsets));
  std::string text =
      randomNpuAntiquantWeight(c.bits, rng, "w", c.n, c.k, c.g, 0, c.paramElem, c.offsets);
  std::vector<float> bias;
  if (c.bias) {
    bias = randomValues(rng, size_t(c.n));
    text += "weight @b : tensor<" + str(c.n) + "xf32> { data = tensor<" + str(c.n) +
            "xf32> = hex\"" + hexOf(bias) + "\" }\n";
  }
  text += "func @f(%x: tensor<" + str(c.m) + "x" + str(c.k) + "x" + c.xElem + ">) -> tensor<" +
          str(c.m) + "x" + str(c.n) + "x" + c.xElem +
          "> {\n  %y = npu.weight_quant_batchmatmul %x, @w" + (c.bias ? ", @b" : "") +
          "\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  ElemKind xe = *parseElemKind(c.xElem);
  Tensor x = Tensor::fromF32As(xe, {c.m, c.k}, randomValues(rng, size_t(c.m * c.k), -2.f, 2.f));
  auto got = runDevice(*m, "f", {x});
  auto ref = runReference(*m, "f", {x});
  ASSERT_TRUE(got && ref);
  ASSERT_EQ((*got)[0].typeStr(), (*ref)[0].typeStr());
  ReferenceExecutor rex(*m, nullptr);
  auto w = rex.weight("w");
  ASSERT_TRUE(bool(w)) << llvm::toString(w.takeError());
  expectWithinMatmulBound(x.toF32(), **w, bias, c.m, c.n, c.k, xe, (*got)[0].toF32(),
                          (*ref)[0].toF32());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, NpuEmuWeightQuantBatchMatmul,
    ::testing::Values(WqbmmCase{1, 64, 128, 32, "f16", "f32", true, false},
                      WqbmmCase{3, 64, 128, 32, "f16", "f32", true, true},
                      WqbmmCase{16, 64, 128, 32, "f16", "f32", true, false},
                      WqbmmCase{1, 24, 48, 16, "bf16", "f32", true, true},   // odd N / K
                      WqbmmCase{3, 40, 96, -1, "f32", "f32", true, false},   // per-channel
                      WqbmmCase{16, 8, 8, -1, "f16", "f32", false, true},    // symmetric
                      WqbmmCase{3, 16, 64, 8, "f32", "f32", false, false},   // symmetric groups
                      WqbmmCase{16, 32, 64, 32, "f16", "f16", true, true},   // f16 activations
                      WqbmmCase{3, 56, 160, 32, "bf16", "bf16", true, false}, // bf16 activations
                      // !npu_w8: int8 codes [K, N] (N need not be a multiple of 8)
                      WqbmmCase{3, 24, 128, 32, "f16", "f32", true, true, 8},
                      WqbmmCase{5, 12, 48, -1, "f32", "f32", false, false, 8},
                      WqbmmCase{16, 32, 64, 16, "f16", "f16", true, false, 8},
                      WqbmmCase{3, 20, 96, 32, "bf16", "bf16", false, true, 8}));

// npu_weight_quant_batchmatmul with int8 weights ([K, N] int8 codes, same antiquant), the kernel
// alone (the !npu_w8 op cases above go through the IR) against the formula y = Σ_k x[k]·(w[k][n] + offset[g][n])·scale[g][n] in f64.
TEST(NpuEmuOps, Int8WeightsPerGroupAndPerChannel) {
  std::mt19937 rng(5);
  for (auto [m, n, k, g] : {std::tuple{3, 24, 64, 16}, std::tuple{1, 16, 40, 40}}) {
    const int64_t groups = k / g;
    std::vector<int8_t> codes(size_t(k * n));
    std::uniform_int_distribution<int> cd(-128, 127);
    for (int8_t &q : codes)
      q = int8_t(cd(rng));
    std::vector<float> scale = randomValues(rng, size_t(groups * n), 0.001f, 0.02f);
    std::vector<float> offset = randomValues(rng, size_t(groups * n), -4.f, 4.f);
    for (float &o : offset)
      o = std::nearbyint(o);
    std::vector<float> x = randomValues(rng, size_t(m * k)), y(size_t(m * n));
    npu_emu::AntiquantWeight w;
    w.layout = npu_emu::CodeLayout::Int8;
    w.n = n, w.k = k, w.group = g;
    w.codes = reinterpret_cast<const uint8_t *>(codes.data());
    w.paramElem = ElemKind::F32;
    w.scale = reinterpret_cast<const uint8_t *>(scale.data());
    w.offset = reinterpret_cast<const uint8_t *>(offset.data());
    EXPECT_EQ(npu_emu::weightQuantBatchMatmul(x.data(), m, w, nullptr, ElemKind::F32, y.data()),
              uint64_t(2 * m * n * k));
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double acc = 0, s = 0;
        for (int64_t i = 0; i < k; ++i) {
          size_t p = size_t((i / g) * n + c);
          double wv = (double(codes[size_t(i * n + c)]) + offset[p]) * scale[p];
          acc += x[size_t(r * k + i)] * wv;
          s += std::fabs(x[size_t(r * k + i)] * wv);
        }
        EXPECT_NEAR(y[size_t(r * n + c)], acc, double(k + 2) * std::ldexp(1.0, -24) * s + 1e-30);
      }
  }
}

// Routing: ids exactly the reference's (chosen on the logits, ties to the lower expert); weights
// from an f32 softmax vs the reference's f64 one rounded to f32: each within a few f32 ulps of a
// value <= 1 (E + 4 roundings), checked at 1e-6.
TEST(NpuEmuOps, MoeGatingTopK) {
  std::mt19937 rng(7);
  for (auto [t, e, k, ren] : {std::tuple{1, 4, 1, false}, std::tuple{5, 8, 2, true},
                              std::tuple{16, 6, 2, false}, std::tuple{3, 16, 4, true}}) {
    std::string text = "func @f(%l: tensor<" + str(t) + "x" + str(e) + "xf32>) -> (tensor<" +
                       str(t) + "x" + str(k) + "xf32>, tensor<" + str(t) + "x" + str(k) +
                       "xi32>) {\n  %w, %ids = npu.moe_gating_topk %l {top_k = " + str(k) +
                       ", renormalize = " + (ren ? "true" : "false") + "}\n  return %w, %ids\n}\n";
    llvm::SourceMgr sm;
    auto m = parse(text, sm);
    ASSERT_TRUE(m);
    std::vector<float> lv = randomValues(rng, size_t(t * e), -3.f, 3.f);
    lv[1] = lv[0]; // a tie: the lower expert first on both
    Tensor l = Tensor::fromF32({t, e}, lv);
    auto got = runDevice(*m, "f", {l});
    auto ref = runReference(*m, "f", {l});
    ASSERT_TRUE(got && ref);
    EXPECT_EQ((*got)[1].toF32(), (*ref)[1].toF32()) << "ids, T=" << t << " E=" << e;
    std::vector<float> gw = (*got)[0].toF32(), rw = (*ref)[0].toF32();
    for (size_t i = 0; i < rw.size(); ++i)
      EXPECT_NEAR(gw[i], rw[i], 1e-6) << "weight " << i;
  }
}

struct FusedCase {
  int64_t t, h, inter, e, topK, g;
  bool renormalize, offsets;
  std::string paramElem, xElem;
  int bits13 = 4, bits2 = 4; // !npu_w4 or !npu_w8 for w13 and w2
};
void PrintTo(const FusedCase &c, std::ostream *os) {
  *os << "T=" << c.t << " H=" << c.h << " I=" << c.inter << " E=" << c.e << " top_k=" << c.topK
      << " G=" << c.g << (c.renormalize ? " renormalize" : "") << (c.offsets ? " +offset" : "")
      << " params " << c.paramElem << " x " << c.xElem << " w13 int" << c.bits13 << " w2 int"
      << c.bits2;
}

class NpuEmuFusedExperts : public ::testing::TestWithParam<FusedCase> {};

// npu.moe_gating_topk + npu.fused_experts against the reference's step by step semantics. f32
// activations: two matmul stages accumulated in f32 ((H + I)·2^-24 of the sums of magnitudes, a few
// times max |y| for these random weights) and the routing weights' f32 softmax: 5e-6 of max |y|
// (measured <= 5.1e-7). f16 / bf16 activations: the device also stores gmm1, the swiglu output and
// gmm2 in that type, as the Ascend ops do (three roundings of u = 2^-11 / 2^-9, amplified by the
// second matmul's cancellation): 8u = 3.9e-3 / 1.6e-2 (measured 7.9e-4 / 8.0e-3).
TEST_P(NpuEmuFusedExperts, MatchesReference) {
  const FusedCase &c = GetParam();
  std::mt19937 rng(uint32_t(c.t * 131 + c.h + c.inter * 7 + c.e + c.topK));
  std::string text =
      randomNpuAntiquantWeight(c.bits13, rng, "w13", 2 * c.inter, c.h, c.g, c.e, c.paramElem,
                               c.offsets) +
      randomNpuAntiquantWeight(c.bits2, rng, "w2", c.h, c.inter, c.g, c.e, c.paramElem, c.offsets);
  const std::string xt = "tensor<" + str(c.t) + "x" + str(c.h) + "x" + c.xElem + ">";
  text += "func @f(%x: " + xt + ", %l: tensor<" + str(c.t) + "x" + str(c.e) + "xf32>) -> " + xt +
          " {\n  %w, %ids = npu.moe_gating_topk %l {top_k = " + str(c.topK) +
          ", renormalize = " + (c.renormalize ? "true" : "false") +
          "}\n  %y = npu.fused_experts %x, %w, %ids, @w13, @w2\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  ElemKind xe = *parseElemKind(c.xElem);
  Tensor x = Tensor::fromF32As(xe, {c.t, c.h}, randomValues(rng, size_t(c.t * c.h), -2.f, 2.f));
  Tensor l = Tensor::fromF32({c.t, c.e}, randomValues(rng, size_t(c.t * c.e), -3.f, 3.f));
  auto got = runDevice(*m, "f", {x, l});
  auto ref = runReference(*m, "f", {x, l});
  ASSERT_TRUE(got && ref);
  double tol = xe == ElemKind::F32 ? 5e-6 : 8 * std::ldexp(1.0, xe == ElemKind::F16 ? -11 : -9);
  const double err = relMaxError((*got)[0].toF32(), (*ref)[0].toF32());
  EXPECT_LE(err, tol);
  std::printf("  fused_experts x %s: rel error %.3g\n", c.xElem.c_str(), err);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, NpuEmuFusedExperts,
    ::testing::Values(FusedCase{1, 64, 32, 4, 1, 32, false, true, "f16", "f32"},
                      FusedCase{3, 64, 32, 4, 2, 32, true, true, "f16", "f32"},
                      FusedCase{16, 128, 64, 8, 2, 64, false, true, "bf16", "f32"},
                      FusedCase{16, 64, 16, 3, 1, -1, true, false, "f32", "f32"},
                      FusedCase{5, 128, 48, 6, 2, 16, true, true, "f16", "f16"},
                      FusedCase{4, 64, 32, 4, 2, 32, false, true, "bf16", "bf16"},
                      FusedCase{3, 64, 32, 4, 2, 32, true, true, "f16", "f32", 8, 8},
                      FusedCase{6, 64, 24, 3, 2, -1, false, false, "f32", "f32", 8, 8},
                      FusedCase{5, 128, 48, 6, 2, 16, true, true, "f16", "f16", 8, 4},
                      FusedCase{4, 64, 32, 4, 2, 32, false, true, "bf16", "bf16", 4, 8}));

// W8A8: npu.dynamic_quant is bit-identical to the reference (same f32 division and rounding);
// npu.quant_matmul accumulates the same int32 sums and dequantizes in f32 (two roundings) where
// the reference forms the product in f64: within 3·2^-24 of |y| plus the bias' rounding.
TEST(NpuEmuOps, DynamicQuantAndQuantMatmul) {
  std::mt19937 rng(11);
  for (auto [m, n, k, bias] :
       {std::tuple{1, 16, 64, false}, std::tuple{3, 40, 128, true}, std::tuple{16, 24, 32, true}}) {
    std::vector<int8_t> wq(size_t(k * n)); // [K, N], the !npu_w8a8 layout
    std::uniform_int_distribution<int> cd(-127, 127);
    for (int8_t &q : wq)
      q = int8_t(cd(rng));
    std::vector<float> ws = randomValues(rng, size_t(n), 0.001f, 0.01f),
                       b = randomValues(rng, size_t(n));
    const std::string ns = str(n), ks = str(k), ms = str(m);
    std::string text = "weight @w : !npu_w8a8<shape = [" + ns + ", " + ks +
                       "]> {\n  weight = tensor<" + ks + "x" + ns + "xi8> = hex\"" + hexOf(wq) +
                       "\",\n  weight_scale = tensor<" + ns + "xf32> = hex\"" + hexOf(ws) +
                       "\"\n}\n";
    if (bias)
      text += "weight @b : tensor<" + ns + "xf32> { data = tensor<" + ns + "xf32> = hex\"" +
              hexOf(b) + "\" }\n";
    text += "func @f(%x: tensor<" + ms + "x" + ks + "xf32>) -> (tensor<" + ms + "x" + ks +
            "xi8>, tensor<" + ms + "xf32>, tensor<" + ms + "x" + ns +
            "xf32>) {\n  %q, %s = npu.dynamic_quant %x\n  %y = npu.quant_matmul %q, %s, @w" +
            (bias ? ", @b" : "") + " {output_dtype = f32}\n  return %q, %s, %y\n}\n";
    llvm::SourceMgr sm;
    auto mod = parse(text, sm);
    ASSERT_TRUE(mod);
    std::vector<float> xv = randomValues(rng, size_t(m * k), -3.f, 3.f);
    xv[0] = 0; // a zero in a row is fine; a zero row gets scale 0 below
    if (m > 1)
      std::fill_n(xv.begin() + k, k, 0.f);
    Tensor x = Tensor::fromF32({m, k}, xv);
    auto got = runDevice(*mod, "f", {x});
    auto ref = runReference(*mod, "f", {x});
    ASSERT_TRUE(got && ref);
    ASSERT_EQ((*got)[0].numBytes(), (*ref)[0].numBytes());
    EXPECT_EQ(0, std::memcmp((*got)[0].data(), (*ref)[0].data(), (*ref)[0].numBytes())) << "codes";
    EXPECT_EQ((*got)[1].toF32(), (*ref)[1].toF32()) << "per-token scales";
    std::vector<float> gy = (*got)[2].toF32(), ry = (*ref)[2].toF32();
    for (size_t i = 0; i < ry.size(); ++i)
      ASSERT_NEAR(gy[i], ry[i],
                  3 * std::ldexp(1.0, -24) * (std::fabs(ry[i]) + 2 * std::fabs(b[i % size_t(n)])) +
                      1e-30)
          << "y " << i;
  }
}

// The dense path lower-npu leaves for pre-dequantized schemes: core embedding, rms_norm, linear
// (+ bias, f16 weights) and moe (fused w13 with silu, unfused gate / up / down with gelu) on device
// copies of dense weights. f32 accumulation against f64 over chained matmuls (K <= 64): 1e-5 of
// max |y|.
TEST(NpuEmuOps, DenseCoreOps) {
  std::mt19937 rng(21);
  const int64_t v = 32, h = 64, inter = 32, e = 4;
  auto f16Weight = [&](const std::string &name, std::vector<int64_t> shape) {
    int64_t count = 1;
    for (int64_t d : shape)
      count *= d;
    std::string t = "tensor<" + dims(shape) + "f16>";
    return "weight @" + name + " : " + t + " { data = " + t + " = hex\"" +
           hexFloats(randomValues(rng, size_t(count), -0.5f, 0.5f), "f16") + "\" }\n";
  };
  std::string text = f16Weight("table", {v, h}) + f16Weight("norm", {h}) +
                     f16Weight("router", {e, h}) + f16Weight("bias", {e}) +
                     f16Weight("w13", {e, 2 * inter, h}) + f16Weight("gate", {e, inter, h}) +
                     f16Weight("up", {e, inter, h}) + f16Weight("w2", {e, h, inter}) +
                     "func @f(%ids: tensor<?xi32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {\n"
                     "  %x0 = embedding %ids, @table\n"
                     "  %x1 = convert %x0 : tensor<?x64xf32>\n"
                     "  %x = rms_norm %x1, @norm {eps = 1e-05}\n"
                     "  %l = linear %x, @router, @bias\n"
                     "  %a = moe %x, %l, @w13, @w2 {top_k = 2, renormalize = true}\n"
                     "  %b = moe %x, %l, @gate, @up, @w2 {top_k = 1, activation = gelu}\n"
                     "  return %a, %b\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  for (int64_t t : {1, 3, 16}) {
    std::vector<float> ids(static_cast<size_t>(t));
    for (float &id : ids)
      id = float(rng() % uint32_t(v));
    Tensor idT = Tensor::fromF32As(ElemKind::I32, {t}, ids);
    auto got = runDevice(*m, "f", {idT});
    auto ref = runReference(*m, "f", {idT});
    ASSERT_TRUE(got && ref);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_LE(relMaxError((*got)[i].toF32(), (*ref)[i].toF32()), 1e-5)
          << "result " << i << " T=" << t;
  }
}

} // namespace
