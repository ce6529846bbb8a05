// npu-layout-rewrite on GPTQ, compressed-tensors and 8-bit AWQ weights (→ !npu_w4 / !npu_w8):
//  - both ways on the bits: random integer codes q and zero points z are packed with each scheme's
//    own codec, rewritten, and read back from the NPU parts (q = c + 2^(b−1), z = 2^(b−1) −
//    offset): the numbers generated must come back;
//  - by computing: the reference dequantization and the reference executor before vs after.
//    (c + offset) · s with integer c + offset = q − z is formed exactly in f32 and multiplied once,
//    as the checkpoint dequant (q − z) · s is, so the tolerance is ZERO (bit-identical) for the
//    weights and the dense linear; MoE differs only by the f32 routing weights (npu_rewrite_test).
//  - act-order (g_idx not k / G) and 3-bit weights are refused with their reason, or
//    pre-dequantized when the pass is told to.
#include <cmath>

#include "npu_test_util.h"
#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
#include "schemes/npu/npu_convert.h"

using namespace qlc;
using namespace qlc::npu_test;

namespace {

struct CkCase {
  std::string scheme; // awq | gptq | ct
  int bits;
  bool sym;
  std::string format; // gptq: v1 | v2
  int64_t n, k, g, experts;
  std::string scaleElem;
  std::string actOrder = ""; // "" | "trivial" | "permuted" (gptq desc_act / ct actorder=group)
};
void PrintTo(const CkCase &c, std::ostream *os) {
  *os << c.scheme << c.bits << (c.sym ? " sym" : " asym") << " " << c.format << " N=" << c.n
      << " K=" << c.k << " G=" << c.g << " E=" << c.experts << " " << c.scaleElem << " "
      << c.actOrder;
}

/// The generated numbers of a weight: per expert codes q [K][N], zeros z [K/G][N] (real zero).
struct Generated {
  std::vector<uint8_t> q;
  std::vector<int32_t> z;
  std::string text;
};

/// A random checkpoint weight "@w" of `c`, packed with the scheme's codec, as .qir text.
Generated generate(const CkCase &c, std::mt19937 &rng) {
  const int b = c.bits;
  const int64_t E = std::max<int64_t>(c.experts, 1), K = c.k, N = c.n;
  const int64_t G = c.g == -1 ? K : c.g, groups = K / G;
  const uint32_t maxq = (1u << b) - 1, half = 1u << (b - 1);
  Generated gen;
  std::uniform_int_distribution<uint32_t> qd(0, maxq);
  // GPTQ v1 stores zero − 1, so its real zeros are 1..maxq (§2.3: a zero of 0 cannot be stored).
  std::uniform_int_distribution<uint32_t> zd(c.scheme == "gptq" && c.format == "v1" ? 1 : 0, maxq);
  gen.q.resize(size_t(E * K * N));
  for (uint8_t &v : gen.q)
    v = uint8_t(qd(rng));
  gen.z.resize(size_t(E * groups * N));
  for (int32_t &v : gen.z)
    v = c.sym ? int32_t(half) : int32_t(zd(rng));
  std::vector<float> scales = randomValues(rng, size_t(E * groups * N), 0.002f, 0.05f);

  std::vector<uint32_t> codes, zeros, scaleOrder;
  std::vector<int32_t> gIdx;
  std::vector<float> sc; // scales in the scheme's layout
  for (int64_t e = 0; e < E; ++e) {
    const uint8_t *qe = gen.q.data() + e * K * N;
    const int32_t *ze = gen.z.data() + e * groups * N;
    const float *se = scales.data() + e * groups * N;
    std::vector<uint32_t> cw, zw;
    if (c.scheme == "awq") {
      cw = awq::packAwq(std::span<const uint8_t>(qe, size_t(K * N)), K, N, b);
      std::vector<uint8_t> zb(ze, ze + groups * N);
      zw = awq::packAwq(zb, groups, N, b);
      sc.insert(sc.end(), se, se + groups * N);
    } else if (c.scheme == "gptq") {
      cw = gptq::packAlongK(std::span<const uint8_t>(qe, size_t(K * N)), K, N, b);
      std::vector<uint8_t> zb(size_t(groups * N));
      for (size_t i = 0; i < zb.size(); ++i)
        zb[i] = uint8_t(ze[i] - (c.format == "v1" ? 1 : 0));
      zw = gptq::packAlongN(zb, groups, N, b);
      sc.insert(sc.end(), se, se + groups * N);
    } else { // ct: [N, K] signed codes, zero points [N, groups] signed, scales [N, groups]
      std::vector<int8_t> qs(size_t(N * K)), zs(size_t(N * groups));
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n)
          qs[size_t(n * K + k)] = int8_t(int32_t(qe[k * N + n]) - int32_t(half));
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t n = 0; n < N; ++n) {
          zs[size_t(n * groups + g)] = int8_t(ze[g * N + n] - int32_t(half));
          sc.push_back(0); // placeholder, filled below in [N, groups] order
        }
      cw = ct::packRows(qs, N, K, b);
      if (!c.sym)
        zw = ct::packCols(zs, N, groups, b);
      float *dst = sc.data() + sc.size() - size_t(groups * N);
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t n = 0; n < N; ++n)
          dst[n * groups + g] = se[g * N + n];
    }
    codes.insert(codes.end(), cw.begin(), cw.end());
    zeros.insert(zeros.end(), zw.begin(), zw.end());
    if (!c.actOrder.empty()) {
      // trivial: g_idx[k] = k / G. permuted: the same group sizes, groups interleaved.
      for (int64_t k = 0; k < K; ++k)
        gIdx.push_back(int32_t(c.actOrder == "trivial" ? k / G : k % groups));
    }
  }
  auto t = [&](std::vector<int64_t> d, const std::string &el) {
    if (c.experts)
      d.insert(d.begin(), c.experts);
    return "tensor<" + dims(d) + el + ">";
  };
  std::string shape = "shape = [" + std::to_string(N) + ", " + std::to_string(K) + "]" +
                      (c.experts ? ", experts = " + std::to_string(c.experts) : "");
  std::string gs = std::to_string(c.g), &s = gen.text;
  const int64_t pf = 32 / b;
  if (c.scheme == "awq") {
    s = "weight @w : !awq<bits = " + std::to_string(b) + ", group = " + gs + ", " + shape +
        "> {\n  qweight = " + t({K, N * b / 32}, "i32") + " = hex\"" + hexOf(codes) +
        "\",\n  qzeros = " + t({groups, N * b / 32}, "i32") + " = hex\"" + hexOf(zeros) +
        "\",\n  scales = " + t({groups, N}, c.scaleElem) + " = hex\"" +
        hexFloats(sc, c.scaleElem) + "\"\n}\n";
  } else if (c.scheme == "gptq") {
    s = "weight @w : !gptq<bits = " + std::to_string(b) + ", group = " + gs +
        ", sym = " + (c.sym ? "true" : "false") + ", format = " + c.format +
        ", desc_act = " + (c.actOrder.empty() ? "false" : "true") + ", " + shape +
        "> {\n  qweight = " + t({K / pf, N}, "i32") + " = hex\"" + hexOf(codes) +
        "\",\n  qzeros = " + t({groups, N / pf}, "i32") + " = hex\"" + hexOf(zeros) +
        "\",\n  scales = " + t({groups, N}, c.scaleElem) + " = hex\"" +
        hexFloats(sc, c.scaleElem) + "\"";
    if (!c.actOrder.empty())
      s += ",\n  g_idx = " + t({K}, "i32") + " = hex\"" + hexOf(gIdx) + "\"";
    s += "\n}\n";
  } else {
    std::string strategy = c.g == -1 ? "strategy = channel" : "group = " + gs;
    s = "weight @w : !ct_wna16<bits = " + std::to_string(b) + ", " + strategy +
        ", symmetric = " + (c.sym ? "true" : "false") +
        (c.actOrder.empty() ? "" : ", actorder = group") + ", " + shape +
        "> {\n  weight_packed = " + t({N, (K + pf - 1) / pf}, "i32") + " = hex\"" +
        hexOf(codes) + "\",\n  weight_scale = " + t({N, groups}, c.scaleElem) + " = hex\"" +
        hexFloats(sc, c.scaleElem) + "\"";
    if (!c.sym)
      s += ",\n  weight_zero_point = " + t({(N + pf - 1) / pf, groups}, "i32") + " = hex\"" +
           hexOf(zeros) + "\"";
    if (!c.actOrder.empty())
      s += ",\n  weight_g_idx = " + t({K}, "i32") + " = hex\"" + hexOf(gIdx) + "\"";
    s += "\n}\n";
  }
  return gen;
}

std::string linearFn(int64_t m, int64_t n, int64_t k) {
  std::string ms = std::to_string(m);
  return "func @f(%x: tensor<" + ms + "x" + std::to_string(k) + "xf32>) -> tensor<" + ms + "x" +
         std::to_string(n) + "xf32> {\n  %y = linear %x, @w\n  return %y\n}\n";
}

class NpuRewriteCheckpoint : public ::testing::TestWithParam<CkCase> {};

TEST_P(NpuRewriteCheckpoint, CodesComeBackAndDequantIsIdentical) {
  const CkCase &c = GetParam();
  std::mt19937 rng(uint32_t(c.n * 131 + c.k * 7 + c.bits * 3 + c.experts + c.sym));
  Generated gen = generate(c, rng);
  std::string text = gen.text;
  if (!c.experts)
    text += linearFn(3, c.n, c.k);
  llvm::SourceMgr sm;
  auto before = parse(text, sm);
  ASSERT_TRUE(before);
  auto after = before->clone();
  if (c.experts) {
    // No op reads a lone stack (the moe rewrite is checked on whole models in npu_emu_model_test):
    // convert it with the pass's own conversion.
    Weight &w = *after->lookupWeight("w");
    auto conv = schemes::checkpointToNpu(w, nullptr);
    ASSERT_TRUE(bool(conv)) << llvm::toString(conv.takeError());
    w.setType(conv->type);
    w.parts() = conv->parts;
  } else {
    ASSERT_EQ(runPipeline(*after, sm, "npu-layout-rewrite"), "");
  }
  const Weight &wb = *before->lookupWeight("w"), &wa = *after->lookupWeight("w");
  EXPECT_EQ(wa.quantType().mnemonic(), c.bits == 4 ? "npu_w4" : "npu_w8");
  EXPECT_EQ(wa.experts(), c.experts);
  // Symmetric weights carry no antiquant_offset (offset 0, as sglang's CT path); AWQ always has
  // zeros.
  EXPECT_EQ(wa.part("antiquant_offset") != nullptr, !c.sym || c.scheme == "awq");

  // Both ways: the generated codes and zeros come back from the NPU parts.
  auto codes = schemes::npuCodes(wa, nullptr);
  ASSERT_TRUE(bool(codes)) << llvm::toString(codes.takeError());
  EXPECT_EQ(codes->bits, c.bits);
  EXPECT_EQ(codes->q, gen.q);
  if (c.sym && c.scheme != "awq")
    EXPECT_TRUE(codes->z.empty());
  else
    EXPECT_EQ(codes->z, gen.z);
  // and the checkpoint reader agrees with the generator (it is what the rewrite used).
  auto ck = schemes::checkpointCodes(wb, nullptr);
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  EXPECT_EQ(ck->q, gen.q);

  // By computing: the reference dequantization is bit-identical.
  auto db = dequantizeWeight(wb, nullptr), da = dequantizeWeight(wa, nullptr);
  ASSERT_TRUE(bool(db)) << llvm::toString(db.takeError());
  ASSERT_TRUE(bool(da)) << llvm::toString(da.takeError());
  ASSERT_EQ(db->size(), da->size());
  for (size_t i = 0; i < db->size(); ++i)
    ASSERT_EQ((*da)[i], (*db)[i]) << "element " << i;

  if (c.experts)
    return;
  EXPECT_EQ(after->lookupFunction("f")->ops().front()->name(), "npu.weight_quant_batchmatmul");
  Tensor x = Tensor::fromF32({3, c.k}, randomValues(rng, size_t(3 * c.k), -2.f, 2.f));
  std::vector<float> ref = run(*before, "f", {x}), got = run(*after, "f", {x});
  ASSERT_EQ(got.size(), size_t(3 * c.n));
  ASSERT_EQ(got, ref);
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, NpuRewriteCheckpoint,
    ::testing::Values(CkCase{"awq", 8, false, "", 32, 128, 32, 0, "f16"},
                      CkCase{"awq", 8, false, "", 16, 64, -1, 3, "bf16"},
                      CkCase{"gptq", 4, true, "v1", 24, 128, 64, 0, "f16"},
                      CkCase{"gptq", 4, true, "v2", 16, 64, 32, 2, "bf16"},
                      CkCase{"gptq", 4, false, "v1", 32, 128, 32, 0, "f16"},
                      CkCase{"gptq", 4, false, "v2", 8, 64, -1, 0, "f32"},
                      CkCase{"gptq", 8, true, "v1", 12, 64, 32, 0, "f16"},
                      CkCase{"gptq", 8, false, "v1", 16, 128, 64, 2, "f16"},
                      CkCase{"gptq", 8, false, "v2", 8, 64, 16, 0, "bf16"},
                      CkCase{"gptq", 4, false, "v2", 16, 64, 32, 0, "f16", "trivial"},
                      CkCase{"ct", 4, true, "", 32, 128, 32, 0, "f16"},
                      CkCase{"ct", 4, false, "", 24, 96, 32, 2, "bf16"},
                      CkCase{"ct", 4, true, "", 16, 64, -1, 0, "f32"},
                      CkCase{"ct", 8, true, "", 12, 64, 32, 3, "f16"},
                      CkCase{"ct", 8, false, "", 20, 64, 16, 0, "bf16"},
                      CkCase{"ct", 8, false, "", 8, 32, -1, 2, "f16"}));

// Act-order with a real permutation and 3-bit codes have no exact antiquant form: the pass says why
// (and where), or with dequantize=f16 leaves a dense weight and a core linear.
TEST(NpuRewriteCheckpoint, ActOrderAndThreeBitAreRefusedOrPreDequantized) {
  std::mt19937 rng(5);
  for (CkCase c : {CkCase{"gptq", 4, false, "v1", 16, 64, 16, 0, "f16", "permuted"},
                   CkCase{"ct", 4, true, "", 16, 64, 16, 0, "f16", "permuted"}}) {
    std::string text = generate(c, rng).text + linearFn(2, c.n, c.k);
    llvm::SourceMgr sm;
    auto m = parse(text, sm);
    ASSERT_TRUE(m);
    auto refused = m->clone();
    std::string errs = runPipeline(*refused, sm, "npu-layout-rewrite");
    EXPECT_NE(errs.find("is act-order"), std::string::npos) << errs;
    EXPECT_NE(errs.find("permuting K would also permute the activations"), std::string::npos);
    auto dense = m->clone();
    std::string remarks = runPipeline(*dense, sm, "npu-layout-rewrite{dequantize=f16}");
    EXPECT_NE(remarks.find("pre-dequantized to f16"), std::string::npos) << remarks;
    EXPECT_TRUE(dense->lookupWeight("w")->isDense());
    EXPECT_EQ(dense->lookupFunction("f")->ops().front()->name(), "linear");
  }
  // 3-bit GPTQ (packed with the codec, sym v1: stored zero 3).
  const int64_t n = 32, k = 64, groups = 2;
  std::vector<uint8_t> q(size_t(k * n)), z(size_t(groups * n), 3);
  for (uint8_t &v : q)
    v = uint8_t(rng() & 7);
  std::vector<uint32_t> qw = gptq::packAlongK(q, k, n, 3), qz = gptq::packAlongN(z, groups, n, 3);
  std::vector<float> s = randomValues(rng, size_t(groups * n), 0.01f, 0.02f);
  std::string text = "weight @w : !gptq<bits = 3, group = 32, shape = [32, 64]> {\n  qweight = "
                     "tensor<" +
                     std::to_string(qw.size() / n) + "x32xi32> = hex\"" + hexOf(qw) +
                     "\",\n  qzeros = tensor<2x" + std::to_string(qz.size() / 2) +
                     "xi32> = hex\"" + hexOf(qz) + "\",\n  scales = tensor<2x32xf16> = hex\"" +
                     hexFloats(s, "f16") + "\"\n}\n" + linearFn(2, n, k);
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  std::string errs = runPipeline(*m, sm, "npu-layout-rewrite");
  EXPECT_NE(errs.find("3-bit codes; the NPU antiquant matmul takes int4 or int8"),
            std::string::npos)
      << errs;
}

// lower-npu keeps every rewritable weight quantized (no f16 pre-dequantization for them).
TEST(NpuRewriteCheckpoint, LowerNpuKeepsRewritableWeights) {
  std::mt19937 rng(9);
  CkCase c{"gptq", 8, false, "v2", 16, 64, 32, 0, "f16"};
  std::string text = generate(c, rng).text + linearFn(2, c.n, c.k);
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  ASSERT_EQ(runPipeline(*m, sm, "lower-npu"), "");
  EXPECT_EQ(m->lookupWeight("w")->quantType().mnemonic(), "npu_w8");
  EXPECT_EQ(m->lookupFunction("f")->ops().front()->name(), "npu.weight_quant_batchmatmul");
}

} // namespace
