// The runtime API's contracts: concurrent calls on one program, save -> load bit-identity, and
// every failure an Error value naming what is wrong (never an abort).
#include <fstream>
#include <optional>
#include <thread>

#include "tests/unit/api/api_test_util.h"

namespace qlc::api_test {
namespace {

const char *const kMoeArgs = "--scheme awq --moe 4 --group 32 --hidden 64 --intermediate 128 --seed 21";

/// The MoE block of the generated AWQ-MoE checkpoint.
std::string moeModel() { return makeCheckpoint("api-moe", kMoeArgs); }

std::string fileText(const std::string &path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void writeText(const std::string &path, const std::string &text) { std::ofstream(path) << text; }

// 8 threads call one program at once, each with its own inputs (so a race between calls that
// mixed up buffers or half-prepared weights would change some thread's result); every result must
// be bit-identical to the one computed alone beforehand. Run under ThreadSanitizer too.
void checkConcurrentCalls(const Target &target) {
  auto p = Runtime(target).compile_checkpoint(moeModel());
  ASSERT_TRUE(p) << p.error().str();
  const unsigned kThreads = 8, kRounds = 6;
  std::vector<std::string> funcs;
  for (const FunctionInfo &f : p->functions())
    funcs.push_back(f.name);
  // Inputs and expected outputs per (thread, function), computed sequentially on a separate
  // program so that the concurrent one starts cold (its weights are prepared under contention).
  auto seqProgram = Runtime(target).compile_checkpoint(moeModel());
  ASSERT_TRUE(seqProgram) << seqProgram.error().str();
  std::vector<std::vector<std::vector<HostTensor>>> ins(kThreads);
  std::vector<std::vector<HostTensor>> want(kThreads);
  for (unsigned t = 0; t < kThreads; ++t)
    for (const FunctionInfo &f : p->functions()) {
      ins[t].push_back(randomInputs(f, 1 + t % 5, 100 + t));
      auto y = seqProgram->call(f.name, ins[t].back());
      ASSERT_TRUE(y) << y.error().str();
      want[t].push_back(*y);
    }
  std::vector<unsigned> mismatches(kThreads, 0), errors(kThreads, 0);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      for (unsigned r = 0; r < kRounds; ++r)
        for (size_t i = 0; i < funcs.size(); ++i) {
          size_t fi = (i + t) % funcs.size(); // threads start on different functions
          auto y = p->call(funcs[fi], ins[t][fi]);
          if (!y)
            ++errors[t];
          else if (!(*y == want[t][fi]))
            ++mismatches[t];
        }
    });
  for (std::thread &th : pool)
    th.join();
  for (unsigned t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], 0u) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0u) << "thread " << t;
  }
}

TEST(Api, ConcurrentCallsAreIdentical) {
  checkConcurrentCalls(Target::cpu());
  checkConcurrentCalls(Target::npu_emu());
  checkConcurrentCalls(Target::reference());
}

// save -> load -> call gives bit-identical outputs (the saved weights are the lowered bytes, the
// IR the lowered IR), with no import and no lowering on load.
void checkSaveLoad(const Target &target, const std::string &model, const std::string &name) {
  auto p = Runtime(target).compile_checkpoint(model);
  ASSERT_TRUE(p) << p.error().str();
  std::string dir = freshDir("save-" + name);
  auto ok = p->save(dir);
  ASSERT_TRUE(ok) << ok.error().str();
  for (const char *f : {"manifest.json", "program.qir", "weights.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / f)) << f;

  std::vector<std::string> stages;
  CompileOptions o;
  o.progress = [&](const Progress &pr) {
    if (stages.empty() || stages.back() != pr.stage)
      stages.push_back(pr.stage);
  };
  auto loaded = Runtime(target).load(dir, o);
  ASSERT_TRUE(loaded) << loaded.error().str();
  EXPECT_EQ(stages, (std::vector<std::string>{"load", "weights"})) << "no import, no lowering";
  auto loaded2 = Program::load(dir); // the manifest's target
  ASSERT_TRUE(loaded2) << loaded2.error().str();
  EXPECT_EQ(loaded->pipeline(), p->pipeline());
  EXPECT_EQ(loaded2->target().kind(), target.kind());
  auto funcs = [](const std::string &ir) { return ir.substr(ir.find("\nfunc @")); };
  EXPECT_EQ(funcs(loaded->ir()), funcs(p->ir())); // same ops; the weights now come from the file

  unsigned seed = 0;
  for (const FunctionInfo &f : p->functions())
    for (int64_t tokens : {1, 9}) {
      SCOPED_TRACE("@" + f.name);
      std::vector<HostTensor> ins = randomInputs(f, tokens, ++seed);
      auto a = p->call(f.name, ins), b = loaded->call(f.name, ins), c = loaded2->call(f.name, ins);
      ASSERT_TRUE(a && b && c);
      EXPECT_TRUE(*a == *b) << "rel err " << relError(*b, *a);
      EXPECT_TRUE(*a == *c);
    }
  std::filesystem::remove_all(dir);
}

TEST(Api, SaveLoadIsBitIdentical) {
  std::string dense = makeCheckpoint("api-dense", "--scheme awq --group 32 --hidden 64 --intermediate 128 --seed 22");
  std::string gptq = makeCheckpoint("api-gptq", "--scheme gptq --group 32 --hidden 64 --intermediate 128 --seed 23");
  checkSaveLoad(Target::cpu(), moeModel(), "cpu-moe");
  checkSaveLoad(Target::npu_emu(), moeModel(), "npu-moe");
  checkSaveLoad(Target::cpu(), dense, "cpu-dense");
  checkSaveLoad(Target::npu_emu(), gptq, "npu-gptq"); // pre-dequantized f16 weights saved
  std::string gguf = std::string(QLC_FIXTURES_DIR) + "/gguf/tiny-llama-moe-Q4_K_M.gguf";
  if (std::filesystem::exists(gguf)) {
    checkSaveLoad(Target::cpu(), gguf, "cpu-gguf");
    checkSaveLoad(Target::npu_emu(), gguf, "npu-gguf");
  }
}

// Public tensors: conversions and the f16/bf16 inputs a program accepts for f32 arguments.
TEST(Api, HostTensorConversions) {
  HostTensor h = HostTensor::from_f32({2, 2}, {1.0f, -2.5f, 65504.0f, 1e-8f}, DataType::f16);
  EXPECT_EQ(h.num_bytes(), 8u);
  EXPECT_EQ(h.type_str(), "tensor<2x2xf16>");
  std::vector<float> back = h.to_f32();
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_EQ(back[2], 65504.0f);
  EXPECT_EQ(back[3], 0.0f); // below half the smallest f16 subnormal
  HostTensor b = HostTensor::from_f32({3}, {1.0f, 3.0f, 1.00390625f}, DataType::bf16);
  EXPECT_EQ(b.to_f32(), (std::vector<float>{1.0f, 3.0f, 1.0f})); // 1 + 2^-8 rounds to even
  EXPECT_EQ(HostTensor::from_f32({2}, {1.0f}).num_elements(), 2); // size mismatch: zeros
  EXPECT_EQ(HostTensor::from_f32({2}, {1.0f}).to_f32(), (std::vector<float>{0, 0}));

  auto p = Runtime(Target::cpu()).compile_checkpoint(moeModel());
  ASSERT_TRUE(p) << p.error().str();
  std::optional<FunctionInfo> block;
  for (const FunctionInfo &f : p->functions())
    if (f.name.ends_with(".moe"))
      block = f;
  ASSERT_TRUE(block);
  std::vector<HostTensor> x = randomInputs(*block, 3, 5);
  std::vector<float> xv = x[0].to_f32();
  for (DataType dt : {DataType::f16, DataType::bf16}) {
    // An f16 input equals the f32 input holding the same (rounded) values.
    HostTensor low = HostTensor::from_f32(x[0].shape(), xv, dt);
    HostTensor widened = HostTensor::from_f32(x[0].shape(), low.to_f32(), block->arguments[0].dtype);
    auto a = p->call(block->name, {low}), b = p->call(block->name, {widened});
    ASSERT_TRUE(a && b) << data_type_name(dt);
    EXPECT_TRUE(*a == *b) << data_type_name(dt);
  }
}

// Errors are values naming the problem.
TEST(Api, ErrorsAreValues) {
  auto p = Runtime(Target::cpu()).compile_checkpoint(moeModel());
  ASSERT_TRUE(p) << p.error().str();
  auto noFn = p->call("nope", {});
  ASSERT_FALSE(noFn);
  EXPECT_NE(noFn.error().message().find("no function @nope"), std::string::npos) << noFn.error().message();
  auto wrongCount = p->call("lm_head", {});
  ASSERT_FALSE(wrongCount);
  EXPECT_NE(wrongCount.error().message().find("takes 1 inputs, 0 given"), std::string::npos);
  auto wrongShape = p->call("lm_head", {HostTensor(DataType::f32, {2, 3})});
  ASSERT_FALSE(wrongShape);

  auto missing = Runtime(Target::cpu()).compile_checkpoint("/nonexistent/model");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent/model"), std::string::npos);

  auto badIr = Runtime(Target::cpu()).compile_module_text("func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n  %y = bogus %x\n  return %y\n}\n", "bad.qir");
  ASSERT_FALSE(badIr);
  EXPECT_NE(badIr.error().diagnostics().find("bad.qir:2:"), std::string::npos) << badIr.error().str();

  CompileOptions noSuchPass;
  noSuchPass.pipeline = "no-such-pass";
  auto badPipeline = Runtime(Target::cpu()).compile_checkpoint(moeModel(), noSuchPass);
  ASSERT_FALSE(badPipeline);
  EXPECT_NE(badPipeline.error().message().find("unknown pass 'no-such-pass'"), std::string::npos);

  auto badTarget = Target::parse("gpu");
  ASSERT_FALSE(badTarget);
  EXPECT_EQ(badTarget.error().message(), "unknown target 'gpu' (targets: reference, cpu, npu-emu)");

  // Device memory too small for the weights: the npu-emu program is not created.
  auto tiny = Runtime(Target::npu_emu(4096)).compile_checkpoint(moeModel());
  ASSERT_FALSE(tiny);

  // Saved programs: target mismatch, corrupt manifest, missing or truncated weights, bad IR.
  std::string dir = freshDir("errors");
  ASSERT_TRUE(p->save(dir));
  auto mismatch = Runtime(Target::npu_emu()).load(dir);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message().find("target mismatch: the program was compiled for cpu, not npu-emu"),
            std::string::npos) << mismatch.error().message();

  std::string manifest = dir + "/manifest.json", weights = dir + "/weights.safetensors",
              qir = dir + "/program.qir";
  std::string goodManifest = fileText(manifest), goodQir = fileText(qir);
  writeText(manifest, "{\"format\": \"qlc-program\", ");
  auto corrupt = Program::load(dir);
  ASSERT_FALSE(corrupt);
  EXPECT_NE(corrupt.error().message().find(manifest + ": corrupt manifest"), std::string::npos)
      << corrupt.error().message();
  std::string v2 = goodManifest;
  v2.replace(v2.find("\"format_version\": 1"), 19, "\"format_version\": 2");
  writeText(manifest, v2);
  auto newer = Program::load(dir);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message().find("program format version 2 is not supported"), std::string::npos);
  writeText(manifest, goodManifest);

  std::filesystem::rename(weights, weights + ".moved");
  auto noWeights = Program::load(dir);
  ASSERT_FALSE(noWeights);
  EXPECT_NE(noWeights.error().message().find(weights + ": missing weights file"), std::string::npos)
      << noWeights.error().message();
  std::filesystem::copy_file(weights + ".moved", weights);
  std::filesystem::resize_file(weights, std::filesystem::file_size(weights) - 8);
  auto truncated = Program::load(dir);
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.error().message().find("truncated or replaced"), std::string::npos);
  std::filesystem::remove(weights);
  std::filesystem::rename(weights + ".moved", weights);

  writeText(qir, goodQir.substr(0, goodQir.size() / 2));
  auto badQir = Program::load(dir);
  ASSERT_FALSE(badQir);
  EXPECT_NE(badQir.error().message().find(qir + ": invalid program IR"), std::string::npos);
  writeText(qir, goodQir);
  EXPECT_TRUE(Program::load(dir)) << "restored";
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace qlc::api_test
