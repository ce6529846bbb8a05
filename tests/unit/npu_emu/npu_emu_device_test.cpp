// The npu-emu device model: device memory (capacity, out-of-memory errors naming the tensor, the
// high-water mark with intermediates freed at their last use), the H2D / D2H accounting, the op
// trace, layouts the device rejects in create(), and concurrent runs on one executor.
#include <thread>

#include "npu_emu_test_util.h"
#include "schemes/npu/npu_convert.h"
#include "llvm/Support/Regex.h"

using namespace qlc;
using namespace qlc::npu_emu_test;

namespace {

std::string str(int64_t v) { return std::to_string(v); }

/// x [M, K] → npu.weight_quant_batchmatmul (@w1 [N1, K]) → silu → npu.weight_quant_batchmatmul
/// (@w2 [N2, N1]) → return. f32 activations, f16 parameters with offsets, group 32.
struct Chain {
  int64_t k = 64, n1 = 128, n2 = 32;
  std::string text;
  explicit Chain(uint32_t seed) {
    std::mt19937 rng(seed);
    text = randomNpuW4Weight(rng, "w1", n1, k, 32, 0, "f16", true) +
           randomNpuW4Weight(rng, "w2", n2, n1, 32, 0, "f16", true) + "func @f(%x: tensor<?x" +
           str(k) + "xf32>) -> tensor<?x" + str(n2) + "xf32> {\n" +
           "  %h = npu.weight_quant_batchmatmul %x, @w1\n" + "  %a = silu %h\n" +
           "  %y = npu.weight_quant_batchmatmul %a, @w2\n" + "  return %y\n}\n";
  }
  /// Bytes of all weight parts: codes K·N/2, scale and offset (K/32)·N f16 each.
  uint64_t weightBytes() const {
    auto w4 = [](int64_t n, int64_t k) { return uint64_t(k * n / 2 + 2 * 2 * (k / 32) * n); };
    return w4(n1, k) + w4(n2, n1);
  }
};

TEST(NpuEmuDevice, StatsAndPeakFollowLastUse) {
  Chain c(1);
  llvm::SourceMgr sm;
  auto m = parse(c.text, sm);
  ASSERT_TRUE(m);
  auto ex = NpuEmuExecutor::create(*m, nullptr);
  ASSERT_TRUE(bool(ex)) << llvm::toString(ex.takeError());
  NpuEmuExecutor::Stats s0 = (*ex)->stats();
  EXPECT_EQ(s0.weightBytes, c.weightBytes());
  EXPECT_EQ(s0.h2dBytes, c.weightBytes());
  EXPECT_EQ(s0.d2hBytes, 0u);
  EXPECT_EQ(s0.peakDeviceBytes, c.weightBytes());

  const int64_t rows = 3;
  std::mt19937 rng(2);
  Tensor x = Tensor::fromF32({rows, c.k}, randomValues(rng, size_t(rows * c.k)));
  auto out = (*ex)->run("f", {x});
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  NpuEmuExecutor::Stats s1 = (*ex)->stats();
  const uint64_t xb = uint64_t(4 * rows * c.k), hb = uint64_t(4 * rows * c.n1),
                 yb = uint64_t(4 * rows * c.n2);
  EXPECT_EQ(s1.h2dBytes, c.weightBytes() + xb);
  EXPECT_EQ(s1.d2hBytes, yb);
  EXPECT_EQ(s1.ops, 3u);
  // Live sets: {x, h} at the first matmul (x is freed after it), {h, a} at silu, {a, y} at the
  // second matmul. Keeping every value to the end would make it x + h + a + y.
  EXPECT_EQ(s1.peakDeviceBytes, c.weightBytes() + std::max({xb + hb, hb + hb, hb + yb}));

  auto again = (*ex)->run("f", {x}); // everything of the first call was freed
  ASSERT_TRUE(bool(again));
  NpuEmuExecutor::Stats s2 = (*ex)->stats();
  EXPECT_EQ(s2.peakDeviceBytes, s1.peakDeviceBytes);
  EXPECT_EQ(s2.h2dBytes, c.weightBytes() + 2 * xb);
  EXPECT_EQ(s2.d2hBytes, 2 * yb);
}

TEST(NpuEmuDevice, WeightsThatDoNotFitFailInCreate) {
  Chain c(3);
  llvm::SourceMgr sm;
  auto m = parse(c.text, sm);
  ASSERT_TRUE(m);
  // Room for @w1 (codes 4096 + 2 x 512 bytes) but not for @w2's codes (2048 bytes).
  const uint64_t cap = 4096 + 1024 + 1000;
  auto ex = NpuEmuExecutor::create(*m, nullptr, {cap, nullptr});
  ASSERT_FALSE(bool(ex));
  EXPECT_EQ(llvm::toString(ex.takeError()),
            "npu-emu: out of device memory: weight @w2 part 'weight' needs 2048 bytes, 5120 of " +
                str(cap) + " bytes are in use (raise the capacity with --npu-mem)");
}

TEST(NpuEmuDevice, ActivationsThatDoNotFitFailInRunNamingTheValue) {
  Chain c(4);
  llvm::SourceMgr sm;
  auto m = parse(c.text, sm);
  ASSERT_TRUE(m);
  const int64_t rows = 16;
  const uint64_t xb = uint64_t(4 * rows * c.k), hb = uint64_t(4 * rows * c.n1);
  const uint64_t cap = c.weightBytes() + xb + hb - 1; // %h does not fit next to %x
  auto ex = NpuEmuExecutor::create(*m, nullptr, {cap, nullptr});
  ASSERT_TRUE(bool(ex)) << llvm::toString(ex.takeError());
  Tensor x(ElemKind::F32, {rows, c.k});
  auto out = (*ex)->run("f", {x});
  ASSERT_FALSE(bool(out));
  const Operation &op = *m->lookupFunction("f")->ops().front();
  EXPECT_EQ(llvm::toString(out.takeError()),
            "npu-emu: out of device memory: %h (result of 'npu.weight_quant_batchmatmul' at " +
                op.loc().str() + ") needs " + str(hb) + " bytes, " + str(c.weightBytes() + xb) +
                " of " + str(cap) + " bytes are in use (raise the capacity with --npu-mem)");
  // The failed call released what it held: a call that fits still runs.
  auto small = (*ex)->run("f", {Tensor(ElemKind::F32, {1, c.k})});
  EXPECT_TRUE(bool(small)) << llvm::toString(small.takeError());
  // An input that does not fit at all is named as the input.
  auto huge = (*ex)->run("f", {Tensor(ElemKind::F32, {int64_t(cap), c.k})});
  ASSERT_FALSE(bool(huge));
  EXPECT_NE(llvm::toString(huge.takeError()).find("out of device memory: input %x of @f needs"),
            std::string::npos);
}

// One line per copy and op — "npu-emu: <op> <loc> <value> h2d= d2h= read= written= flops=" —
// then a summary per call; the upload is reported by create().
TEST(NpuEmuDevice, TraceFormat) {
  Chain c(5);
  llvm::SourceMgr sm;
  auto m = parse(c.text, sm);
  ASSERT_TRUE(m);
  std::string trace;
  llvm::raw_string_ostream os(trace);
  auto ex = NpuEmuExecutor::create(*m, nullptr, {uint64_t(1) << 20, &os});
  ASSERT_TRUE(bool(ex)) << llvm::toString(ex.takeError());
  const int64_t rows = 2;
  ASSERT_TRUE(bool((*ex)->run("f", {Tensor(ElemKind::F32, {rows, c.k})})));
  const Function &f = *m->lookupFunction("f");
  std::vector<std::string> loc;
  for (const auto &op : f.ops())
    loc.push_back(op->loc().str());
  const uint64_t w = c.weightBytes(), xb = 4 * rows * c.k, hb = 4 * rows * c.n1,
                 yb = 4 * rows * c.n2;
  const uint64_t w1 = uint64_t(c.k * c.n1 / 2 + 4 * (c.k / 32) * c.n1), w2 = w - w1;
  const uint64_t f1 = 2 * rows * c.n1 * c.k, f2 = 2 * rows * c.n2 * c.n1;
  auto n = [](uint64_t v) { return std::to_string(v); };
  const std::string want =
      "npu-emu: create: weights=2 h2d=" + n(w) + " in_use=" + n(w) + " capacity=1048576\n" +
      "npu-emu: copy.h2d " + f.loc().str() + " %x h2d=" + n(xb) + " d2h=0 read=0 written=" + n(xb) +
      " flops=0\n" + "npu-emu: npu.weight_quant_batchmatmul " + loc[0] +
      " %h h2d=0 d2h=0 read=" + n(xb + w1) + " written=" + n(hb) + " flops=" + n(f1) + "\n" +
      "npu-emu: silu " + loc[1] + " %a h2d=0 d2h=0 read=" + n(hb) + " written=" + n(hb) +
      " flops=" + n(rows * c.n1) + "\n" + "npu-emu: npu.weight_quant_batchmatmul " + loc[2] +
      " %y h2d=0 d2h=0 read=" + n(hb + w2) + " written=" + n(yb) + " flops=" + n(f2) + "\n" +
      "npu-emu: copy.d2h " + loc[3] + " %y h2d=0 d2h=" + n(yb) + " read=" + n(yb) +
      " written=0 flops=0\n" + "npu-emu: @f done: ops=3 h2d=" + n(xb) + " d2h=" + n(yb) +
      " read=" + n(xb + w1 + hb + hb + w2 + yb) + " written=" + n(xb + hb + hb + yb) +
      " flops=" + n(f1 + rows * c.n1 + f2) + " peak=" + n(w + std::max(xb + hb, hb + hb)) +
      " capacity=1048576\n";
  EXPECT_EQ(trace, want);
}

// 8 threads calling run() at once on one executor: every output bit-identical to a single call's
// (the device is deterministic and shares nothing writable but the memory accounting), and the
// stats count every call.
TEST(NpuEmuDevice, ConcurrentRunsMatchASingleCall) {
  std::mt19937 rng(9);
  const int64_t h = 64, inter = 32, e = 4, t = 6;
  std::string text = randomNpuW4Weight(rng, "w13", 2 * inter, h, 32, e, "f16", true) +
                     randomNpuW4Weight(rng, "w2", h, inter, 32, e, "f16", true) +
                     randomNpuW4Weight(rng, "router", 8, h, -1, 0, "f32", false) +
                     "func @f(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {\n"
                     "  %l = npu.weight_quant_batchmatmul %x, @router\n"
                     "  %s = reshape %l : tensor<?x4x2xf32>\n"
                     "  %t, %i = topk %s {k = 1}\n"
                     "  %r = reshape %t : tensor<?x4xf32>\n"
                     "  %w, %ids = npu.moe_gating_topk %r {top_k = 2, renormalize = true}\n"
                     "  %y = npu.fused_experts %x, %w, %ids, @w13, @w2\n"
                     "  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  auto ex = NpuEmuExecutor::create(*m, nullptr);
  ASSERT_TRUE(bool(ex)) << llvm::toString(ex.takeError());
  std::vector<Tensor> inputs;
  for (int i = 0; i < 8; ++i)
    inputs.push_back(
        Tensor::fromF32({t + i, h}, randomValues(rng, size_t((t + i) * h), -2.f, 2.f)));
  std::vector<std::vector<uint8_t>> single;
  for (const Tensor &x : inputs) {
    auto y = (*ex)->run("f", {x});
    ASSERT_TRUE(bool(y)) << llvm::toString(y.takeError());
    single.emplace_back((*y)[0].data(), (*y)[0].data() + (*y)[0].numBytes());
  }
  const uint64_t opsBefore = (*ex)->stats().ops;
  constexpr int kThreads = 8, kCalls = 4;
  std::vector<std::vector<std::vector<uint8_t>>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      for (int j = 0; j < kCalls; ++j) {
        auto y = (*ex)->run("f", {inputs[size_t((i + j) % 8)]});
        if (!y) {
          errors[size_t(i)] = llvm::toString(y.takeError());
          return;
        }
        got[size_t(i)].emplace_back((*y)[0].data(), (*y)[0].data() + (*y)[0].numBytes());
      }
    });
  for (std::thread &th : threads)
    th.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(errors[size_t(i)], "");
    ASSERT_EQ(got[size_t(i)].size(), size_t(kCalls));
    for (int j = 0; j < kCalls; ++j)
      EXPECT_EQ(got[size_t(i)][size_t(j)], single[size_t((i + j) % 8)])
          << "thread " << i << " call " << j;
  }
  EXPECT_EQ((*ex)->stats().ops, opsBefore + uint64_t(kThreads * kCalls * 6));
}

// A mis-written pipeline: the op was rewritten to npu.weight_quant_batchmatmul but the weight was
// put back in AWQ order (the test-only inverse of npu-layout-rewrite). The verifier would reject
// the module; the device rejects it too, in create(), before uploading anything.
TEST(NpuEmuDevice, RejectsCheckpointLayoutOnDeviceOp) {
  std::mt19937 rng(12);
  std::string text = randomAwqWeight(rng, "w", 16, 64, 32, 0, "f16") +
                     "func @f(%x: tensor<2x64xf32>) -> tensor<2x16xf32> {\n"
                     "  %y = linear %x, @w\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  {
    // Not lowered at all: a core linear on an !awq weight has no device kernel.
    auto ex = NpuEmuExecutor::create(*m, nullptr);
    ASSERT_FALSE(bool(ex));
    const std::string msg = llvm::toString(ex.takeError());
    EXPECT_NE(msg.find(m->lookupFunction("f")->ops().front()->loc().str() +
                       ": 'linear' npu-emu: weight @w is !awq<group = 32, shape = [16, 64]>, a "
                       "layout the device cannot execute: 'linear' runs on dense weights only"),
              std::string::npos)
        << msg;
  }
  ASSERT_EQ(runPipeline(*m, sm, "lower-npu"), "");
  Weight &w = *m->lookupWeight("w");
  auto awq = schemes::npuW4ToAwq(w, nullptr);
  ASSERT_TRUE(bool(awq)) << llvm::toString(awq.takeError());
  w.setType(awq->type);
  w.parts() = awq->parts;
  const Operation &op = *m->lookupFunction("f")->ops().front();
  ASSERT_EQ(op.name(), "npu.weight_quant_batchmatmul");
  auto ex = NpuEmuExecutor::create(*m, nullptr);
  ASSERT_FALSE(bool(ex));
  EXPECT_EQ(llvm::toString(ex.takeError()),
            op.loc().str() +
                ": 'npu.weight_quant_batchmatmul' npu-emu: weight @w is !awq<group = 32, shape = "
                "[16, 64]>, a layout the device cannot execute: this op takes !npu_w4: int4 in "
                "int32 [K, N/8], natural column order, two's complement; !npu_w8: int8 [K, N]; "
                "FORMATS.md §5.1; lower the module with lower-npu (npu-layout-rewrite) first");
}

// Ops of another target (lower-cpu's cpu.qmatmul) are not device ops.
TEST(NpuEmuDevice, RejectsOtherTargetsOps) {
  std::mt19937 rng(13);
  std::string text = randomAwqWeight(rng, "w", 16, 64, 32, 0, "f16") +
                     "func @f(%x: tensor<2x64xf32>) -> tensor<2x16xf32> {\n"
                     "  %y = linear %x, @w\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  ASSERT_EQ(runPipeline(*m, sm, "lower-cpu"), "");
  const Operation &op = *m->lookupFunction("f")->ops().front();
  auto ex = NpuEmuExecutor::create(*m, nullptr);
  ASSERT_FALSE(bool(ex));
  EXPECT_EQ(llvm::toString(ex.takeError()),
            op.loc().str() + ": '" + op.name() +
                "' npu-emu: is not an op of the npu-emu device (it runs npu.* ops and the core ops "
                "of a module lowered with lower-npu; cpu.* and marlin.* ops belong to other "
                "targets)");
}

// A run-time error inside a device op names the op: an expert id outside [0, E).
TEST(NpuEmuDevice, BadExpertIdIsAnErrorAtTheOp) {
  std::mt19937 rng(14);
  std::string text = randomNpuW4Weight(rng, "w13", 64, 64, 32, 4, "f16", true) +
                     randomNpuW4Weight(rng, "w2", 64, 32, 32, 4, "f16", true) +
                     "func @f(%x: tensor<2x64xf32>, %w: tensor<2x1xf32>, %i: tensor<2x1xi32>) -> "
                     "tensor<2x64xf32> {\n  %y = npu.fused_experts %x, %w, %i, @w13, @w2\n"
                     "  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  auto ex = NpuEmuExecutor::create(*m, nullptr);
  ASSERT_TRUE(bool(ex)) << llvm::toString(ex.takeError());
  Tensor ids = Tensor::fromF32As(ElemKind::I32, {2, 1}, {1.f, 4.f});
  auto out =
      (*ex)->run("f", {Tensor(ElemKind::F32, {2, 64}), Tensor::fromF32({2, 1}, {1.f, 1.f}), ids});
  ASSERT_FALSE(bool(out));
  EXPECT_EQ(llvm::toString(out.takeError()),
            m->lookupFunction("f")->ops().front()->loc().str() +
                ": 'npu.fused_experts' npu-emu: topk_ids[1, 0] = 4 is not an expert in [0, 4)");
}

// A module built in code that the verifier would reject (a 3-element bias on an N = 16 op) is an
// error at the op, not an out-of-bounds read.
TEST(NpuEmuDevice, MisShapedBiasIsAnErrorAtTheOp) {
  std::mt19937 rng(15);
  std::string text = randomNpuW4Weight(rng, "w", 16, 32, 32, 0, "f16", true) +
                     "weight @b : tensor<16xf32> { data = tensor<16xf32> = hex\"" +
                     hexOf(std::vector<float>(16, 1.f)) + "\" }\n" +
                     "func @f(%x: tensor<2x32xf32>) -> tensor<2x16xf32> {\n"
                     "  %y = npu.weight_quant_batchmatmul %x, @w, @b\n  return %y\n}\n";
  llvm::SourceMgr sm;
  auto m = parse(text, sm);
  ASSERT_TRUE(m);
  auto bad = std::make_unique<Weight>("b3", TensorType(ElemKind::F32, {3}), Location{});
  WeightPart p;
  p.name = "data";
  p.type = TensorType(ElemKind::F32, {3});
  p.data = std::make_shared<std::vector<uint8_t>>(12, 0);
  bad->parts().push_back(p);
  m->addWeight(std::move(bad));
  Operation &op = *m->lookupFunction("f")->ops().front();
  op.setSymbols({"w", "b3"});
  auto ex = NpuEmuExecutor::create(*m, nullptr);
  ASSERT_TRUE(bool(ex)) << llvm::toString(ex.takeError());
  auto out = (*ex)->run("f", {Tensor(ElemKind::F32, {2, 32})});
  ASSERT_FALSE(bool(out));
  EXPECT_EQ(llvm::toString(out.takeError()),
            op.loc().str() + ": 'npu.weight_quant_batchmatmul' npu-emu: bias @b3 has 3 elements, "
                             "the output has N = 16");
}

} // namespace
