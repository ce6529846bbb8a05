// What every device's executor offers (reference, cpu, npu-emu): run one function of a module on
// host tensors. Executors are safe to call from several threads at once.
#pragma once
#include <string>
#include <vector>

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include "ir/ir.h"
#include "runtime/tensor.h"

namespace qlc {

class Executor {
public:
  virtual ~Executor();
  /// Runs `func` on `inputs` (element types must match the arguments'; dims must be compatible)
  /// and returns the function's results.
  virtual llvm::Expected<std::vector<Tensor>> run(llvm::StringRef func,
                                                  const std::vector<Tensor> &inputs) = 0;
};

/// Computes one op: `inputs` are its operands; `outputs` gets one tensor per result.
using OpRunner = llvm::function_ref<llvm::Error(
    const Operation &op, const std::vector<const Tensor *> &inputs, std::vector<Tensor> &outputs)>;

/// The loop every executor shares: checks `inputs` against the function's arguments, runs its ops
/// in order through `runOp`, checks every result against the type the op declares (so a device
/// bug is an error at the op, not a wrong answer later) and returns the returned values. A value
/// is freed after the op that reads it last.
llvm::Expected<std::vector<Tensor>> runFunction(const Module &m, llvm::StringRef func,
                                                const std::vector<Tensor> &inputs, OpRunner runOp);

/// True when `shape` has `t`'s rank and every dim is compatible (`?` takes any size).
bool shapeFits(const std::vector<int64_t> &shape, const TensorType &t);

} // namespace qlc
