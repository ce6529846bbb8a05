// Pass manager: pipeline text parsing, typed options, registry, and running passes.
#include <gtest/gtest.h>

#include "llvm/Support/SourceMgr.h"

#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"

using namespace qlc;

namespace {

// A pass with one option of each kind, to test option parsing; it records what it was given.
class ProbePass : public Pass {
public:
  static inline std::string lastSeen;
  llvm::LogicalResult run(Module &, PassContext &) override {
    lastSeen = std::to_string(options().getInt("n")) + "," +
               (options().getBool("flag") ? "true" : "false") + "," + options().getString("mode") +
               "," + std::to_string(options().getBytes("budget"));
    return llvm::success();
  }
};

void registerProbe() {
  static bool done = false;
  if (done)
    return;
  done = true;
  registerGenericPasses();
  PassRegistry::get().add(
      {"test-probe", "records its options", "",
       {{"n", PassOptionSpec::Kind::Int, "3", "a number", {}},
        {"flag", PassOptionSpec::Kind::Bool, "false", "a flag", {}},
        {"mode", PassOptionSpec::Kind::Enum, "f16", "a dtype", {"f16", "bf16", "f32"}},
        {"budget", PassOptionSpec::Kind::Bytes, "1KiB", "a size", {}}},
       [] { return std::make_unique<ProbePass>(); }});
  PassRegistry::get().addPipeline({"test-pipe", "two passes", "canonicalize,test-probe{n=9}"});
}

struct Fixture : ::testing::Test {
  llvm::SourceMgr sm;
  DiagnosticEngine diag{&sm};
  PassContext ctx{diag, {}};
  void SetUp() override { registerProbe(); }
};

TEST_F(Fixture, DefaultsAndGivenOptions) {
  Module m;
  PassManager pm(ctx);
  EXPECT_EQ(pm.addPipeline("test-probe"), "");
  ASSERT_TRUE(llvm::succeeded(pm.run(m)));
  EXPECT_EQ(ProbePass::lastSeen, "3,false,f16,1024");
  PassManager pm2(ctx);
  // Both separators of the option list are accepted: ',' and ' '.
  EXPECT_EQ(pm2.addPipeline("test-probe{n=-2 flag=true, mode=bf16 budget=16GiB}"), "");
  ASSERT_TRUE(llvm::succeeded(pm2.run(m)));
  EXPECT_EQ(ProbePass::lastSeen, "-2,true,bf16,17179869184");
}

TEST_F(Fixture, BadPipelinesSayWhatIsWrong) {
  PassManager pm(ctx);
  EXPECT_EQ(pm.addPipeline("nope"), "unknown pass 'nope' (see --list-passes)");
  EXPECT_EQ(pm.addPipeline("test-probe{n=x}"), "option 'n' of pass 'test-probe' expects an integer, got 'x'");
  EXPECT_EQ(pm.addPipeline("test-probe{mode=f8}"),
            "option 'mode' of pass 'test-probe' expects one of f16|bf16|f32, got 'f8'");
  EXPECT_EQ(pm.addPipeline("test-probe{budget=lots}"),
            "option 'budget' of pass 'test-probe' expects a byte size such as 1000, 512MiB or 16GiB, got 'lots'");
  EXPECT_EQ(pm.addPipeline("dce{x=1}"), "pass 'dce' has no option 'x' (it takes none)");
  EXPECT_EQ(pm.addPipeline("test-probe{n=1"), "missing '}' after the options of pass 'test-probe'");
  EXPECT_EQ(pm.addPipeline("test-pipe{n=1}"),
            "pipeline 'test-pipe' takes no options (pass them to its passes)");
  EXPECT_EQ(pm.size(), 0u);
}

TEST_F(Fixture, PipelinesExpand) {
  PassManager pm(ctx);
  EXPECT_EQ(pm.addPipeline("dce, test-pipe ,verify"), "");
  EXPECT_EQ(pm.size(), 4u);
  Module m;
  ASSERT_TRUE(llvm::succeeded(pm.run(m)));
  EXPECT_EQ(ProbePass::lastSeen, "9,false,f16,1024");
}

TEST_F(Fixture, ByteSizes) {
  EXPECT_EQ(parseByteSize("1000"), 1000u);
  EXPECT_EQ(parseByteSize("2KiB"), 2048u);
  EXPECT_EQ(parseByteSize("1.5GB"), 1500000000u);
  EXPECT_EQ(parseByteSize("16GiB"), 17179869184u);
  EXPECT_FALSE(parseByteSize("-1"));
  EXPECT_FALSE(parseByteSize("12 parsecs"));
  EXPECT_FALSE(parseByteSize("99999999999TiB"));
}

TEST_F(Fixture, CanonicalizeAndDceRun) {
  auto m = parseModuleString("weight @w : tensor<4x4xf32> { data = tensor<4x4xf32> from \"w\" }\n"
                             "weight @dead : tensor<4xf32> { data = tensor<4xf32> from \"d\" }\n"
                             "func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {\n"
                             "  %a = linear %x, @w\n"
                             "  %b = linear %x, @w\n"
                             "  %c = add %a, %b\n"
                             "  %d = reshape %c : tensor<8xf32>\n"
                             "  %e = reshape %d : tensor<2x4xf32>\n"
                             "  %unused = silu %e\n"
                             "  return %e\n"
                             "}\n",
                             "p.qir", sm, diag);
  ASSERT_TRUE(m);
  PassManager pm(ctx);
  ASSERT_EQ(pm.addPipeline("canonicalize,dce"), "");
  ASSERT_TRUE(llvm::succeeded(pm.run(*m)));
  EXPECT_EQ(printModuleToString(*m), "weight @w : tensor<4x4xf32> {\n"
                                     "  data = tensor<4x4xf32> from \"w\"\n"
                                     "}\n\n"
                                     "func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {\n"
                                     "  %a = linear %x, @w : tensor<2x4xf32>\n"
                                     "  %c = add %a, %a : tensor<2x4xf32>\n"
                                     "  return %c\n"
                                     "}\n");
}

} // namespace
