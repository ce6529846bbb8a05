// Runs a pipeline of passes over a module, with --verify-each, --print-ir-after-all,
// --print-ir-after=NAME, --time-passes and --pass-statistics behaviour.
#pragma once
#include <functional>
#include <set>
#include <string>

#include "passes/pass.h"

namespace llvm {
class raw_ostream;
}

namespace qlc {

struct PassManagerOptions {
  bool verifyEach = true;
  bool printAfterAll = false;
  std::set<std::string> printAfter;
  bool timePasses = false;
  bool statistics = false;
  bool printLocations = false;
  /// Called before each pass (done = passes finished so far, `pass` = the one starting) and once
  /// after the last (done = total, pass = ""): what progress bars show.
  std::function<void(size_t done, size_t total, const std::string &pass)> progress;
};

class PassManager {
public:
  explicit PassManager(PassContext &ctx, PassManagerOptions opts = {});
  ~PassManager();

  /// Appends the passes of a textual pipeline: `a,b{opt=v other=w},pipeline-name`.
  /// Returns "" on success, else the error.
  std::string addPipeline(llvm::StringRef text);
  size_t size() const { return passes_.size(); }

  /// Runs every pass in order. Dumps and reports go to `log` (default stderr).
  llvm::LogicalResult run(Module &m, llvm::raw_ostream *log = nullptr);

private:
  std::string addPipelineImpl(llvm::StringRef text, unsigned depth);
  PassContext &ctx_;
  PassManagerOptions opts_;
  std::vector<std::unique_ptr<Pass>> passes_;
};

} // namespace qlc
