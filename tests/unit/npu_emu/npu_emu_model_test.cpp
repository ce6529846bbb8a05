// Whole modules on the npu-emu device: checkpoints written by qlc-make-checkpoint (dense AWQ, GPTQ,
// compressed-tensors asymmetric, W8A8, MoE with AWQ experts) and the llama.cpp GGUF fixtures are
// imported, lowered with lower-npu and executed on NpuEmuExecutor; every function is compared with
// the reference executor on the un-lowered module (what the checkpoint computes) and on the
// lowered one (the same npu.* semantics, so only the device's arithmetic differs).
//
// Tolerances (max |device − reference| / max |reference| over a function's output):
//  - lowered module, same ops: the device accumulates in f32 where the reference uses f64 (K·2^-24
//    of the sums of magnitudes per dot product, K <= 256 here, through at most three chained
//    matmuls; measured <= 1.5e-6): 1e-5.
//  - un-lowered, AWQ (linear and MoE): npu-layout-rewrite is exact (FORMATS.md §5.2), so the same
//    1e-5 bound holds.
//  - un-lowered, GPTQ / compressed-tensors / GGUF: lower-npu pre-dequantizes to f16 (relative 2^-11
//    per weight, so up to 2^-11 of the sum of magnitudes per dot product, which cancellation in the
//    random weights makes a few times max |y|; measured <= 4.4e-4 ≈ 0.9·2^-11): 4e-3 = 8·2^-11.
//  - un-lowered, W8A8: the device quantizes activations per token (npu_dynamic_quant, an error of
//  up
//    to max|x_m| / 254 per element, FORMATS.md §5.4) where the checkpoint's linear does not
//    (measured <= 1.5e-2): 5e-2.
#include <filesystem>

#include "llvm/Support/FileSystem.h"

#include "import/importer.h"
#include "npu_emu_test_util.h"

using namespace qlc;
using namespace qlc::npu_emu_test;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    llvm::SmallString<128> p;
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("qlc-npu-emu", p));
    path = std::string(p);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
};

/// An imported checkpoint, its store, and its lower-npu lowering.
struct Model {
  std::unique_ptr<Module> before, after;
  std::unique_ptr<WeightStore> store;
};

/// Imports `path` and lowers a clone with lower-npu; empty on failure (the test has failed).
std::optional<Model> load(const std::string &path) {
  registerCoreOps();
  registerGenericPasses();
  schemes::registerAllSchemes();
  Model md;
  auto m = importCheckpoint(path);
  if (!m) {
    ADD_FAILURE() << llvm::toString(m.takeError());
    return std::nullopt;
  }
  md.before = std::move(*m);
  auto st = WeightStore::openForModule(*md.before);
  if (!st) {
    ADD_FAILURE() << llvm::toString(st.takeError());
    return std::nullopt;
  }
  md.store = std::move(*st);
  md.after = md.before->clone();
  std::string errs;
  llvm::raw_string_ostream os(errs);
  DiagnosticEngine diag;
  diag.setStream(&os);
  const WeightStore *store = md.store.get();
  PassContext ctx{diag, [store]() -> llvm::Expected<const WeightStore *> { return store; }};
  PassManager pm(ctx);
  if (std::string e = pm.addPipeline("lower-npu"); !e.empty()) {
    ADD_FAILURE() << e;
    return std::nullopt;
  }
  if (llvm::failed(pm.run(*md.after))) {
    ADD_FAILURE() << "lower-npu failed: " << errs;
    return std::nullopt;
  }
  return md;
}

/// Random inputs for `f`: normal floats, ids below the table an embedding reads; `tokens` rows.
std::vector<Tensor> inputsFor(const Module &m, const Function &f, int64_t tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Tensor> ins;
  for (Value *a : f.arguments()) {
    std::vector<int64_t> shape;
    for (int64_t d : a->type().dims)
      shape.push_back(d == TensorType::kDynamic ? tokens : d);
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    if (isFloat(a->type().elem)) {
      std::normal_distribution<float> nd(0, 1);
      for (float &x : v)
        x = nd(rng);
    } else {
      int64_t bound = 16;
      for (const auto &op : f.ops())
        if (op->name() == "embedding" && op->operand(0) == a)
          bound = m.lookupWeight(op->symbols()[0])->logicalShape()[0];
      std::uniform_int_distribution<int64_t> ud(0, bound - 1);
      for (float &x : v)
        x = float(ud(rng));
    }
    ins.push_back(Tensor::fromF32As(a->type().elem, shape, v));
  }
  return ins;
}

/// Runs every function of the model on the device (lowered) and on the reference (before and
/// after lowering); checks the errors; returns the ops the device ran.
void expectModelMatches(const Model &md, double tolUnlowered, const std::string &what,
                        std::vector<std::string> expectOps = {}) {
  auto dev = NpuEmuExecutor::create(*md.after, md.store.get());
  ASSERT_TRUE(bool(dev)) << what << ": " << llvm::toString(dev.takeError());
  ReferenceExecutor refBefore(*md.before, md.store.get()), refAfter(*md.after, md.store.get());
  std::set<std::string> ran;
  for (const auto &f : md.after->functions())
    for (const auto &op : f->ops())
      ran.insert(op->name());
  for (const std::string &op : expectOps)
    EXPECT_TRUE(ran.count(op)) << what << ": the lowered module has no " << op;
  for (int64_t tokens : {1, 5}) {
    for (const auto &f : md.after->functions()) {
      std::vector<Tensor> ins = inputsFor(*md.after, *f, tokens, uint32_t(tokens * 17));
      auto got = (*dev)->run(f->name(), ins);
      ASSERT_TRUE(bool(got)) << what << " @" << f->name() << ": "
                             << llvm::toString(got.takeError());
      auto rb = refBefore.run(f->name(), ins);
      ASSERT_TRUE(bool(rb)) << llvm::toString(rb.takeError());
      auto ra = refAfter.run(f->name(), ins);
      ASSERT_TRUE(bool(ra)) << llvm::toString(ra.takeError());
      ASSERT_EQ(got->size(), rb->size());
      for (size_t i = 0; i < got->size(); ++i) {
        EXPECT_EQ((*got)[i].typeStr(), (*rb)[i].typeStr());
        std::vector<float> g = (*got)[i].toF32();
        double eAfter = relMaxError(g, (*ra)[i].toF32()),
               eBefore = relMaxError(g, (*rb)[i].toF32());
        EXPECT_LE(eAfter, 1e-5) << what << " @" << f->name() << " vs the lowered reference";
        EXPECT_LE(eBefore, tolUnlowered) << what << " @" << f->name() << " vs the checkpoint";
        std::printf("  %s @%s T=%lld: rel error %.3g (lowered), %.3g (checkpoint)\n", what.c_str(),
                    f->name().c_str(), (long long)tokens, eAfter, eBefore);
      }
    }
  }
}

struct CheckpointCase {
  std::string name, args;
  double tol;
  std::vector<std::string> ops; // device ops the lowered module must contain
};
void PrintTo(const CheckpointCase &c, std::ostream *os) { *os << c.name; }

class NpuEmuCheckpoint : public ::testing::TestWithParam<CheckpointCase> {};

TEST_P(NpuEmuCheckpoint, MatchesReference) {
  const CheckpointCase &c = GetParam();
  TempDir dir;
  const std::string out = dir.path + "/model";
  const std::string cmd = std::string(QLC_MAKE_CHECKPOINT) + " " + c.args + " -o " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto md = load(out);
  ASSERT_TRUE(md);
  expectModelMatches(*md, c.tol, c.name, c.ops);
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, NpuEmuCheckpoint,
    ::testing::Values(
        CheckpointCase{"awq_dense",
                       "--scheme awq --group 32 --hidden 64 --intermediate 128 --seed 1",
                       1e-5,
                       {"npu.weight_quant_batchmatmul", "silu", "mul", "embedding"}},
        // GPTQ / CT / 8-bit AWQ are rewritten on their bits (!npu_w4 / !npu_w8): the antiquant is
        // the checkpoint's dequantization exactly, so the device differs from the checkpoint's
        // reference only by its f32 accumulation order (and routing weights in f32 for MoE).
        CheckpointCase{"gptq_dense",
                       "--scheme gptq --bits 4 --group 32 --hidden 64 --intermediate 96 --seed 2",
                       1e-5,
                       {"npu.weight_quant_batchmatmul"}},
        CheckpointCase{"gptq8_asym_v1",
                       "--scheme gptq --bits 8 --asym --group 32 --hidden 64 --intermediate 64 "
                       "--seed 6",
                       1e-5,
                       {"npu.weight_quant_batchmatmul"}},
        CheckpointCase{"gptq4_asym_v2_moe",
                       "--scheme gptq --bits 4 --asym --format v2 --group 32 --moe 4 --hidden 64 "
                       "--intermediate 64 --seed 7",
                       1e-5,
                       {"npu.moe_gating_topk", "npu.fused_experts"}},
        CheckpointCase{"ct_asym",
                       "--scheme ct --bits 4 --group 32 --asym --hidden 64 --intermediate 64 "
                       "--seed 3",
                       1e-5,
                       {"npu.weight_quant_batchmatmul"}},
        CheckpointCase{"ct8_channel",
                       "--scheme ct --bits 8 --group -1 --hidden 64 --intermediate 64 --seed 8",
                       1e-5,
                       {"npu.weight_quant_batchmatmul"}},
        CheckpointCase{"ct8_asym_moe",
                       "--scheme ct --bits 8 --asym --group 32 --moe 4 --hidden 64 "
                       "--intermediate 64 --seed 9",
                       1e-5,
                       {"npu.moe_gating_topk", "npu.fused_experts"}},
        CheckpointCase{"awq8_dense",
                       "--scheme awq --bits 8 --group 32 --hidden 64 --intermediate 64 --seed 10",
                       1e-5,
                       {"npu.weight_quant_batchmatmul"}},
        CheckpointCase{"awq8_moe",
                       "--scheme awq --bits 8 --group 32 --moe 4 --hidden 64 --intermediate 64 "
                       "--seed 11",
                       1e-5,
                       {"npu.moe_gating_topk", "npu.fused_experts"}},
        // Act-order GPTQ and 3-bit GPTQ have no exact antiquant form: lower-npu pre-dequantizes
        // them to f16 (relative error ~2^-11 per weight, ~4e-3 bound on the outputs).
        CheckpointCase{"gptq_act_order",
                       "--scheme gptq --bits 4 --desc-act --group 32 --hidden 64 "
                       "--intermediate 64 --seed 12",
                       4e-3,
                       {"linear"}},
        CheckpointCase{"gptq3_moe",
                       "--scheme gptq --bits 3 --group 32 --moe 4 --hidden 64 --intermediate 64 "
                       "--seed 13",
                       4e-3,
                       {"moe"}},
        CheckpointCase{"w8a8",
                       "--scheme w8a8 --hidden 64 --intermediate 128 --seed 4",
                       5e-2,
                       {"npu.dynamic_quant", "npu.quant_matmul"}},
        CheckpointCase{"awq_moe",
                       "--scheme awq --group 32 --moe 4 --hidden 64 --intermediate 64 --seed 5",
                       1e-5,
                       {"npu.moe_gating_topk", "npu.fused_experts"}}),
    [](const auto &info) { return info.param.name; });

class NpuEmuGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(NpuEmuGguf, MatchesReference) {
  const std::string path = std::string(QLC_FIXTURES_DIR) + "/gguf/" + GetParam();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "fixture not present: " << path;
  auto md = load(path);
  ASSERT_TRUE(md);
  expectModelMatches(*md, 4e-3, GetParam(),
                     GetParam().find("moe") != std::string::npos
                         ? std::vector<std::string>{"moe"}
                         : std::vector<std::string>{"linear"});
}

INSTANTIATE_TEST_SUITE_P(Fixtures, NpuEmuGguf,
                         ::testing::Values("tiny-llama-dense-Q4_0.gguf",
                                           "tiny-llama-dense-Q4_K_M.gguf",
                                           "tiny-llama-dense-Q8_0.gguf",
                                           "tiny-llama-moe-Q4_K_M.gguf"),
                         [](const auto &info) {
                           std::string n = info.param.substr(11);
                           for (char &c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return n;
                         });

} // namespace
