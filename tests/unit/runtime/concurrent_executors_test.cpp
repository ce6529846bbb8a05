// Executors are safe to call from several threads at once (runtime/executor.h): 8 threads share
// one ReferenceExecutor or one CpuExecutor and run a dense AWQ linear and an AWQ MoE on inputs of
// several token counts, each thread in its own order; every result must be bit-identical to the
// same call made alone on a fresh executor. The threads start together on a latch so that the
// first calls race on the executors' lazy state (the reference executor's dequantized-weight
// cache, the cpu executor's prepared weights, the process-wide kernel cache compiling the JIT
// kernels, the thread pool). The concurrent part runs before the single-threaded baseline so that
// no kernel is compiled yet when the threads start.
//
// scripts/tsan.sh runs every test whose name contains "Concurrent" under ThreadSanitizer.
#include <gtest/gtest.h>

#include <cstring>
#include <latch>
#include <set>
#include <thread>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/reference_executor.h"
#include "tests/unit/codegen/test_weights.h"

namespace qlc {
namespace {

using namespace testw;

constexpr int kThreads = 8;
constexpr int64_t kHidden = 64, kInter = 32, kOut = 48, kExperts = 4, kTopK = 2;
const int64_t kTokenCounts[] = {1, 3, 17};

std::string hex(const std::vector<uint8_t> &b) {
  static const char digits[] = "0123456789ABCDEF";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t x : b) {
    s += digits[x >> 4];
    s += digits[x & 15];
  }
  return s;
}

/// `weight @name : !type { part = tensor<...> = hex"..." ... }`; with several weights, an expert
/// stack of them (`experts = E`, parts concatenated expert after expert).
std::string inlineWeight(const std::string &name, const std::vector<TestWeight> &ws) {
  WeightType t = ws[0].type;
  if (ws.size() > 1)
    t.params["experts"] = Attribute(int64_t(ws.size()));
  std::string s = "weight @" + name + " : " + t.str() + " {\n";
  bool first = true;
  for (const PartSpec &ps : t.expectedParts()) {
    auto it = ws[0].parts.find(ps.name);
    if (it == ws[0].parts.end())
      continue;
    std::vector<uint8_t> bytes;
    for (const TestWeight &w : ws) {
      const auto &b = w.parts.at(ps.name).second;
      bytes.insert(bytes.end(), b.begin(), b.end());
    }
    s += std::string(first ? "" : ",\n") + "  " + ps.name + " = " +
         TensorType(it->second.first, ps.shape).str() + " = hex\"" + hex(bytes) + "\"";
    first = false;
  }
  return s + "\n}\n";
}

/// @dense: an AWQ linear [kOut, kHidden]; @moe: AWQ experts (fused gate/up, down), top-2 of 4.
/// Lowered with lower-cpu, so the cpu executor runs cpu.qmatmul and cpu.moe on JIT kernels and the
/// reference executor runs the same ops through their reference semantics.
std::unique_ptr<Module> buildModule(llvm::SourceMgr &sm) {
  schemes::registerAllSchemes();
  registerGenericPasses();
  std::vector<TestWeight> w13, w2;
  for (int64_t e = 0; e < kExperts; ++e) {
    w13.push_back(awqWeight(2 * kInter, kHidden, 32, ElemKind::F16, uint32_t(100 + e)));
    w2.push_back(awqWeight(kHidden, kInter, 32, ElemKind::F16, uint32_t(200 + e)));
  }
  const std::string h = std::to_string(kHidden), e = std::to_string(kExperts),
                    n = std::to_string(kOut);
  std::string text =
      inlineWeight("lin", {awqWeight(kOut, kHidden, 32, ElemKind::F16, 7)}) +
      inlineWeight("w13", w13) + inlineWeight("w2", w2) +
      "func @dense(%x: tensor<?x" + h + "xf32>) -> tensor<?x" + n + "xf32> {\n"
      "  %y = linear %x, @lin\n  return %y\n}\n"
      "func @moe(%x: tensor<?x" + h + "xf32>, %l: tensor<?x" + e + "xf32>) -> tensor<?x" + h +
      "xf32> {\n  %y = moe %x, %l, @w13, @w2 {top_k = " + std::to_string(kTopK) +
      ", renormalize = true}\n  return %y\n}\n";
  std::string errs;
  llvm::raw_string_ostream os(errs);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  auto m = parseModuleString(text, "concurrent.qir", sm, diag);
  if (m && llvm::failed(verifyModule(*m, diag)))
    m.reset();
  if (m) {
    PassContext ctx{diag, nullptr};
    PassManager pm(ctx);
    EXPECT_EQ(pm.addPipeline("lower-cpu"), "");
    if (llvm::failed(pm.run(*m)))
      m.reset();
  }
  EXPECT_TRUE(m) << errs;
  if (!m)
    return m;
  // The point is the JIT path: make sure lowering produced the cpu ops.
  std::set<std::string> ops;
  for (const char *fn : {"dense", "moe"})
    for (const auto &op : m->lookupFunction(fn)->ops())
      ops.insert(op->name());
  EXPECT_TRUE(ops.count("cpu.qmatmul")) << "lower-cpu made no cpu.qmatmul";
  EXPECT_TRUE(ops.count("cpu.moe")) << "lower-cpu made no cpu.moe";
  return m;
}

/// One call: a function and its inputs.
struct Call {
  std::string func;
  std::vector<Tensor> inputs;
  std::string label;
};

std::vector<Call> makeCalls() {
  std::vector<Call> calls;
  for (int64_t t : kTokenCounts) {
    calls.push_back({"dense",
                     {Tensor::fromF32As(ElemKind::F32, {t, kHidden},
                                        randomVec(t * kHidden, uint32_t(11 + t)))},
                     "dense, " + std::to_string(t) + " tokens"});
    calls.push_back({"moe",
                     {Tensor::fromF32As(ElemKind::F32, {t, kHidden},
                                        randomVec(t * kHidden, uint32_t(23 + t))),
                      Tensor::fromF32As(ElemKind::F32, {t, kExperts},
                                        randomVec(t * kExperts, uint32_t(37 + t), 2.f))},
                     "moe, " + std::to_string(t) + " tokens"});
  }
  return calls;
}

std::vector<uint8_t> bytesOfResult(const std::vector<Tensor> &out) {
  std::vector<uint8_t> b;
  for (const Tensor &t : out) {
    std::vector<float> v = t.toF32();
    const auto *p = reinterpret_cast<const uint8_t *>(v.data());
    b.insert(b.end(), p, p + v.size() * sizeof(float));
  }
  return b;
}

/// Runs every call `rounds` times from each of kThreads threads on the one executor `shared`
/// (thread i starts at call i and walks the list, so different calls overlap), then checks every
/// result against `makeFresh()->run(call)` made alone. `makeFresh` builds an executor of the
/// same kind and options.
template <typename MakeExecutor>
void checkSharedExecutor(Executor &shared, MakeExecutor makeFresh, int rounds) {
  const std::vector<Call> calls = makeCalls();
  const size_t nCalls = calls.size();
  // results[thread][round * nCalls + call]
  std::vector<std::vector<std::vector<uint8_t>>> results(kThreads);
  std::vector<std::string> errors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int ti = 0; ti < kThreads; ++ti)
    threads.emplace_back([&, ti] {
      results[ti].resize(size_t(rounds) * nCalls);
      start.arrive_and_wait();
      for (int r = 0; r < rounds; ++r)
        for (size_t j = 0; j < nCalls; ++j) {
          size_t c = (size_t(ti) + j) % nCalls;
          auto out = shared.run(calls[c].func, calls[c].inputs);
          if (!out) {
            errors[ti] += calls[c].label + ": " + llvm::toString(out.takeError()) + "\n";
            continue;
          }
          results[ti][size_t(r) * nCalls + c] = bytesOfResult(*out);
        }
    });
  for (std::thread &t : threads)
    t.join();
  for (int ti = 0; ti < kThreads; ++ti)
    EXPECT_EQ(errors[ti], "") << "thread " << ti;

  for (size_t c = 0; c < nCalls; ++c) {
    auto fresh = makeFresh();
    auto out = fresh->run(calls[c].func, calls[c].inputs);
    ASSERT_TRUE(bool(out)) << calls[c].label << ": " << llvm::toString(out.takeError());
    std::vector<uint8_t> alone = bytesOfResult(*out);
    ASSERT_FALSE(alone.empty()) << calls[c].label;
    for (int ti = 0; ti < kThreads; ++ti)
      for (int r = 0; r < rounds; ++r)
        EXPECT_TRUE(results[ti][size_t(r) * nCalls + c] == alone)
            << calls[c].label << ": thread " << ti << ", round " << r
            << " differs from the single-threaded call";
  }
}

TEST(ConcurrentExecutors, ReferenceExecutorSharedByEightThreads) {
  llvm::SourceMgr sm;
  auto m = buildModule(sm);
  ASSERT_TRUE(m);
  ReferenceExecutor shared(*m, nullptr);
  checkSharedExecutor(shared, [&] { return std::make_unique<ReferenceExecutor>(*m, nullptr); }, 2);
}

TEST(ConcurrentExecutors, CpuExecutorSharedByEightThreads) {
  llvm::SourceMgr sm;
  auto m = buildModule(sm);
  ASSERT_TRUE(m);
  std::string notes;
  llvm::raw_string_ostream nos(notes);
  CpuExecutorOptions opts;
  opts.threads = 3; // a pool of its own with workers, shared by the 8 callers
  opts.notes = &nos;
  CpuExecutor shared(*m, nullptr, opts);
  checkSharedExecutor(shared, [&] { return std::make_unique<CpuExecutor>(*m, nullptr, opts); }, 2);
  // Every cpu op ran on a kernel: a fallback would make this a test of the reference again.
  EXPECT_EQ(shared.stats().fallbacks, 0u);
  // 8 threads x 2 rounds x (one cpu.qmatmul and one cpu.moe per token count).
  EXPECT_EQ(shared.stats().jitOps, unsigned(kThreads * 2 * 2 * std::size(kTokenCounts)));
  EXPECT_EQ(notes, "");
}

/// Both executors at once on one module, sharing the process-wide kernel cache and global pool.
TEST(ConcurrentExecutors, ReferenceAndCpuExecutorsAtOnce) {
  llvm::SourceMgr sm;
  auto m = buildModule(sm);
  ASSERT_TRUE(m);
  CpuExecutorOptions opts;
  opts.notes = nullptr; // threads = 0: the global pool
  ReferenceExecutor ref(*m, nullptr);
  CpuExecutor cpu(*m, nullptr, opts);
  std::thread refSide([&] {
    checkSharedExecutor(ref, [&] { return std::make_unique<ReferenceExecutor>(*m, nullptr); }, 1);
  });
  checkSharedExecutor(cpu, [&] { return std::make_unique<CpuExecutor>(*m, nullptr, opts); }, 1);
  refSide.join();
  EXPECT_EQ(cpu.stats().fallbacks, 0u);
}

} // namespace
} // namespace qlc
