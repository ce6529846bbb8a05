// Passes: each is declared once by a PassInfo (name, summary, typed options); registration,
// --list-passes and the docs' option tables come from that declaration.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llvm/Support/Error.h"
#include "llvm/Support/LogicalResult.h"

#include "ir/ir.h"

namespace qlc {
class DiagnosticEngine;

struct PassOptionSpec {
  enum class Kind { Int, Bool, String, Enum, Bytes, Float };
  std::string name;
  Kind kind;
  std::string defaultValue; // textual, parsed like a user-given value
  std::string description;
  std::vector<std::string> choices; // for Enum
};
const char *passOptionKindName(PassOptionSpec::Kind k);

/// Parsed option values of one pass instance (every option has a value: given or default).
class PassOptions {
public:
  int64_t getInt(const std::string &name) const;
  bool getBool(const std::string &name) const;
  double getFloat(const std::string &name) const;
  const std::string &getString(const std::string &name) const; // String and Enum
  uint64_t getBytes(const std::string &name) const;
  const std::map<std::string, std::string> &raw() const { return values_; }
  void set(std::string name, std::string value) { values_[std::move(name)] = std::move(value); }

private:
  std::map<std::string, std::string> values_;
};

/// Checks and normalises one option value; returns "" if valid, else what is wrong.
std::string checkPassOptionValue(const PassOptionSpec &spec, const std::string &value);
/// "16GiB", "512MiB", "1000", "1.5GB" -> bytes.
std::optional<uint64_t> parseByteSize(llvm::StringRef s);

class Module;

class WeightStore;

/// What a pass may use besides the module: diagnostics, and the checkpoint that `from "..."` parts
/// refer to. The checkpoint is opened on first use (a module whose passes never read weight bytes
/// need not have its checkpoint at hand). Passes that rewrite weights read parts with
/// resolvePart(weight, part, *ctx.checkpoint()) (runtime/weight_store.h).
struct PassContext {
  DiagnosticEngine &diag;
  /// Opens the module's checkpoint; returns null when the module names none. Set by the tool.
  std::function<llvm::Expected<const WeightStore *>()> openCheckpoint;

  llvm::Expected<const WeightStore *> checkpoint() {
    if (!openCheckpoint)
      return nullptr;
    return openCheckpoint();
  }
};

class Pass;

struct PassInfo {
  std::string name;
  std::string summary;
  std::string description;
  std::vector<PassOptionSpec> options;
  std::function<std::unique_ptr<Pass>()> create;
};

class Pass {
public:
  virtual ~Pass() = default;
  virtual llvm::LogicalResult run(Module &m, PassContext &ctx) = 0;

  const PassInfo &info() const { return *info_; }
  const PassOptions &options() const { return options_; }
  /// Counters printed by --pass-statistics (e.g. "ops-erased").
  void addStatistic(const std::string &name, int64_t delta = 1) { stats_[name] += delta; }
  const std::map<std::string, int64_t> &statistics() const { return stats_; }

private:
  friend class PassManager;
  const PassInfo *info_ = nullptr;
  PassOptions options_;
  std::map<std::string, int64_t> stats_;
};

/// A named pipeline: an alias for a pass list (`lower-cpu` = "materialize-experts,...").
struct PipelineInfo {
  std::string name;
  std::string summary;
  std::string pipeline;
};

class PassRegistry {
public:
  static PassRegistry &get();
  /// A duplicate name is a programmer error (aborts).
  void add(PassInfo info);
  void addPipeline(PipelineInfo info);
  const PassInfo *lookup(llvm::StringRef name) const;
  const PipelineInfo *lookupPipeline(llvm::StringRef name) const;
  std::vector<const PassInfo *> passes() const;     // sorted by name
  std::vector<const PipelineInfo *> pipelines() const; // sorted by name

private:
  std::map<std::string, std::unique_ptr<PassInfo>, std::less<>> passes_;
  std::map<std::string, std::unique_ptr<PipelineInfo>, std::less<>> pipelines_;
};

/// Registers verify, canonicalize and dce. Idempotent.
void registerGenericPasses();

} // namespace qlc
