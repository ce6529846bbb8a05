// verify: runs the module verifier as a pass (useful with --verify-each=false, or to end a pipeline).
#include "ir/verifier.h"
#include "passes/pass.h"

namespace qlc {
namespace {

class VerifyPass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &ctx) override { return verifyModule(m, ctx.diag); }
};

} // namespace

void registerVerifyPass() {
  PassRegistry::get().add({"verify", "check every op, weight and function of the module",
                           "Runs the verifier: op operand and result types, weight type "
                           "parameters, part shapes and byte sizes, terminators and dominance.",
                           {}, [] { return std::make_unique<VerifyPass>(); }});
}

} // namespace qlc
