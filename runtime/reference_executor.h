// The reference executor (`--target reference`): evaluates any function of a module op by op in
// f32 (f64 accumulation), with the schemes' reference dequantizers. Slow and simple on purpose: it
// is the oracle every pass and kernel is checked against.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "llvm/Support/Error.h"

#include "ir/ir.h"
#include "runtime/executor.h"
#include "runtime/tensor.h"

namespace qlc {
class WeightStore;
class ReferenceExecutor;

/// Computes one op: `inputs` are the SSA operands (in the operand types), `outputs` must be filled
/// with one tensor per result, in the result's element type and a concrete shape compatible with
/// the declared one.
using ReferenceOpFn = std::function<llvm::Error(ReferenceExecutor &, const Operation &,
                                                const std::vector<const Tensor *> &inputs,
                                                std::vector<Tensor> &outputs)>;

/// Registers the reference semantics of an op (core ops are registered by the executor itself;
/// backend ops by the folders that define them). A duplicate registration aborts.
void registerReferenceOp(const std::string &opName, ReferenceOpFn fn);
bool hasReferenceOp(const std::string &opName);
/// The registered reference implementation of an op, or null (for executors that run some ops
/// their own way and the rest through the reference).
const ReferenceOpFn *lookupReferenceOp(const std::string &opName);

class ReferenceExecutor : public Executor {
public:
  /// `store` may be null if every weight part is inline.
  ReferenceExecutor(const Module &m, const WeightStore *store);

  /// Runs `func` on `inputs` (element types must match the arguments'; dims must be compatible).
  llvm::Expected<std::vector<Tensor>> run(llvm::StringRef func,
                                          const std::vector<Tensor> &inputs) override;

  /// The dequantized f32 of a weight in its logical shape, cached for the executor's lifetime.
  llvm::Expected<const std::vector<float> *> weight(llvm::StringRef name);
  const Module &module() const { return m_; }
  const WeightStore *store() const { return store_; }

private:
  const Module &m_;
  const WeightStore *store_;
  std::mutex weightsMu_;
  std::map<std::string, std::vector<float>, std::less<>> weights_;
};

/// The reference semantics of `linear` and `moe` (operands and weight symbols in the same order),
/// for backend ops that compute the same thing on another layout.
llvm::Error referenceLinear(ReferenceExecutor &ex, const Operation &op,
                            const std::vector<const Tensor *> &inputs, std::vector<Tensor> &outputs);
llvm::Error referenceMoe(ReferenceExecutor &ex, const Operation &op,
                         const std::vector<const Tensor *> &inputs, std::vector<Tensor> &outputs);

/// Makes an llvm::Error located at an op: "file:line:col: 'op' <msg>".
llvm::Error opError(const Operation &op, const llvm::Twine &msg);

} // namespace qlc
