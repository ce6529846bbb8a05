// What the public API's implementation shares between its files, and what in-tree tools (the qlc
// driver) may use beyond the public headers. Not installed.
#pragma once
#include <memory>
#include <ostream>
#include <string>

#include "llvm/Support/Error.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_os_ostream.h"

#include "ir/ir.h"
#include "qlc/runtime.h"
#include "runtime/executor.h"
#include "runtime/tensor.h"
#include "runtime/weight_store.h"

namespace qlc {
class CpuExecutor;
class NpuEmuExecutor;

struct Program::Impl {
  Target target = Target::reference();
  std::string pipeline;
  std::string source;
  std::unique_ptr<llvm::SourceMgr> sm; // the buffers the module's locations point into
  std::unique_ptr<Module> module;
  std::unique_ptr<WeightStore> store;
  std::unique_ptr<llvm::raw_os_ostream> notes, trace;
  // Declared last: destroyed first, while the module and the store it reads are still alive.
  std::unique_ptr<Executor> executor;
  const CpuExecutor *cpu = nullptr;
  const NpuEmuExecutor *npu = nullptr;
};

namespace api {

/// Registers the ops, passes and schemes once (every API entry point calls it).
void ensureRegistered();

/// Error from an llvm::Error (consumed), with optional diagnostic text.
Error toError(llvm::Error e, std::string diagnostics = "");
Error makeError(std::string message, std::string diagnostics = "");

DataType publicType(ElemKind k, bool &ok);
ElemKind internalType(DataType t);
Tensor toInternal(const HostTensor &t);
HostTensor toPublic(const Tensor &t);

/// Builds a program from a verified module: lowers it with `pipeline` (already resolved; only
/// recorded when `lower` is false: a loaded program), checks every weight part, creates the
/// executor. `moduleFile` resolves a relative checkpoint.
Expected<Program> buildProgram(const Target &target, std::unique_ptr<llvm::SourceMgr> sm,
                               std::unique_ptr<Module> m, const std::string &moduleFile,
                               const std::string &source, const std::string &pipeline,
                               const CompileOptions &options, bool lower = true);

/// Creates the executor of `impl` (module and store set) for impl.target.
Expected<void> createExecutor(Program::Impl &impl, const CompileOptions &options);

Program makeProgram(std::unique_ptr<Program::Impl> impl);

/// The target a saved program's manifest names (the manifest checked as load() does).
Expected<Target> savedProgramTarget(const std::string &dir);

/// The module behind a program (for the driver: random token ids need the embedding table size).
const Module &programModule(const Program &p);

} // namespace api
} // namespace qlc
